// The NCCL engine for CUDA tensors: one communicator per group on cuda:<localRank>, its
// ncclUniqueId passed from rank 0 through our rendezvous store, every collective on a stream of
// its own and waited for by polling against the group's timeout (a hung peer: the communicator
// is aborted and the call fails with DistError). The main addon finishes its own device work
// before it resolves, so data is ready when a collective starts.
#include <cstring>
#include <thread>
#include <vector>

#include "deadline.h"
#include "dist_error.h"
#include "engine.h"
#include "nccl_library.h"
#include "rendezvous.h"

namespace rnnkit {
namespace dist {

namespace {

class NcclEngine : public Engine {
 public:
  explicit NcclEngine(const GroupConfig& config)
      : lib_(Nccl()), config_(config), rendezvous_(config, "nccl") {
    CheckCuda(lib_.CuInit(0), "cuInit");
    int device = 0;
    CheckCuda(lib_.CuDeviceGet(&device, config.local_rank), "cuDeviceGet(cuda:" + std::to_string(config.local_rank) + ")");
    CheckCuda(lib_.CuDevicePrimaryCtxRetain(&context_, device), "cuDevicePrimaryCtxRetain");
    device_ = device;
    CheckCuda(lib_.CuCtxSetCurrent(context_), "cuCtxSetCurrent");
    CheckCuda(lib_.CuStreamCreate(&stream_, kStreamNonBlocking), "cuStreamCreate");
    NcclUniqueId id;
    const std::string key = rendezvous_.prefix() + "nccl/unique_id";
    if (config.rank == 0) {
      CheckNccl(lib_.GetUniqueId(&id), "ncclGetUniqueId");
      rendezvous_.store().Set(key, std::string(id.internal, sizeof(id.internal)));
    } else {
      std::string bytes = rendezvous_.store().Get(key, config.timeout);
      if (bytes.size() != sizeof(id.internal)) throw DistError("the ncclUniqueId from rank 0 has the wrong size");
      std::memcpy(id.internal, bytes.data(), sizeof(id.internal));
    }
    CheckNccl(lib_.CommInitRank(&comm_, config.world_size, id, config.rank), "ncclCommInitRank");
  }

  ~NcclEngine() override {
    if (comm_) lib_.CommDestroy(comm_);
    if (headers_) lib_.CuMemFree(headers_);
    if (stream_) lib_.CuStreamDestroy(stream_);
    if (context_) lib_.CuDevicePrimaryCtxRelease(device_);
  }

  int rank() const override { return config_.rank; }
  int size() const override { return config_.world_size; }
  std::string description() const override {
    return lib_.version + ", cuda:" + std::to_string(config_.local_rank);
  }

  void ExchangeHeaders(const void* mine, void* all, size_t bytes) override {
    const size_t total = bytes * static_cast<size_t>(config_.world_size);
    if (!headers_) CheckCuda(lib_.CuMemAlloc(&headers_, total), "cuMemAlloc (headers)");
    CuDevicePtr slot = headers_ + bytes * static_cast<size_t>(config_.rank);
    CheckCuda(lib_.CuMemcpyHtoD(slot, mine, bytes), "cuMemcpyHtoD (header)");
    CheckNccl(lib_.AllGather(reinterpret_cast<void*>(slot), reinterpret_cast<void*>(headers_), bytes, kNcclInt8, comm_, stream_),
              "ncclAllGather (headers)");
    WaitForStream("header exchange");
    CheckCuda(lib_.CuMemcpyDtoH(all, headers_, total), "cuMemcpyDtoH (headers)");
  }

  void AllReduce(float* data, size_t n, ReduceOp op) override {
    int nccl_op = op == ReduceOp::max ? kNcclMax : op == ReduceOp::min ? kNcclMin : op == ReduceOp::avg ? kNcclAvg : kNcclSum;
    if (op == ReduceOp::avg && lib_.version_code < 21000) throw DistError("allReduce op 'avg' needs NCCL 2.10 or newer, this is " + lib_.version);
    CheckNccl(lib_.AllReduce(data, data, n, kNcclFloat32, nccl_op, comm_, stream_), "ncclAllReduce");
    WaitForStream("allReduce");
  }

  void Broadcast(float* data, size_t n, int root) override {
    CheckNccl(lib_.Broadcast(data, data, n, kNcclFloat32, root, comm_, stream_), "ncclBroadcast");
    WaitForStream("broadcast");
  }

  void AllGather(const float* in, float* out, size_t n) override {
    CheckNccl(lib_.AllGather(in, out, n, kNcclFloat32, comm_, stream_), "ncclAllGather");
    WaitForStream("allGather");
  }

  void Shutdown() override { rendezvous_.Leave(); }

 private:
  void CheckCuda(int result, const std::string& what) {
    if (result != kCudaSuccess) throw DistError(what + " failed with CUDA driver error " + std::to_string(result));
  }
  void CheckNccl(int result, const std::string& what) {
    if (result != kNcclSuccess && result != kNcclInProgress) {
      throw DistError(what + " failed: " + lib_.GetErrorString(result));
    }
  }

  // Polls the stream: done, an asynchronous NCCL error (a peer failed), or the timeout, at which
  // the communicator is aborted so nothing stays blocked on it.
  void WaitForStream(const char* what) {
    Deadline deadline = DeadlineAfter(config_.timeout);
    for (;;) {
      int q = lib_.CuStreamQuery(stream_);
      if (q == kCudaSuccess) return;
      if (q != kCudaNotReady) CheckCuda(q, std::string(what) + ": cuStreamQuery");
      int async_error = kNcclSuccess;
      lib_.CommGetAsyncError(comm_, &async_error);
      if (async_error != kNcclSuccess && async_error != kNcclInProgress) {
        Abort();
        throw DistError(std::string(what) + ": NCCL reported " + lib_.GetErrorString(async_error));
      }
      if (MillisLeft(deadline) == 0) {
        Abort();
        throw DistError(std::string(what) + ": timed out after " + std::to_string(config_.timeout.count()) +
                        " ms waiting for the other ranks (the NCCL communicator was aborted)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void Abort() {
    if (comm_) lib_.CommAbort(comm_);
    comm_ = nullptr;
  }

  const NcclLibrary& lib_;
  GroupConfig config_;
  Rendezvous rendezvous_;
  void* context_ = nullptr;
  int device_ = 0;
  void* stream_ = nullptr;
  void* comm_ = nullptr;
  CuDevicePtr headers_ = 0;
};

}  // namespace

const bool kEngineUsesDeviceMemory = true;

std::unique_ptr<Engine> CreateEngine(const GroupConfig& config) { return std::make_unique<NcclEngine>(config); }

std::string EngineVersion() { return Nccl().version; }

}  // namespace dist
}  // namespace rnnkit
