#include "tcp_store.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dist_error.h"
#include "socket_io.h"

namespace rnnkit {
namespace dist {

namespace {

enum Command : uint8_t { kSet = 1, kGet = 2, kAdd = 3, kCheck = 4 };
// Rendezvous values are addresses and ids: a request this large is not from a rank.
constexpr uint32_t kMaxMessage = 64u << 20;

std::string EncodeI64(int64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; i++) s[i] = static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
  return s;
}

int64_t DecodeI64(const std::string& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); i++) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[i])) << (8 * i);
  return static_cast<int64_t>(v);
}

// Splits a request body (after the command byte) into its fields; false when malformed.
bool ParseFields(const char* p, size_t n, std::vector<std::string>& fields) {
  while (n > 0) {
    if (n < 4) return false;
    uint32_t len = GetU32(p);
    if (len > n - 4) return false;
    fields.emplace_back(p + 4, len);
    p += 4 + len;
    n -= 4 + len;
  }
  return true;
}

}  // namespace

TcpStoreServer::TcpStoreServer(int port) {
  listen_fd_ = ListenOn(port);
  port_ = LocalPort(listen_fd_);
  if (::pipe2(wake_fd_, O_CLOEXEC) != 0) {
    CloseSocket(listen_fd_);
    throw DistError(std::string("pipe failed: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { Serve(); });
}

TcpStoreServer::~TcpStoreServer() {
  char b = 1;
  ssize_t woken = ::write(wake_fd_[1], &b, 1);
  (void)woken;  // the pipe is ours and empty: this write cannot fail short of a closed fd
  thread_.join();
  for (auto& kv : connections_) CloseSocket(kv.first);
  CloseSocket(listen_fd_);
  ::close(wake_fd_[0]);
  ::close(wake_fd_[1]);
}

void TcpStoreServer::Reply(Connection& c, uint8_t status, const std::string& payload) {
  PutU32(c.out, static_cast<uint32_t>(payload.size() + 1));
  c.out.push_back(static_cast<char>(status));
  c.out += payload;
}

void TcpStoreServer::SetKey(const std::string& key, const std::string& value) {
  data_[key] = value;
  auto range = parked_gets_.equal_range(key);
  for (auto it = range.first; it != range.second; ++it) {
    auto c = connections_.find(it->second);
    if (c != connections_.end()) Reply(c->second, 0, value);
  }
  parked_gets_.erase(range.first, range.second);
}

bool TcpStoreServer::HandleRequests(Connection& c) {
  while (c.in.size() >= 4) {
    uint32_t len = GetU32(c.in.data());
    if (len == 0 || len > kMaxMessage) return false;
    if (c.in.size() < 4 + static_cast<size_t>(len)) return true;
    uint8_t command = static_cast<uint8_t>(c.in[4]);
    std::vector<std::string> fields;
    if (!ParseFields(c.in.data() + 5, len - 1, fields)) return false;
    c.in.erase(0, 4 + static_cast<size_t>(len));
    if (command == kSet && fields.size() == 2) {
      SetKey(fields[0], fields[1]);
      Reply(c, 0, "");
    } else if (command == kGet && fields.size() == 1) {
      auto it = data_.find(fields[0]);
      if (it != data_.end()) Reply(c, 0, it->second);
      else parked_gets_.emplace(fields[0], c.fd);
    } else if (command == kAdd && fields.size() == 2) {
      auto it = data_.find(fields[0]);
      int64_t sum = (it == data_.end() ? 0 : DecodeI64(it->second)) + DecodeI64(fields[1]);
      SetKey(fields[0], EncodeI64(sum));
      Reply(c, 0, EncodeI64(sum));
    } else if (command == kCheck) {
      std::string present;
      for (const std::string& k : fields) present.push_back(data_.count(k) ? '1' : '0');
      Reply(c, 0, present);
    } else {
      return false;
    }
  }
  return true;
}

void TcpStoreServer::Serve() {
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({wake_fd_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& kv : connections_) {
      fds.push_back({kv.first, static_cast<short>(POLLIN | (kv.second.out.empty() ? 0 : POLLOUT)), 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) connections_[fd] = Connection{fd, "", ""};
    }
    for (size_t i = 2; i < fds.size(); i++) {
      auto it = connections_.find(fds[i].fd);
      if (it == connections_.end() || fds[i].revents == 0) continue;
      Connection& c = it->second;
      bool alive = true;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
        if (n > 0) {
          c.in.append(buf, static_cast<size_t>(n));
          alive = HandleRequests(c);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          alive = false;
        }
      }
      if (alive && !c.out.empty()) {
        ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) c.out.erase(0, static_cast<size_t>(n));
        else if (n < 0 && errno != EAGAIN && errno != EINTR) alive = false;
      }
      if (!alive) {
        for (auto p = parked_gets_.begin(); p != parked_gets_.end();) {
          p = p->second == c.fd ? parked_gets_.erase(p) : std::next(p);
        }
        CloseSocket(c.fd);
        connections_.erase(it);
      }
    }
  }
}

TcpStoreClient::TcpStoreClient(const std::string& host, int port, std::chrono::milliseconds connect_timeout)
    : host_(host), port_(port), connect_timeout_(connect_timeout) {
  fd_ = ConnectWithRetry(host_, port_, DeadlineAfter(connect_timeout_));
  local_address_ = LocalAddress(fd_);
}

TcpStoreClient::~TcpStoreClient() { CloseSocket(fd_); }

std::string TcpStoreClient::Request(uint8_t command, const std::vector<std::string>& fields,
                                    std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mutex_);
  Deadline deadline = DeadlineAfter(timeout);
  // A request abandoned at its deadline leaves a late reply on the old connection: start afresh.
  if (fd_ < 0) fd_ = ConnectWithRetry(host_, port_, DeadlineAfter(connect_timeout_));
  std::string body(1, static_cast<char>(command));
  for (const std::string& f : fields) PutField(body, f);
  std::string message;
  PutU32(message, static_cast<uint32_t>(body.size()));
  message += body;
  try {
    SendAll(fd_, message.data(), message.size(), deadline, "rendezvous store");
    char header[5];
    RecvAll(fd_, header, sizeof(header), deadline, "rendezvous store");
    uint32_t len = GetU32(header);
    if (len == 0 || len > kMaxMessage || header[4] != 0) throw DistError("rendezvous store: malformed reply");
    std::string payload(len - 1, '\0');
    RecvAll(fd_, &payload[0], payload.size(), deadline, "rendezvous store");
    return payload;
  } catch (const DistError&) {
    CloseSocket(fd_);
    fd_ = -1;
    throw;
  }
}

void TcpStoreClient::Set(const std::string& key, const std::string& value) {
  Request(kSet, {key, value}, connect_timeout_);
}

std::string TcpStoreClient::Get(const std::string& key, std::chrono::milliseconds timeout) {
  return Request(kGet, {key}, timeout);
}

int64_t TcpStoreClient::Add(const std::string& key, int64_t delta) {
  return DecodeI64(Request(kAdd, {key, EncodeI64(delta)}, connect_timeout_));
}

std::vector<bool> TcpStoreClient::Check(const std::vector<std::string>& keys) {
  std::string present = Request(kCheck, keys, connect_timeout_);
  std::vector<bool> out(keys.size(), false);
  for (size_t i = 0; i < keys.size() && i < present.size(); i++) out[i] = present[i] == '1';
  return out;
}

}  // namespace dist
}  // namespace rnnkit
