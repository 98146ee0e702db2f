// The TCP rendezvous store (initMethod tcp://host:port, or MASTER_ADDR/MASTER_PORT). Rank 0 runs
// the server on a thread of its own; every rank, rank 0 included, talks to it through a client.
// Protocol, little-endian: a request is u32 length, u8 command, then u32-length-prefixed fields;
// a reply is u32 length, u8 status (0 ok), then the payload. A GET of a key nobody has set yet is
// parked on the server and answered when the key arrives, so waiting costs no polling.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store.h"

namespace rnnkit {
namespace dist {

class TcpStoreServer {
 public:
  // Binds the port now (a DistError when it is taken; 0 picks a free one) and serves until destroyed.
  explicit TcpStoreServer(int port);
  ~TcpStoreServer();
  // The port it listens on.
  int port() const { return port_; }
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

 private:
  struct Connection {
    int fd;
    std::string in;
    std::string out;
  };
  void Serve();
  // Handles the complete requests buffered on `c`; false when the request is malformed.
  bool HandleRequests(Connection& c);
  void Reply(Connection& c, uint8_t status, const std::string& payload);
  void SetKey(const std::string& key, const std::string& value);

  int listen_fd_ = -1;
  int port_ = 0;
  int wake_fd_[2] = {-1, -1};
  std::thread thread_;
  std::map<int, Connection> connections_;
  std::map<std::string, std::string> data_;
  std::multimap<std::string, int> parked_gets_;  // key -> connection waiting for it
};

class TcpStoreClient : public KeyValueStore {
 public:
  // Connects, retrying until `connect_timeout` (the server may start after this rank).
  TcpStoreClient(const std::string& host, int port, std::chrono::milliseconds connect_timeout);
  ~TcpStoreClient() override;

  void Set(const std::string& key, const std::string& value) override;
  std::string Get(const std::string& key, std::chrono::milliseconds timeout) override;
  int64_t Add(const std::string& key, int64_t delta) override;
  std::vector<bool> Check(const std::vector<std::string>& keys) override;

  // The local address of this rank's connection to the store: the interface that reaches rank 0.
  std::string LocalAddressToServer() const { return local_address_; }

 private:
  std::string Request(uint8_t command, const std::vector<std::string>& fields, std::chrono::milliseconds timeout);

  std::string host_;
  int port_;
  std::chrono::milliseconds connect_timeout_;
  std::string local_address_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace dist
}  // namespace rnnkit
