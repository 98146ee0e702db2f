// The engine's own all-reduce figure for bench family `dist`: Gloo called directly from C++ (its
// FileStore for rendezvous, its TCP device, its ring all-reduce), on the sizes rnnkit's bench
// times through the addon, in the same run. Usage:
//   gloo_allreduce_bench <rank> <world size> <store directory> <repetitions> <MB> [<MB> ...]
// Prints, from rank 0, one line per size: `<bytes> <median ms> <min ms> <max ms> <sample ms>...`.
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

double TimeAllreduce(const std::shared_ptr<gloo::Context>& context, std::vector<float>& data, uint32_t tag) {
  gloo::AllreduceOptions opts(context);
  opts.setOutput(data.data(), data.size());
  opts.setReduceFunction(static_cast<ReduceFn>(&gloo::sum<float>));
  opts.setTag(tag);
  auto start = std::chrono::steady_clock::now();
  gloo::allreduce(opts);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s <rank> <world size> <store directory> <repetitions> <MB>...\n", argv[0]);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const int rank = std::atoi(argv[1]);
  const int size = std::atoi(argv[2]);
  const int reps = std::atoi(argv[4]);
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore store(argv[3]);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  context->setTimeout(std::chrono::seconds(60));
  context->connectFullMesh(store, device);
  uint32_t tag = 0;
  for (int a = 5; a < argc; a++) {
    const size_t bytes = static_cast<size_t>(std::atof(argv[a]) * 1e6);
    std::vector<float> data(bytes / sizeof(float), 1.0f);
    TimeAllreduce(context, data, tag++);  // warm-up: first-touch pages, socket buffers
    std::vector<double> ms;
    for (int r = 0; r < reps; r++) {
      gloo::BarrierOptions barrier(context);
      barrier.setTag(tag++);
      gloo::barrier(barrier);
      ms.push_back(TimeAllreduce(context, data, tag++));
    }
    std::vector<double> order = ms;
    std::sort(ms.begin(), ms.end());
    if (rank == 0) {
      std::printf("%zu %.4f %.4f %.4f", bytes, ms[ms.size() / 2], ms.front(), ms.back());
      for (double v : order) std::printf(" %.4f", v);
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
