// Compute pool: persistent workers that spin briefly, then sleep on a condition variable. The
// short spin keeps per-timestep parallel regions of the recurrent ops cheap (a wake-up through the
// condition variable alone costs tens of microseconds). Every job runs on the workers in the
// floating-point mode of the thread that issued it (denormals.h).
#include "parallel.h"

#include "denormals.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rnnkit {
namespace {

thread_local bool tls_in_region = false;

int default_threads() {
  if (const char* env = std::getenv("RNNKIT_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

class Pool {
 public:
  Pool() { start(default_threads()); }
  ~Pool() { stop(); }

  int size() {
    return nthreads_.load(std::memory_order_relaxed);
  }

  void resize(int n) {
    if (n < 1) n = default_threads();
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    stop();
    start(n);
  }

  void run(int nthreads, const std::function<void(int, int)>& fn) {
    int total = size();
    if (nthreads <= 0 || nthreads > total) nthreads = total;
    std::unique_lock<std::mutex> job_lock(job_mutex_, std::defer_lock);
    if (nthreads <= 1 || tls_in_region || !job_lock.try_lock()) {
      run_serial(nthreads, fn);
      return;
    }
    fn_ = &fn;
    job_threads_ = nthreads;
    // Workers run the job in the caller's floating-point mode (denormal flushing: denormals.h).
    job_fp_mode_ = fp_mode();
    error_ = nullptr;
    // Every worker acknowledges every job, needed or not, so none can lag into the next one.
    remaining_.store(total - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(wake_mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_cv_.notify_all();
    tls_in_region = true;
    try {
      fn(0, nthreads);
    } catch (...) {
      record_error();
    }
    tls_in_region = false;
    while (remaining_.load(std::memory_order_acquire) != 0) {
      std::this_thread::yield();
    }
    fn_ = nullptr;
    std::exception_ptr err = error_;
    error_ = nullptr;
    job_lock.unlock();
    if (err) std::rethrow_exception(err);
  }

 private:
  // Runs each logical thread's share in turn, so a kernel that partitions by tid still covers all
  // of its work when the pool is busy or nested.
  static void run_serial(int nthreads, const std::function<void(int, int)>& fn) {
    bool was = tls_in_region;
    tls_in_region = true;
    try {
      for (int t = 0; t < nthreads; ++t) fn(t, nthreads);
    } catch (...) {
      tls_in_region = was;
      throw;
    }
    tls_in_region = was;
  }

  void record_error() {
    std::lock_guard<std::mutex> lk(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }

  void start(int n) {
    quit_ = false;
    nthreads_.store(n, std::memory_order_relaxed);
    // Workers start from the generation current now: one that reads it later could miss a job (or
    // the quit signal) issued before it first ran.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, gen] { worker_loop(i, gen); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(wake_mutex_);
      quit_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void worker_loop(int id, uint64_t seen) {
    tls_in_region = true;
    for (;;) {
      uint64_t gen = wait_for_job(seen);
      seen = gen;
      if (quit_) return;
      if (id < job_threads_) {
        if (fp_mode() != job_fp_mode_) set_fp_mode(job_fp_mode_);
        try {
          (*fn_)(id, job_threads_);
        } catch (...) {
          record_error();
        }
      }
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  uint64_t wait_for_job(uint64_t seen) {
    auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    for (int i = 0;; ++i) {
      uint64_t g = generation_.load(std::memory_order_acquire);
      if (g != seen) return g;
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_until) break;
    }
    std::unique_lock<std::mutex> lk(wake_mutex_);
    wake_cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    return generation_.load(std::memory_order_acquire);
  }

  std::mutex job_mutex_;
  std::mutex wake_mutex_;
  std::mutex error_mutex_;
  std::condition_variable wake_cv_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<int> nthreads_{1};
  const std::function<void(int, int)>* fn_ = nullptr;
  int job_threads_ = 0;
  uint32_t job_fp_mode_ = 0;
  bool quit_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  // Leaked on purpose: worker threads must not be joined from a static destructor at process exit.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(n); }

bool in_parallel_region() { return tls_in_region; }

void parallel_run(int nthreads, const std::function<void(int, int)>& fn) { pool().run(nthreads, fn); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = num_threads();
  if (max_chunks < nt) nt = static_cast<int>(max_chunks);
  if (nt <= 1 || in_parallel_region()) {
    fn(0, n);
    return;
  }
  parallel_run(nt, [&](int tid, int total) {
    int64_t begin = n * tid / total;
    int64_t end = n * (tid + 1) / total;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace rnnkit
