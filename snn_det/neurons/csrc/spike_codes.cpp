// Spike trains to bit planes and back, in one pass each (snn_det/calibration/spike_codes.py).
//
// A tensor x (float32 / float64, contiguous, viewed as [outer, C, inner] around its
// channel dimension) is a spike train if every element is +0.0, +theta_c or -theta_c
// bit for bit, with theta_c = max |x| over the channel.  spike_encode returns
// (theta [C], pos, neg, has_neg, ok): pos / neg pack one bit per element, eight to a
// byte, little bit order (numpy.packbits(bitorder='little') of x > 0 / x < 0); ok is
// false when x is not such a train (then the other outputs are meaningless).
// spike_decode computes (pos - neg) * theta_c with the same float operations as the
// Python decoder (and the neurons), so it returns x bit for bit.
//
// The Python path takes ~10 passes over the tensor (abs, amax, comparisons, a decode
// to check, numpy packing, a float conversion to unpack); these take two and one.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "common.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define SNN_DET_ENCODE_AVX2 1
#endif

namespace {

constexpr int64_t GRAIN = 1 << 14;   // ~bytes (x 8 elements) per parallel task

template <typename scalar_t>
struct Bits;
template <>
struct Bits<float> { using type = uint32_t; };
template <>
struct Bits<double> { using type = uint64_t; };

template <typename scalar_t>
SNN_DET_INLINE typename Bits<scalar_t>::type bits_of(scalar_t v) {
  typename Bits<scalar_t>::type b;
  std::memcpy(&b, &v, sizeof(v));
  return b;
}

// Eight elements e[0..7] against their thresholds' bits tp[j * step] / tn[j * step] (step 0:
// one threshold for all eight, 1: one each): the bytes of e > 0 / e < 0; false where an
// element is none of +0.0 / +theta / -theta.
template <typename B>
SNN_DET_INLINE bool classify8(const B* __restrict e, const B* tp, const B* tn, int step,
                              B zero, uint8_t* pb, uint8_t* nb) {
  bool good = true;
  *pb = *nb = 0;
  for (int j = 0; j < 8; ++j) {
    const bool is_p = (e[j] == tp[j * step]) & (e[j] != zero);
    const bool is_n = (e[j] == tn[j * step]) & (e[j] != zero) & !is_p;
    good &= (e[j] == zero) | is_p | is_n;
    *pb |= uint8_t(is_p) << j;
    *nb |= uint8_t(is_n) << j;
  }
  return good;
}

// Whole bytes [b0, b1) of one row (elements 8 b0 .. 8 b1), each byte written by this row
// alone: classify 8 elements' bits as +0.0 / +theta / -theta and pack them.  Returns
// whether every element was one of the three; ORs whether any was -theta into *negs.
template <typename B>
SNN_DET_INLINE bool pack_bytes_scalar(const B* __restrict v, int64_t b0, int64_t b1, B tp,
                                      B tn, B zero, uint8_t* __restrict pos,
                                      uint8_t* __restrict neg, bool* negs) {
  bool good = true;
  uint8_t any = 0;
  for (int64_t b = b0; b < b1; ++b) {
    good &= classify8<B>(v + (b << 3), &tp, &tn, 0, zero, &pos[b], &neg[b]);
    any |= neg[b];
  }
  *negs |= any != 0;
  return good;
}

#ifdef SNN_DET_ENCODE_AVX2
// classify8 with AVX2 compares and movemask, thresholds as vectors; returns the bits of
// the elements that are none of the three (0: all good).
__attribute__((target("avx2"))) inline int classify8_avx2(__m256i x, __m256i P, __m256i N,
                                                          __m256i Z, uint8_t* pb,
                                                          uint8_t* nb) {
  const __m256i ez = _mm256_cmpeq_epi32(x, Z);
  const __m256i ep = _mm256_andnot_si256(ez, _mm256_cmpeq_epi32(x, P));
  const __m256i en = _mm256_andnot_si256(_mm256_or_si256(ez, ep), _mm256_cmpeq_epi32(x, N));
  const int mp = _mm256_movemask_ps(_mm256_castsi256_ps(ep));
  const int mn = _mm256_movemask_ps(_mm256_castsi256_ps(en));
  const int mz = _mm256_movemask_ps(_mm256_castsi256_ps(ez));
  *pb = uint8_t(mp);
  *nb = uint8_t(mn);
  return (mp | mn | mz) ^ 0xFF;
}

// The same with AVX2 compares and movemask: 8 floats per byte.
__attribute__((target("avx2"))) bool pack_bytes_avx2(const uint32_t* __restrict v, int64_t b0,
                                                     int64_t b1, uint32_t tp, uint32_t tn,
                                                     uint32_t zero, uint8_t* __restrict pos,
                                                     uint8_t* __restrict neg, bool* negs) {
  const __m256i P = _mm256_set1_epi32(int(tp)), N = _mm256_set1_epi32(int(tn)),
                Z = _mm256_set1_epi32(int(zero));
  int bad = 0, any = 0;
  for (int64_t b = b0; b < b1; ++b) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + (b << 3)));
    bad |= classify8_avx2(x, P, N, Z, &pos[b], &neg[b]);
    any |= neg[b];
  }
  *negs |= any != 0;
  return bad == 0;
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

// max |p[k]| over k < n, a NaN skipped (pass 2 refuses it: no theta's bits match a NaN)
template <typename scalar_t>
SNN_DET_INLINE scalar_t abs_max_scalar(const scalar_t* p, int64_t n) {
  scalar_t m = 0;
  for (int64_t k = 0; k < n; ++k) {
    const scalar_t a = std::fabs(p[k]);
    m = a > m ? a : m;
  }
  return m;
}

#ifdef SNN_DET_ENCODE_AVX2
// max(a, m) as vmaxps: m where a is NaN, as the scalar loop; exact, so the same maximum
__attribute__((target("avx2"))) float abs_max_avx2(const float* p, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    m0 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(p + k)), m0);
    m1 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(p + k + 8)), m1);
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, _mm256_max_ps(m0, m1));
  float m = abs_max_scalar(p + k, n - k);
  for (float v : l) m = v > m ? v : m;
  return m;
}

#endif

// float32 (what calibration runs in) takes the AVX2 loops where the CPU has them;
// float64 the scalar ones (same results)
template <typename scalar_t>
scalar_t abs_max(const scalar_t* p, int64_t n) {
#ifdef SNN_DET_ENCODE_AVX2
  if constexpr (std::is_same_v<scalar_t, float>)
    if (have_avx2()) return abs_max_avx2(p, n);
#endif
  return abs_max_scalar(p, n);
}

template <typename B>
bool pack_bytes(const B* v, int64_t b0, int64_t b1, B tp, B tn, B zero, uint8_t* pos,
                uint8_t* neg, bool* negs) {
#ifdef SNN_DET_ENCODE_AVX2
  if constexpr (std::is_same_v<B, uint32_t>)
    if (have_avx2()) return pack_bytes_avx2(v, b0, b1, tp, tn, zero, pos, neg, negs);
#endif
  return pack_bytes_scalar(v, b0, b1, tp, tn, zero, pos, neg, negs);
}

// Channel innermost ([rows, C], C % 8 == 0: a channels-last tensor seen as N, H, W, C):
// each byte holds 8 consecutive channels of one position, so it is written by one task,
// and the thresholds to compare with change from element to element.
template <typename B>
SNN_DET_INLINE bool pack_last_scalar(const B* __restrict v, int64_t r0, int64_t r1, int64_t C,
                                     const B* __restrict tp, const B* __restrict tn, B zero,
                                     uint8_t* __restrict pos, uint8_t* __restrict neg,
                                     bool* negs) {
  bool good = true;
  uint8_t any = 0;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = 0; c < C; c += 8) {
      const int64_t i = r * C + c;
      good &= classify8<B>(v + i, tp + c, tn + c, 1, zero, &pos[i >> 3], &neg[i >> 3]);
      any |= neg[i >> 3];
    }
  }
  *negs |= any != 0;
  return good;
}

#ifdef SNN_DET_ENCODE_AVX2
__attribute__((target("avx2"))) bool pack_last_avx2(const uint32_t* __restrict v, int64_t r0,
                                                    int64_t r1, int64_t C,
                                                    const uint32_t* __restrict tp,
                                                    const uint32_t* __restrict tn, uint32_t zero,
                                                    uint8_t* __restrict pos,
                                                    uint8_t* __restrict neg, bool* negs) {
  const __m256i Z = _mm256_set1_epi32(int(zero));
  int bad = 0, any = 0;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = 0; c < C; c += 8) {
      const int64_t i = r * C + c;
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i));
      const __m256i P = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tp + c));
      const __m256i N = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tn + c));
      bad |= classify8_avx2(x, P, N, Z, &pos[i >> 3], &neg[i >> 3]);
      any |= neg[i >> 3];
    }
  }
  *negs |= any != 0;
  return bad == 0;
}
#endif

template <typename scalar_t>
SNN_DET_CLONES bool encode_last_impl(const scalar_t* __restrict x, int64_t rows, int64_t C,
                                     scalar_t* __restrict theta, uint8_t* __restrict pos,
                                     uint8_t* __restrict neg, bool* has_neg) {
  const int64_t grain = std::max<int64_t>(1, GRAIN * 8 / C);
  // pass 1: per-channel maxima of |x| (a NaN skipped, as abs_max), per task then merged
  std::vector<scalar_t> th(C, scalar_t(0));
  std::mutex merge;
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<scalar_t> m(C, scalar_t(0));
    for (int64_t r = r0; r < r1; ++r) {
      const scalar_t* p = x + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t a = std::fabs(p[c]);
        m[c] = a > m[c] ? a : m[c];
      }
    }
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t c = 0; c < C; ++c) th[c] = m[c] > th[c] ? m[c] : th[c];
  });
  using B = typename Bits<scalar_t>::type;
  std::vector<B> tp(C), tn(C);
  for (int64_t c = 0; c < C; ++c) {
    if (th[c] != th[c] || !std::isfinite(th[c])) return false;
    theta[c] = th[c];
    tp[c] = bits_of<scalar_t>(th[c]);
    tn[c] = bits_of<scalar_t>(-th[c]);
  }
  // pass 2: classify and pack
  const B zero = bits_of<scalar_t>(scalar_t(0));
  std::atomic<bool> ok{true}, any_neg{false};
  at::parallel_for(0, rows, grain, [&](int64_t r0, int64_t r1) {
    bool negs = false, good;
    const B* v = reinterpret_cast<const B*>(x);
#ifdef SNN_DET_ENCODE_AVX2
    if constexpr (std::is_same_v<B, uint32_t>) {
      if (have_avx2())
        good = pack_last_avx2(v, r0, r1, C, tp.data(), tn.data(), zero, pos, neg, &negs);
      else
        good = pack_last_scalar<B>(v, r0, r1, C, tp.data(), tn.data(), zero, pos, neg, &negs);
    } else
#endif
      good = pack_last_scalar<B>(v, r0, r1, C, tp.data(), tn.data(), zero, pos, neg, &negs);
    if (!good) ok.store(false, std::memory_order_relaxed);
    if (negs) any_neg.store(true, std::memory_order_relaxed);
  });
  *has_neg = any_neg.load();
  return ok.load();
}

template <typename scalar_t>
SNN_DET_CLONES bool encode_impl(const scalar_t* __restrict x, int64_t outer, int64_t C,
                                int64_t inner, scalar_t* __restrict theta,
                                uint8_t* __restrict pos, uint8_t* __restrict neg,
                                bool* has_neg) {
  if (inner == 1 && C % 8 == 0)     // channel innermost (channels-last layout)
    return encode_last_impl(x, outer, C, theta, pos, neg, has_neg);
  const int64_t rows = outer * C;
  // pass 1: per-row maxima of |x|, then per channel
  std::vector<scalar_t> row_max(rows);
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(inner, 1)),
                   [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const scalar_t* p = x + r * inner;
      row_max[r] = abs_max(p, inner);
    }
  });
  for (int64_t c = 0; c < C; ++c) theta[c] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r % C;
    const scalar_t m = row_max[r];
    if (m != m || !std::isfinite(m)) return false;
    theta[c] = m > theta[c] ? m : theta[c];
  }
  // pass 2: classify and pack, row by row (a row: one channel, ``inner`` elements).  Bytes
  // inside a row are written by that row alone; the first and last byte of a row may be
  // shared with its neighbours (inner % 8 != 0) and are OR-ed atomically.
  using B = typename Bits<scalar_t>::type;
  const B zero = bits_of<scalar_t>(scalar_t(0));
  std::atomic<bool> ok{true}, any_neg{false};
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN * 8 / std::max<int64_t>(inner, 1)),
                   [&](int64_t r0, int64_t r1) {
    bool good = true, negs = false;
    for (int64_t r = r0; r < r1; ++r) {
      const scalar_t th = theta[r % C];
      const B tp = bits_of<scalar_t>(th), tn = bits_of<scalar_t>(-th);
      const int64_t i_begin = r * inner, i_end = i_begin + inner;
      int64_t i = i_begin;
      // the bytes this row alone writes, packed 8 elements at a time
      const int64_t whole0 = (i_begin + 7) >> 3, whole1 = i_end >> 3;
      while (i < i_end) {
        if (i == (whole0 << 3) && whole1 > whole0) {
          good &= pack_bytes<B>(reinterpret_cast<const B*>(x), whole0, whole1, tp, tn, zero,
                                pos, neg, &negs);
          i = whole1 << 3;
          continue;
        }
        const int64_t b = i >> 3;
        const int64_t stop = std::min<int64_t>(i_end, (b + 1) << 3);
        uint8_t pb = 0, nb = 0;
        for (; i < stop; ++i) {
          const B v = bits_of<scalar_t>(x[i]);
          const bool is_p = (v == tp) & (v != zero), is_n = (v == tn) & (v != zero) & !is_p;
          good &= (v == zero) | is_p | is_n;
          pb |= uint8_t(is_p) << (i & 7);
          nb |= uint8_t(is_n) << (i & 7);
        }
        negs |= nb != 0;
        const bool shared = (b << 3) < i_begin || stop == i_end;
        if (shared) {
          std::atomic_ref<uint8_t>(pos[b]).fetch_or(pb, std::memory_order_relaxed);
          std::atomic_ref<uint8_t>(neg[b]).fetch_or(nb, std::memory_order_relaxed);
        } else {
          pos[b] = pb;
          neg[b] = nb;
        }
      }
    }
    if (!good) ok.store(false, std::memory_order_relaxed);
    if (negs) any_neg.store(true, std::memory_order_relaxed);
  });
  *has_neg = any_neg.load();
  return ok.load();
}

// LUT[b][j] = bit j of byte b, as 0 / 1 in scalar_t: a byte expands to 8 values with one
// vector load, so decoding is a load, a multiply (and a subtract) per 8 elements.
template <typename scalar_t>
struct ByteLUT {
  alignas(64) scalar_t v[256][8];
  ByteLUT() {
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < 8; ++j) v[b][j] = scalar_t((b >> j) & 1);
  }
};

// Channel innermost ([rows, C], C % 8 == 0): a byte expands to 8 channels of one position,
// each with its own theta; the same float operations as decode_impl.
template <typename scalar_t>
SNN_DET_CLONES void decode_last_impl(const uint8_t* __restrict pos,
                                     const uint8_t* __restrict neg,
                                     const scalar_t* __restrict theta, int64_t rows, int64_t C,
                                     scalar_t* __restrict out) {
  static const ByteLUT<scalar_t> lut;
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN * 8 / C), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = 0; c < C; c += 8) {
        const int64_t i = r * C + c;
        const scalar_t* lp = lut.v[pos[i >> 3]];
        const scalar_t* th = theta + c;
        scalar_t* o = out + i;
        if (neg == nullptr) {
          for (int j = 0; j < 8; ++j) o[j] = lp[j] * th[j];
        } else {
          const scalar_t* ln = lut.v[neg[i >> 3]];
          for (int j = 0; j < 8; ++j) o[j] = (lp[j] - ln[j]) * th[j];
        }
      }
    }
  });
}

template <typename scalar_t>
SNN_DET_CLONES void decode_impl(const uint8_t* __restrict pos, const uint8_t* __restrict neg,
                                const scalar_t* __restrict theta, int64_t rows, int64_t C,
                                int64_t inner, scalar_t* __restrict out) {
  static const ByteLUT<scalar_t> lut;
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN * 8 / std::max<int64_t>(inner, 1)),
                   [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const scalar_t th = theta[r % C];
      const int64_t i_begin = r * inner, i_end = i_begin + inner;
      // as the Python decoder: p = float(pos); p -= float(neg); p *= theta
      auto one = [&](int64_t i) {
        scalar_t p = scalar_t((pos[i >> 3] >> (i & 7)) & 1u);
        if (neg != nullptr) p = p - scalar_t((neg[i >> 3] >> (i & 7)) & 1u);
        out[i] = p * th;
      };
      int64_t i = i_begin;
      const int64_t a = std::min<int64_t>(i_end, (i_begin + 7) & ~int64_t(7));
      for (; i < a; ++i) one(i);                      // up to the first whole byte
      const int64_t z = i_end & ~int64_t(7);
      if (neg == nullptr) {
        for (; i < z; i += 8) {
          const scalar_t* l = lut.v[pos[i >> 3]];
          scalar_t* o = out + i;
          for (int j = 0; j < 8; ++j) o[j] = l[j] * th;
        }
      } else {
        for (; i < z; i += 8) {
          const scalar_t* lp = lut.v[pos[i >> 3]];
          const scalar_t* ln = lut.v[neg[i >> 3]];
          scalar_t* o = out + i;
          for (int j = 0; j < 8; ++j) o[j] = (lp[j] - ln[j]) * th;
        }
      }
      for (; i < i_end; ++i) one(i);                  // the last partial byte
    }
  });
}

void split_dims(const at::Tensor& x, int64_t channel_dim, int64_t* outer, int64_t* C,
                int64_t* inner) {
  TORCH_CHECK(channel_dim >= 0 && channel_dim < x.dim(), "spike codes: bad channel dim");
  *outer = 1;
  *inner = 1;
  for (int64_t d = 0; d < channel_dim; ++d) *outer *= x.size(d);
  *C = x.size(channel_dim);
  for (int64_t d = channel_dim + 1; d < x.dim(); ++d) *inner *= x.size(d);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, bool, bool> spike_encode(const at::Tensor& x,
                                                                        int64_t channel_dim) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "spike_encode: a contiguous CPU tensor");
  int64_t outer, C, inner;
  split_dims(x, channel_dim, &outer, &C, &inner);
  const int64_t n = x.numel(), nbytes = (n + 7) / 8;
  auto theta = at::empty({C}, x.options());
  auto pos = at::zeros({nbytes}, x.options().dtype(at::kByte));
  auto neg = at::zeros({nbytes}, x.options().dtype(at::kByte));
  bool has_neg = false, ok = false;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "spike_encode", [&] {
    ok = encode_impl<scalar_t>(x.data_ptr<scalar_t>(), outer, C, inner,
                               theta.data_ptr<scalar_t>(), pos.data_ptr<uint8_t>(),
                               neg.data_ptr<uint8_t>(), &has_neg);
  });
  return {theta, pos, neg, has_neg, ok};
}

at::Tensor spike_decode(const at::Tensor& pos, const c10::optional<at::Tensor>& neg,
                        const at::Tensor& theta, at::IntArrayRef shape, int64_t channel_dim,
                        const c10::optional<at::Tensor>& into) {
  TORCH_CHECK(pos.is_contiguous() && pos.scalar_type() == at::kByte, "spike_decode: pos");
  at::Tensor out;
  if (into.has_value() && into->defined()) {   // a buffer of the caller's, written over
    out = *into;
    TORCH_CHECK(out.sizes() == shape && out.scalar_type() == theta.scalar_type() &&
                    out.is_contiguous() && out.device().is_cpu(),
                "spike_decode: out must be a contiguous CPU tensor of the shape and dtype");
  } else {
    out = at::empty(shape, theta.options());
  }
  TORCH_CHECK(pos.numel() * 8 >= out.numel(), "spike_decode: too few bits for the shape");
  int64_t outer, C, inner;
  split_dims(out, channel_dim, &outer, &C, &inner);
  TORCH_CHECK(theta.numel() == C, "spike_decode: one theta per channel");
  const uint8_t* nptr = nullptr;
  at::Tensor neg_c;
  if (neg.has_value() && neg->defined()) {
    neg_c = neg->contiguous();
    nptr = neg_c.data_ptr<uint8_t>();
  }
  auto th = theta.contiguous();
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "spike_decode", [&] {
    if (inner == 1 && C % 8 == 0) {   // channel innermost (channels-last layout)
      decode_last_impl<scalar_t>(pos.data_ptr<uint8_t>(), nptr, th.data_ptr<scalar_t>(),
                                 outer, C, out.data_ptr<scalar_t>());
      return;
    }
    decode_impl<scalar_t>(pos.data_ptr<uint8_t>(), nptr, th.data_ptr<scalar_t>(),
                          outer * C, C, inner, out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(snn_det, m) {
  m.def("spike_encode(Tensor x, int channel_dim) -> (Tensor, Tensor, Tensor, bool, bool)");
  // out: a buffer to decode into (written over); none: a new tensor
  m.def("spike_decode(Tensor pos, Tensor? neg, Tensor theta, int[] shape, int channel_dim, "
        "Tensor(a!)? out=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(snn_det, CPU, m) {
  m.impl("spike_encode", &spike_encode);
  m.impl("spike_decode", &spike_decode);
}
