// Deadlines for every wait on another process: a wait ends by its deadline, never open-ended.
#pragma once
#include <chrono>

namespace rnnkit {
namespace dist {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline DeadlineAfter(std::chrono::milliseconds timeout) { return Clock::now() + timeout; }

// Milliseconds left until `deadline`, at least 0.
inline int MillisLeft(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace dist
}  // namespace rnnkit
