// Small SIMD layer for the CPU kernels, with the instruction set chosen at run time.
//
// The library is built without -march flags, so that one build runs on any
// x86-64 (or ARM) CPU. Hot loops are written once, against a tiny vector
// type (load / store / fmadd / zero), in a header that the kernel file
// includes twice:
//   * in namespace `base`: VecG<T, N>, plain arrays the compiler vectorises
//     for the build's baseline (SSE2 on x86-64, NEON on ARM);
//   * in namespace `avx2` (x86-64 only): compiled under
//     `#pragma GCC target("avx2,fma")`, with Vec8f / Vec4d on AVX2
//     intrinsics and fused multiply-adds.
// `use_avx2()` picks one at run time (CPUID), the way PyTorch's own CPU
// kernels are dispatched; FLOWNET2_CPU_SIMD=base forces the portable path
// (used by the tests to cover both).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FLOWNET2_HAVE_AVX2_PATH 1
#include <immintrin.h>
#else
#define FLOWNET2_HAVE_AVX2_PATH 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FLOWNET2_INLINE inline __attribute__((always_inline))
#else
#define FLOWNET2_INLINE inline
#endif

namespace flownet2::cpu {

// True when the AVX2/FMA kernels are compiled in, the CPU has them and
// FLOWNET2_CPU_SIMD is not "base".
inline bool use_avx2() {
#if FLOWNET2_HAVE_AVX2_PATH
  static const bool value = [] {
    const char* env = std::getenv("FLOWNET2_CPU_SIMD");
    if (env != nullptr && std::strcmp(env, "base") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return value;
#else
  return false;
#endif
}

// N lanes of T as a plain array; the baseline build vectorises its loops.
template <typename T, int N>
struct VecG {
  using value_type = T;
  static constexpr int size = N;
  T v[N];
  static FLOWNET2_INLINE VecG load(const T* p) {
    VecG r;
    for (int i = 0; i < N; ++i) r.v[i] = p[i];
    return r;
  }
  static FLOWNET2_INLINE VecG zero() {
    VecG r;
    for (int i = 0; i < N; ++i) r.v[i] = T(0);
    return r;
  }
  static FLOWNET2_INLINE VecG set1(T x) {
    VecG r;
    for (int i = 0; i < N; ++i) r.v[i] = x;
    return r;
  }
  FLOWNET2_INLINE void store(T* p) const {
    for (int i = 0; i < N; ++i) p[i] = v[i];
  }
  friend FLOWNET2_INLINE VecG fmadd(const VecG& a, const VecG& b, const VecG& c) {
    VecG r;
    for (int i = 0; i < N; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i];
    return r;
  }
  friend FLOWNET2_INLINE VecG operator*(const VecG& a, const VecG& b) {
    VecG r;
    for (int i = 0; i < N; ++i) r.v[i] = a.v[i] * b.v[i];
    return r;
  }
  FLOWNET2_INLINE void pin() {}
};

}  // namespace flownet2::cpu

#if FLOWNET2_HAVE_AVX2_PATH
// Everything between FLOWNET2_AVX2_BEGIN and FLOWNET2_AVX2_END is compiled for AVX2 + FMA.
#if defined(__clang__)
#define FLOWNET2_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define FLOWNET2_AVX2_END _Pragma("clang attribute pop")
#else
#define FLOWNET2_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define FLOWNET2_AVX2_END _Pragma("GCC pop_options")
#endif

FLOWNET2_AVX2_BEGIN
namespace flownet2::cpu::avx2 {

struct Vec8f {
  using value_type = float;
  static constexpr int size = 8;
  __m256 v;
  static FLOWNET2_INLINE Vec8f load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static FLOWNET2_INLINE Vec8f zero() { return {_mm256_setzero_ps()}; }
  static FLOWNET2_INLINE Vec8f set1(float x) { return {_mm256_set1_ps(x)}; }
  FLOWNET2_INLINE void store(float* p) const { _mm256_storeu_ps(p, v); }
  friend FLOWNET2_INLINE Vec8f fmadd(const Vec8f& a, const Vec8f& b, const Vec8f& c) {
    return {_mm256_fmadd_ps(a.v, b.v, c.v)};
  }
  friend FLOWNET2_INLINE Vec8f operator*(const Vec8f& a, const Vec8f& b) {
    return {_mm256_mul_ps(a.v, b.v)};
  }
  // Keep the value in a register: stops the compiler from folding a load
  // that feeds several FMAs into each of them (one load per use).
  FLOWNET2_INLINE void pin() { asm("" : "+x"(v)); }
};

struct Vec4d {
  using value_type = double;
  static constexpr int size = 4;
  __m256d v;
  static FLOWNET2_INLINE Vec4d load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static FLOWNET2_INLINE Vec4d zero() { return {_mm256_setzero_pd()}; }
  static FLOWNET2_INLINE Vec4d set1(double x) { return {_mm256_set1_pd(x)}; }
  FLOWNET2_INLINE void store(double* p) const { _mm256_storeu_pd(p, v); }
  friend FLOWNET2_INLINE Vec4d fmadd(const Vec4d& a, const Vec4d& b, const Vec4d& c) {
    return {_mm256_fmadd_pd(a.v, b.v, c.v)};
  }
  friend FLOWNET2_INLINE Vec4d operator*(const Vec4d& a, const Vec4d& b) {
    return {_mm256_mul_pd(a.v, b.v)};
  }
  FLOWNET2_INLINE void pin() { asm("" : "+x"(v)); }
};

}  // namespace flownet2::cpu::avx2
FLOWNET2_AVX2_END
#endif  // FLOWNET2_HAVE_AVX2_PATH
