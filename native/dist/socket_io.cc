#include "socket_io.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "dist_error.h"

namespace rnnkit {
namespace dist {

namespace {

std::string ErrnoText(int err) { return std::string(std::strerror(err)); }

// Waits until `fd` is ready for `events` or the deadline passes (false).
bool WaitReady(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, MillisLeft(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) throw DistError("poll failed: " + ErrnoText(errno));
  }
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

int ConnectWithRetry(const std::string& host, int port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) {
    throw DistError("cannot resolve master address '" + host + "': " + ::gai_strerror(rc), kArgCode);
  }
  std::string last = "no address";
  for (;;) {
    for (addrinfo* a = found; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (fd < 0) {
        last = ErrnoText(errno);
        continue;
      }
      int c = ::connect(fd, a->ai_addr, a->ai_addrlen);
      int err = c == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        if (WaitReady(fd, POLLOUT, deadline)) {
          socklen_t len = sizeof(err);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
      if (err == 0) {
        ::freeaddrinfo(found);
        int flags = 0;
        ::ioctl(fd, FIONBIO, &flags);
        SetNoDelay(fd);
        return fd;
      }
      last = ErrnoText(err);
      ::close(fd);
    }
    if (MillisLeft(deadline) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, MillisLeft(deadline) + 1)));
  }
  ::freeaddrinfo(found);
  throw DistError("could not connect to the rendezvous store at " + host + ":" + service +
                  " before the timeout (" + last + "): is rank 0 running, and MASTER_ADDR/MASTER_PORT right?");
}

int ListenOn(int port) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool v6 = fd >= 0;
  if (!v6) fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw DistError("socket() failed: " + ErrnoText(errno));
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (v6) {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(port));
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  if (rc != 0 || ::listen(fd, 512) != 0) {
    int err = errno;
    ::close(fd);
    throw DistError("rank 0 cannot listen on port " + std::to_string(port) + " for the rendezvous store: " +
                    ErrnoText(err) + (err == EADDRINUSE ? " (choose another MASTER_PORT)" : ""));
  }
  return fd;
}

int LocalPort(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

std::string LocalAddress(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "127.0.0.1";
  char host[NI_MAXHOST];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) != 0)
    return "127.0.0.1";
  std::string s(host);
  // An IPv4 peer reached through a dual-stack socket shows as ::ffff:a.b.c.d.
  if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) s = s.substr(7);
  return s;
}

void SendAll(int fd, const void* data, size_t bytes, Deadline deadline, const char* what) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    if (!WaitReady(fd, POLLOUT, deadline)) throw DistError(std::string(what) + ": timed out sending");
    ssize_t n = ::send(fd, p, bytes, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw DistError(std::string(what) + ": send failed: " + ErrnoText(errno));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void RecvAll(int fd, void* data, size_t bytes, Deadline deadline, const char* what) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    if (!WaitReady(fd, POLLIN, deadline)) throw DistError(std::string(what) + ": timed out");
    ssize_t n = ::recv(fd, p, bytes, 0);
    if (n == 0) throw DistError(std::string(what) + ": the peer closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw DistError(std::string(what) + ": receive failed: " + ErrnoText(errno));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void CloseSocket(int fd) {
  if (fd >= 0) ::close(fd);
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; i++) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutField(std::string& out, const std::string& field) {
  PutU32(out, static_cast<uint32_t>(field.size()));
  out += field;
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

}  // namespace dist
}  // namespace rnnkit
