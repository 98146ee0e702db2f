#include "collectives.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <vector>

#include "dist_error.h"

namespace rnnkit {
namespace dist {

namespace {

constexpr uint32_t kHeaderMagic = 0x31444b52;  // "RKD1"

struct OpHeader {
  uint32_t magic;
  int32_t collective;
  uint64_t call;
  uint64_t count;
  int32_t param;
  int32_t tag;
};
static_assert(sizeof(OpHeader) == 32, "the header crosses process boundaries: keep it packed");

const char* OpName(int32_t op) {
  switch (static_cast<ReduceOp>(op)) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::avg: return "avg";
    case ReduceOp::max: return "max";
    case ReduceOp::min: return "min";
  }
  return "?";
}

std::string Describe(const OpHeader& h) {
  std::ostringstream s;
  if (h.magic != kHeaderMagic) return "an unknown message (not an rnnkit process group?)";
  switch (static_cast<Collective>(h.collective)) {
    case Collective::allreduce: s << "allReduce(" << OpName(h.param) << ") of " << h.count << " values"; break;
    case Collective::broadcast: s << "broadcast(src " << h.param << ") of " << h.count << " values"; break;
    case Collective::allgather: s << "allGather of " << h.count << " values"; break;
    case Collective::barrier: s << "barrier"; break;
    default: s << "collective #" << h.collective;
  }
  if (h.tag) s << " (tag " << h.tag << ")";
  s << " as call " << h.call;
  return s.str();
}

// "rank 0, 2: allReduce(sum) of 10 values as call 3; rank 1: ..." with at most 8 ranks per line.
std::string Disagreement(const std::vector<OpHeader>& all) {
  std::map<std::string, std::vector<int>> by_description;
  std::vector<std::string> order;
  for (size_t r = 0; r < all.size(); r++) {
    std::string d = Describe(all[r]);
    if (!by_description.count(d)) order.push_back(d);
    by_description[d].push_back(static_cast<int>(r));
  }
  std::ostringstream s;
  for (size_t i = 0; i < order.size(); i++) {
    const std::vector<int>& ranks = by_description[order[i]];
    s << (i ? "; " : "") << (ranks.size() > 1 ? "ranks " : "rank ");
    for (size_t j = 0; j < ranks.size() && j < 8; j++) s << (j ? ", " : "") << ranks[j];
    if (ranks.size() > 8) s << " and " << ranks.size() - 8 << " more";
    s << ": " << order[i];
  }
  return s.str();
}

// Ranks that disagree: no tensor was changed and the ranks stay in step, so the group stays usable.
class RanksDisagree : public DistError {
 public:
  explicit RanksDisagree(const std::string& message) : DistError(message) {}
};

// The header frame: at most 4 KiB (header + 1016 values), and at most 64 KiB gathered per call
// on a large group, never less than the header + 8 values.
size_t FrameFloats(int ranks) {
  if (kEngineUsesDeviceMemory) return CheckedGroup::kHeaderFloats;
  size_t bytes = std::min<size_t>(4096, std::max<size_t>(64, 65536 / static_cast<size_t>(std::max(ranks, 1))));
  return bytes / 8 * 2;
}

inline float Reduce(ReduceOp op, float acc, float x) {
  switch (op) {
    case ReduceOp::max: return acc < x ? x : acc;
    case ReduceOp::min: return x < acc ? x : acc;
    default: return acc + x;
  }
}

}  // namespace

CheckedGroup::CheckedGroup(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {
  const size_t p = static_cast<size_t>(engine_->size());
  frame_floats_ = FrameFloats(engine_->size());
  inline_values_ = frame_floats_ - kHeaderFloats;
  mine_.assign(frame_floats_, 0.0f);
  frames_.assign(frame_floats_ * p, 0.0f);
}

template <typename F>
void CheckedGroup::Run(const char* what, F&& f) {
  if (!engine_) throw DistError(std::string(what) + ": the process group has been destroyed");
  if (!broken_.empty()) throw DistError(std::string(what) + ": the process group is broken by an earlier failure: " + broken_);
  try {
    f();
  } catch (const RanksDisagree&) {
    throw;
  } catch (const DistError& e) {
    broken_ = e.what();
    throw;
  } catch (const std::exception& e) {
    broken_ = std::string(what) + " failed: " + e.what() +
              " (a peer process died or hung past the timeout, or the network failed; this process group can no "
              "longer be used)";
    throw DistError(broken_);
  }
}

bool CheckedGroup::Agree(Collective what, uint64_t count, int32_t param, int32_t tag, const float* payload, size_t n) {
  static_assert(sizeof(OpHeader) == kHeaderFloats * sizeof(float), "the header fills the frame's first slots");
  OpHeader mine{kHeaderMagic, static_cast<int32_t>(what), calls_++, count, param, tag};
  const bool inline_data = payload != nullptr && n <= inline_values_;
  std::memcpy(mine_.data(), &mine, sizeof(OpHeader));
  if (inline_data && n > 0) std::memcpy(mine_.data() + kHeaderFloats, payload, n * sizeof(float));
  engine_->ExchangeHeaders(mine_.data(), frames_.data(), frame_floats_ * sizeof(float));
  const size_t p = static_cast<size_t>(engine_->size());
  bool agree = true;
  for (size_t r = 0; r < p; r++) agree = agree && std::memcmp(frames_.data() + r * frame_floats_, &mine, sizeof(OpHeader)) == 0;
  if (!agree) {
    std::vector<OpHeader> all(p);
    for (size_t r = 0; r < p; r++) std::memcpy(&all[r], frames_.data() + r * frame_floats_, sizeof(OpHeader));
    throw RanksDisagree("ranks disagree on a collective (no tensor was changed): " + Disagreement(all));
  }
  return inline_data;
}

void CheckedGroup::AllReduce(float* data, size_t n, ReduceOp op, int32_t tag) {
  Run("allReduce", [&] {
    if (Agree(Collective::allreduce, n, static_cast<int32_t>(op), tag, data, n)) {
      // Every rank folds the same values in the same (rank) order: the same bits everywhere.
      const int p = engine_->size();
      const float* first = gathered(0);
      for (size_t i = 0; i < n; i++) data[i] = first[i];
      for (int r = 1; r < p; r++) {
        const float* x = gathered(r);
        for (size_t i = 0; i < n; i++) data[i] = Reduce(op, data[i], x[i]);
      }
      if (op == ReduceOp::avg) {
        const float fp = static_cast<float>(p);
        for (size_t i = 0; i < n; i++) data[i] /= fp;
      }
      return;
    }
    if (n > 0) engine_->AllReduce(data, n, op);
  });
}

void CheckedGroup::Broadcast(float* data, size_t n, int root, int32_t tag) {
  if (engine_ && root >= engine_->size())
    throw DistError("broadcast src " + std::to_string(root) + " is not a rank of this group", kArgCode);
  Run("broadcast", [&] {
    if (Agree(Collective::broadcast, n, root, tag, data, n)) {
      if (root != engine_->rank() && n > 0) std::memcpy(data, gathered(root), n * sizeof(float));
      return;
    }
    if (n > 0 && engine_->size() > 1) engine_->Broadcast(data, n, root);
  });
}

void CheckedGroup::AllGather(const float* in, size_t n, float* out, size_t n_out) {
  if (engine_ && n_out != n * static_cast<size_t>(engine_->size()))
    throw DistError("allGather output must hold worldSize * input.length values", kArgCode);
  Run("allGather", [&] {
    if (Agree(Collective::allgather, n, 0, 0, in, n)) {
      for (int r = 0; r < engine_->size() && n > 0; r++) std::memcpy(out + static_cast<size_t>(r) * n, gathered(r), n * sizeof(float));
      return;
    }
    if (n > 0) engine_->AllGather(in, out, n);
  });
}

void CheckedGroup::Barrier() {
  // The header exchange is itself an all-to-all: when it returns, every rank has reached it.
  Run("barrier", [&] { Agree(Collective::barrier, 0, 0, 0); });
}

void CheckedGroup::Destroy() {
  if (!engine_) return;
  if (broken_.empty()) {
    try {
      Agree(Collective::barrier, 0, 0, 0);
      engine_->Shutdown();
    } catch (const std::exception&) {
      // A peer that is gone already cannot take part in the farewell; the engine is dropped anyway.
    }
  }
  engine_.reset();
}

}  // namespace dist
}  // namespace rnnkit
