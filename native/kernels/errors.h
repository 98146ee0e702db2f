// Errors raised by kernels and device code. The binding turns each into a JavaScript RnnkitError
// with the matching stable code (ERR_RNNKIT_SHAPE, ...). Kernels check what their own contract
// states (a recurrent config and its sizes, a step-net spec, sequence lengths: ErrorCode::arg /
// shape) and what the binding cannot check beforehand (allocation failure, device errors); the
// binding and lib/ check every argument first, so that those are the messages a user sees.
#pragma once
#include <stdexcept>
#include <string>

namespace rnnkit {

enum class ErrorCode { shape, dtype, arg, disposed, device, oom, cuda, internal };

inline const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::shape: return "ERR_RNNKIT_SHAPE";
    case ErrorCode::dtype: return "ERR_RNNKIT_DTYPE";
    case ErrorCode::arg: return "ERR_RNNKIT_ARG";
    case ErrorCode::disposed: return "ERR_RNNKIT_DISPOSED";
    case ErrorCode::device: return "ERR_RNNKIT_DEVICE";
    case ErrorCode::oom: return "ERR_RNNKIT_OOM";
    case ErrorCode::cuda: return "ERR_RNNKIT_CUDA";
    default: return "ERR_RNNKIT_INTERNAL";
  }
}

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace rnnkit
