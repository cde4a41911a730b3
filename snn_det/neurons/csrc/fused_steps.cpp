// Fused multi-step IF and signed neurons on the CPU (snn_det.neurons._C).
//
// Each kernel runs the K time steps of one chunk for every element in one pass:
// OpenMP (at::parallel_for, so torch.set_num_threads applies) splits the elements,
// and a block of BLOCK consecutive elements keeps its membrane (and its thresholds: one
// channel's, or per element in channels-last steps) in registers while the time loop
// runs over it.  Memory traffic is one read of the
// input currents and one write of the outputs, instead of ~5 (IF) or ~12 (signed)
// full-size tensor passes per step in the Python loop.  Given ``out=x`` the steps run
// in place: the outputs go over the currents they were computed from (no new buffer, and
// the written cache lines are the ones just read, not fresh lines fetched to be written).
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
#include <ATen/ops/empty.h>
#include <c10/core/MemoryFormat.h>
#include <torch/library.h>

#include "common.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

namespace {

// 32-byte vectors (GCC/Clang vector extensions: lane-wise IEEE operations, lowered to
// two 16-byte halves where AVX is not available)
template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(32))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(32))); };

constexpr int NV = 2;   // vectors per block: their membranes stay in registers
// Where a run of elements shares one threshold, TILE blocks go through the K steps
// together (their membranes in L1): each step then reads and writes TILE x 64 B in a row
// instead of one cache line, which the prefetchers follow better.  Ad hoc, one thread,
// K = 32 steps of 4 x 128 x 40 x 40 in place: IF 10.7 -> 7.4-8.6 ms, signed 14.5-15.5 ->
// 10.6-11.3 ms at TILE 4; TILE 2 and 8 were slower.  Same operations per element.
constexpr int TILE = 4;
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

// IF: one full block (vectors) and a scalar tail of n < block elements; thb holds the
// threshold of each of the block's elements (one channel's, or in a channels-last step
// each element's own).  Per step: u = v + x; o = (u >= theta) * theta; v = u - o.
template <typename T, int NV = NV>
SNN_DET_INLINE void if_block(const T* x, T* __restrict v, T* out,
                             const T* __restrict thb, int64_t K, int64_t N, int64_t XS) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  V vr[NV], thv[NV], zero[NV];
  for (int k = 0; k < NV; ++k) {
    vr[k] = load<V>(v + k * L);
    thv[k] = load<V>(thb + k * L);
    zero[k] = splat<V>(T(0)) * thv[k];                   // what false * theta gives
  }
  for (int64_t t = 0; t < K; ++t) {
    for (int k = 0; k < NV; ++k) {
      V u = vr[k] + load<V>(x + t * XS + k * L);        // v.add_(x[t])
      V o = (u >= thv[k]) ? thv[k] : zero[k];            // torch.mul(v >= theta, theta)
      store(out + t * N + k * L, o);
      vr[k] = u - o;                                     // v.sub_(out[t])
    }
  }
  for (int k = 0; k < NV; ++k) store(v + k * L, vr[k]);
}

template <typename T>
SNN_DET_INLINE void if_tail(const T* x, T* __restrict v, T* out,
                            const T* __restrict thb, int64_t n, int64_t K, int64_t N,
                            int64_t XS) {
  for (int64_t j = 0; j < n; ++j) {
    const T th = thb[j], zero = T(0) * th;
    T vj = v[j];
    for (int64_t t = 0; t < K; ++t) {
      T u = vj + x[t * XS + j];
      T o = (u >= th) ? th : zero;
      out[t * N + j] = o;
      vj = u - o;
    }
    v[j] = vj;
  }
}

// Signed: S = S + x; d = max(S, slope S) / theta - n; q = 1[d >= h] - 1[d <= -h];
// n = n + q; o = q theta.  thb: as for if_block.
template <typename T, int NV = NV>
SNN_DET_INLINE void signed_block(const T* x, T* __restrict v, T* __restrict nn,
                                 T* out, const T* __restrict thb, T slope, T h,
                                 int64_t K, int64_t N, int64_t XS) {
  using V = typename VecOf<T>::type;
  constexpr int L = sizeof(V) / sizeof(T);
  const V sl = splat<V>(slope), hv = splat<V>(h), mhv = splat<V>(-h);
  const V one = splat<V>(T(1)), zero = splat<V>(T(0));
  V vr[NV], nr[NV], thv[NV];
  for (int k = 0; k < NV; ++k) {
    vr[k] = load<V>(v + k * L);
    nr[k] = load<V>(nn + k * L);
    thv[k] = load<V>(thb + k * L);
  }
  for (int64_t t = 0; t < K; ++t) {
    for (int k = 0; k < NV; ++k) {
      V s = vr[k] + load<V>(x + t * XS + k * L);        // v.add_(x[t])
      V d = s * sl;                                      // torch.mul(v, slope)
      d = (s < d) ? d : s;                               // torch.maximum (NaN stays NaN)
      d = d / thv[k];                                    // d.div_(theta)
      d = d - nr[k];                                     // .sub_(n)
      V q = ((d >= hv) ? one : zero) - ((d <= mhv) ? one : zero);   // o = pos; o -= neg
      nr[k] = nr[k] + q;                                 // n.add_(o)
      store(out + t * N + k * L, q * thv[k]);            // o.mul_(theta)
      vr[k] = s;
    }
  }
  for (int k = 0; k < NV; ++k) { store(v + k * L, vr[k]); store(nn + k * L, nr[k]); }
}

template <typename T>
SNN_DET_INLINE void signed_tail(const T* x, T* __restrict v, T* __restrict nn,
                                T* out, const T* __restrict thb, T slope, T h,
                                int64_t n, int64_t K, int64_t N, int64_t XS) {
  for (int64_t j = 0; j < n; ++j) {
    const T th = thb[j];
    T s = v[j], nj = nn[j];
    for (int64_t t = 0; t < K; ++t) {
      s = s + x[t * XS + j];
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

// Where the threshold of each element of one step comes from: one value, one per
// channel plane of ``inner`` elements (NCHW), or element i's channel i % C (channels
// last).  ``segment(i, e)`` is where the run starting at i must stop (a channel plane
// shares one threshold), ``fill`` writes the thresholds of elements [i, i + n).
template <typename T>
struct Thresholds {
  const T* theta;
  int64_t C, inner;
  bool per_channel, channels_last;
  SNN_DET_INLINE int64_t segment(int64_t i, int64_t e) const {
    if (!per_channel || channels_last) return e;
    return std::min(e, (i / inner + 1) * inner);
  }
  SNN_DET_INLINE void fill(T* thb, int64_t i, int64_t n) const {
    if (!per_channel) { std::fill(thb, thb + n, theta[0]); return; }
    if (!channels_last) { std::fill(thb, thb + n, theta[(i / inner) % C]); return; }
    int64_t c = i % C;
    for (int64_t j = 0; j < n; ++j) { thb[j] = theta[c]; if (++c == C) c = 0; }
  }
};

// Elements [b, e) of the N of one step, in blocks of BLOCK elements; in NCHW steps a
// run of blocks stays in one channel plane and shares its threshold.
template <typename T>
SNN_DET_CLONES void if_range(const T* x, T* v, const Thresholds<T>& th, T* out, int64_t K,
                             int64_t N, int64_t XS, int64_t b, int64_t e) {
  constexpr int64_t B = block_size<T>();
  T thb[TILE * B];   // one threshold per element of a tile (or of a block)
  int64_t i = b;
  while (i < e) {
    const int64_t stop = th.segment(i, e);
    const bool same = !th.channels_last || !th.per_channel;   // one threshold per run
    if (same) th.fill(thb, i, TILE * B);
    if (same) {   // tiles of TILE blocks: each step reads and writes TILE * 64 B in a row
      for (; i + TILE * B <= stop; i += TILE * B)
        if_block<T, TILE * NV>(x + i, v + i, out + i, thb, K, N, XS);
    }
    for (; i + B <= stop; i += B) {
      if (!same) th.fill(thb, i, B);
      if_block<T>(x + i, v + i, out + i, thb, K, N, XS);
    }
    if (i < stop) {
      if (!same) th.fill(thb, i, stop - i);
      if_tail<T>(x + i, v + i, out + i, thb, stop - i, K, N, XS);
    }
    i = stop;
  }
}

template <typename T>
SNN_DET_CLONES void signed_range(const T* x, T* v, T* nn, const Thresholds<T>& th, T* out,
                                 T slope, T h, int64_t K, int64_t N, int64_t XS, int64_t b,
                                 int64_t e) {
  constexpr int64_t B = block_size<T>();
  T thb[TILE * B];   // one threshold per element of a tile (or of a block)
  int64_t i = b;
  while (i < e) {
    const int64_t stop = th.segment(i, e);
    const bool same = !th.channels_last || !th.per_channel;
    if (same) th.fill(thb, i, TILE * B);
    if (same) {
      for (; i + TILE * B <= stop; i += TILE * B)
        signed_block<T, TILE * NV>(x + i, v + i, nn + i, out + i, thb, slope, h, K, N, XS);
    }
    for (; i + B <= stop; i += B) {
      if (!same) th.fill(thb, i, B);
      signed_block<T>(x + i, v + i, nn + i, out + i, thb, slope, h, K, N, XS);
    }
    if (i < stop) {
      if (!same) th.fill(thb, i, stop - i);
      signed_tail<T>(x + i, v + i, nn + i, out + i, thb, slope, h, stop - i, K, N, XS);
    }
    i = stop;
  }
}

// grain: about 64 KiB of input per task
inline int64_t grain(int64_t K) { return std::max<int64_t>(64, 16384 / std::max<int64_t>(K, 1)); }

// x: [K, B, C, ...] with its K steps one after the other (time stride N, the elements
// of a step), or one step repeated over K (time stride 0: a constant input current, the
// direct encoding of the image, read K times instead of copied).  A step is contiguous,
// or for 4-D steps channels last ([B, H, W, C] in memory; each element then has its own
// channel's threshold).  State tensors: shaped and laid out like one step; theta: C or 1
// elements (shape (1, C, 1, 1) or (1, 1, 1, 1)).  Returns whether steps are channels last.
bool check(const at::Tensor& x, const at::Tensor& theta,
           std::initializer_list<const at::Tensor*> states) {
  TORCH_CHECK(x.device().is_cpu(), "fused neuron steps run on the CPU");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "fused neuron steps take float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.dim() >= 3, "x must be a [K, B, C, ...] tensor");
  const at::Tensor step = x[0];
  const bool cl = !step.is_contiguous() && step.dim() == 4 &&
                  step.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK(step.is_contiguous() || cl,
              "each step of x must be contiguous (or channels last for 4-D steps)");
  TORCH_CHECK(x.size(0) == 1 || x.stride(0) == 0 || x.stride(0) == step.numel(),
              "the steps of x must follow one another or be one step expanded over K");
  const auto fmt = cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (const at::Tensor* s : states) {
    TORCH_CHECK(s->scalar_type() == x.scalar_type() && s->device().is_cpu(),
                "state must be a CPU tensor of the input's dtype");
    TORCH_CHECK(s->sizes() == x.sizes().slice(1) && s->is_contiguous(fmt),
                "state must be shaped and laid out like one step of x");
  }
  TORCH_CHECK(theta.scalar_type() == x.scalar_type() && theta.device().is_cpu() &&
                  theta.is_contiguous() && (theta.numel() == 1 || theta.numel() == x.size(2)),
              "theta must hold 1 or C values of the input's dtype");
  return cl;
}

// The output: K steps one after the other, each laid out like x's steps; or ``into``,
// which must be x itself (its K steps one after the other: the steps run in place, each
// element's input read before its output is written) or such a tensor of its own.
at::Tensor empty_steps(const at::Tensor& x, bool channels_last,
                       const std::optional<at::Tensor>& into) {
  if (into.has_value() && into->defined()) {
    const at::Tensor& o = *into;
    TORCH_CHECK(o.sizes() == x.sizes() && o.scalar_type() == x.scalar_type() &&
                    o.device() == x.device(), "out must be shaped like x");
    const at::Tensor step = o[0];
    TORCH_CHECK((channels_last ? step.is_contiguous(at::MemoryFormat::ChannelsLast)
                               : step.is_contiguous()) &&
                    (o.size(0) == 1 || o.stride(0) == step.numel()),
                "out must hold its steps one after the other, laid out like x's steps");
    const bool same = o.data_ptr() == x.data_ptr() && o.strides() == x.strides();
    if (!same) {   // only x itself may share memory with out
      const char* a = static_cast<const char*>(o.data_ptr());
      const char* b = static_cast<const char*>(x.data_ptr());
      const int64_t na = o.numel() * o.element_size();
      const int64_t nb = (x.size(0) == 1 || x.stride(0) == 0 ? x[0].numel() : x.numel()) *
                         x.element_size();
      TORCH_CHECK(a + na <= b || b + nb <= a, "out overlaps x without being x");
    }
    return o;
  }
  if (!channels_last) return at::empty(x.sizes(), x.options());
  const auto s = x.sizes();
  return at::empty({s[0] * s[1], s[2], s[3], s[4]},
                   x.options().memory_format(at::MemoryFormat::ChannelsLast)).view(s);
}

template <typename T>
Thresholds<T> thresholds(const at::Tensor& x, const at::Tensor& theta, bool channels_last) {
  const int64_t N = x[0].numel(), C = x.size(2);
  return Thresholds<T>{theta.const_data_ptr<T>(), C, N / (x.size(1) * C), theta.numel() > 1,
                       channels_last};
}

at::Tensor if_steps_(const at::Tensor& x, at::Tensor& v, const at::Tensor& theta,
                     const std::optional<at::Tensor>& into) {
  const bool cl = check(x, theta, {&v});
  at::Tensor out = empty_steps(x, cl, into);
  const int64_t K = x.size(0), N = v.numel();
  const int64_t XS = K > 1 ? x.stride(0) : N;      // N, or 0 for a constant input
  if (N == 0 || K == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "if_steps_", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* vp = v.mutable_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const Thresholds<scalar_t> th = thresholds<scalar_t>(x, theta, cl);
    at::parallel_for(0, N, grain(K), [&](int64_t b, int64_t e) {
      if_range<scalar_t>(xp, vp, th, op, K, N, XS, b, e);
    });
  });
  return out;
}

at::Tensor signed_steps_(const at::Tensor& x, at::Tensor& v, at::Tensor& n,
                         const at::Tensor& theta, double slope, double h,
                         const std::optional<at::Tensor>& into) {
  const bool cl = check(x, theta, {&v, &n});
  at::Tensor out = empty_steps(x, cl, into);
  const int64_t K = x.size(0), N = v.numel();
  const int64_t XS = K > 1 ? x.stride(0) : N;
  if (N == 0 || K == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "signed_steps_", [&] {
    // torch casts a Python scalar operand to the tensor's dtype before the op
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* vp = v.mutable_data_ptr<scalar_t>();
    scalar_t* np = n.mutable_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const scalar_t sl = static_cast<scalar_t>(slope), hh = static_cast<scalar_t>(h);
    const Thresholds<scalar_t> th = thresholds<scalar_t>(x, theta, cl);
    at::parallel_for(0, N, grain(K), [&](int64_t b, int64_t e) {
      signed_range<scalar_t>(xp, vp, np, th, op, sl, hh, K, N, XS, b, e);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(snn_det, m) {
  // out: where the steps go (x itself: in place); none: a new tensor
  m.def("if_steps_(Tensor x, Tensor(a!) v, Tensor theta, Tensor? out=None) -> Tensor");
  m.def("signed_steps_(Tensor x, Tensor(a!) v, Tensor(b!) n, Tensor theta, float slope, "
        "float h, Tensor? out=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(snn_det, CPU, m) {
  m.impl("if_steps_", &if_steps_);
  m.impl("signed_steps_", &signed_steps_);
}

// An empty Python module: importing it loads this library, which registers the ops.
static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
