#include "store.h"

#include "deadline.h"
#include "dist_error.h"

namespace rnnkit {
namespace dist {

void KeyValueStore::Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  Deadline deadline = DeadlineAfter(timeout);
  try {
    for (const std::string& key : keys) Get(key, std::chrono::milliseconds(MillisLeft(deadline)));
  } catch (const DistError&) {
    std::vector<bool> present = Check(keys);
    std::string missing;
    for (size_t i = 0; i < keys.size(); i++) {
      if (!present[i]) missing += (missing.empty() ? "" : ", ") + keys[i];
    }
    if (missing.empty()) throw;
    throw DistError("timed out after " + std::to_string(timeout.count()) + " ms waiting for " + missing);
  }
}

}  // namespace dist
}  // namespace rnnkit
