// The wavefront executor's DAG runner (stepnet_net.h).
#include <algorithm>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>

#include "parallel.h"
#include "stepnet_net.h"

namespace rnnkit {
namespace stepnet {

void run_dag(const std::vector<std::vector<int32_t>>& preds, const std::function<void(int32_t)>& task) {
  const int32_t n = static_cast<int32_t>(preds.size());
  std::vector<std::vector<int32_t>> succ(n);
  std::vector<int32_t> pending(n);
  for (int32_t i = 0; i < n; ++i) {
    pending[i] = static_cast<int32_t>(preds[i].size());
    for (int32_t p : preds[i]) succ[p].push_back(i);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>> ready;
  for (int32_t i = 0; i < n; ++i) if (pending[i] == 0) ready.push(i);
  int32_t done = 0;
  std::exception_ptr error;
  parallel_run(0, [&](int, int) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return !ready.empty() || done == n || error; });
      if (done == n || error) return;
      int32_t id = ready.top();
      ready.pop();
      lock.unlock();
      try {
        task(id);
      } catch (...) {
        lock.lock();
        if (!error) error = std::current_exception();
        cv.notify_all();
        return;
      }
      lock.lock();
      ++done;
      for (int32_t s : succ[id]) if (--pending[s] == 0) ready.push(s);
      cv.notify_all();
    }
  });
  if (error) std::rethrow_exception(error);
}

void add_pred(std::vector<int32_t>& preds, int32_t p) {
  if (std::find(preds.begin(), preds.end(), p) == preds.end()) preds.push_back(p);
}

}  // namespace stepnet
}  // namespace rnnkit
