// The checked collectives a process group runs: before each one, every rank shows the others a
// small header (which collective, call number, element count, root or op, tag), so ranks that disagree
// (a different tensor size, a missing or extra call) get a DistError naming what differs instead
// of corrupted data or a hang. An engine failure (a dead or hung peer, the timeout) breaks the
// group: every later call fails at once with the first error.
//
// The headers travel in fixed-size frames (the same size on every rank, whatever the call) with
// room for a few hundred values after the header. A collective whose data fits there (host
// engines only) is done in that one exchange: every rank reduces (or picks) the gathered values
// itself, in rank order, so every rank computes the same bits. That halves the round trips of a
// small call (header exchange, then the engine's own collective) and it is what latency-bound
// calls (a loss, a counter, a small DDP bucket) pay. Larger data takes the header exchange, then
// the engine's collective.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace rnnkit {
namespace dist {

enum class Collective : int32_t { allreduce = 1, broadcast = 2, allgather = 3, barrier = 4 };

class CheckedGroup {
 public:
  static constexpr size_t kHeaderFloats = 8;  // the 32-byte header, in float slots of a frame
  explicit CheckedGroup(std::unique_ptr<Engine> engine);
  int rank() const { return engine_->rank(); }
  int size() const { return engine_->size(); }
  std::string description() const { return engine_->description(); }

  // `tag` joins the header check (e.g. a DDP bucket's index): calls that differ in it disagree.
  void AllReduce(float* data, size_t n, ReduceOp op, int32_t tag);
  void Broadcast(float* data, size_t n, int root, int32_t tag);
  // `out` must hold size() * n values.
  void AllGather(const float* in, size_t n, float* out, size_t n_out);
  void Barrier();
  // Runs the engine's Shutdown when healthy, then drops the engine.
  void Destroy();
  // How many values a collective may carry inside its header frame (0: none, a device engine).
  size_t inline_values() const { return inline_values_; }

 private:
  // Exchanges header frames, `n` values of `payload` inside them when n <= inline_values_ (then
  // gathered(r) holds rank r's afterwards), and throws DistError when the ranks disagree (the
  // group stays usable). Returns whether the values travelled with the headers.
  bool Agree(Collective what, uint64_t count, int32_t param, int32_t tag, const float* payload = nullptr, size_t n = 0);
  const float* gathered(int r) const { return frames_.data() + static_cast<size_t>(r) * frame_floats_ + kHeaderFloats; }
  template <typename F>
  void Run(const char* what, F&& f);

  std::unique_ptr<Engine> engine_;
  uint64_t calls_ = 0;
  std::string broken_;
  size_t inline_values_ = 0;
  size_t frame_floats_ = kHeaderFloats;  // header + inline values, in floats
  std::vector<float> mine_;               // this rank's frame
  std::vector<float> frames_;             // every rank's frame, in rank order
};

}  // namespace dist
}  // namespace rnnkit
