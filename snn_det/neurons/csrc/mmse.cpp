// The squared quantization error of MMSE threshold search (seed 001 Algo. 1), fused.
//
// For every channel c and every candidate threshold theta[c, n]:
//
//     err[c, n] = sum_s (Q(z[c, s]; T, theta[c, n]) - target[c, s])^2     (float64 sum)
//
// with Q the rate function of snn_det/neurons/quantizers.py, computed element by
// element in float32 with the operations and order of that code (mode 0: ClipFloor,
// 1: ClipRound, 2: signed QC without rounding, 3: signed QC with rounding):
//
//     ClipRound:  a = z * T / theta + 0.5;  q = (theta / T) * clamp(floor(a), 0, T)
//     ClipFloor:  a = z * T / theta;        q = (theta / T) * clamp(floor(a), 0, T)
//     signed:     y = z >= 0 ? z : z * slope;  a = y * T / theta;
//                 a = sign(a) * floor(|a| (+ 0.5));  q = (theta / T) * clamp(a, -T, T)
//
// The Python version materialises [c, N, S] float tensors for each of ~8 operations;
// here each channel's samples are read in L1-sized blocks that every candidate passes
// over.  Only the sum differs from torch's float32 mean: float32 partial sums of 512
// samples, added in float64.
//
// On x86-64 CPUs with AVX2 the per-sample work runs eight lanes at a time with the same
// float32 operations in the same order (multiply, divide, add 0.5, floor, the clamps as
// compare-and-blend so NaN behaves as in the scalar code, multiply, subtract, square,
// add) into the same 16 partial sums: the errors are bit for bit those of the scalar
// loop (tested: `simd=False` runs it), about 8x faster (GCC does not vectorise the
// scalar loop: floor and the clamps defeat it).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define SNN_DET_MMSE_AVX2 1
#endif

namespace {

template <int MODE>
SNN_DET_INLINE float quantize(float x, float theta, float Tf,
                                                     float scale, float slope) {
  if (MODE <= 1) {
    float a = x * Tf / theta;
    if (MODE == 1) a = a + 0.5f;
    a = std::floor(a);
    a = a < 0.f ? 0.f : (a > Tf ? Tf : a);
    return scale * a;
  }
  const float y = x >= 0.f ? x : x * slope;
  float a = y * Tf / theta;
  const float sg = a > 0.f ? 1.f : (a < 0.f ? -1.f : 0.f);
  float m = std::fabs(a);
  if (MODE == 3) m = m + 0.5f;
  a = sg * std::floor(m);
  a = a < -Tf ? -Tf : (a > Tf ? Tf : a);
  return scale * a;
}

// The 16 float32 partial sums of (Q(z[s]; theta) - t[s])^2 over the first n16 samples of a
// block (n16 a multiple of 16): sample s goes to lane s % 16.
template <int MODE>
SNN_DET_CLONES void lane_sums(const float* __restrict z, const float* __restrict t, int64_t n16,
                              float theta, float Tf, float scale, float slope, float* acc) {
  for (int l = 0; l < 16; ++l) acc[l] = 0.f;
  for (int64_t s = 0; s < n16; s += 16)
    for (int l = 0; l < 16; ++l) {
      const float d = quantize<MODE>(z[s + l], theta, Tf, scale, slope) - t[s + l];
      acc[l] += d * d;
    }
}

#ifdef SNN_DET_MMSE_AVX2
// quantize<MODE> on eight samples (see the scalar version: the same operations, in order).
template <int MODE>
__attribute__((target("avx2"))) SNN_DET_INLINE __m256 quantize8(
    __m256 x, __m256 theta, __m256 Tf, __m256 scale, __m256 slope) {
  const __m256 zero = _mm256_setzero_ps();
  __m256 a;
  if (MODE <= 1) {
    a = _mm256_div_ps(_mm256_mul_ps(x, Tf), theta);
    if (MODE == 1) a = _mm256_add_ps(a, _mm256_set1_ps(0.5f));
    a = _mm256_floor_ps(a);
    a = _mm256_blendv_ps(a, zero, _mm256_cmp_ps(a, zero, _CMP_LT_OQ));   // a < 0 ? 0
    a = _mm256_blendv_ps(a, Tf, _mm256_cmp_ps(a, Tf, _CMP_GT_OQ));       // a > T ? T
    return _mm256_mul_ps(scale, a);
  }
  const __m256 y = _mm256_blendv_ps(_mm256_mul_ps(x, slope), x,
                                    _mm256_cmp_ps(x, zero, _CMP_GE_OQ));  // x >= 0 ? x
  a = _mm256_div_ps(_mm256_mul_ps(y, Tf), theta);
  const __m256 one = _mm256_set1_ps(1.f);
  __m256 sg = _mm256_blendv_ps(zero, _mm256_set1_ps(-1.f), _mm256_cmp_ps(a, zero, _CMP_LT_OQ));
  sg = _mm256_blendv_ps(sg, one, _mm256_cmp_ps(a, zero, _CMP_GT_OQ));
  __m256 m = _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));  // fabs
  if (MODE == 3) m = _mm256_add_ps(m, _mm256_set1_ps(0.5f));
  a = _mm256_mul_ps(sg, _mm256_floor_ps(m));
  const __m256 neg_T = _mm256_sub_ps(zero, Tf);
  __m256 lo = _mm256_cmp_ps(a, neg_T, _CMP_LT_OQ), hi = _mm256_cmp_ps(a, Tf, _CMP_GT_OQ);
  a = _mm256_blendv_ps(_mm256_blendv_ps(a, Tf, hi), neg_T, lo);  // a < -T ? -T : (a > T ? T : a)
  return _mm256_mul_ps(scale, a);
}

// lane_sums<MODE> with the 16 lanes as two 8-lane registers: the same sums bit for bit.
template <int MODE>
__attribute__((target("avx2"))) void lane_sums_avx2(
    const float* __restrict z, const float* __restrict t, int64_t n16, float theta, float Tf,
    float scale, float slope, float* acc) {
  const __m256 vT = _mm256_set1_ps(Tf), vslope = _mm256_set1_ps(slope);
  const __m256 vth = _mm256_set1_ps(theta), vsc = _mm256_set1_ps(scale);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t s = 0; s < n16; s += 16) {
    const __m256 d0 = _mm256_sub_ps(quantize8<MODE>(_mm256_loadu_ps(z + s), vth, vT, vsc, vslope),
                                    _mm256_loadu_ps(t + s));
    const __m256 d1 = _mm256_sub_ps(
        quantize8<MODE>(_mm256_loadu_ps(z + s + 8), vth, vT, vsc, vslope),
        _mm256_loadu_ps(t + s + 8));
    acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(d0, d0));
    acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(d1, d1));
  }
  _mm256_storeu_ps(acc, acc0);
  _mm256_storeu_ps(acc + 8, acc1);
}
#endif

// One channel: err[n] = sum_s (Q(z[s]; theta[n]) - t[s])^2 for all N thresholds.  The
// samples are visited in blocks that stay in L1 while every threshold passes over them;
// a block's sum is taken in 16 float32 lanes (``lanes``: scalar or AVX2, the same sums),
// the lanes and the block's tail are added in float64 to the total.
constexpr int64_t BLOCK = 512;
using LaneSums = void (*)(const float*, const float*, int64_t, float, float, float, float,
                          float*);

template <int MODE>
void channel_errors(const float* __restrict z, const float* __restrict t, int64_t S,
                    const float* __restrict thetas, int64_t N, float Tf, float slope,
                    double* __restrict err, LaneSums lanes) {
  for (int64_t n = 0; n < N; ++n) err[n] = 0.0;
  for (int64_t s0 = 0; s0 < S; s0 += BLOCK) {
    const int64_t len = std::min(BLOCK, S - s0), n16 = len - len % 16;
    const float* zb = z + s0;
    const float* tb = t + s0;
    for (int64_t n = 0; n < N; ++n) {
      const float theta = thetas[n], scale = theta / Tf;
      float acc[16];
      lanes(zb, tb, n16, theta, Tf, scale, slope, acc);
      double part = 0.0;
      for (int l = 0; l < 16; ++l) part += acc[l];
      for (int64_t s = n16; s < len; ++s) {
        const float d = quantize<MODE>(zb[s], theta, Tf, scale, slope) - tb[s];
        part += static_cast<double>(d * d);
      }
      err[n] += part;
    }
  }
}

template <int MODE>
LaneSums lane_sums_for(bool avx2) {
#ifdef SNN_DET_MMSE_AVX2
  if (avx2) return &lane_sums_avx2<MODE>;
#endif
  (void)avx2;
  return &lane_sums<MODE>;
}

// z, target: [C, S] float32 contiguous; thetas: [C, N] float32.  Returns [C, N] float64.
// ``simd=false`` runs the scalar loop (the reference the AVX2 one is tested against).
at::Tensor mmse_errors(const at::Tensor& z, const at::Tensor& target, const at::Tensor& thetas,
                       int64_t T, int64_t mode, double slope, bool simd) {
  TORCH_CHECK(z.device().is_cpu() && z.scalar_type() == at::kFloat && z.dim() == 2 &&
                  z.is_contiguous(), "z must be a contiguous [C, S] float32 CPU tensor");
  TORCH_CHECK(target.sizes() == z.sizes() && target.scalar_type() == at::kFloat &&
                  target.is_contiguous(), "target must be shaped and typed like z");
  TORCH_CHECK(thetas.dim() == 2 && thetas.size(0) == z.size(0) &&
                  thetas.scalar_type() == at::kFloat && thetas.is_contiguous(),
              "thetas must be a contiguous [C, N] float32 tensor");
  TORCH_CHECK(mode >= 0 && mode <= 3, "mode must be 0..3");
  const int64_t C = z.size(0), S = z.size(1), N = thetas.size(1);
  at::Tensor err = at::empty({C, N}, z.options().dtype(at::kDouble));
  const float* zp = z.const_data_ptr<float>();
  const float* tp = target.const_data_ptr<float>();
  const float* hp = thetas.const_data_ptr<float>();
  double* ep = err.mutable_data_ptr<double>();
  const float Tf = static_cast<float>(T), sl = static_cast<float>(slope);
  const int md = static_cast<int>(mode);
#ifdef SNN_DET_MMSE_AVX2
  const bool avx2 = simd && __builtin_cpu_supports("avx2");
#else
  const bool avx2 = false;
  (void)simd;
#endif
  const LaneSums lanes[4] = {lane_sums_for<0>(avx2), lane_sums_for<1>(avx2),
                             lane_sums_for<2>(avx2), lane_sums_for<3>(avx2)};
  at::parallel_for(0, C, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const float* zc = zp + c * S;
      const float* tc = tp + c * S;
      const float* hc = hp + c * N;
      double* ec = ep + c * N;
      switch (md) {
        case 0: channel_errors<0>(zc, tc, S, hc, N, Tf, sl, ec, lanes[0]); break;
        case 1: channel_errors<1>(zc, tc, S, hc, N, Tf, sl, ec, lanes[1]); break;
        case 2: channel_errors<2>(zc, tc, S, hc, N, Tf, sl, ec, lanes[2]); break;
        default: channel_errors<3>(zc, tc, S, hc, N, Tf, sl, ec, lanes[3]); break;
      }
    }
  });
  return err;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snn_det, m) {
  m.def("mmse_errors(Tensor z, Tensor target, Tensor thetas, int T, int mode, float slope, "
        "bool simd=True) -> Tensor");
}

TORCH_LIBRARY_IMPL(snn_det, CPU, m) {
  m.impl("mmse_errors", &mmse_errors);
}
