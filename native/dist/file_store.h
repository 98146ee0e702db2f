// The file rendezvous store (initMethod file:///path): a directory on a file system every rank
// sees (local for one host, NFS or similar across hosts). Each key is one file, written under a
// temporary name and renamed into place so a reader never sees half a value; Add holds an flock.
#pragma once
#include <string>

#include "store.h"

namespace rnnkit {
namespace dist {

class FileStore : public KeyValueStore {
 public:
  // Creates the directory (and its parents) when missing.
  explicit FileStore(const std::string& directory);

  void Set(const std::string& key, const std::string& value) override;
  std::string Get(const std::string& key, std::chrono::milliseconds timeout) override;
  int64_t Add(const std::string& key, int64_t delta) override;
  std::vector<bool> Check(const std::vector<std::string>& keys) override;

  // Removes the files of every key that starts with `prefix` (the last rank out cleans up).
  void RemoveKeysWithPrefix(const std::string& prefix);

 private:
  std::string KeyPath(const std::string& key) const;
  void WriteAtomically(const std::string& path, const std::string& value);

  std::string directory_;
};

}  // namespace dist
}  // namespace rnnkit
