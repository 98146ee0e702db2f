#include "collectives.h"

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

// Ranks that disagree: nothing was exchanged, so the group stays usable.
class RanksDisagree : public DistError {
 public:
  explicit RanksDisagree(const std::string& message) : DistError(message) {}
};

}  // namespace

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

void CheckedGroup::Agree(Collective what, uint64_t count, int32_t param, int32_t tag) {
  OpHeader mine{kHeaderMagic, static_cast<int32_t>(what), calls_++, count, param, tag};
  std::vector<OpHeader> all(static_cast<size_t>(engine_->size()));
  engine_->ExchangeHeaders(&mine, all.data(), sizeof(OpHeader));
  for (const OpHeader& h : all) {
    if (std::memcmp(&h, &mine, sizeof(OpHeader)) != 0) {
      throw RanksDisagree("ranks disagree on a collective (nothing was exchanged): " + Disagreement(all));
    }
  }
}

void CheckedGroup::AllReduce(float* data, size_t n, ReduceOp op, int32_t tag) {
  Run("allReduce", [&] {
    Agree(Collective::allreduce, n, static_cast<int32_t>(op), tag);
    if (n > 0) engine_->AllReduce(data, n, op);
  });
}

void CheckedGroup::Broadcast(float* data, size_t n, int root, int32_t tag) {
  if (engine_ && root >= engine_->size())
    throw DistError("broadcast src " + std::to_string(root) + " is not a rank of this group", kArgCode);
  Run("broadcast", [&] {
    Agree(Collective::broadcast, n, root, tag);
    if (n > 0 && engine_->size() > 1) engine_->Broadcast(data, n, root);
  });
}

void CheckedGroup::AllGather(const float* in, size_t n, float* out, size_t n_out) {
  if (engine_ && n_out != n * static_cast<size_t>(engine_->size()))
    throw DistError("allGather output must hold worldSize * input.length values", kArgCode);
  Run("allGather", [&] {
    Agree(Collective::allgather, n, 0, 0);
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
