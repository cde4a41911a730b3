// Shared by the fused kernels of snn_det.neurons._C.
#pragma once

// Each hot function is compiled twice, for AVX2 and for the baseline, and the loader
// picks the one the CPU runs (GCC on x86-64); elsewhere it is compiled once.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SNN_DET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SNN_DET_CLONES
#endif
#define SNN_DET_INLINE inline __attribute__((always_inline))
