// The two sequential loops of SCA2LSTM's recurrence (forward, and backpropagation through time) in C++.
//
// Why: at B = 32, H = 64 each step's arithmetic takes a few microseconds, while each of the ~25
// torch calls per step that Python makes costs 5-20 us of dispatch. Here the small element-wise work
// of a step is plain loops, and so are the small products (see gemm below). Everything outside
// the loops (input projections, weight gradients as one product over all steps) stays in Python:
// see sca2lstm/models/recurrence.py, whose pure-Python loops are the reference these must match
// (tests/test_recurrence.py compares them).
//
// Layouts are time-major and contiguous: [T, B, ...]. Gate order in each 4H block is
// [input, forget, output, cell]. CPU only; float32 and float64.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <thread>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

// Fewest batch rows per thread: below this, a thread's share is not worth starting a thread.
constexpr int64_t kRowGrain = 8;

// Runs f(b0, b1) on disjoint row ranges [b0, b1) covering [0, B), one per thread, up to torch's thread
// count. Batch rows never interact inside the recurrence, so each thread runs all T steps of its rows
// with no synchronisation per step. Plain std::thread, not at::parallel_for: that one runs serially
// unless the extension itself is built with OpenMP, and linking a second OpenMP runtime beside
// torch's is asking for trouble. The loops call no ATen functions, so any thread may run them.
template <typename F>
void for_row_ranges(int64_t B, const F& f) {
  const int64_t n = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B / kRowGrain));
  const int64_t chunk = ((B + n - 1) / n + 3) / 4 * 4;  // multiples of 4 rows: the products' tile height
  std::vector<std::thread> pool;
  for (int64_t b0 = chunk; b0 < B; b0 += chunk) pool.emplace_back(f, b0, std::min(B, b0 + chunk));
  f(int64_t(0), std::min(B, chunk));
  for (auto& th : pool) th.join();
}

// exp, sigmoid and tanh written so that the compiler vectorises the loops that call them (std::exp and
// std::tanh are scalar calls, and at these sizes they would cost more than the products). float uses the
// Cephes single-precision approximations (max error a few ulp); double, used by the gradient checks,
// keeps the standard library.
template <typename T>
struct Fast {
  static inline T exp(T v) { return std::exp(v); }
  static inline T tanh(T v) { return std::tanh(v); }
};

template <>
struct Fast<float> {
  static inline float exp(float v) {
    // selects, not std::min/max: the compiler turns them into blends and vectorises the loop
    v = v < -88.3762626647949f ? -88.3762626647949f : v;
    v = v > 88.3762626647949f ? 88.3762626647949f : v;
    const float n = std::floor(v * 1.44269504088896341f + 0.5f);
    float r = v - n * 0.693359375f;
    r -= n * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return y * scale;
  }
  static inline float tanh(float v) {
    // |v| < 0.625: odd polynomial (no cancellation near 0); else 1 - 2 / (exp(2|v|) + 1), with v's sign
    const float a = std::fabs(v), z = v * v;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * v + v;
    const float big = std::copysign(1.0f - 2.0f / (exp(2.0f * a) + 1.0f), v);
    return a < 0.625f ? small : big;
  }
};

template <typename T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + Fast<T>::exp(-v));
}

// One LSTM cell, element-wise part, on nb rows: gates [nb, 4H] -> s [nb, 3H] (sigmoid of i, f, o),
// g, c, tc = tanh(c), h [nb, H]; c_prev [nb, H].
template <typename T>
void cell_forward(const T* gates, const T* c_prev, T* s, T* g, T* c, T* tc, T* h, int64_t nb, int64_t H) {
  for (int64_t b = 0; b < nb; ++b) {
    const T* gr = gates + b * 4 * H;
    T* sr = s + b * 3 * H;
    for (int64_t k = 0; k < 3 * H; ++k) sr[k] = sigmoid(gr[k]);
    const T* pb = c_prev + b * H;
    T *gb = g + b * H, *cb = c + b * H, *tb = tc + b * H, *hb = h + b * H;
    for (int64_t j = 0; j < H; ++j) gb[j] = Fast<T>::tanh(gr[3 * H + j]);
    for (int64_t j = 0; j < H; ++j) cb[j] = sr[H + j] * pb[j] + sr[j] * gb[j];
    for (int64_t j = 0; j < H; ++j) tb[j] = Fast<T>::tanh(cb[j]);
    for (int64_t j = 0; j < H; ++j) hb[j] = sr[2 * H + j] * tb[j];
  }
}

// One LSTM cell, backward. dh [B, H] reaches h(t); dc [B, H] holds the gradient reaching c(t) from
// step t+1 and leaves holding the one for c(t-1). Writes dgates [B, 4H].
template <typename T>
void cell_backward(const T* s, const T* g, const T* c_prev, const T* tc, const T* dh, T* dc, T* dgates,
                   int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    const T *sr = s + b * 3 * H, *gb = g + b * H, *cp = c_prev + b * H, *tb = tc + b * H, *dhb = dh + b * H;
    T* dcb = dc + b * H;
    T* dgr = dgates + b * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      const T i = sr[j], f = sr[H + j], o = sr[2 * H + j], gg = gb[j], t = tb[j];
      const T d = dcb[j] + dhb[j] * o * (T(1) - t * t);
      dgr[j] = d * gg * i * (T(1) - i);
      dgr[H + j] = d * cp[j] * f * (T(1) - f);
      dgr[2 * H + j] = dhb[j] * t * o * (T(1) - o);
      dgr[3 * H + j] = d * i * (T(1) - gg * gg);
      dcb[j] = d * f;
    }
  }
}

// C [M, N] = Bias [M, N] (or 0) + A [M, K] @ W [K, N], all row-major with leading dimensions.
// The products here are small (M <= a few dozen rows, K and N ~ 100-250): called through ATen each
// would cost more in dispatch and tensor views than in arithmetic, and the library kernels are tuned
// for large matrices. float: 4 x 16 register tiles written with GCC vector extensions (AVX2 ymm when
// built with -mavx2); edges and double (used by the gradient checks only) in plain loops.
template <typename T>
void gemm_edge(int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t K, const T* A, int64_t lda, const T* W,
               int64_t ldw, const T* bias, int64_t ldb, T* C, int64_t ldc) {
  for (int64_t i = i0; i < i1; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = j0; j < j1; ++j) c[j] = bias ? bias[i * ldb + j] : T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T a = A[i * lda + k];
      const T* w = W + k * ldw;
      for (int64_t j = j0; j < j1; ++j) c[j] += a * w[j];
    }
  }
}

template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* W, int64_t ldw, const T* bias,
          int64_t ldb, T* C, int64_t ldc) {
  gemm_edge<T>(0, M, 0, N, K, A, lda, W, ldw, bias, ldb, C, ldc);
}

#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32)));

inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

template <>
void gemm<float>(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* W, int64_t ldw,
                 const float* bias, int64_t ldb, float* C, int64_t ldc) {
  constexpr int64_t MR = 4, NR = 16;
  const int64_t M4 = M - M % MR, N16 = N - N % NR;
  for (int64_t i = 0; i < M4; i += MR) {
    for (int64_t j = 0; j < N16; j += NR) {
      v8f acc[MR][2];
      for (int64_t r = 0; r < MR; ++r)
        for (int64_t h = 0; h < 2; ++h)
          acc[r][h] = bias ? load8(bias + (i + r) * ldb + j + 8 * h) : v8f{};
      for (int64_t k = 0; k < K; ++k) {
        const v8f w0 = load8(W + k * ldw + j), w1 = load8(W + k * ldw + j + 8);
        for (int64_t r = 0; r < MR; ++r) {
          const float a = A[(i + r) * lda + k];
          acc[r][0] += a * w0;
          acc[r][1] += a * w1;
        }
      }
      for (int64_t r = 0; r < MR; ++r)
        for (int64_t h = 0; h < 2; ++h) store8(C + (i + r) * ldc + j + 8 * h, acc[r][h]);
    }
    gemm_edge<float>(i, i + MR, N16, N, K, A, lda, W, ldw, bias, ldb, C, ldc);
  }
  gemm_edge<float>(M4, M, 0, N, K, A, lda, W, ldw, bias, ldb, C, ldc);
}
#endif

void check(const at::Tensor& t, const char* name, const at::Tensor& like) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), name, " has dtype ", t.scalar_type(), ", expected ",
              like.scalar_type());
}

}  // namespace

// Forward loop. Inputs (time-major, contiguous):
//   g1p [T, B, 4H1] LSTM1 input projection; g2pre [B, 4H2]; w1t [K1, 4H1] with K1 = H1 + H2 + 2;
//   wat [H1, N]; negb [T, B, N] (0 / -inf mask + weight-head bias); w2t [K2, 4H2] with K2 = N + H1 + H2;
//   wp [H2]; bp [1]; wc [H2] (the cell readout) or empty; xk [T, B, N] (N * x * keep); res [T, B, 2]
//   residual inputs, updated in place when `online`; nobsk, known [T, B]; mask [T, B, H2] or empty;
//   base [T, B] or empty.
// Returns {wts [T, B, N], h2all [T, B, H2], preds [T, B]} and, when `save`,
// also z1, z2, s1, g1, c1 [T+1, ...], tc1, s2, g2, c2 [T+1, ...], tc2.
std::vector<at::Tensor> forward(const at::Tensor& g1p, const at::Tensor& g2pre, const at::Tensor& w1t,
                                const at::Tensor& wat, const at::Tensor& negb, const at::Tensor& w2t,
                                const at::Tensor& wp, const at::Tensor& bp, const at::Tensor& wc,
                                const at::Tensor& xk, at::Tensor res, const at::Tensor& nobsk,
                                const at::Tensor& known,
                                const at::Tensor& mask, const at::Tensor& base, int64_t lead, bool online,
                                bool save) {
  const int64_t T = g1p.size(0), B = g1p.size(1), H1 = g1p.size(2) / 4, H2 = g2pre.size(1) / 4,
                N = xk.size(2);
  const int64_t K1 = H1 + H2 + 2, K2 = N + H1 + H2;
  for (const at::Tensor* p : {&g1p, &g2pre, &w1t, &wat, &negb, &w2t, &wp, &bp, &xk, static_cast<const at::Tensor*>(&res)})
    check(*p, "input", g1p);
  TORCH_CHECK(w1t.size(0) == K1 && w2t.size(0) == K2, "weight shapes do not match the states");
  const bool has_mask = mask.numel() > 0, has_base = base.numel() > 0, has_wc = wc.numel() > 0;
  if (has_wc) check(wc, "wc", g1p);
  if (online) {
    check(nobsk, "nobsk", g1p);
    check(known, "known", g1p);
  }
  if (has_mask) check(mask, "mask", g1p);
  if (has_base) check(base, "base", g1p);

  auto opt = g1p.options();
  const int64_t S = save ? T : 1;  // without `save`, one row of scratch per buffer
  at::Tensor wts = at::empty({T, B, N}, opt), h2all = at::empty({T, B, H2}, opt);
  at::Tensor preds = at::empty({T, B}, opt);
  at::Tensor z1 = at::empty({S, B, K1}, opt), z2 = at::empty({S, B, K2}, opt);
  at::Tensor s1 = at::empty({S, B, 3 * H1}, opt), g1 = at::empty({S, B, H1}, opt), tc1 = at::empty({S, B, H1}, opt);
  at::Tensor s2 = at::empty({S, B, 3 * H2}, opt), g2 = at::empty({S, B, H2}, opt), tc2 = at::empty({S, B, H2}, opt);
  // cell states: save keeps c(0..T); otherwise two rows used in turn
  at::Tensor c1 = at::zeros({save ? T + 1 : 2, B, H1}, opt), c2 = at::zeros({save ? T + 1 : 2, B, H2}, opt);
  at::Tensor gates1 = at::empty({B, 4 * H1}, opt), gates2 = at::empty({B, 4 * H2}, opt);
  at::Tensor logits = at::empty({B, N}, opt), h1 = at::zeros({B, H1}, opt), h2zero = at::zeros({B, H2}, opt);

  AT_DISPATCH_FLOATING_TYPES(g1p.scalar_type(), "sca2lstm_forward", [&] {
    using T_ = scalar_t;
    for_row_ranges(B, [&](int64_t b0, int64_t b1) {
      const int64_t nb = b1 - b0;
      // Row (t, b) of a [*, B, width] buffer starts at (t * B + b) * width; `r` is the saved-buffer row.
      const T_ *g1pp = g1p.data_ptr<T_>(), *g2prep = g2pre.data_ptr<T_>() + b0 * 4 * H2, *w1tp = w1t.data_ptr<T_>(),
               *watp = wat.data_ptr<T_>(), *negbp = negb.data_ptr<T_>(), *w2tp = w2t.data_ptr<T_>(),
               *xkp = xk.data_ptr<T_>(), *wpp = wp.data_ptr<T_>();
      const T_ bpv = bp.data_ptr<T_>()[0];
      T_* resp = res.data_ptr<T_>();
      const T_* maskp = has_mask ? mask.data_ptr<T_>() : nullptr;
      const T_* basep = has_base ? base.data_ptr<T_>() : nullptr;
      const T_* wcp = has_wc ? wc.data_ptr<T_>() : nullptr;
      const T_* nobskp = online ? nobsk.data_ptr<T_>() : nullptr;
      const T_* knp = online ? known.data_ptr<T_>() : nullptr;
      T_* predp = preds.data_ptr<T_>();
      T_ *z1b = z1.data_ptr<T_>(), *z2b = z2.data_ptr<T_>(), *s1b = s1.data_ptr<T_>(), *g1b = g1.data_ptr<T_>(),
         *tc1b = tc1.data_ptr<T_>(), *c1b = c1.data_ptr<T_>(), *s2b = s2.data_ptr<T_>(), *g2b = g2.data_ptr<T_>(),
         *tc2b = tc2.data_ptr<T_>(), *c2b = c2.data_ptr<T_>(), *wtsb = wts.data_ptr<T_>(), *h2b = h2all.data_ptr<T_>();
      T_ *gates1p = gates1.data_ptr<T_>() + b0 * 4 * H1, *gates2p = gates2.data_ptr<T_>() + b0 * 4 * H2,
         *lg = logits.data_ptr<T_>() + b0 * N, *h1p = h1.data_ptr<T_>() + b0 * H1;
      const T_* h2prev = h2zero.data_ptr<T_>() + b0 * H2;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t r = save ? t : 0;
        const int64_t cprev = save ? t : (t % 2), ccur = save ? t + 1 : ((t + 1) % 2);
        const int64_t row = r * B + b0, trow = t * B + b0;
        // LSTM1 on z1 = [h1, h2, residual(t)]
        T_* z1p = z1b + row * K1;
        const T_* rt = resp + trow * 2;
        for (int64_t b = 0; b < nb; ++b) {
          T_* zr = z1p + b * K1;
          std::copy(h1p + b * H1, h1p + (b + 1) * H1, zr);
          std::copy(h2prev + b * H2, h2prev + (b + 1) * H2, zr + H1);
          zr[H1 + H2] = rt[2 * b];
          zr[H1 + H2 + 1] = rt[2 * b + 1];
        }
        gemm<T_>(nb, 4 * H1, K1, z1p, K1, w1tp, 4 * H1, g1pp + trow * 4 * H1, 4 * H1, gates1p, 4 * H1);
        cell_forward(gates1p, c1b + (cprev * B + b0) * H1, s1b + row * 3 * H1, g1b + row * H1,
                     c1b + (ccur * B + b0) * H1, tc1b + row * H1, h1p, nb, H1);
        // masked softmax over the features (logits are finite on at least one feature per row)
        gemm<T_>(nb, N, H1, h1p, H1, watp, N, negbp + trow * N, N, lg, N);
        T_* wt = wtsb + trow * N;
        for (int64_t b = 0; b < nb; ++b) {
          T_ mx = -std::numeric_limits<T_>::infinity();
          for (int64_t k = 0; k < N; ++k) mx = std::max(mx, lg[b * N + k]);
          T_ sum = 0;
          for (int64_t k = 0; k < N; ++k) sum += (wt[b * N + k] = Fast<T_>::exp(lg[b * N + k] - mx));
          for (int64_t k = 0; k < N; ++k) wt[b * N + k] /= sum;
        }
        // LSTM2 on z2 = [N w x, h1, h2]
        T_* z2p = z2b + row * K2;
        const T_* xt = xkp + trow * N;
        for (int64_t b = 0; b < nb; ++b) {
          T_* zr = z2p + b * K2;
          for (int64_t k = 0; k < N; ++k) zr[k] = wt[b * N + k] * xt[b * N + k];
          std::copy(h1p + b * H1, h1p + (b + 1) * H1, zr + N);
          std::copy(h2prev + b * H2, h2prev + (b + 1) * H2, zr + N + H1);
        }
        gemm<T_>(nb, 4 * H2, K2, z2p, K2, w2tp, 4 * H2, g2prep, 4 * H2, gates2p, 4 * H2);
        T_* h2t = h2b + trow * H2;
        T_* c2t = c2b + (ccur * B + b0) * H2;
        cell_forward(gates2p, c2b + (cprev * B + b0) * H2, s2b + row * 3 * H2, g2b + row * H2, c2t,
                     tc2b + row * H2, h2t, nb, H2);
        // the prediction (with the dropout mask, the cell readout and the skip base), fed back at
        // t + lead when online
        for (int64_t b = 0; b < nb; ++b) {
          const int64_t i = trow + b;
          T_ p = bpv;
          const T_ *hb = h2t + b * H2, *cb = c2t + b * H2;
          const T_* mb = maskp ? maskp + i * H2 : nullptr;
          // (x * 1 is exact: without a mask these sums are the same as without the factor)
          for (int64_t j = 0; j < H2; ++j) p += hb[j] * (mb ? mb[j] : T_(1)) * wpp[j];
          if (wcp)
            for (int64_t j = 0; j < H2; ++j) p += cb[j] * (mb ? mb[j] : T_(1)) * wcp[j];
          if (basep) p += basep[i];
          predp[i] = p;
          if (online && t + lead < T) resp[(i + lead * B) * 2] = nobskp[i] + p * knp[i];
        }
        h2prev = h2t;
      }
    });
  });
  std::vector<at::Tensor> out{wts, h2all, preds};
  if (save) {
    for (auto& b : {z1, z2, s1, g1, c1, tc1, s2, g2, c2, tc2}) out.push_back(b);
  }
  return out;
}

// Backward loop: the state gradients carried from step T-1 down to 0.
//   s1 [T, B, 3H1], g1, tc1 [T, B, H1], c1 [T+1, B, H1] (likewise for LSTM2); wts [T, B, N] (weights
//   after the keep mask); wx [T, B, N] = wts * xk; dww [T, B, N] gradient reaching the returned
//   weights, or empty; dp [T, B]; wp [H2]; wc [H2] (the cell readout) or empty; mask [T, B, H2] or
//   empty; w2 [4H2, K2]; wa [N, H1]; w1hh [4H1, H1 + H2] (LSTM1's recurrent weights on [h1, h2]).
// Returns {dg1 [T, B, 4H1], dg2 [T, B, 4H2], da [T, B, N]}: gradients of the gate pre-activations and
// of the weight-head logits at every step.
std::vector<at::Tensor> backward(const at::Tensor& s1, const at::Tensor& g1, const at::Tensor& c1,
                                 const at::Tensor& tc1, const at::Tensor& s2, const at::Tensor& g2,
                                 const at::Tensor& c2, const at::Tensor& tc2, const at::Tensor& wts,
                                 const at::Tensor& wx, const at::Tensor& dww, const at::Tensor& dp,
                                 const at::Tensor& wp, const at::Tensor& wc, const at::Tensor& mask,
                                 const at::Tensor& w2,
                                 const at::Tensor& wa, const at::Tensor& w1hh) {
  const int64_t T = s1.size(0), B = s1.size(1), H1 = g1.size(2), H2 = g2.size(2), N = wts.size(2);
  const int64_t K2 = N + H1 + H2;
  for (const at::Tensor* p : {&s1, &g1, &c1, &tc1, &s2, &g2, &c2, &tc2, &wts, &wx, &dp, &wp, &w2, &wa, &w1hh})
    check(*p, "saved tensor", s1);
  const bool has_mask = mask.numel() > 0, has_dww = dww.numel() > 0, has_wc = wc.numel() > 0;
  if (has_mask) check(mask, "mask", s1);
  if (has_wc) check(wc, "wc", s1);
  if (has_dww) check(dww, "dweights", s1);

  auto opt = s1.options();
  at::Tensor dg1 = at::empty({T, B, 4 * H1}, opt), dg2 = at::empty({T, B, 4 * H2}, opt),
             da = at::empty({T, B, N}, opt);
  at::Tensor dz = at::empty({B, K2}, opt), dh1 = at::empty({B, H1}, opt), dhh = at::zeros({B, H1 + H2}, opt);
  at::Tensor dh2 = at::empty({B, H2}, opt), dc1 = at::zeros({B, H1}, opt), dc2 = at::zeros({B, H2}, opt);

  AT_DISPATCH_FLOATING_TYPES(s1.scalar_type(), "sca2lstm_backward", [&] {
    using T_ = scalar_t;
    for_row_ranges(B, [&](int64_t b0, int64_t b1) {
      const int64_t nb = b1 - b0;
      const T_ *dpp = dp.data_ptr<T_>(), *wpp = wp.data_ptr<T_>(), *w2p = w2.data_ptr<T_>(), *wap = wa.data_ptr<T_>(),
               *w1hhp = w1hh.data_ptr<T_>(), *s1b = s1.data_ptr<T_>(), *g1b = g1.data_ptr<T_>(),
               *c1b = c1.data_ptr<T_>(), *tc1b = tc1.data_ptr<T_>(), *s2b = s2.data_ptr<T_>(),
               *g2b = g2.data_ptr<T_>(), *c2b = c2.data_ptr<T_>(), *tc2b = tc2.data_ptr<T_>(),
               *wxb = wx.data_ptr<T_>(), *wtsb = wts.data_ptr<T_>();
      const T_* maskp = has_mask ? mask.data_ptr<T_>() : nullptr;
      const T_* dwwp = has_dww ? dww.data_ptr<T_>() : nullptr;
      const T_* wcp = has_wc ? wc.data_ptr<T_>() : nullptr;
      T_ *dg1b = dg1.data_ptr<T_>(), *dg2b = dg2.data_ptr<T_>(), *dab = da.data_ptr<T_>();
      T_ *dzp = dz.data_ptr<T_>() + b0 * K2, *dh1p = dh1.data_ptr<T_>() + b0 * H1,
         *dhhp = dhh.data_ptr<T_>() + b0 * (H1 + H2), *dh2p = dh2.data_ptr<T_>() + b0 * H2,
         *dc1p = dc1.data_ptr<T_>() + b0 * H1, *dc2p = dc2.data_ptr<T_>() + b0 * H2;
      // carry_h2 holds the gradient reaching h2(t) from step t+1 (through LSTM1 and LSTM2); zero at T-1
      std::vector<T_> carry_h2(nb * H2, T_(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t row = t * B + b0;
        // dh2(t) = carried part + the prediction head's dpred(t) * wp (* dropout mask); the cell
        // readout adds dpred(t) * wc (* mask) to the gradient reaching c2(t)
        for (int64_t b = 0; b < nb; ++b) {
          const T_ d = dpp[row + b];
          for (int64_t j = 0; j < H2; ++j) {
            const T_ m = maskp ? maskp[(row + b) * H2 + j] : T_(1);
            dh2p[b * H2 + j] = carry_h2[b * H2 + j] + d * wpp[j] * m;
            if (wcp) dc2p[b * H2 + j] += d * wcp[j] * m;
          }
        }
        // LSTM2 at t, then the gradients of z2 = [N w x, h1, h2(t-1)]
        T_ *dg2r = dg2b + row * 4 * H2, *dg1r = dg1b + row * 4 * H1;
        cell_backward(s2b + row * 3 * H2, g2b + row * H2, c2b + row * H2, tc2b + row * H2, dh2p, dc2p, dg2r,
                      nb, H2);
        gemm<T_>(nb, K2, 4 * H2, dg2r, 4 * H2, w2p, K2, nullptr, 0, dzp, K2);
        // masked softmax: da = w (dw - sum(w dw)), with dw = dz_x * N x (+ the weights' own gradient)
        const T_ *wxt = wxb + row * N, *wt = wtsb + row * N;
        T_* dat = dab + row * N;
        for (int64_t b = 0; b < nb; ++b) {
          T_ sum = 0;
          for (int64_t k = 0; k < N; ++k) {
            T_ p = dzp[b * K2 + k] * wxt[b * N + k];
            if (dwwp) p += dwwp[row * N + b * N + k] * wt[b * N + k];
            dat[b * N + k] = p;
            sum += p;
          }
          for (int64_t k = 0; k < N; ++k) dat[b * N + k] -= wt[b * N + k] * sum;
        }
        // dh1(t) = dz_h1 + da @ wa + (carried from LSTM1 at t+1)
        gemm<T_>(nb, H1, N, dat, N, wap, H1, nullptr, 0, dh1p, H1);
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t j = 0; j < H1; ++j) dh1p[b * H1 + j] += dzp[b * K2 + N + j] + dhhp[b * (H1 + H2) + j];
        // LSTM1 at t
        cell_backward(s1b + row * 3 * H1, g1b + row * H1, c1b + row * H1, tc1b + row * H1, dh1p, dc1p, dg1r,
                      nb, H1);
        if (t == 0) break;
        // carries to step t-1: LSTM1's recurrent product reaches h1(t-1) and h2(t-1)
        gemm<T_>(nb, H1 + H2, 4 * H1, dg1r, 4 * H1, w1hhp, H1 + H2, nullptr, 0, dhhp, H1 + H2);
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t j = 0; j < H2; ++j)
            carry_h2[b * H2 + j] = dzp[b * K2 + N + H1 + j] + dhhp[b * (H1 + H2) + H1 + j];
      }
    });
  });
  return {dg1, dg2, da};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "SCA2LSTM recurrence: forward loop");
  m.def("backward", &backward, "SCA2LSTM recurrence: backward loop");
}
