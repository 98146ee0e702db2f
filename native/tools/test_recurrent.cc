// Tests the CPU recurrent kernels (native/kernels/recurrent.h) against a separately written
// float64 reference: straightforward per-sequence, per-step loops templated on the scalar type.
// Instantiated with double it gives the forward; instantiated with a tape-recording scalar it gives
// exact reverse-mode gradients, which are themselves checked against central finite differences.
// Every case runs on fresh random inputs (the seed is printed; RNNKIT_TEST_SEED repeats a run),
// with outputs poisoned with NaN, on every ISA path this machine supports. Exit status 1 on any
// failure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "activations.h"
#include "cpu_features.h"
#include "dropout_hash.h"
#include "errors.h"
#include "recurrent.h"

using namespace rnnkit;
using Mode = RecurrentConfig::Mode;

namespace {

// ---- Reverse-mode scalar: every operation records its operands' partial derivatives. ----
struct Tape {
  std::vector<int> a, b;
  std::vector<double> da, db;
  int push(int ia, double pa, int ib, double pb) {
    a.push_back(ia);
    da.push_back(pa);
    b.push_back(ib);
    db.push_back(pb);
    return static_cast<int>(a.size()) - 1;
  }
};
Tape* g_tape = nullptr;

struct Var {
  double v = 0;
  int id = -1;  // -1: a constant
  Var() = default;
  Var(double value) : v(value) {}  // NOLINT: constants convert implicitly, as in the formulas
  static Var input(double value) {
    Var r(value);
    r.id = g_tape->push(-1, 0, -1, 0);
    return r;
  }
};
Var node(double v, const Var& x, double dx, const Var& y = Var(), double dy = 0) {
  Var r(v);
  if (x.id < 0 && y.id < 0) return r;
  r.id = g_tape->push(x.id, dx, y.id, dy);
  return r;
}
Var operator+(const Var& x, const Var& y) { return node(x.v + y.v, x, 1, y, 1); }
Var operator-(const Var& x, const Var& y) { return node(x.v - y.v, x, 1, y, -1); }
Var operator*(const Var& x, const Var& y) { return node(x.v * y.v, x, y.v, y, x.v); }
Var& operator+=(Var& x, const Var& y) { return x = x + y; }

double sigm(double x) { return 1 / (1 + std::exp(-x)); }
double tanh_(double x) { return std::tanh(x); }
double relu(double x) { return x > 0 ? x : 0; }
double clampc(double x, double c) { return x > c ? c : x < -c ? -c : x; }
Var sigm(const Var& x) {
  double s = sigm(x.v);
  return node(s, x, s * (1 - s));
}
Var tanh_(const Var& x) {
  double t = std::tanh(x.v);
  return node(t, x, 1 - t * t);
}
Var relu(const Var& x) { return node(relu(x.v), x, x.v > 0 ? 1 : 0); }
Var clampc(const Var& x, double c) { return node(clampc(x.v, c), x, std::fabs(x.v) < c ? 1 : 0); }

std::vector<double> gradients(const Tape& tape, int out) {
  std::vector<double> adj(tape.a.size(), 0.0);
  adj[out] = 1;
  for (int k = out; k >= 0; --k) {
    if (adj[k] == 0) continue;
    if (tape.a[k] >= 0) adj[tape.a[k]] += adj[k] * tape.da[k];
    if (tape.b[k] >= 0) adj[tape.b[k]] += adj[k] * tape.db[k];
  }
  return adj;
}

// ---- The reference, from docs/recurrent-semantics.md. ----
struct Case {
  RecurrentConfig cfg;
  int T = 0, B = 0;
  bool batch_first = false, lengths = false, dropout = false, accumulate = false;
  bool has_hx = true, has_cx = true, has_dy = true, has_dhy = true, has_dcy = true;
};

struct Sizes {
  int G, H, R, D, L, I;
  explicit Sizes(const RecurrentConfig& c)
      : G(c.mode == Mode::lstm ? 4 : c.mode == Mode::gru ? 3 : 1),
        H(static_cast<int>(c.hidden_size)),
        R(static_cast<int>(c.proj_size > 0 ? c.proj_size : c.hidden_size)),
        D(c.bidirectional ? 2 : 1),
        L(static_cast<int>(c.num_layers)),
        I(static_cast<int>(c.input_size)) {}
};

// Offsets of one layer/direction's parameters, walking the packed order of the semantics doc.
struct RefParams {
  size_t w_ih = 0, w_hh = 0, b_ih = 0, b_hh = 0, w_proj = 0, peep = 0;
  bool has_wih = true;
};
std::vector<RefParams> ref_layout(const RecurrentConfig& c, size_t* total) {
  Sizes s(c);
  std::vector<RefParams> out;
  size_t off = 0;
  for (int l = 0; l < s.L; ++l)
    for (int d = 0; d < s.D; ++d) {
      RefParams p;
      int in = l == 0 ? s.I : s.D * s.R;
      p.has_wih = !(c.skip_input && l == 0);
      p.w_ih = off;
      if (p.has_wih) off += static_cast<size_t>(s.G * s.H * in);
      p.w_hh = off;
      off += static_cast<size_t>(s.G * s.H * s.R);
      p.b_ih = off;
      off += static_cast<size_t>(s.G * s.H);
      p.b_hh = off;
      off += static_cast<size_t>(s.G * s.H);
      p.w_proj = off;
      if (c.proj_size > 0) off += static_cast<size_t>(s.R * s.H);
      p.peep = off;
      if (c.peepholes) off += static_cast<size_t>(3 * s.H);
      out.push_back(p);
    }
  *total = off;
  return out;
}

// x [T,B,I], hx [L·D,B,R], cx [L·D,B,H], y [T,B,D·R]; all sequence-major.
template <class S>
void ref_forward(const Case& cs, const std::vector<int>& lens, const std::vector<S>& x,
                 const std::vector<S>& hx, const std::vector<S>& cx, const std::vector<S>& w,
                 float p, uint64_t seed, std::vector<S>& y, std::vector<S>& hy,
                 std::vector<S>& cy) {
  const RecurrentConfig& c = cs.cfg;
  Sizes s(c);
  const int T = cs.T, B = cs.B, H = s.H, R = s.R, D = s.D;
  size_t total;
  std::vector<RefParams> lay = ref_layout(c, &total);
  std::vector<S> in = x;
  int in_size = s.I;
  hy.assign(static_cast<size_t>(s.L * D * B * R), S(0));
  cy.assign(static_cast<size_t>(s.L * D * B * H), S(0));
  for (int l = 0; l < s.L; ++l) {
    std::vector<S> out(static_cast<size_t>(T * B * D * R), S(0));
    for (int d = 0; d < D; ++d) {
      const RefParams& P = lay[static_cast<size_t>(l * D + d)];
      const int G = s.G;
      for (int b = 0; b < B; ++b) {
        std::vector<S> h(static_cast<size_t>(R)), cst(static_cast<size_t>(H));
        for (int j = 0; j < R; ++j) h[j] = hx[static_cast<size_t>(((l * D + d) * B + b) * R + j)];
        for (int j = 0; j < H; ++j) cst[j] = cx[static_cast<size_t>(((l * D + d) * B + b) * H + j)];
        const int len = lens[static_cast<size_t>(b)];
        for (int k = 0; k < len; ++k) {
          const int t = d == 0 ? k : len - 1 - k;
          const S* xt = &in[static_cast<size_t>((t * B + b) * in_size)];
          // xi: input side with b_ih; hh: recurrent side with b_hh, per gate row.
          std::vector<S> xi(static_cast<size_t>(G * H)), hh(static_cast<size_t>(G * H));
          for (int r = 0; r < G * H; ++r) {
            S a = w[P.b_ih + r];
            if (P.has_wih) {
              for (int i = 0; i < in_size; ++i) a += w[P.w_ih + static_cast<size_t>(r * in_size + i)] * xt[i];
            } else {
              a += xt[r % H];
            }
            xi[static_cast<size_t>(r)] = a;
            if (!(c.mode == Mode::gru && !c.linear_before_reset && r >= 2 * H)) {
              S q = w[P.b_hh + r];
              for (int i = 0; i < R; ++i) q += w[P.w_hh + static_cast<size_t>(r * R + i)] * h[i];
              hh[static_cast<size_t>(r)] = q;
            }
          }
          std::vector<S> hn(static_cast<size_t>(R));
          if (c.mode == Mode::lstm) {
            std::vector<S> m(static_cast<size_t>(H));
            for (int j = 0; j < H; ++j) {
              S ai = xi[j] + hh[j], af = xi[H + j] + hh[H + j];
              S ag = xi[2 * H + j] + hh[2 * H + j], ao = xi[3 * H + j] + hh[3 * H + j];
              if (c.peepholes) {
                ai += w[P.peep + j] * cst[j];
                af += w[P.peep + H + j] * cst[j];
              }
              S cn = sigm(af) * cst[j] + sigm(ai) * tanh_(ag);
              if (c.cell_clip > 0) cn = clampc(cn, c.cell_clip);
              if (c.peepholes) ao += w[P.peep + 2 * H + j] * cn;
              cst[j] = cn;
              m[j] = sigm(ao) * tanh_(cn);
            }
            if (c.proj_size > 0) {
              for (int r = 0; r < R; ++r) {
                S a = 0;
                for (int j = 0; j < H; ++j) a += w[P.w_proj + static_cast<size_t>(r * H + j)] * m[j];
                hn[r] = a;
              }
            } else {
              hn = m;
            }
          } else if (c.mode == Mode::gru) {
            std::vector<S> rh(static_cast<size_t>(H));
            std::vector<S> r(static_cast<size_t>(H)), z(static_cast<size_t>(H));
            for (int j = 0; j < H; ++j) {
              r[j] = sigm(xi[j] + hh[j]);
              z[j] = sigm(xi[H + j] + hh[H + j]);
              rh[j] = r[j] * h[j];
            }
            for (int j = 0; j < H; ++j) {
              S n;
              if (c.linear_before_reset) {
                n = tanh_(xi[2 * H + j] + r[j] * hh[2 * H + j]);
              } else {
                S q = w[P.b_hh + 2 * H + j];
                for (int i = 0; i < H; ++i) q += w[P.w_hh + static_cast<size_t>((2 * H + j) * H + i)] * rh[i];
                n = tanh_(xi[2 * H + j] + q);
              }
              hn[j] = (S(1) - z[j]) * n + z[j] * h[j];
            }
          } else {
            for (int j = 0; j < H; ++j) {
              S a = xi[j] + hh[j];
              hn[j] = c.mode == Mode::rnn_relu ? relu(a) : tanh_(a);
            }
          }
          h = hn;
          for (int j = 0; j < R; ++j) out[static_cast<size_t>((t * B + b) * D * R + d * R + j)] = h[j];
        }
        for (int j = 0; j < R; ++j) hy[static_cast<size_t>(((l * D + d) * B + b) * R + j)] = h[j];
        for (int j = 0; j < H; ++j) cy[static_cast<size_t>(((l * D + d) * B + b) * H + j)] = cst[j];
      }
    }
    in_size = D * R;
    in = out;
    if (l + 1 < s.L && p > 0) {
      for (size_t i = 0; i < in.size(); ++i)
        in[i] = dropout_uniform(seed, static_cast<uint32_t>(l), i) >= p
                    ? in[i] * S(1.0 / (1.0 - static_cast<double>(p)))
                    : S(0);
    }
    if (l + 1 == s.L) y = out;
  }
}

// ---- Helpers ----
std::mt19937_64 rng;
std::vector<double> randv(size_t n, double lo = -1, double hi = 1) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& e : v) e = static_cast<double>(static_cast<float>(u(rng)));  // exact in float
  return v;
}
std::vector<float> tof(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }
double norm(const std::vector<double>& v) {
  double s = 0;
  for (double e : v) s += e * e;
  return std::sqrt(s);
}
// ||a − b|| / ||b||; absolute when b is zero. NaN anywhere fails.
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    s += (a[i] - b[i]) * (a[i] - b[i]);
  }
  double nb = norm(b);
  return std::sqrt(s) / (nb > 0 ? nb : 1.0);
}
// [T,B,F] <-> [B,T,F]
template <class V>
V swap_tb(const V& v, int T, int B, int F, bool to_batch_first) {
  V out(v.size());
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int f = 0; f < F; ++f) {
        size_t sm = static_cast<size_t>((t * B + b) * F + f), bm = static_cast<size_t>((b * T + t) * F + f);
        if (to_batch_first)
          out[bm] = v[sm];
        else
          out[sm] = v[bm];
      }
  return out;
}

int g_failures = 0;
double g_max_fwd = 0, g_max_grad = 0, g_max_fd = 0;  // worst errors seen, for the summary
void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::printf("FAIL %s\n", what.c_str());
  }
}

std::string describe(const Case& cs) {
  const RecurrentConfig& c = cs.cfg;
  const char* m = c.mode == Mode::lstm ? "lstm" : c.mode == Mode::gru ? (c.linear_before_reset ? "gru" : "gru-onnx")
                  : c.mode == Mode::rnn_tanh ? "rnn_tanh" : "rnn_relu";
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "%s L=%lld %s T=%d B=%d I=%lld H=%lld proj=%lld clip=%g peep=%d skip=%d lens=%d bf=%d "
                "drop=%d acc=%d hx=%d cx=%d dy=%d dhy=%d dcy=%d isa=%s",
                m, static_cast<long long>(c.num_layers), c.bidirectional ? "bi" : "uni", cs.T, cs.B,
                static_cast<long long>(c.input_size), static_cast<long long>(c.hidden_size),
                static_cast<long long>(c.proj_size), static_cast<double>(c.cell_clip), c.peepholes,
                c.skip_input, cs.lengths, cs.batch_first, cs.dropout, cs.accumulate, cs.has_hx,
                cs.has_cx, cs.has_dy, cs.has_dhy, cs.has_dcy, isa_name(active_isa()));
  return buf;
}

// Runs one case: reference forward + tape gradients (+ finite-difference check of those), then
// the float kernels against them.
void run_case(const Case& cs, bool check_fd) {
  const RecurrentConfig& c = cs.cfg;
  Sizes s(c);
  const int T = cs.T, B = cs.B, H = s.H, R = s.R, D = s.D, L = s.L;
  const bool lstm = c.mode == Mode::lstm;
  size_t nw;
  ref_layout(c, &nw);
  check(static_cast<int64_t>(nw) == recurrent_weights_size(c), "weights size " + describe(cs));

  std::vector<int> lens(static_cast<size_t>(B), T);
  if (cs.lengths) {
    for (int b = 0; b < B; ++b) lens[static_cast<size_t>(b)] = static_cast<int>(rng() % static_cast<uint64_t>(T + 1));
    lens[0] = T;  // the extremes always appear, at shuffled positions
    if (B > 1) lens[1] = 0;
    std::shuffle(lens.begin(), lens.end(), rng);
  }
  const float p = cs.dropout ? 0.3f : 0.f;
  const uint64_t seed = rng();
  auto x = randv(static_cast<size_t>(T * B * s.I));
  auto hx = cs.has_hx ? randv(static_cast<size_t>(L * D * B * R)) : std::vector<double>(static_cast<size_t>(L * D * B * R), 0.0);
  auto cx = cs.has_cx && lstm ? randv(static_cast<size_t>(L * D * B * H)) : std::vector<double>(static_cast<size_t>(L * D * B * H), 0.0);
  auto w = randv(nw, -0.6, 0.6);
  auto wy = cs.has_dy ? randv(static_cast<size_t>(T * B * D * R)) : std::vector<double>(static_cast<size_t>(T * B * D * R), 0.0);
  auto why = cs.has_dhy ? randv(static_cast<size_t>(L * D * B * R)) : std::vector<double>(static_cast<size_t>(L * D * B * R), 0.0);
  auto wcy = cs.has_dcy && lstm ? randv(static_cast<size_t>(L * D * B * H)) : std::vector<double>(static_cast<size_t>(L * D * B * H), 0.0);

  // Reference forward and gradients of loss = <y,wy> + <hy,why> + <cy,wcy>.
  Tape tape;
  g_tape = &tape;
  auto vars = [](const std::vector<double>& v) {
    std::vector<Var> o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = Var::input(v[i]);
    return o;
  };
  std::vector<Var> vx = vars(x), vhx = vars(hx), vcx = vars(cx), vw = vars(w), vy, vhy, vcy;
  ref_forward<Var>(cs, lens, vx, vhx, vcx, vw, p, seed, vy, vhy, vcy);
  auto loss_of = [&](const auto& yy, const auto& hh, const auto& cc) {
    using S = std::decay_t<decltype(yy[0])>;
    S l = 0;
    for (size_t i = 0; i < yy.size(); ++i) l += yy[i] * S(wy[i]);
    for (size_t i = 0; i < hh.size(); ++i) l += hh[i] * S(why[i]);
    if (lstm)
      for (size_t i = 0; i < cc.size(); ++i) l += cc[i] * S(wcy[i]);
    return l;
  };
  Var loss = loss_of(vy, vhy, vcy);
  std::vector<double> ry(vy.size()), rhy(vhy.size()), rcy(vcy.size());
  for (size_t i = 0; i < vy.size(); ++i) ry[i] = vy[i].v;
  for (size_t i = 0; i < vhy.size(); ++i) rhy[i] = vhy[i].v;
  for (size_t i = 0; i < vcy.size(); ++i) rcy[i] = vcy[i].v;
  std::vector<double> gx(x.size()), ghx(hx.size()), gcx(cx.size()), gw(w.size());
  if (loss.id >= 0) {
    std::vector<double> adj = gradients(tape, loss.id);
    auto take = [&](const std::vector<Var>& v, std::vector<double>& g) {
      for (size_t i = 0; i < v.size(); ++i) g[i] = adj[static_cast<size_t>(v[i].id)];
    };
    take(vx, gx), take(vhx, ghx), take(vcx, gcx), take(vw, gw);
  }
  g_tape = nullptr;

  if (check_fd) {
    // Directional derivative along a random direction of all inputs vs <gradient, direction>.
    for (int rep = 0; rep < 2; ++rep) {
      auto dxv = randv(x.size()), dhv = randv(hx.size()), dcv = randv(cx.size()), dwv = randv(w.size());
      const double eps = 1e-6;
      auto eval = [&](double sgn) {
        auto sh = [&](const std::vector<double>& a, const std::vector<double>& da) {
          std::vector<double> o(a);
          for (size_t i = 0; i < o.size(); ++i) o[i] += sgn * eps * da[i];
          return o;
        };
        std::vector<double> yy, hh, cc;
        ref_forward<double>(cs, lens, sh(x, dxv), sh(hx, cs.has_hx ? dhv : std::vector<double>(hx.size(), 0.0)),
                            sh(cx, cs.has_cx && lstm ? dcv : std::vector<double>(cx.size(), 0.0)),
                            sh(w, dwv), p, seed, yy, hh, cc);
        return loss_of(yy, hh, cc);
      };
      double fd = (eval(1) - eval(-1)) / (2 * eps);
      double an = 0, scale = 0;
      auto dot = [&](const std::vector<double>& g, const std::vector<double>& v, bool use) {
        if (!use) return;
        for (size_t i = 0; i < g.size(); ++i) an += g[i] * v[i], scale += std::fabs(g[i] * v[i]);
      };
      dot(gx, dxv, true), dot(ghx, dhv, cs.has_hx), dot(gcx, dcv, cs.has_cx && lstm), dot(gw, dwv, true);
      double err = std::fabs(fd - an);
      // relu and cell clipping have kinks: when one lies within eps along the direction, the
      // central difference straddles it, and the analytic gradient is one of the one-sided ones.
      bool kinked = cs.cfg.mode == Mode::rnn_relu || cs.cfg.cell_clip > 0;
      if (kinked && err > 1e-6 * std::max(1.0, scale)) {
        double f0 = eval(0);
        double one_sided = std::min(std::fabs((eval(1) - f0) / eps - an), std::fabs((f0 - eval(-1)) / eps - an));
        if (one_sided <= 1e-4 * std::max(1.0, scale)) err = 0;
      }
      g_max_fd = std::max(g_max_fd, err / std::max(1.0, scale));
      check(err <= 1e-6 * std::max(1.0, scale),
            "reference gradient vs finite differences (" + std::to_string(fd) + " vs " +
                std::to_string(an) + ") " + describe(cs));
    }
  }

  // Kernels.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> fx = tof(cs.batch_first ? swap_tb(x, T, B, s.I, true) : x);
  std::vector<float> fhx = tof(hx), fcx = tof(cx), fw = tof(w);
  std::vector<int32_t> flens(lens.begin(), lens.end());
  const int32_t* lp = cs.lengths ? flens.data() : nullptr;
  const float* hxp = cs.has_hx ? fhx.data() : nullptr;
  const float* cxp = cs.has_cx && lstm ? fcx.data() : nullptr;
  std::vector<float> y(static_cast<size_t>(T * B * D * R), nan), hy(hx.size(), nan), cy(cx.size(), nan);
  std::vector<float> saved(static_cast<size_t>(recurrent_saved_size(c, T, B)), nan);
  recurrent_forward(c, T, B, cs.batch_first, fx.data(), hxp, cxp, lp, fw.data(), p, seed, y.data(),
                    hy.data(), lstm ? cy.data() : nullptr, saved.data());
  std::vector<float> ysm = cs.batch_first ? swap_tb(y, T, B, D * R, false) : y;
  const double ftol = 1e-5, gtol = 1e-4;
  g_max_fwd = std::max({g_max_fwd, rel_err(ysm, ry), rel_err(hy, rhy), lstm ? rel_err(cy, rcy) : 0.0});
  check(rel_err(ysm, ry) <= ftol, "forward y err " + std::to_string(rel_err(ysm, ry)) + " " + describe(cs));
  check(rel_err(hy, rhy) <= ftol, "forward hy " + describe(cs));
  if (lstm) check(rel_err(cy, rcy) <= ftol, "forward cy " + describe(cs));

  // Inference must give the same outputs while keeping nothing.
  std::vector<float> y2(y.size(), nan), hy2(hy.size(), nan), cy2(cy.size(), nan);
  recurrent_forward(c, T, B, cs.batch_first, fx.data(), hxp, cxp, lp, fw.data(), p, seed, y2.data(),
                    hy2.data(), lstm ? cy2.data() : nullptr, nullptr);
  check(std::memcmp(y.data(), y2.data(), y.size() * 4) == 0 && std::memcmp(hy.data(), hy2.data(), hy.size() * 4) == 0 &&
            (!lstm || std::memcmp(cy.data(), cy2.data(), cy.size() * 4) == 0),
        "inference differs from training forward " + describe(cs));

  std::vector<float> fdy = tof(cs.batch_first ? swap_tb(wy, T, B, D * R, true) : wy);
  std::vector<float> fdhy = tof(why), fdcy = tof(wcy);
  std::vector<float> dx(fx.size(), nan), dhx(hx.size(), nan), dcx(cx.size(), nan);
  std::vector<double> acc_base = cs.accumulate ? randv(nw) : std::vector<double>(nw, 0.0);
  std::vector<float> dw = cs.accumulate ? tof(acc_base) : std::vector<float>(nw, nan);
  recurrent_backward(c, T, B, cs.batch_first, fx.data(), hxp, cxp, lp, fw.data(), p, seed, y.data(),
                     saved.data(), cs.has_dy ? fdy.data() : nullptr, cs.has_dhy ? fdhy.data() : nullptr,
                     cs.has_dcy && lstm ? fdcy.data() : nullptr, dx.data(), dhx.data(),
                     lstm ? dcx.data() : nullptr, dw.data(), cs.accumulate);
  std::vector<float> dxsm = cs.batch_first ? swap_tb(dx, T, B, s.I, false) : dx;
  std::vector<float> dwg(nw);
  for (size_t i = 0; i < nw; ++i) dwg[i] = static_cast<float>(dw[i] - acc_base[i]);
  g_max_grad = std::max({g_max_grad, rel_err(dxsm, gx), rel_err(dhx, ghx), rel_err(dwg, gw),
                         lstm ? rel_err(dcx, gcx) : 0.0});
  check(rel_err(dxsm, gx) <= gtol, "dx err " + std::to_string(rel_err(dxsm, gx)) + " " + describe(cs));
  check(rel_err(dhx, ghx) <= gtol, "dhx err " + std::to_string(rel_err(dhx, ghx)) + " " + describe(cs));
  if (lstm) check(rel_err(dcx, gcx) <= gtol, "dcx err " + std::to_string(rel_err(dcx, gcx)) + " " + describe(cs));
  check(rel_err(dwg, gw) <= gtol, "dweights err " + std::to_string(rel_err(dwg, gw)) + " " + describe(cs));
  // Each parameter block separately, so a small block (a bias, the peepholes) cannot hide.
  size_t total;
  std::vector<RefParams> lay = ref_layout(c, &total);
  for (int l = 0; l < L; ++l)
    for (int d = 0; d < D; ++d)
      for (ParamKind k : {ParamKind::w_ih, ParamKind::w_hh, ParamKind::b_ih, ParamKind::b_hh,
                          ParamKind::w_proj, ParamKind::w_peephole}) {
        ParamSlot sl = recurrent_param_slot(c, l, d, k);
        size_t n = static_cast<size_t>(sl.rows * sl.cols);
        if (n == 0) continue;
        std::vector<float> a(dwg.begin() + sl.offset, dwg.begin() + sl.offset + static_cast<int64_t>(n));
        std::vector<double> b(gw.begin() + sl.offset, gw.begin() + sl.offset + static_cast<int64_t>(n));
        double e = rel_err(a, b);
        g_max_grad = std::max(g_max_grad, e);
        check(e <= gtol, "dweights block " + std::to_string(static_cast<int>(k)) + " layer " +
                             std::to_string(l) + " dir " + std::to_string(d) + " err " +
                             std::to_string(e) + " " + describe(cs));
      }
}

void test_activations() {
  const int n = 4001;
  double max_sig = 0, max_tanh = 0, max_tanh_rel = 0, max_exp_rel = 0;
  for (int k = 0; k < n; ++k) {
    float v = -20.f + 40.f * static_cast<float>(k) / (n - 1);
    act::V4::F xv = act::splat<act::V4>(v);
    double sg = act::vsigmoid<act::V4>(xv)[0], th = act::vtanh<act::V4>(xv)[0];
    max_sig = std::max(max_sig, std::fabs(sg - sigm(static_cast<double>(v))));
    max_tanh = std::max(max_tanh, std::fabs(th - std::tanh(static_cast<double>(v))));
    double ex = act::vexp<act::V4>(act::splat<act::V4>(v * 4))[0], er = std::exp(static_cast<double>(v * 4));
    max_exp_rel = std::max(max_exp_rel, std::fabs(ex - er) / er);
    float sm = v * 1e-3f;
    double ts = act::vtanh<act::V4>(act::splat<act::V4>(sm))[0];
    if (sm != 0) max_tanh_rel = std::max(max_tanh_rel, std::fabs(ts - std::tanh(static_cast<double>(sm))) / std::fabs(std::tanh(static_cast<double>(sm))));
  }
  std::printf("activations: |sigmoid err| %.2g, |tanh err| %.2g, tanh rel err near 0 %.2g, exp rel err %.2g\n",
              max_sig, max_tanh, max_tanh_rel, max_exp_rel);
  check(max_sig < 3e-7 && max_tanh < 3e-7 && max_tanh_rel < 3e-7 && max_exp_rel < 3e-7, "activation accuracy");
}

void test_errors() {
  auto throws_arg = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code() == ErrorCode::arg;
    }
    return false;
  };
  RecurrentConfig c;
  c.mode = Mode::gru;
  c.input_size = 3;
  c.hidden_size = 4;
  c.proj_size = 2;
  check(throws_arg([&] { recurrent_weights_size(c); }), "projection on GRU must throw");
  c.proj_size = 0;
  c.skip_input = true;
  check(throws_arg([&] { recurrent_weights_size(c); }), "skip input with I != H must throw");
  c.skip_input = false;
  std::vector<float> x(12), w(static_cast<size_t>(recurrent_weights_size(c))), y(16);
  int32_t bad[2] = {1, 3};
  check(throws_arg([&] {
          recurrent_forward(c, 2, 2, false, x.data(), nullptr, nullptr, bad, w.data(), 0.f, 0,
                            y.data(), nullptr, nullptr, nullptr);
        }),
        "a length above T must throw");
  check(throws_arg([&] {
          recurrent_forward(c, 2, 2, false, x.data(), nullptr, nullptr, nullptr, w.data(), 1.f, 0,
                            y.data(), nullptr, nullptr, nullptr);
        }),
        "dropout 1 must throw");
}

}  // namespace

int main() {
  uint64_t seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (const char* e = std::getenv("RNNKIT_TEST_SEED")) seed = std::strtoull(e, nullptr, 10);
  std::printf("test_recurrent seed %llu (RNNKIT_TEST_SEED=%llu to repeat)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  rng.seed(seed);
  test_activations();
  test_errors();

  struct ModeCase {
    Mode mode;
    bool lbr;
  };
  const ModeCase modes[] = {{Mode::lstm, true}, {Mode::gru, true}, {Mode::gru, false},
                            {Mode::rnn_tanh, true}, {Mode::rnn_relu, true}};
  const int hidden_sizes[] = {5, 8, 17};
  int cases = 0;
  for (Isa isa : available_isas()) {
    set_active_isa(isa);
    const bool best = isa == detected_isa();
    int counter = 0;
    for (const ModeCase& mc : modes)
      for (int L : {1, 2, 3})
        for (bool bi : {false, true})
          for (bool lens : {false, true})
            for (bool bf : {false, true}) {
              const bool lstm = mc.mode == Mode::lstm;
              // LSTM extras: every combination of projection, clip and peepholes.
              for (int extra = 0; extra < (lstm ? 8 : 1); ++extra) {
                ++counter;
                // Off the best ISA path, a thinner slice of the matrix.
                if (!best && counter % 4 != 0) continue;
                Case cs;
                RecurrentConfig& c = cs.cfg;
                c.mode = mc.mode;
                c.linear_before_reset = mc.lbr;
                c.num_layers = L;
                c.bidirectional = bi;
                c.hidden_size = hidden_sizes[(counter / 3) % 3];
                c.skip_input = counter % 3 == 1;
                c.input_size = c.skip_input ? c.hidden_size : 3 + counter % 4;
                c.proj_size = (extra & 1) ? 3 : 0;
                c.cell_clip = (extra & 2) ? 0.8f : 0.f;
                c.peepholes = (extra & 4) != 0;
                cs.T = 1 + static_cast<int>(rng() % 5);
                cs.B = lens ? 4 : 1 + static_cast<int>(rng() % 3);
                cs.batch_first = bf;
                cs.lengths = lens;
                cs.dropout = (counter / 2) % 2 == 1;
                cs.accumulate = counter % 5 == 2;
                cs.has_hx = counter % 7 != 3;
                cs.has_cx = counter % 6 != 1;
                cs.has_dy = counter % 9 != 4;
                cs.has_dhy = counter % 4 != 2;
                cs.has_dcy = counter % 5 != 3;
                run_case(cs, counter % 3 == 0);
                ++cases;
                if (g_failures > 20) {
                  std::printf("too many failures, stopping\n");
                  return 1;
                }
              }
            }
    // Wider layers with tiny batches: hidden units split across threads, vector tails inside.
    for (const ModeCase& mc : modes) {
      Case cs;
      RecurrentConfig& c = cs.cfg;
      c.mode = mc.mode;
      c.linear_before_reset = mc.lbr;
      c.num_layers = 2;
      c.bidirectional = true;
      c.hidden_size = 130;
      c.input_size = 7;
      c.peepholes = mc.mode == Mode::lstm;
      cs.T = 3;
      cs.B = 1 + static_cast<int>(rng() % 2);
      cs.lengths = cs.B == 2;
      cs.dropout = true;
      run_case(cs, true);
      ++cases;
    }
  }
  std::printf("%d cases, %d failures (seed %llu); worst relative errors: forward %.2g, gradients "
              "%.2g, reference vs finite differences %.2g\n",
              cases, g_failures, static_cast<unsigned long long>(seed), g_max_fwd, g_max_grad, g_max_fd);
  return g_failures == 0 ? 0 : 1;
}
