// NCCL and the CUDA driver API, loaded with dlopen at run time (libnccl.so.2, libcuda.so.1), so
// that building the nccl addon needs neither NCCL nor the CUDA toolkit: only the C entry points
// below, declared with their documented signatures, are used. RNNKIT_NCCL_LIBRARY names another
// NCCL file to load.
#pragma once
#include <cstddef>
#include <string>

namespace rnnkit {
namespace dist {

// ncclUniqueId: 128 opaque bytes rank 0 makes and every rank needs.
struct NcclUniqueId {
  char internal[128];
};

// Values of NCCL's enums (nccl.h) that the engine uses.
constexpr int kNcclSuccess = 0;
constexpr int kNcclInProgress = 7;
constexpr int kNcclInt8 = 0;
constexpr int kNcclFloat32 = 7;
constexpr int kNcclSum = 0;
constexpr int kNcclMax = 2;
constexpr int kNcclMin = 3;
constexpr int kNcclAvg = 4;  // NCCL >= 2.10
// CUDA driver results and flags (cuda.h).
constexpr int kCudaSuccess = 0;
constexpr int kCudaNotReady = 600;
constexpr unsigned kStreamNonBlocking = 1;

using CuDevicePtr = unsigned long long;

struct NcclLibrary {
  int (*GetVersion)(int* version);
  int (*GetUniqueId)(NcclUniqueId* id);
  int (*CommInitRank)(void** comm, int nranks, NcclUniqueId id, int rank);
  int (*CommDestroy)(void* comm);
  int (*CommAbort)(void* comm);
  int (*CommGetAsyncError)(void* comm, int* result);
  const char* (*GetErrorString)(int result);
  int (*AllReduce)(const void* send, void* recv, size_t count, int datatype, int op, void* comm, void* stream);
  int (*Broadcast)(const void* send, void* recv, size_t count, int datatype, int root, void* comm, void* stream);
  int (*AllGather)(const void* send, void* recv, size_t send_count, int datatype, void* comm, void* stream);

  int (*CuInit)(unsigned flags);
  int (*CuDeviceGet)(int* device, int ordinal);
  int (*CuDevicePrimaryCtxRetain)(void** context, int device);
  int (*CuDevicePrimaryCtxRelease)(int device);
  int (*CuCtxSetCurrent)(void* context);
  int (*CuStreamCreate)(void** stream, unsigned flags);
  int (*CuStreamDestroy)(void* stream);
  int (*CuStreamQuery)(void* stream);
  int (*CuMemAlloc)(CuDevicePtr* ptr, size_t bytes);
  int (*CuMemFree)(CuDevicePtr ptr);
  int (*CuMemcpyHtoD)(CuDevicePtr dst, const void* src, size_t bytes);
  int (*CuMemcpyDtoH)(void* dst, CuDevicePtr src, size_t bytes);

  // "NCCL 2.21.5" from ncclGetVersion.
  std::string version;
  // The NCCL version as major * 10000 + minor * 100 + patch.
  int version_code = 0;
};

// Loads both libraries on first call; throws DistError naming what is missing.
const NcclLibrary& Nccl();

}  // namespace dist
}  // namespace rnnkit
