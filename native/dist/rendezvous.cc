#include "rendezvous.h"

#include <algorithm>
#include <atomic>
#include <unistd.h>
#include <vector>

#include "deadline.h"
#include "dist_error.h"

namespace rnnkit {
namespace dist {

namespace {

// Groups are made in the same order on every rank, so the n-th group of each process is the same
// group: its number keeps its keys apart from the groups before it in a reused store directory.
std::atomic<int> groups_made{0};

std::string HostName() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

std::string JoinValue(const GroupConfig& c, const std::string& engine) {
  return std::to_string(c.world_size) + " " + engine;
}

}  // namespace

Rendezvous::Rendezvous(const GroupConfig& config, const std::string& engine_name) : config_(config) {
  prefix_ = "rnnkit/" + std::to_string(groups_made++) + "/";
  if (config.init_kind == "tcp") {
    int port = config.port;
    if (config.rank == 0) {
      server_ = std::make_unique<TcpStoreServer>(port);
      port = server_->port();
    }
    auto client = std::make_unique<TcpStoreClient>(config.host, port, config.timeout);
    local_address_ = client->LocalAddressToServer();
    store_ = std::move(client);
  } else if (config.init_kind == "file") {
    auto file = std::make_unique<FileStore>(config.path);
    file_store_ = file.get();
    local_address_ = HostName();
    store_ = std::move(file);
  } else {
    throw DistError("unknown init method kind '" + config.init_kind + "'", kArgCode);
  }

  Join(engine_name);
}

void Rendezvous::Join(const std::string& engine_name) {
  const GroupConfig& config = config_;
  const std::string me = std::to_string(config.rank);
  if (store_->Add(prefix_ + "claims/" + me, 1) > 1) {
    throw DistError("rank " + me + " was claimed twice: two processes were started as rank " + me +
                    (file_store_ ? ", or the rendezvous directory " + config.path +
                                       " holds files of an earlier job (remove them or use a fresh path)"
                                 : ""));
  }
  const std::string value = JoinValue(config, engine_name);
  store_->Set(prefix_ + "joined/" + me, value);
  // The other ranks time out at about the same moment and then ask the store who is missing: the
  // rank that hosts it waits a little longer, so it is still there to answer.
  Deadline deadline = DeadlineAfter(config.timeout + (server_ ? std::min(config.timeout / 4, std::chrono::milliseconds(2000))
                                                               : std::chrono::milliseconds(0)));
  auto left = [&] { return std::chrono::milliseconds(MillisLeft(deadline)); };
  std::string first;
  try {
    first = store_->Get(prefix_ + "joined/0", left());
  } catch (const DistError&) {
    throw MissingRanks();
  }
  if (first != value) {
    throw DistError("rank 0 joined with world size and backend '" + first + "', rank " + me + " with '" + value +
                    "': every rank must be started with the same worldSize and backend");
  }
  // One counter instead of every rank reading every key: the last rank in opens the door.
  if (store_->Add(prefix_ + "joined_count", 1) == config.world_size) store_->Set(prefix_ + "all_joined", "1");
  try {
    store_->Get(prefix_ + "all_joined", left());
  } catch (const DistError&) {
    throw MissingRanks();
  }
}

DistError Rendezvous::MissingRanks() {
  std::vector<std::string> keys;
  for (int r = 0; r < config_.world_size; r++) keys.push_back(prefix_ + "joined/" + std::to_string(r));
  std::vector<bool> present;
  try {
    present = store_->Check(keys);
  } catch (const DistError& e) {
    return DistError("rendezvous timed out after " + std::to_string(config_.timeout.count()) +
                     " ms, and the store could not say which ranks are missing: " + e.what());
  }
  std::string missing;
  int count = 0;
  for (int r = 0; r < config_.world_size; r++) {
    if (present[r]) continue;
    if (count++ < 16) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
  }
  if (count > 16) missing += " and " + std::to_string(count - 16) + " more";
  if (count == 0) return DistError("rendezvous timed out after " + std::to_string(config_.timeout.count()) + " ms");
  return DistError("rendezvous timed out after " + std::to_string(config_.timeout.count()) + " ms: rank" +
                   (count > 1 ? "s " : " ") + missing + " of " + std::to_string(config_.world_size) +
                   " did not join");
}

void Rendezvous::Leave() {
  int64_t left = store_->Add(prefix_ + "left", 1);
  if (file_store_ && left == config_.world_size) file_store_->RemoveKeysWithPrefix(prefix_);
}

}  // namespace dist
}  // namespace rnnkit
