// The MPI engine (Debian: libmpich-dev + mpich, or Open MPI): the world is the one mpiexec
// started, so ranks and rendezvous come from MPI itself. Each collective is the non-blocking MPI
// call polled against the group's timeout, so a rank that hangs gives a DistError instead of a
// hang (MPI has no timeouts of its own; a rank that dies is usually ended with the whole job by
// mpiexec). All MPI calls of the process go through one lock: any thread level MPI grants works.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "dist_error.h"
#include "engine.h"
#include "deadline.h"

namespace rnnkit {
namespace dist {

namespace {

std::mutex& MpiLock() {
  static std::mutex m;
  return m;
}

std::string MpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(len));
}

void Check(int code, const char* what) {
  if (code != MPI_SUCCESS) throw DistError(std::string(what) + ": " + MpiErrorText(code));
}

// MPI_Finalize at exit, once, if we initialised MPI.
void FinalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void InitMpiOnce() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  Check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  std::atexit(FinalizeAtExit);
}

// Element counts are int in MPI: larger buffers go in pieces.
constexpr size_t kMaxCount = static_cast<size_t>(INT_MAX) / 4;

class MpiEngine : public Engine {
 public:
  explicit MpiEngine(const GroupConfig& config) : timeout_(config.timeout) {
    std::lock_guard<std::mutex> lock(MpiLock());
    InitMpiOnce();
    Check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    Check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    Check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    Check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  ~MpiEngine() override {
    // A request abandoned at its timeout may still name this communicator: leave it be.
    if (abandoned_) return;
    std::lock_guard<std::mutex> lock(MpiLock());
    MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string description() const override { return EngineVersion() + ", from mpiexec"; }

  void ExchangeHeaders(const void* mine, void* all, size_t bytes) override {
    Wait("header exchange", [&](MPI_Request* r) {
      return MPI_Iallgather(mine, static_cast<int>(bytes), MPI_BYTE, all, static_cast<int>(bytes), MPI_BYTE, comm_, r);
    });
  }

  void AllReduce(float* data, size_t n, ReduceOp op) override {
    MPI_Op mpi_op = op == ReduceOp::max ? MPI_MAX : op == ReduceOp::min ? MPI_MIN : MPI_SUM;
    for (size_t off = 0; off < n; off += kMaxCount) {
      int count = static_cast<int>(std::min(kMaxCount, n - off));
      Wait("allReduce", [&](MPI_Request* r) {
        return MPI_Iallreduce(MPI_IN_PLACE, data + off, count, MPI_FLOAT, mpi_op, comm_, r);
      });
    }
    if (op == ReduceOp::avg) {
      const float p = static_cast<float>(size_);
      for (size_t i = 0; i < n; i++) data[i] /= p;
    }
  }

  void Broadcast(float* data, size_t n, int root) override {
    for (size_t off = 0; off < n; off += kMaxCount) {
      int count = static_cast<int>(std::min(kMaxCount, n - off));
      Wait("broadcast", [&](MPI_Request* r) { return MPI_Ibcast(data + off, count, MPI_FLOAT, root, comm_, r); });
    }
  }

  void AllGather(const float* in, float* out, size_t n) override {
    if (n > kMaxCount) throw DistError("allGather of more than " + std::to_string(kMaxCount) + " values per rank over MPI", kArgCode);
    Wait("allGather", [&](MPI_Request* r) {
      return MPI_Iallgather(in, static_cast<int>(n), MPI_FLOAT, out, static_cast<int>(n), MPI_FLOAT, comm_, r);
    });
  }

 private:
  // Starts a non-blocking call and polls it until done or the timeout passes.
  template <typename Start>
  void Wait(const char* what, Start start) {
    if (abandoned_) throw DistError(std::string(what) + ": an earlier MPI call timed out");
    MPI_Request request;
    {
      std::lock_guard<std::mutex> lock(MpiLock());
      Check(start(&request), what);
    }
    Deadline deadline = DeadlineAfter(timeout_);
    int pause_us = 0;
    for (;;) {
      int done = 0;
      {
        std::lock_guard<std::mutex> lock(MpiLock());
        Check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
      }
      if (done) return;
      if (MillisLeft(deadline) == 0) {
        abandoned_ = true;
        throw DistError(std::string(what) + ": timed out after " + std::to_string(timeout_.count()) +
                        " ms waiting for the other ranks");
      }
      // Spin briefly (small messages finish in microseconds), then back off to spare the cores.
      if (pause_us == 0) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
      pause_us = std::min(pause_us * 2 + 1, 200);
    }
  }

  std::chrono::milliseconds timeout_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  bool abandoned_ = false;
};

}  // namespace

const bool kEngineUsesDeviceMemory = false;

std::unique_ptr<Engine> CreateEngine(const GroupConfig& config) { return std::make_unique<MpiEngine>(config); }

std::string EngineVersion() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  // "MPICH Version:\t4.0.2\n..." or "Open MPI v4.1.4, package: ...": the name and version only.
  std::string s(text, static_cast<size_t>(len));
  s = s.substr(0, s.find_first_of(",\n\r"));
  size_t label = s.find(" Version:");
  if (label != std::string::npos) s.erase(label, 9);
  std::string out;
  for (char ch : s) {
    bool space = ch == ' ' || ch == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : ch);
  }
  return out;
}

}  // namespace dist
}  // namespace rnnkit
