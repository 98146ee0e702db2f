// Peer timing program for bench/families/recurrent.js: oneDNN's RNN primitives (lstm, gru = the
// ONNX default form, lbr_gru = linear-before-reset, rnn = vanilla tanh) on one shape, timed as
// forward inference, forward training and backward, one primitive per layer (oneDNN stacks layers
// in one primitive only when every layer has the same input width, which a bidirectional stack
// with I = H does not). Prints one JSON line: per-call ms samples and the training workspace size.
// Compiled by the bench at run time against the installed headers (libdnnl-dev); never part of
// the library. Weights use format_tag::any and are reordered once before timing, as a framework
// would keep them.
// Usage: onednn_rnn <lstm|gru|lbr_gru|rnn> T B I H L D repeats min_ms
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <dnnl.hpp>

using namespace dnnl;
using dims = memory::dims;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

struct Layer {
  primitive inf, fwd, bwd;
  std::unordered_map<int, memory> inf_args, fwd_args, bwd_args;
  size_t workspace = 0;
};

memory filled(const memory::desc& md, const engine& eng, float v) {
  memory m(md, eng);
  float* p = static_cast<float*>(m.get_data_handle());
  size_t n = md.get_size() / sizeof(float);
  for (size_t i = 0; i < n; ++i) p[i] = v * static_cast<float>((i * 2654435761u) % 1000) / 1000.f;
  return m;
}

// A plain-layout buffer reordered into the layout the primitive chose.
memory as_layout(const memory::desc& want, const memory& plain, const engine& eng, stream& s) {
  if (want == plain.get_desc()) return plain;
  memory m(want, eng);
  reorder(plain, m).execute(s, const_cast<memory&>(plain), m);
  s.wait();
  return m;
}

Layer make_layer(const std::string& mode, int64_t T, int64_t B, int64_t In, int64_t H, int64_t D,
                 const engine& eng, stream& s) {
  const int64_t G = mode == "lstm" ? 4 : mode == "rnn" ? 1 : 3;
  const int64_t GB = mode == "lbr_gru" ? G + 1 : G;
  const rnn_direction dir =
      D == 2 ? rnn_direction::bidirectional_concat : rnn_direction::unidirectional_left2right;
  memory::desc src_md({T, B, In}, dt::f32, tag::tnc);
  memory::desc dst_md({T, B, D * H}, dt::f32, tag::tnc);
  memory::desc wl_any({1, D, In, G, H}, dt::f32, tag::any);
  memory::desc wi_any({1, D, H, G, H}, dt::f32, tag::any);
  memory::desc wl_plain({1, D, In, G, H}, dt::f32, tag::ldigo);
  memory::desc wi_plain({1, D, H, G, H}, dt::f32, tag::ldigo);
  memory::desc bias_md({1, D, GB, H}, dt::f32, tag::ldgo);
  memory::desc none;

  Layer L;
  memory src = filled(src_md, eng, 1.f), dst(dst_md, eng), bias = filled(bias_md, eng, 0.1f);
  memory wl_p = filled(wl_plain, eng, 0.05f), wi_p = filled(wi_plain, eng, 0.05f);
  memory ddst = filled(dst_md, eng, 1.f), dsrc(src_md, eng);
  memory dbias(bias_md, eng);

  auto build = [&](auto tfwd, auto tbwd, auto make_fdesc, auto make_bdesc) {
    using F = decltype(tfwd);
    using Bk = decltype(tbwd);
    typename F::primitive_desc inf_pd(make_fdesc(prop_kind::forward_inference), eng);
    typename F::primitive_desc fwd_pd(make_fdesc(prop_kind::forward_training), eng);
    typename Bk::primitive_desc bwd_pd(make_bdesc(), eng, fwd_pd);
    memory wl_i = as_layout(inf_pd.weights_layer_desc(), wl_p, eng, s);
    memory wi_i = as_layout(inf_pd.weights_iter_desc(), wi_p, eng, s);
    memory wl_f = as_layout(fwd_pd.weights_layer_desc(), wl_p, eng, s);
    memory wi_f = as_layout(fwd_pd.weights_iter_desc(), wi_p, eng, s);
    memory wl_b = as_layout(bwd_pd.weights_layer_desc(), wl_p, eng, s);
    memory wi_b = as_layout(bwd_pd.weights_iter_desc(), wi_p, eng, s);
    memory ws(fwd_pd.workspace_desc(), eng);
    L.workspace = fwd_pd.workspace_desc().get_size();
    memory dwl(bwd_pd.diff_weights_layer_desc(), eng), dwi(bwd_pd.diff_weights_iter_desc(), eng);
    L.inf = F(inf_pd);
    L.fwd = F(fwd_pd);
    L.bwd = Bk(bwd_pd);
    L.inf_args = {{DNNL_ARG_SRC_LAYER, src}, {DNNL_ARG_WEIGHTS_LAYER, wl_i},
                  {DNNL_ARG_WEIGHTS_ITER, wi_i}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST_LAYER, dst}};
    L.fwd_args = {{DNNL_ARG_SRC_LAYER, src}, {DNNL_ARG_WEIGHTS_LAYER, wl_f},
                  {DNNL_ARG_WEIGHTS_ITER, wi_f}, {DNNL_ARG_BIAS, bias},
                  {DNNL_ARG_DST_LAYER, dst}, {DNNL_ARG_WORKSPACE, ws}};
    L.bwd_args = {{DNNL_ARG_SRC_LAYER, src},         {DNNL_ARG_WEIGHTS_LAYER, wl_b},
                  {DNNL_ARG_WEIGHTS_ITER, wi_b},     {DNNL_ARG_BIAS, bias},
                  {DNNL_ARG_DST_LAYER, dst},         {DNNL_ARG_WORKSPACE, ws},
                  {DNNL_ARG_DIFF_SRC_LAYER, dsrc},   {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl},
                  {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi}, {DNNL_ARG_DIFF_BIAS, dbias},
                  {DNNL_ARG_DIFF_DST_LAYER, ddst}};
  };
  // Backward weights are given as `any` as well: oneDNN picks its own diff layout.
  if (mode == "lstm") {
    build(
        lstm_forward(), lstm_backward(),
        [&](prop_kind pk) {
          return lstm_forward::desc(pk, dir, src_md, none, none, wl_any, wi_any, bias_md, dst_md,
                                    none, none);
        },
        [&] {
          return lstm_backward::desc(prop_kind::backward, dir, src_md, none, none, wl_any, wi_any,
                                     bias_md, dst_md, none, none, src_md, none, none, wl_any,
                                     wi_any, bias_md, dst_md, none, none);
        });
  } else if (mode == "gru") {
    build(
        gru_forward(), gru_backward(),
        [&](prop_kind pk) {
          return gru_forward::desc(pk, dir, src_md, none, wl_any, wi_any, bias_md, dst_md, none);
        },
        [&] {
          return gru_backward::desc(prop_kind::backward, dir, src_md, none, wl_any, wi_any,
                                    bias_md, dst_md, none, src_md, none, wl_any, wi_any, bias_md,
                                    dst_md, none);
        });
  } else if (mode == "lbr_gru") {
    build(
        lbr_gru_forward(), lbr_gru_backward(),
        [&](prop_kind pk) {
          return lbr_gru_forward::desc(pk, dir, src_md, none, wl_any, wi_any, bias_md, dst_md,
                                       none);
        },
        [&] {
          return lbr_gru_backward::desc(prop_kind::backward, dir, src_md, none, wl_any, wi_any,
                                        bias_md, dst_md, none, src_md, none, wl_any, wi_any,
                                        bias_md, dst_md, none);
        });
  } else {
    build(
        vanilla_rnn_forward(), vanilla_rnn_backward(),
        [&](prop_kind pk) {
          return vanilla_rnn_forward::desc(pk, algorithm::eltwise_tanh, dir, src_md, none, wl_any,
                                           wi_any, bias_md, dst_md, none);
        },
        [&] {
          return vanilla_rnn_backward::desc(prop_kind::backward, algorithm::eltwise_tanh, dir,
                                            src_md, none, wl_any, wi_any, bias_md, dst_md, none,
                                            src_md, none, wl_any, wi_any, bias_md, dst_md, none);
        });
  }
  return L;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Per-call ms of `repeats` samples of at least `min_ms` each, after two warm-up calls, as a JSON
// array (the caller takes median, min and max, as for every other figure of the suite).
template <class Fn>
std::string time_samples(const Fn& fn, int repeats, double min_ms) {
  fn();
  fn();
  double t0 = now_ms();
  fn();
  double one = std::max(now_ms() - t0, 1e-3);
  int batch = one < min_ms ? static_cast<int>(min_ms / one) + 1 : 1;
  std::vector<double> v;
  for (int r = 0; r < repeats; ++r) {
    double s = now_ms();
    for (int b = 0; b < batch; ++b) fn();
    v.push_back((now_ms() - s) / batch);
  }
  std::string out = "[";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.6f", i ? "," : "", v[i]);
    out += buf;
  }
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 10) {
    std::fprintf(stderr, "usage: onednn_rnn <lstm|gru|lbr_gru|rnn> T B I H L D repeats min_ms\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int64_t T = std::atoll(argv[2]), B = std::atoll(argv[3]), I = std::atoll(argv[4]),
                H = std::atoll(argv[5]), NL = std::atoll(argv[6]), D = std::atoll(argv[7]);
  const int repeats = std::atoi(argv[8]);
  const double min_ms = std::atof(argv[9]);
  try {
    engine eng(engine::kind::cpu, 0);
    stream s(eng);
    std::vector<Layer> layers;
    size_t workspace = 0;
    for (int64_t l = 0; l < NL; ++l) {
      layers.push_back(make_layer(mode, T, B, l == 0 ? I : D * H, H, D, eng, s));
      workspace += layers.back().workspace;
    }
    auto run = [&](int which) {
      return [&, which] {
        if (which == 2) {
          for (auto it = layers.rbegin(); it != layers.rend(); ++it) it->bwd.execute(s, it->bwd_args);
        } else {
          for (auto& L : layers) (which == 0 ? L.inf : L.fwd).execute(s, which == 0 ? L.inf_args : L.fwd_args);
        }
        s.wait();
      };
    };
    const std::string inf = time_samples(run(0), repeats, min_ms);
    const std::string fwd = time_samples(run(1), repeats, min_ms);
    const std::string bwd = time_samples(run(2), repeats, min_ms);
    std::printf(
        "{\"version\":\"%d.%d.%d\",\"inferenceMs\":%s,\"trainingForwardMs\":%s,"
        "\"backwardMs\":%s,\"workspaceBytes\":%zu}\n",
        dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch, inf.c_str(),
        fwd.c_str(), bwd.c_str(), workspace);
  } catch (const dnnl::error& e) {
    std::printf("{\"error\":\"oneDNN: %s (status %d)\"}\n", e.what(), static_cast<int>(e.status));
    return 0;
  }
  return 0;
}
