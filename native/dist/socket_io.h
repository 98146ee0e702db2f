// Blocking TCP helpers with deadlines, for the rendezvous store: every wait ends by the deadline
// with a DistError, so a peer that never answers cannot hang a rank.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "deadline.h"

namespace rnnkit {
namespace dist {

// Connects to host:port, retrying refused connections (the server may not be up yet) until the
// deadline. Returns the connected socket.
int ConnectWithRetry(const std::string& host, int port, Deadline deadline);
// A listening socket on `port` on every interface (IPv6 dual-stack when the host has IPv6).
int ListenOn(int port);
// The local port of a bound socket.
int LocalPort(int fd);
// The numeric local address of a connected socket: the interface that reaches its peer.
std::string LocalAddress(int fd);

// Sends or receives exactly `bytes`, or throws DistError (peer closed, error, deadline passed).
// `what` names the exchange in messages.
void SendAll(int fd, const void* data, size_t bytes, Deadline deadline, const char* what);
void RecvAll(int fd, void* data, size_t bytes, Deadline deadline, const char* what);

void CloseSocket(int fd);

// Little-endian framing of the store protocol.
void PutU32(std::string& out, uint32_t v);
void PutField(std::string& out, const std::string& field);
uint32_t GetU32(const char* p);

}  // namespace dist
}  // namespace rnnkit
