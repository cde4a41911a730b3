// Fused multi-step IF and signed neurons on the CPU (snn_det.neurons._C).
//
// Each kernel runs the K time steps of one chunk for every element in one pass:
// OpenMP (at::parallel_for, so torch.set_num_threads applies) splits the elements,
// and a block of BLOCK consecutive elements of one channel keeps its membrane in
// registers while the time loop runs over it.  Memory traffic is one read of the
// input currents and one write of the outputs, instead of ~5 (IF) or ~12 (signed)
// full-size tensor passes per step in the Python loop.
//
// The operations and their order are those of the reference loops in
// snn_det/neurons/if_neuron.py (_if_steps, _signed_steps), in the input's dtype, so
// the spikes and the final state are bitwise identical.  The build must not use
// -ffast-math or FMA contraction (setup.py passes -ffp-contract=off).
//
// Registered as torch.ops.snn_det.if_steps_ / signed_steps_; importing the module
// (an empty Python module) loads the library and registers them.
#include <Python.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "common.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace {

// 32-byte vectors (GCC/Clang vector extensions: lane-wise IEEE operations, lowered to
// two 16-byte halves where AVX is not available)
template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(32))); };

constexpr int NV = 2;   // vectors per block: their membranes stay in registers
template <typename T>
constexpr int64_t block_size() { return NV * int64_t(sizeof(typename VecOf<T>::type) / sizeof(T)); }

template <typename V, typename T>
SNN_DET_INLINE V splat(T a) {
  V r;
  for (int l = 0; l < int(sizeof(V) / sizeof(T)); ++l) r[l] = a;
  return r;
}
template <typename V, typename T>
SNN_DET_INLINE V load(const T* p) { V r; std::memcpy(&r, p, sizeof(V)); return r; }
template <typename V, typename T>
SNN_DET_INLINE void store(T* p, const V& a) { std::memcpy(p, &a, sizeof(V)); }

// IF: one full block (vectors) and a scalar tail of n < block elements, all sharing
// the threshold th.  Per step: u = v + x; o = (u >= theta) * theta; v = u - o.
template <typename T>
SNN_DET_INLINE void if_block(const T* __restrict x, T* __restrict v, T* __restrict out, T th,
                             int64_t K, int64_t N) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  const V thv = splat<V>(th), zero = splat<V>(T(0) * th);   // what false * theta gives
  V vr[NV];
  for (int k = 0; k < NV; ++k) vr[k] = load<V>(v + k * L);
  for (int64_t t = 0; t < K; ++t) {
    for (int k = 0; k < NV; ++k) {
      V u = vr[k] + load<V>(x + t * N + k * L);         // v.add_(x[t])
      V o = (u >= thv) ? thv : zero;                     // torch.mul(v >= theta, theta)
      store(out + t * N + k * L, o);
      vr[k] = u - o;                                     // v.sub_(out[t])
    }
  }
  for (int k = 0; k < NV; ++k) store(v + k * L, vr[k]);
}

template <typename T>
SNN_DET_INLINE void if_tail(const T* __restrict x, T* __restrict v, T* __restrict out, T th,
                            int64_t n, int64_t K, int64_t N) {
  const T zero = T(0) * th;
  for (int64_t j = 0; j < n; ++j) {
    T vj = v[j];
    for (int64_t t = 0; t < K; ++t) {
      T u = vj + x[t * N + j];
      T o = (u >= th) ? th : zero;
      out[t * N + j] = o;
      vj = u - o;
    }
    v[j] = vj;
  }
}

// Signed: S = S + x; d = max(S, slope S) / theta - n; q = 1[d >= h] - 1[d <= -h];
// n = n + q; o = q theta.
template <typename T>
SNN_DET_INLINE void signed_block(const T* __restrict x, T* __restrict v, T* __restrict nn,
                                 T* __restrict out, T th, T slope, T h, int64_t K, int64_t N) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  const V thv = splat<V>(th), sl = splat<V>(slope), hv = splat<V>(h), mhv = splat<V>(-h);
  const V one = splat<V>(T(1)), zero = splat<V>(T(0));
  V vr[NV], nr[NV];
  for (int k = 0; k < NV; ++k) { vr[k] = load<V>(v + k * L); nr[k] = load<V>(nn + k * L); }
  for (int64_t t = 0; t < K; ++t) {
    for (int k = 0; k < NV; ++k) {
      V s = vr[k] + load<V>(x + t * N + k * L);         // v.add_(x[t])
      V d = s * sl;                                      // torch.mul(v, slope)
      d = (s < d) ? d : s;                               // torch.maximum (NaN stays NaN)
      d = d / thv;                                       // d.div_(theta)
      d = d - nr[k];                                     // .sub_(n)
      V q = ((d >= hv) ? one : zero) - ((d <= mhv) ? one : zero);   // o = pos; o -= neg
      nr[k] = nr[k] + q;                                 // n.add_(o)
      store(out + t * N + k * L, q * thv);               // o.mul_(theta)
      vr[k] = s;
    }
  }
  for (int k = 0; k < NV; ++k) { store(v + k * L, vr[k]); store(nn + k * L, nr[k]); }
}

template <typename T>
SNN_DET_INLINE void signed_tail(const T* __restrict x, T* __restrict v, T* __restrict nn,
                                T* __restrict out, T th, T slope, T h, int64_t n, int64_t K,
                                int64_t N) {
  for (int64_t j = 0; j < n; ++j) {
    T s = v[j], nj = nn[j];
    for (int64_t t = 0; t < K; ++t) {
      s = s + x[t * N + j];
      T d = s * slope;
      d = (s < d) ? d : s;
      d = d / th;
      d = d - nj;
      T q = static_cast<T>(d >= h) - static_cast<T>(d <= -h);
      nj = nj + q;
      out[t * N + j] = q * th;
    }
    v[j] = s;
    nn[j] = nj;
  }
}

// Elements [b, e) of the N of one step, in segments of at most BLOCK elements that
// do not cross a channel boundary (``inner`` elements per channel plane).
template <typename T>
SNN_DET_CLONES void if_range(const T* x, T* v, const T* theta, T* out, int64_t K, int64_t N,
                             int64_t C, int64_t inner, bool per_channel, int64_t b,
                             int64_t e) {
  int64_t i = b;
  while (i < e) {
    const int64_t stop = std::min(e, (i / inner + 1) * inner);
    const T th = theta[per_channel ? (i / inner) % C : 0];
    for (; i + block_size<T>() <= stop; i += block_size<T>())
      if_block<T>(x + i, v + i, out + i, th, K, N);
    if (i < stop) if_tail<T>(x + i, v + i, out + i, th, stop - i, K, N);
    i = stop;
  }
}

template <typename T>
SNN_DET_CLONES void signed_range(const T* x, T* v, T* nn, const T* theta, T* out, T slope,
                                 T h, int64_t K, int64_t N, int64_t C, int64_t inner,
                                 bool per_channel, int64_t b, int64_t e) {
  int64_t i = b;
  while (i < e) {
    const int64_t stop = std::min(e, (i / inner + 1) * inner);
    const T th = theta[per_channel ? (i / inner) % C : 0];
    for (; i + block_size<T>() <= stop; i += block_size<T>())
      signed_block<T>(x + i, v + i, nn + i, out + i, th, slope, h, K, N);
    if (i < stop) signed_tail<T>(x + i, v + i, nn + i, out + i, th, slope, h, stop - i, K, N);
    i = stop;
  }
}

// grain: about 64 KiB of input per task
inline int64_t grain(int64_t K) { return std::max<int64_t>(64, 16384 / std::max<int64_t>(K, 1)); }

// x: [K, B, C, ...] contiguous; a state tensor: contiguous, the shape of x[0];
// theta: C or 1 elements (shape (1, C, 1, 1) or (1, 1, 1, 1)).
void check(const at::Tensor& x, const at::Tensor& theta,
           std::initializer_list<const at::Tensor*> states) {
  TORCH_CHECK(x.device().is_cpu(), "fused neuron steps run on the CPU");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "fused neuron steps take float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() >= 3 && x.is_contiguous(), "x must be a contiguous [K, B, C, ...] tensor");
  for (const at::Tensor* s : states) {
    TORCH_CHECK(s->scalar_type() == x.scalar_type() && s->device().is_cpu(),
                "state must be a CPU tensor of the input's dtype");
    TORCH_CHECK(s->is_contiguous() && s->sizes() == x.sizes().slice(1),
                "state must be contiguous and shaped like one step of x");
  }
  TORCH_CHECK(theta.scalar_type() == x.scalar_type() && theta.device().is_cpu() &&
                  theta.is_contiguous() && (theta.numel() == 1 || theta.numel() == x.size(2)),
              "theta must hold 1 or C values of the input's dtype");
}

at::Tensor if_steps_(const at::Tensor& x, at::Tensor& v, const at::Tensor& theta) {
  check(x, theta, {&v});
  at::Tensor out = at::empty_like(x);
  const int64_t K = x.size(0), N = v.numel(), C = x.size(2);
  if (N == 0 || K == 0) return out;
  const int64_t inner = N / (x.size(1) * C);      // elements per channel plane
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "if_steps_", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* tp = theta.const_data_ptr<scalar_t>();
    scalar_t* vp = v.mutable_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const bool per_channel = theta.numel() > 1;
    at::parallel_for(0, N, grain(K), [&](int64_t b, int64_t e) {
      if_range<scalar_t>(xp, vp, tp, op, K, N, C, inner, per_channel, b, e);
    });
  });
  return out;
}

at::Tensor signed_steps_(const at::Tensor& x, at::Tensor& v, at::Tensor& n,
                         const at::Tensor& theta, double slope, double h) {
  check(x, theta, {&v, &n});
  at::Tensor out = at::empty_like(x);
  const int64_t K = x.size(0), N = v.numel(), C = x.size(2);
  if (N == 0 || K == 0) return out;
  const int64_t inner = N / (x.size(1) * C);      // elements per channel plane
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "signed_steps_", [&] {
    // torch casts a Python scalar operand to the tensor's dtype before the op
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* tp = theta.const_data_ptr<scalar_t>();
    scalar_t* vp = v.mutable_data_ptr<scalar_t>();
    scalar_t* np = n.mutable_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const scalar_t sl = static_cast<scalar_t>(slope), hh = static_cast<scalar_t>(h);
    const bool per_channel = theta.numel() > 1;
    at::parallel_for(0, N, grain(K), [&](int64_t b, int64_t e) {
      signed_range<scalar_t>(xp, vp, np, tp, op, sl, hh, K, N, C, inner, per_channel, b, e);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(snn_det, m) {
  m.def("if_steps_(Tensor x, Tensor(a!) v, Tensor theta) -> Tensor");
  m.def("signed_steps_(Tensor x, Tensor(a!) v, Tensor(b!) n, Tensor theta, float slope, "
        "float h) -> Tensor");
}

TORCH_LIBRARY_IMPL(snn_det, CPU, m) {
  m.impl("if_steps_", &if_steps_);
  m.impl("signed_steps_", &signed_steps_);
}

// An empty Python module: importing it loads this library, which registers the ops.
static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
