// Compute thread pool, separate from libuv's. One job runs on the pool at a time; the calling
// thread takes part in it. A parallel_for issued from inside a pool job (or while another caller
// holds the pool) runs serially on the calling thread, so kernels may nest calls freely.
#pragma once
#include <cstdint>
#include <functional>

namespace rnnkit {

// Number of threads a parallel_for uses (the caller included). Default: RNNKIT_NUM_THREADS, else
// one per hardware core.
int num_threads();
// Resizes the pool; n < 1 restores the default. Waits for the job in flight, if any.
void set_num_threads(int n);

// Calls fn(begin, end) over disjoint ranges covering [0, n), each at least `grain` long (except
// the last), and returns when all have run. Exceptions thrown by fn are rethrown to the caller
// (the first one wins).
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Calls fn(tid, nthreads) once on each of `nthreads` threads (nthreads <= num_threads(); pass 0
// for all). Lets a kernel partition work itself (e.g. 2-D GEMM tiles, per-thread reductions).
void parallel_run(int nthreads, const std::function<void(int, int)>& fn);

// True on a pool worker thread or inside a parallel region.
bool in_parallel_region();

}  // namespace rnnkit
