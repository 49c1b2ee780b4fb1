#include "kernels/half.h"

#include "core/fp16.h"
#include "kernels/cpu.h"

#if HONDO_X86
#include <immintrin.h>
#elif HONDO_ARM64
#include <arm_neon.h>
#endif

namespace hondo {

void f16_to_f32_row_ref(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void f32_to_f16_row_ref(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

namespace {

#if HONDO_X86
__attribute__((target("avx2,f16c"))) void f16_to_f32_simd(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

__attribute__((target("avx2,f16c"))) void f32_to_f16_simd(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

bool simd_available() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
}
#elif HONDO_ARM64
// ARMv8 converts between half and single precision in its base instruction set (FCVTL/FCVTN,
// round to nearest even under the default FPCR).
void f16_to_f32_simd(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void f32_to_f16_simd(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

bool simd_available() {
  return true;
}
#else
void f16_to_f32_simd(const uint16_t* x, float* y, int64_t n) {
  f16_to_f32_row_ref(x, y, n);
}
void f32_to_f16_simd(const float* x, uint16_t* y, int64_t n) {
  f32_to_f16_row_ref(x, y, n);
}
bool simd_available() {
  return false;
}
#endif

}  // namespace

bool half_rows_use_simd() {
  static const bool yes = simd_available();
  return yes;
}

void f16_to_f32_row(const uint16_t* x, float* y, int64_t n) {
  half_rows_use_simd() ? f16_to_f32_simd(x, y, n) : f16_to_f32_row_ref(x, y, n);
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  half_rows_use_simd() ? f32_to_f16_simd(x, y, n) : f32_to_f16_row_ref(x, y, n);
}

}  // namespace hondo
