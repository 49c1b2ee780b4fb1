// FP8 E4M3 (the "e4m3fn" variant DeepSeek-V3 ships its weights in): 1 sign bit, 4 exponent
// bits (bias 7), 3 mantissa bits; no infinities, S.1111.111 is NaN, largest finite 448.
#pragma once
#include <cmath>
#include <cstdint>

namespace hondo {

inline float fp8_e4m3_to_f32(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exp = (b >> 3) & 0xf, mant = b & 7;
  if (exp == 0xf && mant == 7) return NAN;
  if (exp == 0) return sign * std::ldexp(float(mant), -9);  // subnormal: mant/8 * 2^-6
  return sign * std::ldexp(1.0f + float(mant) / 8.0f, exp - 7);
}

// Round to nearest (ties to even), saturating at +-448.
inline uint8_t f32_to_fp8_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;
  // The grid spacing where `a` lies: 2^(e-3) for normals (e >= -6), 2^-9 below.
  int e = a > 0 ? int(std::floor(std::log2(a))) : -6;
  if (e < -6) e = -6;
  const float step = std::ldexp(1.0f, e - 3);
  float q = std::nearbyint(a / step) * step;  // default rounding mode: ties to even
  if (q >= 448.0f) q = 448.0f;
  // Encode q exactly.
  if (q == 0) return sign;
  int qe = int(std::floor(std::log2(q)));
  if (qe < -6) return sign | uint8_t(std::lrint(q / std::ldexp(1.0f, -9)));  // subnormal
  const int mant = int(std::lrint((q / std::ldexp(1.0f, qe) - 1.0f) * 8.0f));
  return sign | uint8_t((qe + 7) << 3) | uint8_t(mant);
}

}  // namespace hondo
