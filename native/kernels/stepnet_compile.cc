// Step-net compiler (contract: stepnet.h): names, shapes, links, hoisting, recompute and the memory
// plan; the executor choice. The compiled Net is stepnet_net.h.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "errors.h"
#include "parallel.h"
#include "stepnet_net.h"

namespace rnnkit {
namespace stepnet {
namespace {

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

}  // namespace stepnet
}  // namespace rnnkit
