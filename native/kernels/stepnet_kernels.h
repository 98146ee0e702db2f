// Row kernels of the step-net built-in ops (stepnet.h): elementwise math and the fused LSTM / GRU
// units, over row-major [rows, cols] float32 blocks. Forward outputs are overwritten (`=`);
// every backward adds into its input gradients (`+=`), because a blob consumed by several ops sums
// their contributions. Each call spreads its rows over the compute pool (serial when nested, as
// inside the step-net executor's tasks) and uses the active ISA path (cpu_features.h).
//
// LSTM unit (gate order i f g o, pre-activations in `gates` [rows, 4H]):
//   c = σ(f)⊙c_prev + σ(i)⊙tanh(g),  h = σ(o)⊙tanh(c)
// GRU unit, linear-before-reset form (xg = W_i x + b_i, hg = W_h h_prev + b_h, both [rows, 3H], r z n):
//   r = σ(xr + hr), z = σ(xz + hz), n = tanh(xn + r⊙hn), h = (1 − z)⊙n + z⊙h_prev
// GRU unit, ONNX default form (hg [rows, 2H] holds only r z; W_hn [H, H], b_hn [H] optional):
//   n = tanh(xn + (r⊙h_prev)·W_hnᵀ + b_hn); the rest as above. The forward keeps r⊙h_prev and n
//   in `aux` [rows, 2H] for the backward.
#pragma once
#include <cstdint>

namespace rnnkit {
namespace stepnet {

enum class Unary { sigmoid, tanh, relu };

void unary_forward(Unary f, float* y, const float* x, int64_t n);
// dx += dy · f'(x), written in terms of the forward output y.
void unary_backward(Unary f, float* dx, const float* dy, const float* y, int64_t n);

// y = a + s·b (s = ±1); y = a ⊙ b.
void add_forward(float* y, const float* a, const float* b, float s, int64_t n);
void mul_forward(float* y, const float* a, const float* b, int64_t n);
// dx += s·dy
void accumulate(float* dx, const float* dy, float s, int64_t n);
// da += dy ⊙ b, db += dy ⊙ a (either may be null).
void mul_backward(float* da, float* db, const float* dy, const float* a, const float* b, int64_t n);

void lstm_unit_forward(float* h, float* c, const float* gates, const float* c_prev, int64_t rows,
                       int64_t H);
// dh / dc (null: zero) are the gradients of h and c; dgates and dc_prev are added into.
void lstm_unit_backward(float* dgates, float* dc_prev, const float* dh, const float* dc,
                        const float* gates, const float* c_prev, const float* c, int64_t rows,
                        int64_t H);

void gru_unit_forward(float* h, const float* xg, const float* hg, const float* h_prev,
                      int64_t rows, int64_t H);
void gru_unit_backward(float* dxg, float* dhg, float* dh_prev, const float* dh, const float* xg,
                       const float* hg, const float* h_prev, int64_t rows, int64_t H);

// ONNX form; W_hn [H, H] row-major (out × in), b_hn may be null. aux [rows, 2H] out: r⊙h_prev, n.
void gru_onnx_forward(float* h, float* aux, const float* xg, const float* hg,
                      const float* h_prev, const float* w_hn, const float* b_hn, int64_t rows,
                      int64_t H);
// dw_hn [H, H] and db_hn [H] (null when absent) are added into, like the input gradients.
void gru_onnx_backward(float* dxg, float* dhg, float* dh_prev, float* dw_hn, float* db_hn,
                       const float* dh, const float* aux, const float* xg, const float* hg,
                       const float* h_prev, const float* w_hn, int64_t rows, int64_t H);

// out[o, :] gets `len` floats of in[o, start ...] for o < outer; in and out rows are in_cols and
// out_cols apart. The backward of a slice / concat piece is the same move with `add` set.
void move_block(float* out, int64_t out_cols, int64_t out_start, const float* in,
                int64_t in_cols, int64_t in_start, int64_t outer, int64_t len, bool add);

// db[c] += Σ_r dy[r, c]
void column_sums(float* db, const float* dy, int64_t rows, int64_t cols);
// y[r, :] = b for every row (the bias a GEMM then adds into).
void broadcast_rows(float* y, const float* b, int64_t rows, int64_t cols);

}  // namespace stepnet
}  // namespace rnnkit
