// The errors of the collectives addons. A DistError carries the stable code the binding gives the
// JavaScript RnnkitError: ERR_RNNKIT_DIST for anything that went wrong between processes (a peer
// that died or hung, a rendezvous that timed out, ranks that disagree), ERR_RNNKIT_ARG for a bad
// configuration the native side is the first to see (an address that does not resolve).
#pragma once
#include <stdexcept>
#include <string>

namespace rnnkit {
namespace dist {

constexpr const char* kDistCode = "ERR_RNNKIT_DIST";
constexpr const char* kArgCode = "ERR_RNNKIT_ARG";

class DistError : public std::runtime_error {
 public:
  explicit DistError(const std::string& message, const char* code = kDistCode)
      : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

}  // namespace dist
}  // namespace rnnkit
