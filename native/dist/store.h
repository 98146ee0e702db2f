// The key-value store ranks meet through before the collective engine connects (rendezvous), as
// PyTorch's TCPStore and FileStore do: each rank publishes its address under a key and reads the
// others'. Values are bytes. Every blocking call ends by its timeout with a DistError.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace rnnkit {
namespace dist {

class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;
  virtual void Set(const std::string& key, const std::string& value) = 0;
  // The value of `key`, waiting until some rank sets it.
  virtual std::string Get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  // Adds `delta` to the integer under `key` (0 when unset) and returns the sum, atomically.
  virtual int64_t Add(const std::string& key, int64_t delta) = 0;
  // Whether each key is set now (no waiting).
  virtual std::vector<bool> Check(const std::vector<std::string>& keys) = 0;

  // Waits until every key is set; on timeout the DistError lists the keys still missing.
  void Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
};

}  // namespace dist
}  // namespace rnnkit
