#include "kernels/half.h"

#include <immintrin.h>

#include "core/fp16.h"

namespace hondo {

void f16_to_f32_row_ref(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void f32_to_f16_row_ref(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

namespace {

__attribute__((target("avx2,f16c"))) void f16_to_f32_f16c(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

__attribute__((target("avx2,f16c"))) void f32_to_f16_f16c(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

}  // namespace

bool half_rows_use_f16c() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return yes;
}

void f16_to_f32_row(const uint16_t* x, float* y, int64_t n) {
  half_rows_use_f16c() ? f16_to_f32_f16c(x, y, n) : f16_to_f32_row_ref(x, y, n);
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  half_rows_use_f16c() ? f32_to_f16_f16c(x, y, n) : f32_to_f16_row_ref(x, y, n);
}

}  // namespace hondo
