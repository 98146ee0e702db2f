// Joining the world through a store (tcp:// or file://) before an engine connects its own links:
// rank 0 hosts the TCP store; every rank claims its rank once (a second claimant, or a stale file
// left by an earlier job, is a DistError), publishes its world size and waits for all the others,
// so a missing rank or a world-size mismatch is named instead of hanging.
#pragma once
#include <memory>
#include <string>

#include "dist_error.h"
#include "engine.h"
#include "file_store.h"
#include "store.h"
#include "tcp_store.h"

namespace rnnkit {
namespace dist {

class Rendezvous {
 public:
  // Blocks until every rank of `config` has joined (or config.timeout passes).
  Rendezvous(const GroupConfig& config, const std::string& engine_name);
  KeyValueStore& store() { return *store_; }
  // The keys of this group live under this prefix (groups made one after another don't mix).
  const std::string& prefix() const { return prefix_; }
  // The address other ranks can reach this one at: for tcp the local end of the connection to
  // rank 0's store, for file the host name.
  const std::string& local_address() const { return local_address_; }
  // Counts this rank out; the last rank out of a file store removes the group's files.
  void Leave();

 private:
  void Join(const std::string& engine_name);
  // The timeout error naming the ranks that have not joined.
  DistError MissingRanks();

  GroupConfig config_;
  std::unique_ptr<TcpStoreServer> server_;
  std::unique_ptr<KeyValueStore> store_;
  FileStore* file_store_ = nullptr;
  std::string prefix_;
  std::string local_address_;
};

}  // namespace dist
}  // namespace rnnkit
