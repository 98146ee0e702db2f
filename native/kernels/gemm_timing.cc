// GEMM timing for bench/families/gemm.js (contract: gemm_timing.h).
#include "gemm_timing.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if __has_include(<dlfcn.h>)
#include <dlfcn.h>
#define RNNKIT_HAVE_DLOPEN 1
#endif

#include "errors.h"
#include "sgemm.h"

namespace rnnkit {
namespace {

struct Operands {
  int64_t M, N, K, lda, ldb;
  bool ta, tb;
  std::vector<float> A, B, C;
};

Operands make_operands(int64_t M, int64_t N, int64_t K, bool ta, bool tb) {
  Operands o{M, N, K, ta ? M : K, tb ? K : N, ta, tb, {}, {}, {}};
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  o.A.resize(static_cast<size_t>(M * K));
  o.B.resize(static_cast<size_t>(K * N));
  o.C.resize(static_cast<size_t>(M * N));
  for (float& x : o.A) x = u(rng);
  for (float& x : o.B) x = u(rng);
  return o;
}

GemmTiming time_calls(const std::function<void()>& call, int repeats, double min_ms) {
  using clock = std::chrono::steady_clock;
  call();
  auto t0 = clock::now();
  call();
  double once = std::chrono::duration<double>(clock::now() - t0).count();
  int64_t batch = std::max<int64_t>(1, static_cast<int64_t>(min_ms * 1e-3 / std::max(once, 1e-9)));
  std::vector<double> samples;
  for (int r = 0; r < repeats; ++r) {
    auto s = clock::now();
    for (int64_t b = 0; b < batch; ++b) call();
    samples.push_back(std::chrono::duration<double>(clock::now() - s).count() / batch);
  }
  std::sort(samples.begin(), samples.end());
  size_t n = samples.size();
  double median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  return {median, samples.front(), samples.back()};
}

#if RNNKIT_HAVE_DLOPEN

// A peer library kept open for the life of the process (peers run in child processes of the
// bench, so that environment variables read at load time, like OPENBLAS_CORETYPE, take effect).
struct Peer {
  std::string soname;
  std::string detail;
  std::function<void(const Operands&, Operands&)> gemm;
  std::function<void(int)> set_threads;
};

void* open_first(const std::vector<const char*>& names, std::string* which) {
  for (const char* n : names) {
    if (void* h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) {
      *which = n;
      return h;
    }
  }
  return nullptr;
}

// CBLAS enums (row-major 101, no-trans 111, trans 112), fixed by the CBLAS standard.
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*,
                            int, float, float*, int);
using DnnlSgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
struct DnnlVersion {
  int major, minor, patch;
  const char* hash;
  unsigned cpu_runtime, gpu_runtime;
};

std::unique_ptr<Peer> load_peer(const std::string& name) {
  std::string soname;
  if (name == "openblas") {
    void* h = open_first({"libopenblas.so.0", "libopenblas.so"}, &soname);
    if (!h) return nullptr;
    auto fn = reinterpret_cast<CblasSgemm>(dlsym(h, "cblas_sgemm"));
    if (!fn) return nullptr;
    auto set = reinterpret_cast<void (*)(int)>(dlsym(h, "openblas_set_num_threads"));
    auto core = reinterpret_cast<const char* (*)()>(dlsym(h, "openblas_get_corename"));
    auto config = reinterpret_cast<const char* (*)()>(dlsym(h, "openblas_get_config"));
    std::unique_ptr<Peer> p(new Peer);
    p->soname = soname;
    p->detail = std::string(config ? config() : "") + (core ? std::string(" core ") + core() : "");
    p->gemm = [fn](const Operands& o, Operands& out) {
      fn(101, o.ta ? 112 : 111, o.tb ? 112 : 111, static_cast<int>(o.M), static_cast<int>(o.N),
         static_cast<int>(o.K), 1.f, o.A.data(), static_cast<int>(o.lda), o.B.data(),
         static_cast<int>(o.ldb), 0.f, out.C.data(), static_cast<int>(o.N));
    };
    p->set_threads = [set](int n) {
      if (set) set(n);
    };
    return p;
  }
  if (name == "dnnl") {
    void* h = open_first({"libdnnl.so.3", "libdnnl.so.2", "libdnnl.so"}, &soname);
    if (!h) return nullptr;
    auto fn = reinterpret_cast<DnnlSgemm>(dlsym(h, "dnnl_sgemm"));
    if (!fn) return nullptr;
    auto version = reinterpret_cast<const DnnlVersion* (*)()>(dlsym(h, "dnnl_version"));
    // oneDNN's Debian build threads with OpenMP; its runtime is among the handle's dependencies.
    auto omp_set = reinterpret_cast<void (*)(int)>(dlsym(h, "omp_set_num_threads"));
    std::unique_ptr<Peer> p(new Peer);
    p->soname = soname;
    if (version) {
      const DnnlVersion* v = version();
      p->detail = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                  std::to_string(v->patch);
    }
    p->gemm = [fn](const Operands& o, Operands& out) {
      int st = fn(o.ta ? 'T' : 'N', o.tb ? 'T' : 'N', o.M, o.N, o.K, 1.f, o.A.data(), o.lda,
                  o.B.data(), o.ldb, 0.f, out.C.data(), o.N);
      if (st != 0) throw Error(ErrorCode::internal, "dnnl_sgemm failed with status " + std::to_string(st));
    };
    p->set_threads = [omp_set](int n) {
      if (omp_set) omp_set(n);
    };
    return p;
  }
  return nullptr;
}

// Each library is opened on first use only, so a child timing one peer never loads the other.
Peer* peer(const std::string& name) {
  if (name == "openblas") {
    static std::unique_ptr<Peer> p = load_peer(name);
    return p.get();
  }
  if (name == "dnnl") {
    static std::unique_ptr<Peer> p = load_peer(name);
    return p.get();
  }
  throw Error(ErrorCode::arg, "unknown peer '" + name + "' (openblas, dnnl)");
}

#endif

}  // namespace

GemmTiming time_sgemm(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool packed, int repeats,
                      double min_ms) {
  Operands o = make_operands(M, N, K, ta, tb);
  if (packed) {
    PackedB pb(tb, K, N, o.B.data(), o.ldb);
    return time_calls([&] { sgemm_packed(ta, M, 1.f, o.A.data(), o.lda, pb, 0.f, o.C.data(), N); }, repeats,
                      min_ms);
  }
  return time_calls([&] { sgemm(ta, tb, M, N, K, 1.f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.f, o.C.data(), N); },
                    repeats, min_ms);
}

bool gemm_peer_info(const std::string& name, std::string* soname, std::string* detail) {
#if RNNKIT_HAVE_DLOPEN
  Peer* p = peer(name);
  if (!p) return false;
  *soname = p->soname;
  *detail = p->detail;
  return true;
#else
  (void)name, (void)soname, (void)detail;
  return false;
#endif
}

GemmTiming time_peer_sgemm(const std::string& name, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                           int threads, int repeats, double min_ms) {
#if RNNKIT_HAVE_DLOPEN
  Peer* p = peer(name);
  if (!p) throw Error(ErrorCode::arg, "peer " + name + " is not installed");
  p->set_threads(threads);
  Operands o = make_operands(M, N, K, ta, tb);
  return time_calls([&] { p->gemm(o, o); }, repeats, min_ms);
#else
  (void)M, (void)N, (void)K, (void)ta, (void)tb, (void)threads, (void)repeats, (void)min_ms;
  throw Error(ErrorCode::arg, "peer " + name + ": no dlopen on this platform");
#endif
}

}  // namespace rnnkit
