// Step-net executor (contract: stepnet.h): the workspace of a forward, one op's forward and
// backward kernels, the forward and backward runs (sequential or wavefront, over run_dag) and the
// blob fetcher. The compiled Net is stepnet_net.h; the compiler stepnet_compile.cc.
#include <algorithm>
#include <cstring>
#include <exception>
#include <functional>
#include <unordered_map>

#include "denormals.h"
#include "errors.h"
#include "parallel.h"
#include "rmsnorm.h"
#include "sgemm.h"
#include "stepnet_kernels.h"
#include "stepnet_net.h"

namespace rnnkit {
namespace stepnet {

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
  std::vector<CachedFloats> dseq_, gslab_, recomp_, recomp_aux_;
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

