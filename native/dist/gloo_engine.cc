// The Gloo engine (Debian: libgloo-dev): a full mesh of TCP pairs set up through our rendezvous
// store, then Gloo's own algorithms (ring all-reduce, ...) over host memory. Every call carries
// the group's timeout, so a peer that hangs turns into a gloo::IoException, never a hang.
#include <gloo/allgather.h>
#include <gloo/allgather_ring.h>
#include <gloo/allreduce.h>
#include <gloo/broadcast.h>
#include <gloo/config.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <climits>
#include <cstring>
#include <stdexcept>

#include "dist_error.h"
#include "engine.h"
#include "rendezvous.h"

namespace rnnkit {
namespace dist {

namespace {

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

// Gloo's rendezvous reads and writes through this view of our store, under the group's prefix.
class GlooStore : public gloo::rendezvous::Store {
 public:
  GlooStore(KeyValueStore& store, std::string prefix, std::chrono::milliseconds timeout)
      : store_(store), prefix_(std::move(prefix)), timeout_(timeout) {}

  void set(const std::string& key, const std::vector<char>& data) override {
    store_.Set(prefix_ + key, std::string(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    std::string v = store_.Get(prefix_ + key, timeout_);
    return std::vector<char>(v.begin(), v.end());
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    std::vector<std::string> full;
    for (const std::string& k : keys) full.push_back(prefix_ + k);
    store_.Wait(full, std::min(timeout, timeout_));
  }

 private:
  KeyValueStore& store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
};

class GlooEngine : public Engine {
 public:
  explicit GlooEngine(const GroupConfig& config)
      : config_(config), rendezvous_(config, "gloo") {
    gloo::transport::tcp::attr attr;
    if (!config.socket_interface.empty()) {
      attr.iface = config.socket_interface;
    } else {
      attr.hostname = rendezvous_.local_address();
    }
    device_ = gloo::transport::tcp::CreateDevice(attr);
    address_ = config.socket_interface.empty() ? attr.hostname : "interface " + config.socket_interface;
    context_ = std::make_shared<gloo::rendezvous::Context>(config.rank, config.world_size);
    context_->setTimeout(config.timeout);
    GlooStore store(rendezvous_.store(), rendezvous_.prefix() + "gloo/", config.timeout);
    context_->connectFullMesh(store, device_);
    if (config.world_size > 1) {
      // A second full mesh, in Gloo's synchronous mode, for the header frames: the calling thread
      // reads its sockets itself instead of waiting for Gloo's I/O thread to read them and wake it,
      // so a frame exchange costs one wake-up per message instead of two (on a busy machine each
      // can wait for a scheduler tick). A frame is at most 4 KiB per step of the ring, well inside
      // the socket buffers, so the ring's blocking send-then-receive cannot stall. Reads time out
      // after the group's timeout (SO_RCVTIMEO), and a closed peer is an error, as in async mode.
      frames_ = std::make_shared<gloo::rendezvous::Context>(config.rank, config.world_size);
      frames_->setTimeout(config.timeout);
      GlooStore frame_store(rendezvous_.store(), rendezvous_.prefix() + "gloo-frames/", config.timeout);
      frames_->connectFullMesh(frame_store, device_);
      for (int r = 0; r < config.world_size; r++) {
        if (r != config.rank) frames_->getPair(r)->setSync(true, false);
      }
    }
  }

  int rank() const override { return config_.rank; }
  int size() const override { return config_.world_size; }
  std::string description() const override { return EngineVersion() + ", tcp on " + address_; }

  void ExchangeHeaders(const void* mine, void* all, size_t bytes) override {
    if (config_.world_size == 1) {
      std::memcpy(all, mine, bytes);
      return;
    }
    if (frames_ && bytes % sizeof(float) == 0 && bytes / sizeof(float) <= static_cast<size_t>(INT_MAX)) {
      // The same frames every call (the group's own buffers): one ring, built once, run again.
      if (!ring_ || ring_in_ != mine || ring_out_ != all || ring_bytes_ != bytes) {
        ring_.reset();
        ring_ = std::make_unique<gloo::AllgatherRing<float>>(frames_, std::vector<const float*>{static_cast<const float*>(mine)},
                                                             static_cast<float*>(all), static_cast<int>(bytes / sizeof(float)));
        ring_in_ = mine;
        ring_out_ = all;
        ring_bytes_ = bytes;
      }
      try {
        ring_->run();
      } catch (const std::exception& e) {
        std::string what = e.what();
        if (what.find("Read timeout") != std::string::npos)
          throw std::runtime_error("timed out after " + std::to_string(config_.timeout.count()) +
                                   " ms waiting for the other ranks (" + what + ")");
        throw;
      }
      return;
    }
    gloo::AllgatherOptions opts(context_);
    opts.setInput(static_cast<char*>(const_cast<void*>(mine)), bytes);
    opts.setOutput(static_cast<char*>(all), bytes * static_cast<size_t>(config_.world_size));
    opts.setTag(NextTag());
    gloo::allgather(opts);
  }

  void AllReduce(float* data, size_t n, ReduceOp op) override {
    gloo::AllreduceOptions opts(context_);
    opts.setOutput(data, n);
    opts.setReduceFunction(ReduceFunction(op));
    opts.setTag(NextTag());
    gloo::allreduce(opts);
    if (op == ReduceOp::avg) {
      const float p = static_cast<float>(config_.world_size);
      for (size_t i = 0; i < n; i++) data[i] /= p;
    }
  }

  void Broadcast(float* data, size_t n, int root) override {
    gloo::BroadcastOptions opts(context_);
    opts.setOutput(data, n);
    opts.setRoot(root);
    opts.setTag(NextTag());
    gloo::broadcast(opts);
  }

  void AllGather(const float* in, float* out, size_t n) override {
    gloo::AllgatherOptions opts(context_);
    opts.setInput(const_cast<float*>(in), n);
    opts.setOutput(out, n * static_cast<size_t>(config_.world_size));
    opts.setTag(NextTag());
    gloo::allgather(opts);
  }

  void Shutdown() override { rendezvous_.Leave(); }

 private:
  static ReduceFn ReduceFunction(ReduceOp op) {
    switch (op) {
      case ReduceOp::max: return static_cast<ReduceFn>(&gloo::max<float>);
      case ReduceOp::min: return static_cast<ReduceFn>(&gloo::min<float>);
      default: return static_cast<ReduceFn>(&gloo::sum<float>);
    }
  }
  // Every rank issues the same calls in the same order, so the same counter gives matching tags.
  uint32_t NextTag() { return tag_++; }

  GroupConfig config_;
  Rendezvous rendezvous_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  std::shared_ptr<gloo::rendezvous::Context> frames_;  // synchronous mode: header frames only
  std::unique_ptr<gloo::AllgatherRing<float>> ring_;
  const void* ring_in_ = nullptr;
  const void* ring_out_ = nullptr;
  size_t ring_bytes_ = 0;
  std::string address_;
  uint32_t tag_ = 0;
};

}  // namespace

const bool kEngineUsesDeviceMemory = false;

std::unique_ptr<Engine> CreateEngine(const GroupConfig& config) { return std::make_unique<GlooEngine>(config); }

std::string EngineVersion() {
  return "gloo " + std::to_string(GLOO_VERSION_MAJOR) + "." + std::to_string(GLOO_VERSION_MINOR) + "." +
         std::to_string(GLOO_VERSION_PATCH);
}

}  // namespace dist
}  // namespace rnnkit
