// The one interface every collective engine (Gloo, MPI, NCCL) implements, and what a process
// group is configured with. Each optional addon links exactly one engine and defines
// CreateEngine/EngineVersion for it; everything above this interface is shared.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace rnnkit {
namespace dist {

enum class ReduceOp : int32_t { sum = 0, avg = 1, max = 2, min = 3 };

struct GroupConfig {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string init_kind;  // "tcp", "file", or "launcher" (the engine's own launcher, e.g. mpiexec)
  std::string host;       // tcp
  int port = 0;           // tcp
  std::string path;       // file: a directory every rank sees
  std::chrono::milliseconds timeout{60000};
  std::string socket_interface;  // GLOO_SOCKET_IFNAME: the network interface Gloo binds to
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // What runs underneath, for messages and backendInfo (e.g. "gloo 0.5.0, tcp on 10.0.0.3").
  virtual std::string description() const = 0;

  // Every rank gives `bytes` bytes and receives every rank's, in rank order, into `all`.
  virtual void ExchangeHeaders(const void* mine, void* all, size_t bytes) = 0;
  // In place, over `n` floats (host memory, or device memory for a GPU engine).
  virtual void AllReduce(float* data, size_t n, ReduceOp op) = 0;
  virtual void Broadcast(float* data, size_t n, int root) = 0;
  // `out` holds size() * n floats: rank r's `in` lands at out + r * n.
  virtual void AllGather(const float* in, float* out, size_t n) = 0;
  // Cleanup that needs the peers (e.g. the last rank out removes the rendezvous files); called
  // once before destruction when the group is healthy.
  virtual void Shutdown() {}
};

// Whether the engine's collectives take device memory (NCCL) rather than host memory.
extern const bool kEngineUsesDeviceMemory;
// Connects to the other ranks as `config` says (blocks until rendezvous is done or times out).
std::unique_ptr<Engine> CreateEngine(const GroupConfig& config);
// The engine and its version, e.g. "gloo 0.5.0"; throws DistError when its library is missing.
std::string EngineVersion();

}  // namespace dist
}  // namespace rnnkit
