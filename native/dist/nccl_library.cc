#include "nccl_library.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

#include "dist_error.h"

namespace rnnkit {
namespace dist {

namespace {

template <typename F>
void Bind(void* handle, const char* library, const char* symbol, F& out) {
  void* p = ::dlsym(handle, symbol);
  if (!p) throw DistError(std::string(library) + " has no " + symbol + " (too old?)");
  out = reinterpret_cast<F>(p);
}

NcclLibrary Load() {
  const char* override_path = std::getenv("RNNKIT_NCCL_LIBRARY");
  const std::string nccl_name = override_path && *override_path ? override_path : "libnccl.so.2";
  void* nccl = ::dlopen(nccl_name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!nccl) {
    const char* why = ::dlerror();
    throw DistError("cannot load " + nccl_name + " (" + (why ? why : "not found") + ")");
  }
  void* cuda = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!cuda) {
    const char* why = ::dlerror();
    throw DistError(std::string("cannot load the NVIDIA driver's libcuda.so.1 (") + (why ? why : "not found") +
                    "): NCCL needs an NVIDIA GPU and its driver");
  }
  NcclLibrary l;
  const char* n = nccl_name.c_str();
  Bind(nccl, n, "ncclGetVersion", l.GetVersion);
  Bind(nccl, n, "ncclGetUniqueId", l.GetUniqueId);
  Bind(nccl, n, "ncclCommInitRank", l.CommInitRank);
  Bind(nccl, n, "ncclCommDestroy", l.CommDestroy);
  Bind(nccl, n, "ncclCommAbort", l.CommAbort);
  Bind(nccl, n, "ncclCommGetAsyncError", l.CommGetAsyncError);
  Bind(nccl, n, "ncclGetErrorString", l.GetErrorString);
  Bind(nccl, n, "ncclAllReduce", l.AllReduce);
  Bind(nccl, n, "ncclBroadcast", l.Broadcast);
  Bind(nccl, n, "ncclAllGather", l.AllGather);
  const char* c = "libcuda.so.1";
  Bind(cuda, c, "cuInit", l.CuInit);
  Bind(cuda, c, "cuDeviceGet", l.CuDeviceGet);
  Bind(cuda, c, "cuDevicePrimaryCtxRetain", l.CuDevicePrimaryCtxRetain);
  Bind(cuda, c, "cuDevicePrimaryCtxRelease_v2", l.CuDevicePrimaryCtxRelease);
  Bind(cuda, c, "cuCtxSetCurrent", l.CuCtxSetCurrent);
  Bind(cuda, c, "cuStreamCreate", l.CuStreamCreate);
  Bind(cuda, c, "cuStreamDestroy_v2", l.CuStreamDestroy);
  Bind(cuda, c, "cuStreamQuery", l.CuStreamQuery);
  Bind(cuda, c, "cuMemAlloc_v2", l.CuMemAlloc);
  Bind(cuda, c, "cuMemFree_v2", l.CuMemFree);
  Bind(cuda, c, "cuMemcpyHtoD_v2", l.CuMemcpyHtoD);
  Bind(cuda, c, "cuMemcpyDtoH_v2", l.CuMemcpyDtoH);
  int code = 0;
  if (l.GetVersion(&code) != kNcclSuccess) throw DistError("ncclGetVersion failed");
  // NCCL >= 2.9 codes versions as major*10000 + minor*100 + patch, older ones as major*1000 + ...
  int major = code >= 10000 ? code / 10000 : code / 1000;
  int minor = code >= 10000 ? (code / 100) % 100 : (code / 100) % 10;
  int patch = code % 100;
  l.version_code = major * 10000 + minor * 100 + patch;
  l.version = "NCCL " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  return l;
}

}  // namespace

const NcclLibrary& Nccl() {
  // Loaded once; a failure is remembered and thrown again with the same message.
  static std::once_flag once;
  static NcclLibrary library;
  static std::string failure;
  std::call_once(once, [] {
    try {
      library = Load();
    } catch (const DistError& e) {
      failure = e.what();
    }
  });
  if (!failure.empty()) throw DistError(failure);
  return library;
}

}  // namespace dist
}  // namespace rnnkit
