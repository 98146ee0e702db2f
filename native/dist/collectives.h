// The checked collectives a process group runs: before each one, every rank shows the others a
// small header (which collective, call number, element count, root or op, tag), so ranks that disagree
// (a different tensor size, a missing or extra call) get a DistError naming what differs instead
// of corrupted data or a hang. An engine failure (a dead or hung peer, the timeout) breaks the
// group: every later call fails at once with the first error.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine.h"

namespace rnnkit {
namespace dist {

enum class Collective : int32_t { allreduce = 1, broadcast = 2, allgather = 3, barrier = 4 };

class CheckedGroup {
 public:
  explicit CheckedGroup(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
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

 private:
  // Exchanges headers and throws DistError when the ranks disagree (the group stays usable).
  void Agree(Collective what, uint64_t count, int32_t param, int32_t tag);
  template <typename F>
  void Run(const char* what, F&& f);

  std::unique_ptr<Engine> engine_;
  uint64_t calls_ = 0;
  std::string broken_;
};

}  // namespace dist
}  // namespace rnnkit
