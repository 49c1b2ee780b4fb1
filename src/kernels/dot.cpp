#include "kernels/dot.h"

#include "kernels/cpu.h"

namespace hondo {

float dot_f32_ref(const float* a, const float* b, int64_t n) {
  double s = 0;  // double accumulator: the reference is the accurate one
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return float(s);
}

// 16 independent accumulators let the compiler keep one vector register of partial sums
// (two on AVX2) without reassociating the float additions itself.
HONDO_FLOAT_CLONES float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

HONDO_FLOAT_CLONES void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace hondo
