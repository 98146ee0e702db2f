// Step-net engine: compile (names, shapes, links, hoisting, memory plan), forward, backward,
// the wavefront executor and the blob fetcher. Contract in stepnet.h.
#include "stepnet.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "denormals.h"
#include "errors.h"
#include "parallel.h"
#include "rmsnorm.h"
#include "sgemm.h"
#include "stepnet_kernels.h"

namespace rnnkit {
namespace stepnet {

enum class BlobKind { input_link, state_read, state_write, step, param, timestep };
enum class OpType { fc, add, sub, mul, sigmoid, tanh, relu, concat, slice, split, copy,
                    lstm_unit, gru_unit, rms_norm };

struct Blob {
  std::string name;
  BlobKind kind = BlobKind::step;
  int ext = -1;          // input / state / param index
  int64_t offset = 0;    // links
  int64_t W = 1, D = 0;  // per-step shape [W, B, D]
  int producer = -1;     // op index (step and state_write blobs)
  std::vector<int> consumers;
  bool recompute = false;
  bool hoisted = false;
};

struct Op {
  OpType type;
  std::string label;  // "op #i (type)" for messages
  int spec_index = 0;
  std::vector<int> in, out;
  int64_t axis = 1;
  std::vector<int64_t> piece_start, piece_len;  // concat / slice / split, in axis units
  float eps = 1e-6f;
  bool lbr = true;
  int64_t aux_cols = 0;     // per-row scratch the backward needs
  bool hoisted = false;
  bool recompute = false;   // re-run per step by the backward
  bool defer_params = false;
  std::vector<int> param_grads;  // params whose gradients this op accumulates itself
};

class Net {
 public:
  NetSpec spec;
  std::vector<Blob> blobs;
  std::unordered_map<std::string, int> by_name;
  std::vector<Op> ops;             // topological order
  std::vector<int> hoisted, loop;  // op indices, topological
  std::vector<int> loop_pos;       // op index -> position in `loop` (-1 when hoisted)
  std::vector<int> state_writer;   // per state: op index
  std::vector<int> state_blob;     // per state: its state_write blob
  int timestep_blob = -1;
  bool has_recompute = false;
  bool wide = false;
};

namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& msg) { throw Error(code, msg); }

OpType parse_type(const std::string& t, const std::string& label) {
  static const std::pair<const char*, OpType> names[] = {
      {"fc", OpType::fc}, {"matmul", OpType::fc}, {"add", OpType::add}, {"sub", OpType::sub},
      {"mul", OpType::mul}, {"sigmoid", OpType::sigmoid}, {"tanh", OpType::tanh},
      {"relu", OpType::relu}, {"concat", OpType::concat}, {"slice", OpType::slice},
      {"split", OpType::split}, {"copy", OpType::copy}, {"lstmUnit", OpType::lstm_unit},
      {"gruUnit", OpType::gru_unit}, {"rmsNorm", OpType::rms_norm}};
  for (auto& n : names) if (t == n.first) return n.second;
  fail(ErrorCode::arg, label + ": unknown op type '" + t + "'");
}

std::string shape_str(const Blob& b) {
  return "[" + std::to_string(b.W) + ", B, " + std::to_string(b.D) + "]";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// compile

namespace {

class Compiler {
 public:
  explicit Compiler(const NetSpec& s) : net_(std::make_shared<Net>()) { net_->spec = s; }

  std::shared_ptr<const Net> run() {
    declare_externals();
    declare_links();
    declare_ops();
    resolve_link_roles();
    order_ops();
    infer_shapes();
    check_states();
    mark_recompute();
    plan_hoisting();
    plan_param_grads();
    check_aliases();
    net_->wide = wavefront_width() >= 1.5;
    return net_;
  }

 private:
  std::shared_ptr<Net> net_;
  std::unordered_map<std::string, int> ext_input_, ext_state_;

  Net& n() { return *net_; }

  void unique(const std::string& name, const std::string& what) {
    if (name.empty()) fail(ErrorCode::arg, what + " has an empty name");
    if (n().by_name.count(name) || ext_input_.count(name) || ext_state_.count(name)) {
      fail(ErrorCode::arg, "blob '" + name + "' is declared twice (" + what + ")");
    }
  }

  int add_blob(Blob b) {
    n().by_name[b.name] = static_cast<int>(n().blobs.size());
    n().blobs.push_back(std::move(b));
    return static_cast<int>(n().blobs.size()) - 1;
  }

  void declare_externals() {
    auto& s = n().spec;
    for (size_t i = 0; i < s.inputs.size(); ++i) {
      unique(s.inputs[i].name, "input");
      if (s.inputs[i].size < 1) fail(ErrorCode::shape, "input '" + s.inputs[i].name + "' needs size >= 1");
      ext_input_[s.inputs[i].name] = static_cast<int>(i);
    }
    for (size_t i = 0; i < s.states.size(); ++i) {
      unique(s.states[i].name, "state");
      if (s.states[i].size < 1) fail(ErrorCode::shape, "state '" + s.states[i].name + "' needs size >= 1");
      if (s.states[i].init_steps < 1) fail(ErrorCode::arg, "state '" + s.states[i].name + "' needs initSteps >= 1");
      ext_state_[s.states[i].name] = static_cast<int>(i);
    }
    for (size_t i = 0; i < s.params.size(); ++i) {
      unique(s.params[i].name, "param");
      for (int64_t d : s.params[i].shape) {
        if (d < 1) fail(ErrorCode::shape, "param '" + s.params[i].name + "' has an empty dimension");
      }
      Blob b;
      b.name = s.params[i].name;
      b.kind = BlobKind::param;
      b.ext = static_cast<int>(i);
      add_blob(b);
    }
    unique(s.timestep, "timestep");
    Blob ts;
    ts.name = s.timestep;
    ts.kind = BlobKind::timestep;
    ts.D = 1;
    n().timestep_blob = add_blob(ts);
  }

  void declare_links() {
    for (const auto& l : n().spec.links) {
      unique(l.internal, "link internal");
      Blob b;
      b.name = l.internal;
      b.offset = l.offset;
      b.W = l.window;
      if (ext_input_.count(l.external)) {
        b.kind = BlobKind::input_link;
        b.ext = ext_input_[l.external];
        b.D = n().spec.inputs[b.ext].size;
      } else if (ext_state_.count(l.external)) {
        b.kind = BlobKind::state_read;  // becomes state_write when an op writes it
        b.ext = ext_state_[l.external];
        b.D = n().spec.states[b.ext].size;
      } else {
        fail(ErrorCode::arg, "link '" + l.internal + "': unknown external blob '" + l.external + "'");
      }
      if (l.offset < 0 || l.window < 1) {
        fail(ErrorCode::arg, "link '" + l.internal + "' is out of range: offset " +
                                 std::to_string(l.offset) + " must be >= 0 and window >= 1");
      }
      add_blob(b);
    }
  }

  void declare_ops() {
    auto& s = n().spec;
    for (size_t i = 0; i < s.ops.size(); ++i) {
      const OpSpec& os = s.ops[i];
      Op op;
      op.label = "op #" + std::to_string(i) + " (" + os.type + ")";
      op.type = parse_type(os.type, op.label);
      op.spec_index = static_cast<int>(i);
      op.axis = os.axis;
      op.eps = os.eps;
      op.lbr = os.linear_before_reset;
      for (const auto& name : os.inputs) {
        auto it = n().by_name.find(name);
        if (it == n().by_name.end()) {
          // May be produced by a later op: resolved after all outputs are declared.
          op.in.push_back(-1);
        } else {
          op.in.push_back(it->second);
        }
      }
      for (const auto& name : os.outputs) {
        auto it = n().by_name.find(name);
        int b;
        if (it != n().by_name.end()) {
          Blob& existing = n().blobs[it->second];
          if (existing.kind != BlobKind::state_read || existing.producer >= 0) {
            fail(ErrorCode::arg, op.label + ": blob '" + name + "' is written twice or is not writable");
          }
          existing.kind = BlobKind::state_write;
          b = it->second;
        } else {
          if (ext_input_.count(name) || ext_state_.count(name)) {
            fail(ErrorCode::arg, op.label + ": output '" + name + "' names an external blob; write a link to it");
          }
          Blob nb;
          nb.name = name;
          b = add_blob(nb);
        }
        n().blobs[b].producer = static_cast<int>(i);
        op.out.push_back(b);
      }
      n().ops.push_back(op);
    }
    for (size_t i = 0; i < s.ops.size(); ++i) {
      Op& op = n().ops[i];
      for (size_t k = 0; k < op.in.size(); ++k) {
        if (op.in[k] >= 0) continue;
        const std::string& name = s.ops[i].inputs[k];
        auto it = n().by_name.find(name);
        if (it == n().by_name.end()) fail(ErrorCode::arg, op.label + ": unknown blob '" + name + "'");
        op.in[k] = it->second;
      }
      for (int b : op.in) n().blobs[b].consumers.push_back(static_cast<int>(i));
    }
  }

  void resolve_link_roles() {
    auto& s = n().spec;
    n().state_writer.assign(s.states.size(), -1);
    n().state_blob.assign(s.states.size(), -1);
    for (size_t b = 0; b < n().blobs.size(); ++b) {
      Blob& bl = n().blobs[b];
      if (bl.kind == BlobKind::state_write) {
        const StateSpec& st = s.states[bl.ext];
        if (bl.W != 1 || bl.offset != st.init_steps) {
          fail(ErrorCode::arg, "link '" + bl.name + "' writes state '" + st.name + "' out of range: a write link needs offset " +
                                   std::to_string(st.init_steps) + " (initSteps) and window 1");
        }
        if (n().state_writer[bl.ext] >= 0) fail(ErrorCode::arg, "state '" + st.name + "' is written by two links");
        n().state_writer[bl.ext] = bl.producer;
        n().state_blob[bl.ext] = static_cast<int>(b);
      } else if (bl.kind == BlobKind::state_read) {
        const StateSpec& st = s.states[bl.ext];
        if (bl.offset + bl.W > st.init_steps) {
          fail(ErrorCode::arg, "link '" + bl.name + "' reads state '" + st.name + "' out of range: offset + window (" +
                                   std::to_string(bl.offset + bl.W) + ") must be <= initSteps (" +
                                   std::to_string(st.init_steps) + "), the slots written before the step");
        }
      }
    }
  }

  void order_ops() {
    // Kahn over the intra-step edges producer -> consumer (links to states and inputs are
    // external reads and add no edge).
    const size_t N = n().ops.size();
    std::vector<int> indeg(N, 0);
    std::vector<std::vector<int>> succ(N);
    for (size_t i = 0; i < N; ++i) {
      for (int b : n().ops[i].in) {
        int p = n().blobs[b].producer;
        if (p >= 0) {
          succ[p].push_back(static_cast<int>(i));
          ++indeg[i];
        }
      }
    }
    std::vector<int> order;
    std::vector<int> ready;
    for (size_t i = 0; i < N; ++i) if (indeg[i] == 0) ready.push_back(static_cast<int>(i));
    while (!ready.empty()) {
      std::sort(ready.begin(), ready.end(), std::greater<int>());
      int i = ready.back();
      ready.pop_back();
      order.push_back(i);
      for (int j : succ[i]) if (--indeg[j] == 0) ready.push_back(j);
    }
    if (order.size() != N) {
      for (size_t i = 0; i < N; ++i) {
        if (indeg[i] > 0) {
          for (int b : n().ops[i].in) {
            int p = n().blobs[b].producer;
            if (p >= 0 && indeg[p] > 0) {
              fail(ErrorCode::arg, "cycle within a step through blob '" + n().blobs[b].name + "' (" +
                                       n().ops[i].label + ")");
            }
          }
        }
      }
    }
    // Renumber ops and blob producers / consumers to the topological order.
    std::vector<int> pos(N);
    for (size_t k = 0; k < N; ++k) pos[order[k]] = static_cast<int>(k);
    std::vector<Op> sorted;
    for (int i : order) sorted.push_back(n().ops[i]);
    n().ops = std::move(sorted);
    for (Blob& b : n().blobs) {
      if (b.producer >= 0) b.producer = pos[b.producer];
      for (int& c : b.consumers) c = pos[c];
      std::sort(b.consumers.begin(), b.consumers.end());
      b.consumers.erase(std::unique(b.consumers.begin(), b.consumers.end()), b.consumers.end());
    }
    for (int& w : n().state_writer) if (w >= 0) w = pos[w];
  }

  const Blob& step_in(const Op& op, size_t k) {
    const Blob& b = n().blobs[op.in[k]];
    if (b.kind == BlobKind::param) {
      fail(ErrorCode::arg, op.label + ": input " + std::to_string(k) + " is parameter '" + b.name + "', a per-step blob is needed");
    }
    return b;
  }

  const std::vector<int64_t>& param_in(const Op& op, size_t k) {
    const Blob& b = n().blobs[op.in[k]];
    if (b.kind != BlobKind::param) {
      fail(ErrorCode::arg, op.label + ": input " + std::to_string(k) + " ('" + b.name + "') must be a parameter");
    }
    return n().spec.params[b.ext].shape;
  }

  void arity(const Op& op, size_t lo, size_t hi, size_t outs_lo, size_t outs_hi) {
    if (op.in.size() < lo || op.in.size() > hi) {
      fail(ErrorCode::arg, op.label + " takes " + std::to_string(lo) + (hi != lo ? ".." + std::to_string(hi) : "") +
                               " inputs, got " + std::to_string(op.in.size()));
    }
    if (op.out.size() < outs_lo || op.out.size() > outs_hi) {
      fail(ErrorCode::arg, op.label + " takes " + std::to_string(outs_lo) + (outs_hi != outs_lo ? ".." + std::to_string(outs_hi) : "") +
                               " outputs, got " + std::to_string(op.out.size()));
    }
  }

  void set_out(const Op& op, size_t k, int64_t W, int64_t D) {
    Blob& b = n().blobs[op.out[k]];
    if (b.kind == BlobKind::state_write) {
      if (W != 1 || D != b.D) {
        fail(ErrorCode::shape, op.label + ": output '" + b.name + "' is [" + std::to_string(W) + ", B, " + std::to_string(D) +
                                   "] but its state holds " + shape_str(b));
      }
      return;
    }
    b.W = W;
    b.D = D;
  }

  void same(const Op& op, const Blob& a, const Blob& b) {
    if (a.W != b.W || a.D != b.D) {
      fail(ErrorCode::shape, op.label + ": blob '" + b.name + "' is " + shape_str(b) + " but '" + a.name + "' is " + shape_str(a));
    }
  }

  void infer_shapes() {
    for (Op& op : n().ops) {
      switch (op.type) {
        case OpType::fc: {
          arity(op, 2, 3, 1, 1);
          const Blob& x = step_in(op, 0);
          const auto& w = param_in(op, 1);
          if (w.size() != 2 || w[1] != x.D) {
            fail(ErrorCode::shape, op.label + ": weight '" + n().blobs[op.in[1]].name + "' must be [N, " + std::to_string(x.D) +
                                       "] for input '" + x.name + "' " + shape_str(x));
          }
          if (op.in.size() == 3) {
            const auto& bias = param_in(op, 2);
            if (bias.size() != 1 || bias[0] != w[0]) {
              fail(ErrorCode::shape, op.label + ": bias '" + n().blobs[op.in[2]].name + "' must be [" + std::to_string(w[0]) + "]");
            }
          }
          set_out(op, 0, x.W, w[0]);
          break;
        }
        case OpType::add: case OpType::sub: case OpType::mul: {
          arity(op, 2, 2, 1, 1);
          same(op, step_in(op, 0), step_in(op, 1));
          set_out(op, 0, step_in(op, 0).W, step_in(op, 0).D);
          break;
        }
        case OpType::sigmoid: case OpType::tanh: case OpType::relu: case OpType::copy: {
          arity(op, 1, 1, 1, 1);
          set_out(op, 0, step_in(op, 0).W, step_in(op, 0).D);
          break;
        }
        case OpType::concat: {
          arity(op, 1, 64, 1, 1);
          check_axis(op);
          const Blob& first = step_in(op, 0);
          int64_t total = 0;
          for (size_t k = 0; k < op.in.size(); ++k) {
            const Blob& b = step_in(op, k);
            if ((op.axis == 1 && b.W != first.W) || (op.axis == 0 && b.D != first.D)) {
              fail(ErrorCode::shape, op.label + ": blob '" + b.name + "' is " + shape_str(b) + ", not concatenable with '" +
                                         first.name + "' " + shape_str(first));
            }
            int64_t len = op.axis == 1 ? b.D : b.W;
            op.piece_start.push_back(total);
            op.piece_len.push_back(len);
            total += len;
          }
          if (op.axis == 1) set_out(op, 0, first.W, total);
          else set_out(op, 0, total, first.D);
          break;
        }
        case OpType::slice: case OpType::split: {
          check_axis(op);
          const OpSpec& s = n().spec.ops[op.spec_index];
          if (op.type == OpType::slice) arity(op, 1, 1, 1, 1);
          else arity(op, 1, 1, 1, 64);
          const Blob& x = step_in(op, 0);
          int64_t extent = op.axis == 1 ? x.D : x.W;
          if (op.type == OpType::slice) {
            if (s.start < 0 || s.end <= s.start || s.end > extent) {
              fail(ErrorCode::shape, op.label + ": slice [" + std::to_string(s.start) + ", " + std::to_string(s.end) +
                                         ") is out of range for '" + x.name + "' " + shape_str(x));
            }
            op.piece_start.push_back(s.start);
            op.piece_len.push_back(s.end - s.start);
          } else {
            std::vector<int64_t> sizes = s.sizes;
            if (sizes.empty()) {
              int64_t parts = static_cast<int64_t>(op.out.size());
              if (extent % parts != 0) {
                fail(ErrorCode::shape, op.label + ": '" + x.name + "' " + shape_str(x) + " does not split into " +
                                           std::to_string(parts) + " equal parts");
              }
              sizes.assign(parts, extent / parts);
            }
            int64_t total = 0;
            for (int64_t v : sizes) {
              if (v < 1) fail(ErrorCode::shape, op.label + ": split sizes must be >= 1");
              op.piece_start.push_back(total);
              op.piece_len.push_back(v);
              total += v;
            }
            if (sizes.size() != op.out.size() || total != extent) {
              fail(ErrorCode::shape, op.label + ": split sizes must give one part per output and sum to " +
                                         std::to_string(extent) + " for '" + x.name + "'");
            }
          }
          for (size_t k = 0; k < op.out.size(); ++k) {
            if (op.axis == 1) set_out(op, k, x.W, op.piece_len[k]);
            else set_out(op, k, op.piece_len[k], x.D);
          }
          break;
        }
        case OpType::lstm_unit: {
          arity(op, 2, 2, 2, 2);
          const Blob& g = step_in(op, 0);
          const Blob& c = step_in(op, 1);
          if (g.W != c.W || g.D != 4 * c.D) {
            fail(ErrorCode::shape, op.label + ": gates '" + g.name + "' " + shape_str(g) + " must be [W, B, 4H] for cell '" +
                                       c.name + "' " + shape_str(c));
          }
          set_out(op, 0, c.W, c.D);
          set_out(op, 1, c.W, c.D);
          break;
        }
        case OpType::gru_unit: {
          arity(op, 3, op.lbr ? 3 : 5, 1, 1);
          const Blob& h = step_in(op, 2);
          if (op.lbr) {
            arity(op, 3, 3, 1, 1);
          } else {
            arity(op, 4, 5, 1, 1);
            const auto& w = param_in(op, 3);
            if (w.size() != 2 || w[0] != h.D || w[1] != h.D) {
              fail(ErrorCode::shape, op.label + ": W_hn '" + n().blobs[op.in[3]].name + "' must be [" + std::to_string(h.D) + ", " +
                                         std::to_string(h.D) + "]");
            }
            if (op.in.size() == 5) {
              const auto& b = param_in(op, 4);
              if (b.size() != 1 || b[0] != h.D) {
                fail(ErrorCode::shape, op.label + ": b_hn '" + n().blobs[op.in[4]].name + "' must be [" + std::to_string(h.D) + "]");
              }
            }
            op.aux_cols = 2 * h.D;
          }
          const Blob& xg = step_in(op, 0);
          const Blob& hg = step_in(op, 1);
          int64_t hg_cols = op.lbr ? 3 : 2;
          if (xg.W != h.W || xg.D != 3 * h.D) {
            fail(ErrorCode::shape, op.label + ": '" + xg.name + "' " + shape_str(xg) + " must be [W, B, 3H] for h_prev '" + h.name +
                                       "' " + shape_str(h));
          }
          if (hg.W != h.W || hg.D != hg_cols * h.D) {
            fail(ErrorCode::shape, op.label + ": '" + hg.name + "' " + shape_str(hg) + " must be [W, B, " + std::to_string(hg_cols) +
                                       "H] for h_prev '" + h.name + "' " + shape_str(h));
          }
          set_out(op, 0, h.W, h.D);
          break;
        }
        case OpType::rms_norm: {
          arity(op, 2, 3, 1, 1);
          const Blob& x = step_in(op, 0);
          for (size_t k = 1; k < op.in.size(); ++k) {
            const auto& p = param_in(op, k);
            if (p.size() != 1 || p[0] != x.D) {
              fail(ErrorCode::shape, op.label + ": '" + n().blobs[op.in[k]].name + "' must be [" + std::to_string(x.D) + "]");
            }
          }
          if (!(op.eps >= 0.f)) fail(ErrorCode::arg, op.label + ": eps must be >= 0");
          op.aux_cols = 1;
          set_out(op, 0, x.W, x.D);
          break;
        }
      }
    }
  }

  void check_axis(const Op& op) {
    if (op.axis != 0 && op.axis != 1) fail(ErrorCode::arg, op.label + ": axis must be 0 (window) or 1 (features)");
  }

  void check_states() {
    for (size_t s = 0; s < n().spec.states.size(); ++s) {
      if (n().state_writer[s] < 0) {
        fail(ErrorCode::arg, "state '" + n().spec.states[s].name + "' is never written: link an op output to it with offset " +
                                 std::to_string(n().spec.states[s].init_steps));
      }
    }
  }

  void mark_recompute() {
    for (const std::string& name : n().spec.recompute) {
      auto it = n().by_name.find(name);
      if (it == n().by_name.end()) fail(ErrorCode::arg, "recompute: unknown blob '" + name + "'");
      Blob& b = n().blobs[it->second];
      if (b.kind != BlobKind::step) fail(ErrorCode::arg, "recompute: blob '" + name + "' is not an op output inside the step");
      Op& op = n().ops[b.producer];
      for (int o : op.out) {
        if (n().blobs[o].kind != BlobKind::step) {
          fail(ErrorCode::arg, "recompute: blob '" + name + "' comes from " + op.label + ", which writes state blob '" +
                                   n().blobs[o].name + "'");
        }
      }
      op.recompute = true;
      n().has_recompute = true;
    }
    for (Op& op : n().ops) if (op.recompute) for (int o : op.out) n().blobs[o].recompute = true;
  }

  void plan_hoisting() {
    auto& N = n();
    for (Blob& b : N.blobs) {
      if (b.kind == BlobKind::input_link && b.W == 1) b.hoisted = true;
      if (b.kind == BlobKind::timestep) b.hoisted = true;
    }
    N.loop_pos.assign(N.ops.size(), -1);
    for (size_t i = 0; i < N.ops.size(); ++i) {
      Op& op = N.ops[i];
      bool ok = !op.recompute && !((op.type == OpType::concat || op.type == OpType::slice || op.type == OpType::split) && op.axis == 0);
      for (int b : op.in) {
        const Blob& bl = N.blobs[b];
        if (bl.kind != BlobKind::param && !bl.hoisted) ok = false;
      }
      for (int b : op.out) if (N.blobs[b].kind != BlobKind::step) ok = false;
      op.hoisted = ok;
      if (ok) {
        for (int b : op.out) N.blobs[b].hoisted = true;
        N.hoisted.push_back(static_cast<int>(i));
      } else {
        N.loop_pos[i] = static_cast<int>(N.loop.size());
        N.loop.push_back(static_cast<int>(i));
      }
    }
  }

  // In-loop fc ops whose input and output are contiguous over the steps get their weight
  // gradients from one GEMM after the loop; every other op that owns parameter gradients
  // accumulates them step by step.
  void plan_param_grads() {
    for (Op& op : n().ops) {
      std::vector<int> params;
      for (int b : op.in) if (n().blobs[b].kind == BlobKind::param) params.push_back(n().blobs[b].ext);
      if (op.type == OpType::fc && !op.hoisted) {
        const Blob& x = n().blobs[op.in[0]];
        const Blob& y = n().blobs[op.out[0]];
        bool x_contig = !x.recompute && !((x.kind == BlobKind::input_link || x.kind == BlobKind::state_read) && x.W != 1);
        op.defer_params = x_contig && !y.recompute;
      }
      if (!op.hoisted && !op.defer_params) op.param_grads = params;
    }
  }

  void check_aliases() {
    std::unordered_map<std::string, int> seen;
    for (const AliasSpec& a : n().spec.aliases) {
      if (!ext_state_.count(a.src)) fail(ErrorCode::arg, "alias '" + a.dst + "': source '" + a.src + "' is not a state");
      if (a.dst.empty() || seen.count(a.dst)) fail(ErrorCode::arg, "alias '" + a.dst + "' is declared twice or unnamed");
      seen[a.dst] = 1;
    }
  }

  // Total work over the critical path of a few steps of the forward task graph (unit cost per
  // op): 1 for a chain, about L for L stacked layers.
  double wavefront_width() {
    const auto& N = n();
    const int64_t T = 8;
    const size_t L = N.loop.size();
    if (L == 0) return 0;
    std::vector<int64_t> finish(T * L, 0);
    int64_t longest = 0;
    for (int64_t t = 0; t < T; ++t) {
      for (size_t j = 0; j < L; ++j) {
        int64_t start = t > 0 ? finish[(t - 1) * L + j] : 0;
        const Op& op = N.ops[N.loop[j]];
        for (int b : op.in) {
          const Blob& bl = N.blobs[b];
          if ((bl.kind == BlobKind::step || bl.kind == BlobKind::state_write) && !bl.hoisted) {
            start = std::max(start, finish[t * L + N.loop_pos[bl.producer]]);
          } else if (bl.kind == BlobKind::state_read) {
            int64_t k = N.spec.states[bl.ext].init_steps;
            for (int64_t s = t + bl.offset; s < t + bl.offset + bl.W; ++s) {
              if (s >= k) start = std::max(start, finish[(s - k) * L + N.loop_pos[N.state_writer[bl.ext]]]);
            }
          }
        }
        finish[t * L + j] = start + 1;
        longest = std::max(longest, start + 1);
      }
    }
    return static_cast<double>(T * L) / static_cast<double>(longest);
  }
};

}  // namespace

std::shared_ptr<const Net> compile(const NetSpec& spec) { return Compiler(spec).run(); }

const NetSpec& spec_of(const Net& net) { return net.spec; }

std::vector<BlobInfo> blob_infos(const Net& net) {
  static const char* kinds[] = {"input_link", "state_read", "state_write", "step", "param", "timestep"};
  std::vector<BlobInfo> out;
  for (const Blob& b : net.blobs) {
    BlobInfo i;
    i.name = b.name;
    i.kind = kinds[static_cast<int>(b.kind)];
    i.window = b.W;
    i.size = b.D;
    i.stored = !b.recompute && b.kind != BlobKind::param && b.kind != BlobKind::input_link;
    i.hoisted = b.hoisted;
    out.push_back(i);
  }
  return out;
}

int64_t alias_slots(const Net& net, size_t i, int64_t T) {
  const AliasSpec& a = net.spec.aliases.at(i);
  int64_t k = 0;
  for (const StateSpec& s : net.spec.states) if (s.name == a.src) k = s.init_steps;
  int64_t total = T + k;
  int64_t first = a.offset >= 0 ? a.offset : total + a.offset;
  if (first < 0 || first >= total) {
    fail(ErrorCode::arg, "alias '" + a.dst + "': offset " + std::to_string(a.offset) + " is outside the " +
                             std::to_string(total) + " slots of state '" + a.src + "'");
  }
  return total - first;
}

bool prefers_wavefront(const Net& net) { return net.wide; }

Executor resolve_executor(const Net& net, Executor e) {
  if (e != Executor::automatic) return e;
  return net.wide && num_threads() > 1 ? Executor::wavefront : Executor::sequential;
}

// ---------------------------------------------------------------------------------------------
// workspace and kernels of one op

class Workspace {
 public:
  int64_t T = 0, B = 0;
  std::vector<int32_t> lens;               // empty: all T
  std::vector<std::vector<float>> seq;     // per state [T + k, B, D]
  std::vector<std::vector<float>> slab;    // per blob: step blobs [T, W, B, D] (or one step)
  std::vector<std::vector<float>> aux;     // per op: [T, W·B, aux_cols] (or one step)
  std::vector<float> ts;                   // [T, B]
  std::vector<int64_t> input_elems;        // per input: floats the caller passed
  std::vector<int> init_ranks;             // per state: 0 (zeros), 1, 2 or 3
  bool masked(int64_t t, int64_t b) const { return !lens.empty() && t >= lens[b]; }
};

int64_t workspace_steps(const Workspace& ws) { return ws.T; }
int64_t workspace_batch(const Workspace& ws) { return ws.B; }
const std::vector<int>& workspace_init_ranks(const Workspace& ws) { return ws.init_ranks; }

WorkspaceSize workspace_size(const Net& net, int64_t T, int64_t B) {
  const double t = static_cast<double>(T), b = static_cast<double>(B);
  double states = 0, slabs = 0, grads = 0, aux = 0, recomputed = 0, packs = 0;
  for (const StateSpec& st : net.spec.states) states += (t + static_cast<double>(st.init_steps)) * b * static_cast<double>(st.size);
  for (const Blob& bl : net.blobs) {
    const double step = static_cast<double>(bl.W) * b * static_cast<double>(bl.D);
    if (bl.kind == BlobKind::step) slabs += (bl.recompute ? 1 : t) * step;
    if (bl.kind == BlobKind::step || bl.kind == BlobKind::timestep) grads += t * step;
    if (bl.recompute) recomputed += step;
  }
  for (const Op& op : net.ops) {
    if (op.aux_cols == 0) continue;
    const double row = static_cast<double>(net.blobs[op.out[0]].W) * b * static_cast<double>(op.aux_cols);
    aux += (op.recompute ? 1 : t) * row;
    if (op.recompute) recomputed += row;
  }
  for (int o : net.loop) {
    const Op& op = net.ops[o];
    if (op.type == OpType::fc) packs += static_cast<double>(net.blobs[op.in[0]].D) * static_cast<double>(net.blobs[op.out[0]].D);
  }
  // The wavefront executor's task lists: a few words per (step, op).
  const double tasks = 8 * t * static_cast<double>(net.loop.size());
  WorkspaceSize s;
  s.forward = states + slabs + aux + t * b + packs + tasks;
  s.backward = states + grads + recomputed + packs + tasks;
  return s;
}

namespace {

// Pointers of one op invocation: `rows` rows (W·B at a step, T·B when hoisted).
struct Call {
  std::vector<const float*> in;
  std::vector<float*> out;
  float* aux = nullptr;
  int64_t rows = 0;
  int64_t B = 0;
  int64_t steps = 1;  // > 1: hoisted call covering this many steps
  std::vector<const float*> dout;
  std::vector<float*> din;
};

struct Packs {
  std::unique_ptr<PackedB> fwd, bwd;
};

int64_t in_cols(const Net& net, const Op& op, size_t k) { return net.blobs[op.in[k]].D; }

void op_forward(const Net& net, const Op& op, const Call& c, const Packs* pk) {
  const int64_t n = c.rows;
  const int64_t D0 = in_cols(net, op, 0);
  switch (op.type) {
    case OpType::fc: {
      const int64_t N = net.blobs[op.out[0]].D;
      float* y = c.out[0];
      bool bias = op.in.size() == 3;
      if (bias) broadcast_rows(y, c.in[2], n, N);
      if (pk && pk->fwd) sgemm_packed(false, n, 1.f, c.in[0], D0, *pk->fwd, bias ? 1.f : 0.f, y, N);
      else sgemm(false, true, n, N, D0, 1.f, c.in[0], D0, c.in[1], D0, bias ? 1.f : 0.f, y, N);
      break;
    }
    case OpType::add: add_forward(c.out[0], c.in[0], c.in[1], 1.f, n * D0); break;
    case OpType::sub: add_forward(c.out[0], c.in[0], c.in[1], -1.f, n * D0); break;
    case OpType::mul: mul_forward(c.out[0], c.in[0], c.in[1], n * D0); break;
    case OpType::sigmoid: unary_forward(Unary::sigmoid, c.out[0], c.in[0], n * D0); break;
    case OpType::tanh: unary_forward(Unary::tanh, c.out[0], c.in[0], n * D0); break;
    case OpType::relu: unary_forward(Unary::relu, c.out[0], c.in[0], n * D0); break;
    case OpType::copy: std::memcpy(c.out[0], c.in[0], sizeof(float) * n * D0); break;
    case OpType::concat: {
      const Blob& y = net.blobs[op.out[0]];
      for (size_t k = 0; k < op.in.size(); ++k) {
        const Blob& x = net.blobs[op.in[k]];
        if (op.axis == 1) move_block(c.out[0], y.D, op.piece_start[k], c.in[k], x.D, 0, n, x.D, false);
        else move_block(c.out[0], 0, op.piece_start[k] * c.B * y.D, c.in[k], 0, 0, 1, x.W * c.B * x.D, false);
      }
      break;
    }
    case OpType::slice: case OpType::split: {
      const Blob& x = net.blobs[op.in[0]];
      for (size_t k = 0; k < op.out.size(); ++k) {
        const Blob& y = net.blobs[op.out[k]];
        if (op.axis == 1) move_block(c.out[k], y.D, 0, c.in[0], x.D, op.piece_start[k], n, y.D, false);
        else move_block(c.out[k], 0, 0, c.in[0], 0, op.piece_start[k] * c.B * x.D, 1, y.W * c.B * y.D, false);
      }
      break;
    }
    case OpType::lstm_unit: {
      const int64_t H = in_cols(net, op, 1);
      lstm_unit_forward(c.out[0], c.out[1], c.in[0], c.in[1], n, H);
      break;
    }
    case OpType::gru_unit: {
      const int64_t H = in_cols(net, op, 2);
      if (op.lbr) gru_unit_forward(c.out[0], c.in[0], c.in[1], c.in[2], n, H);
      else gru_onnx_forward(c.out[0], c.aux, c.in[0], c.in[1], c.in[2], c.in[3], op.in.size() == 5 ? c.in[4] : nullptr, n, H);
      break;
    }
    case OpType::rms_norm:
      rmsnorm_forward(c.out[0], c.aux, c.in[0], c.in[1], op.in.size() == 3 ? c.in[2] : nullptr, n, D0, op.eps);
      break;
  }
}

// Gradients of the op's inputs (+=). with_params: also its parameter gradients (those stored in
// c.din at parameter positions).
void op_backward(const Net& net, const Op& op, const Call& c, const Packs* pk, bool with_params) {
  const int64_t n = c.rows;
  const int64_t D0 = in_cols(net, op, 0);
  switch (op.type) {
    case OpType::fc: {
      const int64_t N = net.blobs[op.out[0]].D;
      const float* dy = c.dout[0];
      if (pk && pk->bwd) sgemm_packed(false, n, 1.f, dy, N, *pk->bwd, 1.f, c.din[0], D0);
      else sgemm(false, false, n, D0, N, 1.f, dy, N, c.in[1], D0, 1.f, c.din[0], D0);
      if (with_params) {
        sgemm(true, false, N, D0, n, 1.f, dy, N, c.in[0], D0, 1.f, c.din[1], D0);
        if (op.in.size() == 3) column_sums(c.din[2], dy, n, N);
      }
      break;
    }
    case OpType::add: case OpType::sub:
      accumulate(c.din[0], c.dout[0], 1.f, n * D0);
      accumulate(c.din[1], c.dout[0], op.type == OpType::add ? 1.f : -1.f, n * D0);
      break;
    case OpType::mul: mul_backward(c.din[0], c.din[1], c.dout[0], c.in[0], c.in[1], n * D0); break;
    case OpType::sigmoid: unary_backward(Unary::sigmoid, c.din[0], c.dout[0], c.out[0], n * D0); break;
    case OpType::tanh: unary_backward(Unary::tanh, c.din[0], c.dout[0], c.out[0], n * D0); break;
    case OpType::relu: unary_backward(Unary::relu, c.din[0], c.dout[0], c.out[0], n * D0); break;
    case OpType::copy: accumulate(c.din[0], c.dout[0], 1.f, n * D0); break;
    case OpType::concat: {
      const Blob& y = net.blobs[op.out[0]];
      for (size_t k = 0; k < op.in.size(); ++k) {
        const Blob& x = net.blobs[op.in[k]];
        if (op.axis == 1) move_block(c.din[k], x.D, 0, c.dout[0], y.D, op.piece_start[k], n, x.D, true);
        else move_block(c.din[k], 0, 0, c.dout[0], 0, op.piece_start[k] * c.B * y.D, 1, x.W * c.B * x.D, true);
      }
      break;
    }
    case OpType::slice: case OpType::split: {
      const Blob& x = net.blobs[op.in[0]];
      for (size_t k = 0; k < op.out.size(); ++k) {
        const Blob& y = net.blobs[op.out[k]];
        if (op.axis == 1) move_block(c.din[0], x.D, op.piece_start[k], c.dout[k], y.D, 0, n, y.D, true);
        else move_block(c.din[0], 0, op.piece_start[k] * c.B * x.D, c.dout[k], 0, 0, 1, y.W * c.B * y.D, true);
      }
      break;
    }
    case OpType::lstm_unit: {
      const int64_t H = in_cols(net, op, 1);
      lstm_unit_backward(c.din[0], c.din[1], c.dout[0], c.dout[1], c.in[0], c.in[1], c.out[1], n, H);
      break;
    }
    case OpType::gru_unit: {
      const int64_t H = in_cols(net, op, 2);
      if (op.lbr) {
        gru_unit_backward(c.din[0], c.din[1], c.din[2], c.dout[0], c.in[0], c.in[1], c.in[2], n, H);
      } else {
        // The op owns W_hn / b_hn gradients; with_params is always true for it (never deferred).
        gru_onnx_backward(c.din[0], c.din[1], c.din[2], c.din[3], op.in.size() == 5 ? c.din[4] : nullptr, c.dout[0], c.aux,
                          c.in[0], c.in[1], c.in[2], c.in[3], n, H);
      }
      break;
    }
    case OpType::rms_norm: {
      std::vector<float> dx(n * D0);
      rmsnorm_backward(dx.data(), c.din[1], op.in.size() == 3 ? c.din[2] : nullptr, c.dout[0], c.in[0], c.in[1], c.aux, n, D0,
                       true);
      accumulate(c.din[0], dx.data(), 1.f, n * D0);
      break;
    }
  }
}

// Runs tasks 0..n-1 whose dependencies are given as predecessor lists, on up to `threads` pool
// threads; a ready task with the lowest id runs first (ids follow the sequential order, so the
// oldest step, the critical path, goes first).
void run_dag(const std::vector<std::vector<int32_t>>& preds, const std::function<void(int32_t)>& task) {
  const int32_t n = static_cast<int32_t>(preds.size());
  std::vector<std::vector<int32_t>> succ(n);
  std::vector<int32_t> pending(n);
  for (int32_t i = 0; i < n; ++i) {
    pending[i] = static_cast<int32_t>(preds[i].size());
    for (int32_t p : preds[i]) succ[p].push_back(i);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>> ready;
  for (int32_t i = 0; i < n; ++i) if (pending[i] == 0) ready.push(i);
  int32_t done = 0;
  std::exception_ptr error;
  parallel_run(0, [&](int, int) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return !ready.empty() || done == n || error; });
      if (done == n || error) return;
      int32_t id = ready.top();
      ready.pop();
      lock.unlock();
      try {
        task(id);
      } catch (...) {
        lock.lock();
        if (!error) error = std::current_exception();
        cv.notify_all();
        return;
      }
      lock.lock();
      ++done;
      for (int32_t s : succ[id]) if (--pending[s] == 0) ready.push(s);
      cv.notify_all();
    }
  });
  if (error) std::rethrow_exception(error);
}

void add_pred(std::vector<int32_t>& preds, int32_t p) {
  if (std::find(preds.begin(), preds.end(), p) == preds.end()) preds.push_back(p);
}

// ---------------------------------------------------------------------------------------------
// forward

class ForwardRun {
 public:
  ForwardRun(const Net& net, const ForwardArgs& a, Workspace& ws) : net_(net), a_(a), ws_(ws) {}

  void run() {
    const int64_t T = ws_.T, B = ws_.B;
    const auto& S = net_.spec;
    for (size_t s = 0; s < S.states.size(); ++s) init_state(s);
    ws_.ts.resize(T * B);
    for (int64_t t = 0; t < T; ++t) std::fill(ws_.ts.begin() + t * B, ws_.ts.begin() + (t + 1) * B, static_cast<float>(t));
    for (size_t b = 0; b < net_.blobs.size(); ++b) {
      const Blob& bl = net_.blobs[b];
      if (bl.kind == BlobKind::step) ws_.slab[b].assign((bl.recompute ? 1 : T) * bl.W * B * bl.D, 0.f);
    }
    for (size_t o = 0; o < net_.ops.size(); ++o) {
      const Op& op = net_.ops[o];
      if (op.aux_cols == 0) continue;
      int64_t W = net_.blobs[op.out[0]].W;
      ws_.aux[o].assign((op.recompute ? 1 : T) * W * B * op.aux_cols, 0.f);
    }
    packs_.resize(net_.ops.size());
    for (int o : net_.loop) {
      const Op& op = net_.ops[o];
      if (op.type == OpType::fc) {
        int64_t K = in_cols(net_, op, 0), N = net_.blobs[op.out[0]].D;
        packs_[o].fwd.reset(new PackedB(true, K, N, a_.params[net_.blobs[op.in[1]].ext], K));
      }
    }
    for (int o : net_.hoisted) op_forward(net_, net_.ops[o], call(o, 0, T), nullptr);
    const size_t L = net_.loop.size();
    if (resolve_executor(net_, a_.executor) == Executor::wavefront) {
      std::vector<std::vector<int32_t>> preds(T * L);
      for (int64_t t = 0; t < T; ++t) {
        for (size_t j = 0; j < L; ++j) deps(t, j, preds[t * L + j]);
      }
      run_dag(preds, [&](int32_t id) { step_op(id / L, net_.loop[id % L]); });
    } else {
      for (int64_t t = 0; t < T; ++t) for (int o : net_.loop) step_op(t, o);
    }
    write_aliases();
  }

 private:
  const Net& net_;
  const ForwardArgs& a_;
  Workspace& ws_;
  std::vector<Packs> packs_;

  void init_state(size_t s) {
    const StateSpec& st = net_.spec.states[s];
    const int64_t B = ws_.B, D = st.size, k = st.init_steps;
    auto& seq = ws_.seq[s];
    seq.assign((ws_.T + k) * B * D, 0.f);
    const float* init = a_.inits[s];
    if (!init) return;
    for (int64_t slot = 0; slot < k; ++slot) {
      for (int64_t b = 0; b < B; ++b) {
        const float* src = a_.init_ranks[s] == 1 ? init : a_.init_ranks[s] == 2 ? init + b * D : init + (slot * B + b) * D;
        std::copy(src, src + D, seq.data() + (slot * B + b) * D);
      }
    }
  }

  float* ptr(int b, int64_t t) {
    const Blob& bl = net_.blobs[b];
    const int64_t B = ws_.B;
    switch (bl.kind) {
      case BlobKind::input_link:
        return const_cast<float*>(a_.inputs[bl.ext]) + (t + bl.offset) * B * bl.D;
      case BlobKind::state_read:
        return ws_.seq[bl.ext].data() + (t + bl.offset) * B * bl.D;
      case BlobKind::state_write:
        return ws_.seq[bl.ext].data() + (t + bl.offset) * B * bl.D;
      case BlobKind::param:
        return const_cast<float*>(a_.params[bl.ext]);
      case BlobKind::timestep:
        return ws_.ts.data() + t * B;
      case BlobKind::step:
      default:
        return ws_.slab[b].data() + (bl.recompute ? 0 : t * bl.W * B * bl.D);
    }
  }

  Call call(int o, int64_t t, int64_t steps) {
    const Op& op = net_.ops[o];
    Call c;
    c.B = ws_.B;
    c.steps = steps;
    for (int b : op.in) c.in.push_back(ptr(b, t));
    for (int b : op.out) c.out.push_back(ptr(b, t));
    int64_t W = net_.blobs[op.out[0]].W;
    c.rows = steps * W * ws_.B;
    if (op.aux_cols) c.aux = ws_.aux[o].data() + (op.recompute ? 0 : t * W * ws_.B * op.aux_cols);
    return c;
  }

  void step_op(int64_t t, int o) {
    const Op& op = net_.ops[o];
    op_forward(net_, op, call(o, t, 1), &packs_[o]);
    if (ws_.lens.empty()) return;
    // Rows past their length keep the state they had.
    for (int b : op.out) {
      const Blob& bl = net_.blobs[b];
      if (bl.kind != BlobKind::state_write) continue;
      float* cur = ptr(b, t);
      const float* prev = cur - ws_.B * bl.D;
      for (int64_t r = 0; r < ws_.B; ++r) {
        if (ws_.masked(t, r)) std::copy(prev + r * bl.D, prev + (r + 1) * bl.D, cur + r * bl.D);
      }
    }
  }

  void deps(int64_t t, size_t j, std::vector<int32_t>& preds) {
    const size_t L = net_.loop.size();
    const Op& op = net_.ops[net_.loop[j]];
    auto id = [&](int64_t s, int o) { return static_cast<int32_t>(s * L + net_.loop_pos[o]); };
    for (int b : op.in) {
      const Blob& bl = net_.blobs[b];
      if ((bl.kind == BlobKind::step || bl.kind == BlobKind::state_write) && !bl.hoisted) {
        add_pred(preds, id(t, bl.producer));
      } else if (bl.kind == BlobKind::state_read) {
        int64_t k = net_.spec.states[bl.ext].init_steps;
        for (int64_t s = t + bl.offset; s < t + bl.offset + bl.W; ++s) {
          if (s >= k) add_pred(preds, id(s - k, net_.state_writer[bl.ext]));
        }
      }
    }
    if (t > 0) add_pred(preds, id(t - 1, net_.loop[j]));
    if (op.recompute && t > 0) {
      for (int b : op.out) for (int c : net_.blobs[b].consumers) add_pred(preds, id(t - 1, c));
    }
  }

  void write_aliases() {
    const int64_t T = ws_.T, B = ws_.B;
    for (size_t i = 0; i < net_.spec.aliases.size(); ++i) {
      const AliasSpec& al = net_.spec.aliases[i];
      if (!a_.alias_out[i]) continue;
      int s = 0;
      while (net_.spec.states[s].name != al.src) ++s;
      const int64_t D = net_.spec.states[s].size, k = net_.spec.states[s].init_steps;
      const int64_t slots = alias_slots(net_, i, T), first = T + k - slots;
      std::memcpy(a_.alias_out[i], ws_.seq[s].data() + first * B * D, sizeof(float) * slots * B * D);
      if (al.offset < 0 || ws_.lens.empty()) continue;
      for (int64_t slot = std::max(first, k); slot < T + k; ++slot) {
        for (int64_t r = 0; r < B; ++r) {
          if (ws_.masked(slot - k, r)) std::fill_n(a_.alias_out[i] + ((slot - first) * B + r) * D, D, 0.f);
        }
      }
    }
  }
};

}  // namespace

std::shared_ptr<Workspace> forward(const Net& net, const ForwardArgs& a) {
  DenormalGuard denormal_guard;  // FTZ/DAZ for this call, the caller's mode restored (denormals.h)
  const auto& S = net.spec;
  if (a.T < 1 || a.B < 1) fail(ErrorCode::shape, "step net: T and B must be >= 1");
  if (a.inputs.size() != S.inputs.size() || a.input_steps.size() != S.inputs.size() || a.inits.size() != S.states.size() ||
      a.init_ranks.size() != S.states.size() || a.params.size() != S.params.size() || a.alias_out.size() != S.aliases.size()) {
    fail(ErrorCode::arg, "step net: argument lists do not match the net");
  }
  for (const Blob& b : net.blobs) {
    if (b.kind == BlobKind::input_link && a.input_steps[b.ext] < a.T + b.offset + b.W - 1) {
      fail(ErrorCode::shape, "link '" + b.name + "' is out of range: input '" + S.inputs[b.ext].name + "' has " +
                                 std::to_string(a.input_steps[b.ext]) + " steps, the link reads up to step " +
                                 std::to_string(a.T + b.offset + b.W - 2));
    }
  }
  for (size_t i = 0; i < S.inputs.size(); ++i) if (!a.inputs[i]) fail(ErrorCode::arg, "input '" + S.inputs[i].name + "' is missing");
  for (size_t i = 0; i < S.params.size(); ++i) if (!a.params[i]) fail(ErrorCode::arg, "param '" + S.params[i].name + "' is missing");
  for (size_t s = 0; s < S.states.size(); ++s) {
    int r = a.init_ranks[s];
    if (a.inits[s] && (r < 1 || r > 3)) fail(ErrorCode::shape, "initial value of state '" + S.states[s].name + "' must have rank 1, 2 or 3");
  }
  for (size_t i = 0; i < S.aliases.size(); ++i) alias_slots(net, i, a.T);
  auto ws = std::make_shared<Workspace>();
  ws->T = a.T;
  ws->B = a.B;
  if (a.seq_lengths) {
    ws->lens.assign(a.seq_lengths, a.seq_lengths + a.B);
    for (int64_t b = 0; b < a.B; ++b) {
      if (ws->lens[b] < 0 || ws->lens[b] > a.T) {
        fail(ErrorCode::arg, "seqLengths[" + std::to_string(b) + "] = " + std::to_string(ws->lens[b]) + " is outside 0.." + std::to_string(a.T));
      }
    }
  }
  ws->seq.resize(S.states.size());
  ws->slab.resize(net.blobs.size());
  ws->aux.resize(net.ops.size());
  ws->init_ranks.resize(S.states.size());
  for (size_t s = 0; s < S.states.size(); ++s) ws->init_ranks[s] = a.inits[s] ? a.init_ranks[s] : 0;
  for (size_t i = 0; i < S.inputs.size(); ++i) ws->input_elems.push_back(a.input_steps[i] * a.B * S.inputs[i].size);
  ForwardRun(net, a, *ws).run();
  return ws;
}

// ---------------------------------------------------------------------------------------------
// backward

namespace {

class BackwardRun {
 public:
  BackwardRun(const Net& net, const Workspace& ws, const BackwardArgs& a) : net_(net), ws_(ws), a_(a) {}

  void run() {
    const int64_t T = ws_.T, B = ws_.B;
    const auto& S = net_.spec;
    dseq_.resize(S.states.size());
    for (size_t s = 0; s < S.states.size(); ++s) dseq_[s].assign((T + S.states[s].init_steps) * B * S.states[s].size, 0.f);
    gslab_.resize(net_.blobs.size());
    recomp_.resize(net_.blobs.size());
    for (size_t b = 0; b < net_.blobs.size(); ++b) {
      const Blob& bl = net_.blobs[b];
      if (bl.kind == BlobKind::step || bl.kind == BlobKind::timestep) gslab_[b].assign(T * bl.W * B * bl.D, 0.f);
      if (bl.recompute) recomp_[b].assign(bl.W * B * bl.D, 0.f);
    }
    recomp_aux_.resize(net_.ops.size());
    for (size_t o = 0; o < net_.ops.size(); ++o) {
      const Op& op = net_.ops[o];
      if (op.recompute && op.aux_cols) recomp_aux_[o].assign(net_.blobs[op.out[0]].W * B * op.aux_cols, 0.f);
    }
    for (size_t i = 0; i < S.inputs.size(); ++i) {
      std::fill_n(a_.d_inputs[i], ws_.input_elems[i], 0.f);
    }
    for (size_t p = 0; p < S.params.size(); ++p) std::fill_n(a_.d_params[p], param_len(p), 0.f);
    add_alias_grads();
    packs_.resize(net_.ops.size());
    for (int o : net_.loop) {
      const Op& op = net_.ops[o];
      if (op.type == OpType::fc) {
        int64_t K = in_cols(net_, op, 0), N = net_.blobs[op.out[0]].D;
        packs_[o].bwd.reset(new PackedB(false, N, K, a_.params[net_.blobs[op.in[1]].ext], K));
      }
    }
    const size_t L = net_.loop.size();
    if (resolve_executor(net_, a_.executor) == Executor::wavefront) {
      // Column 0 of each step recomputes that step's recompute blobs; columns 1..L are the loop
      // ops in reverse order. Ids grow in the sequential backward order.
      const size_t C = L + 1;
      std::vector<std::vector<int32_t>> preds(T * C);
      for (int64_t t = T - 1; t >= 0; --t) {
        for (size_t j = 0; j < L; ++j) deps(t, j, preds[node(t, j)]);
        if (net_.has_recompute) {
          int32_t r = static_cast<int32_t>((T - 1 - t) * C);
          for (size_t j = 0; j < L; ++j) add_pred(preds[node(t, j)], r);
          if (t + 1 < T) for (size_t c = 0; c < C; ++c) add_pred(preds[r], static_cast<int32_t>((T - 2 - t) * C + c));
        }
      }
      chain_resources(preds);
      run_dag(preds, [&](int32_t id) {
        int64_t t = T - 1 - id / static_cast<int32_t>(C);
        size_t col = id % C;
        if (col == 0) recompute(t);
        else step_op(t, net_.loop[L - col]);
      });
    } else {
      for (int64_t t = T - 1; t >= 0; --t) {
        recompute(t);
        for (size_t j = L; j-- > 0;) step_op(t, net_.loop[j]);
      }
    }
    for (int o : net_.loop) {
      const Op& op = net_.ops[o];
      if (op.defer_params) deferred_params(o);
    }
    for (size_t k = net_.hoisted.size(); k-- > 0;) {
      int o = net_.hoisted[k];
      op_backward(net_, net_.ops[o], call(o, 0, T), nullptr, true);
    }
    init_grads();
  }

 private:
  const Net& net_;
  const Workspace& ws_;
  const BackwardArgs& a_;
  std::vector<std::vector<float>> dseq_, gslab_, recomp_, recomp_aux_;
  std::vector<Packs> packs_;

  int64_t param_len(size_t p) const {
    int64_t n = 1;
    for (int64_t d : net_.spec.params[p].shape) n *= d;
    return n;
  }

  int32_t node(int64_t t, size_t j) const {
    const size_t L = net_.loop.size();
    return static_cast<int32_t>((ws_.T - 1 - t) * (L + 1) + 1 + (L - 1 - j));
  }

  const float* val(int b, int64_t t) const {
    const Blob& bl = net_.blobs[b];
    const int64_t B = ws_.B;
    switch (bl.kind) {
      case BlobKind::input_link: return a_.inputs[bl.ext] + (t + bl.offset) * B * bl.D;
      case BlobKind::state_read: case BlobKind::state_write: return ws_.seq[bl.ext].data() + (t + bl.offset) * B * bl.D;
      case BlobKind::param: return a_.params[bl.ext];
      case BlobKind::timestep: return ws_.ts.data() + t * B;
      case BlobKind::step: default:
        if (bl.recompute) return recomp_[b].data();
        return ws_.slab[b].data() + t * bl.W * B * bl.D;
    }
  }

  float* grad(int b, int64_t t) {
    const Blob& bl = net_.blobs[b];
    const int64_t B = ws_.B;
    switch (bl.kind) {
      case BlobKind::input_link: return a_.d_inputs[bl.ext] + (t + bl.offset) * B * bl.D;
      case BlobKind::state_read: case BlobKind::state_write: return dseq_[bl.ext].data() + (t + bl.offset) * B * bl.D;
      case BlobKind::param: return a_.d_params[bl.ext];
      case BlobKind::timestep: case BlobKind::step: default:
        return gslab_[b].data() + t * bl.W * B * bl.D;
    }
  }

  Call call(int o, int64_t t, int64_t steps) {
    const Op& op = net_.ops[o];
    Call c;
    c.B = ws_.B;
    c.steps = steps;
    for (int b : op.in) {
      c.in.push_back(val(b, t));
      c.din.push_back(grad(b, t));
    }
    for (int b : op.out) {
      c.out.push_back(const_cast<float*>(val(b, t)));
      c.dout.push_back(grad(b, t));
    }
    int64_t W = net_.blobs[op.out[0]].W;
    c.rows = steps * W * ws_.B;
    if (op.aux_cols) {
      if (op.recompute) c.aux = recomp_aux_[o].data();
      else c.aux = const_cast<float*>(ws_.aux[o].data()) + t * W * ws_.B * op.aux_cols;
    }
    return c;
  }

  void recompute(int64_t t) {
    if (!net_.has_recompute) return;
    // Without packed weights: the backward packs only the transposes its own GEMMs use.
    for (int o : net_.loop) if (net_.ops[o].recompute) op_forward(net_, net_.ops[o], call(o, t, 1), nullptr);
  }

  void step_op(int64_t t, int o) {
    const Op& op = net_.ops[o];
    if (!ws_.lens.empty()) {
      // Rows past their length copied the previous slot forward: their gradient flows back to
      // it untouched, and the step itself sees none.
      for (int b : op.out) {
        const Blob& bl = net_.blobs[b];
        if (bl.kind != BlobKind::state_write) continue;
        float* cur = grad(b, t);
        float* prev = cur - ws_.B * bl.D;
        for (int64_t r = 0; r < ws_.B; ++r) {
          if (!ws_.masked(t, r)) continue;
          for (int64_t j = 0; j < bl.D; ++j) {
            prev[r * bl.D + j] += cur[r * bl.D + j];
            cur[r * bl.D + j] = 0.f;
          }
        }
      }
    }
    op_backward(net_, op, call(o, t, 1), &packs_[o], !op.defer_params);
  }

  void deferred_params(int o) {
    const Op& op = net_.ops[o];
    const int64_t T = ws_.T;
    Call c = call(o, 0, T);
    const int64_t K = in_cols(net_, op, 0), N = net_.blobs[op.out[0]].D;
    sgemm(true, false, N, K, c.rows, 1.f, c.dout[0], N, c.in[0], K, 1.f, c.din[1], K);
    if (op.in.size() == 3) column_sums(c.din[2], c.dout[0], c.rows, N);
  }

  void deps(int64_t t, size_t j, std::vector<int32_t>& preds) {
    const Op& op = net_.ops[net_.loop[j]];
    for (int b : op.out) {
      const Blob& bl = net_.blobs[b];
      for (int c : bl.consumers) if (!net_.ops[c].hoisted) add_pred(preds, node(t, net_.loop_pos[c]));
      if (bl.kind != BlobKind::state_write) continue;
      const int64_t k = net_.spec.states[bl.ext].init_steps;
      for (const Blob& rb : net_.blobs) {
        if (rb.kind != BlobKind::state_read || rb.ext != bl.ext) continue;
        for (int64_t u = t + k - rb.offset - rb.W + 1; u <= t + k - rb.offset; ++u) {
          if (u <= t || u >= ws_.T) continue;
          for (int c : rb.consumers) add_pred(preds, node(u, net_.loop_pos[c]));
        }
      }
    }
    if (t + 1 < ws_.T) add_pred(preds, node(t + 1, j));
  }

  // Tasks that add into the same gradient memory run in the sequential order: per state, per
  // input, per parameter accumulated inside the loop, and per step blob with several consumers.
  void chain_resources(std::vector<std::vector<int32_t>>& preds) {
    const auto& S = net_.spec;
    const size_t L = net_.loop.size();
    const size_t nres = S.states.size() + S.inputs.size() + S.params.size() + net_.blobs.size();
    std::vector<std::vector<size_t>> touching(L);
    for (size_t j = 0; j < L; ++j) {
      const Op& op = net_.ops[net_.loop[j]];
      auto& res = touching[j];
      auto touch = [&](int b) {
        const Blob& bl = net_.blobs[b];
        if (bl.kind == BlobKind::state_read || bl.kind == BlobKind::state_write) res.push_back(bl.ext);
        else if (bl.kind == BlobKind::input_link) res.push_back(S.states.size() + bl.ext);
        else if (bl.kind == BlobKind::step || bl.kind == BlobKind::timestep) {
          size_t inloop = 0;
          for (int c : bl.consumers) if (!net_.ops[c].hoisted) ++inloop;
          if (inloop > 1) res.push_back(S.states.size() + S.inputs.size() + S.params.size() + b);
        }
      };
      for (int b : op.in) touch(b);
      for (int b : op.out) touch(b);
      for (int p : op.param_grads) res.push_back(S.states.size() + S.inputs.size() + p);
    }
    std::vector<int32_t> last(nres, -1);
    for (int64_t t = ws_.T - 1; t >= 0; --t) {
      for (size_t j = L; j-- > 0;) {
        int32_t id = node(t, j);
        for (size_t r : touching[j]) {
          if (last[r] >= 0 && last[r] != id) add_pred(preds[id], last[r]);
          last[r] = id;
        }
      }
    }
  }

  void add_alias_grads() {
    const int64_t T = ws_.T, B = ws_.B;
    for (size_t i = 0; i < net_.spec.aliases.size(); ++i) {
      const float* g = a_.alias_grads[i];
      if (!g) continue;
      const AliasSpec& al = net_.spec.aliases[i];
      int s = 0;
      while (net_.spec.states[s].name != al.src) ++s;
      const int64_t D = net_.spec.states[s].size, k = net_.spec.states[s].init_steps;
      const int64_t slots = alias_slots(net_, i, T), first = T + k - slots;
      for (int64_t slot = first; slot < T + k; ++slot) {
        for (int64_t r = 0; r < B; ++r) {
          // A per-step alias reads zero past a row's length, so no gradient flows from there.
          if (al.offset >= 0 && slot >= k && ws_.masked(slot - k, r)) continue;
          float* dst = dseq_[s].data() + (slot * B + r) * D;
          const float* src = g + ((slot - first) * B + r) * D;
          for (int64_t j = 0; j < D; ++j) dst[j] += src[j];
        }
      }
    }
  }

  void init_grads() {
    const int64_t B = ws_.B;
    for (size_t s = 0; s < net_.spec.states.size(); ++s) {
      float* d = a_.d_inits[s];
      if (!d) continue;
      const int64_t D = net_.spec.states[s].size, k = net_.spec.states[s].init_steps;
      const int rank = ws_.init_ranks[s];
      if (rank == 0) continue;
      const float* g = dseq_[s].data();
      if (rank == 3) {
        std::memcpy(d, g, sizeof(float) * k * B * D);
        continue;
      }
      std::vector<double> acc((rank == 1 ? 1 : B) * D, 0.0);
      for (int64_t slot = 0; slot < k; ++slot) {
        for (int64_t r = 0; r < B; ++r) {
          double* dst = acc.data() + (rank == 1 ? 0 : r * D);
          const float* src = g + (slot * B + r) * D;
          for (int64_t j = 0; j < D; ++j) dst[j] += src[j];
        }
      }
      for (size_t j = 0; j < acc.size(); ++j) d[j] = static_cast<float>(acc[j]);
    }
  }
};

}  // namespace

void backward(const Net& net, const Workspace& ws, const BackwardArgs& a) {
  DenormalGuard denormal_guard;  // FTZ/DAZ for this call, the caller's mode restored (denormals.h)
  const auto& S = net.spec;
  if (a.inputs.size() != S.inputs.size() || a.params.size() != S.params.size() || a.alias_grads.size() != S.aliases.size() ||
      a.d_inputs.size() != S.inputs.size() || a.d_inits.size() != S.states.size() || a.d_params.size() != S.params.size()) {
    fail(ErrorCode::arg, "step net backward: argument lists do not match the net");
  }
  for (size_t i = 0; i < S.inputs.size(); ++i) {
    if (!a.inputs[i] || !a.d_inputs[i]) fail(ErrorCode::arg, "input '" + S.inputs[i].name + "' or its gradient is missing");
  }
  for (size_t p = 0; p < S.params.size(); ++p) {
    if (!a.params[p] || !a.d_params[p]) fail(ErrorCode::arg, "param '" + S.params[p].name + "' or its gradient is missing");
  }
  BackwardRun(net, ws, a).run();
}

void fetch(const Net& net, const Workspace& ws, const std::string& name, int64_t step, float* out) {
  auto it = net.by_name.find(name);
  if (it == net.by_name.end()) fail(ErrorCode::arg, "fetchBlob: unknown blob '" + name + "'");
  const Blob& b = net.blobs[it->second];
  if (step < 0 || step >= ws.T) {
    fail(ErrorCode::arg, "fetchBlob: step " + std::to_string(step) + " is outside 0.." + std::to_string(ws.T - 1));
  }
  const int64_t n = b.W * ws.B * b.D;
  switch (b.kind) {
    case BlobKind::state_read: case BlobKind::state_write:
      std::memcpy(out, ws.seq[b.ext].data() + (step + b.offset) * ws.B * b.D, sizeof(float) * n);
      return;
    case BlobKind::timestep:
      std::memcpy(out, ws.ts.data() + step * ws.B, sizeof(float) * n);
      return;
    case BlobKind::step:
      if (b.recompute) fail(ErrorCode::arg, "fetchBlob: blob '" + name + "' is recomputed on backward, not stored per step");
      std::memcpy(out, ws.slab[it->second].data() + step * n, sizeof(float) * n);
      return;
    default:
      fail(ErrorCode::arg, "fetchBlob: blob '" + name + "' is a " +
                               (b.kind == BlobKind::param ? std::string("parameter") : std::string("view of an input sequence")) +
                               "; read it from its tensor");
  }
}

}  // namespace stepnet
}  // namespace rnnkit
