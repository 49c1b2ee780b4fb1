// The ARM64 kernel set: NEON with the dot-product extension (ARMv8.2 dotprod, SDOT: four int8
// products summed into each int32 lane). Compiled with -march=armv8.2-a+dotprod and chosen at
// run time only when the CPU reports it (qdot_dispatch.cpp), so the binary still runs on any
// ARMv8 CPU. Formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (every
// integer format of the usual mixes). No tile kernels here: matmul uses these row kernels.
//
// Like the x86 files, everything here is in an anonymous namespace: the file is compiled with
// its own -march flags and must not share inline functions with the rest of the program.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "kernels/kquant_layout.h"
#include "kernels/qdot.h"

namespace hondo::qdot_neon {
namespace {

inline float half_at(const uint8_t* p) {
  __fp16 h;
  std::memcpy(&h, p, 2);
  return float(h);
}

// Sum of the 16 products of w and a (int8), exact.
inline int32_t dot16(int8x16_t w, const int8_t* a) {
  return vaddvq_s32(vdotq_s32(vdupq_n_s32(0), w, vld1q_s8(a)));
}

// Q4_0 / Q8_0: 32 signed values and one scale per block. acc += d_w * d_a * sum(w * q_a).
template <int N, bool kQ8>
void dot_32(const uint8_t* w, const QActRow* a, int64_t nb, float* out) {
  float32x4_t acc[N];
  for (int j = 0; j < N; ++j) acc[j] = vdupq_n_f32(0);
  const int8x16_t eight = vdupq_n_s8(8);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int64_t b = 0; b < nb; ++b, w += kQ8 ? 34 : 18) {
    const float d = half_at(w);
    int8x16_t lo, hi;
    if (kQ8) {
      lo = vld1q_s8(reinterpret_cast<const int8_t*>(w + 2));
      hi = vld1q_s8(reinterpret_cast<const int8_t*>(w + 18));
    } else {
      const uint8x16_t v = vld1q_u8(w + 2);
      lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, low4)), eight);
      hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
    }
    for (int j = 0; j < N; ++j) {
      const int8_t* q = a[j].q + 32 * b;
      const int32x4_t s =
          vdotq_s32(vdotq_s32(vdupq_n_s32(0), lo, vld1q_s8(q)), hi, vld1q_s8(q + 16));
      acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(s), d * a[j].d[b]);
    }
  }
  for (int j = 0; j < N; ++j) out[j] = vaddvq_f32(acc[j]);
}

// 16 bits (bit j: value j) -> 16 bytes, 0x10 where the bit is set: the fifth bit of 5-bit values.
inline uint8x16_t fifth_bits(uint32_t bits16) {
  const uint8x16_t bytes = vcombine_u8(vdup_n_u8(uint8_t(bits16)), vdup_n_u8(uint8_t(bits16 >> 8)));
  const uint8x16_t mask = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  return vandq_u8(vtstq_u8(bytes, mask), vdupq_n_u8(0x10));
}

// Q4_1 / Q5_0 / Q5_1: nibbles (+ fifth bits from a 32-bit qh), then either an offset (Q5_0:
// value - 16) or an f16 minimum m (weight = d * value + m):
//   acc += d * d_a * sum(v * q_a) + m * (d_a * sum(q_a)).
template <int N, bool kFifth, bool kMin>
void dot_32_affine(const uint8_t* w, const QActRow* a, int64_t nb, float* out) {
  constexpr int kBytes = 2 + (kMin ? 2 : 0) + (kFifth ? 4 : 0) + 16;
  float32x4_t acc[N];
  float corr[N] = {};
  for (int j = 0; j < N; ++j) acc[j] = vdupq_n_f32(0);
  const uint8x16_t low4 = vdupq_n_u8(0x0F);
  for (int64_t b = 0; b < nb; ++b, w += kBytes) {
    const float d = half_at(w);
    const float m = kMin ? half_at(w + 2) : -16.0f * d;  // Q5_0: value - 16
    const uint8_t* qs = w + kBytes - 16;
    uint8x16_t lo = vandq_u8(vld1q_u8(qs), low4), hi = vshrq_n_u8(vld1q_u8(qs), 4);
    if (kFifth) {
      uint32_t qh;
      std::memcpy(&qh, w + (kMin ? 4 : 2), 4);
      lo = vorrq_u8(lo, fifth_bits(qh & 0xFFFF));
      hi = vorrq_u8(hi, fifth_bits(qh >> 16));
    }
    const int8x16_t l = vreinterpretq_s8_u8(lo), h = vreinterpretq_s8_u8(hi);
    for (int j = 0; j < N; ++j) {
      const int8_t* q = a[j].q + 32 * b;
      const int32x4_t s = vdotq_s32(vdotq_s32(vdupq_n_s32(0), l, vld1q_s8(q)), h, vld1q_s8(q + 16));
      acc[j] = vfmaq_n_f32(acc[j], vcvtq_f32_s32(s), d * a[j].d[b]);
      corr[j] += m * a[j].ds[b];
    }
  }
  for (int j = 0; j < N; ++j) out[j] = vaddvq_f32(acc[j]) + corr[j];
}

// Q4_K: 8 sub-blocks of 32 nibbles with 6-bit scale and minimum (packing as in
// kquant_layout.h); acc += d * sc * d_a * sum(nibble * q_a) - dmin * m * (d_a * sum(q_a)).
// Q5_K: the same with a fifth bit per value (bit j of qh[l] for value l of sub-block j).
template <int N, bool kQ5>
void dot_k(const uint8_t* w, const QActRow* a, int64_t nsb, float* out) {
  float acc[N] = {};
  const uint8x16_t low4 = vdupq_n_u8(0x0F), sixteen = vdupq_n_u8(0x10);
  for (int64_t sb = 0; sb < nsb; ++sb, w += kQ5 ? 176 : 144) {
    const float d = half_at(w), dmin = half_at(w + 2);
    const uint8_t* qs = w + (kQ5 ? 48 : 16);
    const uint8x16_t qh0 = vld1q_u8(w + 16), qh1 = vld1q_u8(w + 32);  // Q5_K only
    for (int p = 0; p < 4; ++p) {
      const uint8x16_t v0 = vld1q_u8(qs + 32 * p), v1 = vld1q_u8(qs + 16 + 32 * p);
      for (int h = 0; h < 2; ++h) {  // sub-block 2p (low nibbles), 2p + 1 (high)
        const int sub = 2 * p + h;
        uint8x16_t n0 = h ? vshrq_n_u8(v0, 4) : vandq_u8(v0, low4);
        uint8x16_t n1 = h ? vshrq_n_u8(v1, 4) : vandq_u8(v1, low4);
        if (kQ5) {
          const uint8x16_t bit = vdupq_n_u8(uint8_t(1 << sub));
          n0 = vorrq_u8(n0, vandq_u8(vtstq_u8(qh0, bit), sixteen));
          n1 = vorrq_u8(n1, vandq_u8(vtstq_u8(qh1, bit), sixteen));
        }
        int sc, m;
        kquant::k4_scale_min(w + 4, sub, sc, m);
        const int64_t ab = 8 * sb + sub;
        for (int j = 0; j < N; ++j) {
          const int8_t* q = a[j].q + 32 * ab;
          const int32_t isum =
              dot16(vreinterpretq_s8_u8(n0), q) + dot16(vreinterpretq_s8_u8(n1), q + 16);
          acc[j] += d * float(sc) * a[j].d[ab] * float(isum) - dmin * float(m) * a[j].ds[ab];
        }
      }
    }
  }
  for (int j = 0; j < N; ++j) out[j] = acc[j];
}

// Q6_K: per half of 128 values, group c (0..3) of 32 takes the low (c < 2) or high nibbles of
// ql[32 (c % 2) ..] and bits 2c, 2c+1 of qh; value = d * sc[16 values] * (q - 32).
template <int N>
void dot_q6_k(const uint8_t* w, const QActRow* a, int64_t nsb, float* out) {
  float acc[N] = {};
  const uint8x16_t low4 = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
  const int8x16_t off = vdupq_n_s8(32);
  for (int64_t sb = 0; sb < nsb; ++sb, w += 210) {
    const float d = half_at(w + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(w + 192);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = w + 64 * half;
      const uint8_t* qh = w + 128 + 32 * half;
      for (int c = 0; c < 4; ++c)
        for (int part = 0; part < 2; ++part) {  // 16 values each, one scale each
          const uint8x16_t l = vld1q_u8(ql + 32 * (c % 2) + 16 * part);
          const uint8x16_t nib = c < 2 ? vandq_u8(l, low4) : vshrq_n_u8(l, 4);
          const uint8x16_t h =
              vandq_u8(vshlq_u8(vld1q_u8(qh + 16 * part), vdupq_n_s8(int8_t(-2 * c))), three);
          const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(nib, vshlq_n_u8(h, 4))), off);
          const int g = 8 * half + 2 * c + part;
          const int64_t i = 256 * sb + 128 * half + 32 * c + 16 * part;  // first value
          for (int j = 0; j < N; ++j)
            acc[j] += d * float(sc[g]) * a[j].d[i / 32] * float(dot16(v, a[j].q + i));
        }
    }
  }
  for (int j = 0; j < N; ++j) out[j] = acc[j];
}

// Q2_K and Q3_K: 16 groups of 16 values; group g = 8 half + 2 j + part takes bits 2j, 2j + 1
// of qs[32 half + 16 part + l] (kquant_layout.h). Q2_K: value q in 0..3, scale sc & 15 and
// minimum sc >> 4 of byte g:
//   acc += d_a * (d * (sc & 15) * sum(q * q_a) - dmin * (sc >> 4) * sum(q_a)).
// Q3_K: a third bit from hmask[16 part + l] at bit 4 half + j, value v - 4, signed 6-bit
// scales: acc += d * sc * d_a * sum((v - 4) * q_a).
inline int8x16_t two_bits(const uint8_t* qs, int g) {
  const uint8x16_t bits = vld1q_u8(qs + 32 * (g / 8) + 16 * (g % 2));
  return vreinterpretq_s8_u8(
      vandq_u8(vshlq_u8(bits, vdupq_n_s8(int8_t(-2 * ((g % 8) / 2)))), vdupq_n_u8(3)));
}

template <int N>
void dot_q2_k(const uint8_t* w, const QActRow* a, int64_t nsb, float* out) {
  float acc[N] = {};
  for (int64_t sb = 0; sb < nsb; ++sb, w += 84) {
    const float d = half_at(w + 80), dmin = half_at(w + 82);
    for (int g = 0; g < 16; ++g) {
      const int8x16_t v = two_bits(w + 16, g);
      const float scale = d * float(w[g] & 0xF), min = dmin * float(w[g] >> 4);
      const int64_t i = 256 * sb + 16 * g;  // first value
      for (int j = 0; j < N; ++j)
        acc[j] +=
            a[j].d[i / 32] * (scale * float(dot16(v, a[j].q + i)) - min * float(a[j].s[i / 16]));
    }
  }
  for (int j = 0; j < N; ++j) out[j] = acc[j];
}

template <int N>
void dot_q3_k(const uint8_t* w, const QActRow* a, int64_t nsb, float* out) {
  float acc[N] = {};
  const int8x16_t four = vdupq_n_s8(4);
  for (int64_t sb = 0; sb < nsb; ++sb, w += 110) {
    const float d = half_at(w + 108);
    int sc[16];
    kquant::q3_scales(w + 96, sc);
    for (int g = 0; g < 16; ++g) {
      const int shift = 4 * (g / 8) + (g % 8) / 2;  // of the third bit in hmask
      const uint8x16_t third =
          vandq_u8(vshlq_u8(vld1q_u8(w + 16 * (g % 2)), vdupq_n_s8(int8_t(-shift))), vdupq_n_u8(1));
      const int8x16_t v =
          vsubq_s8(vorrq_s8(two_bits(w + 32, g), vreinterpretq_s8_u8(vshlq_n_u8(third, 2))), four);
      const int64_t i = 256 * sb + 16 * g;  // first value
      for (int j = 0; j < N; ++j)
        acc[j] += d * float(sc[g]) * a[j].d[i / 32] * float(dot16(v, a[j].q + i));
    }
  }
  for (int j = 0; j < N; ++j) out[j] = acc[j];
}

template <void (*K1)(const uint8_t*, const QActRow*, int64_t, float*),
          void (*K2)(const uint8_t*, const QActRow*, int64_t, float*),
          void (*K3)(const uint8_t*, const QActRow*, int64_t, float*),
          void (*K4)(const uint8_t*, const QActRow*, int64_t, float*), int kBlockElems>
void entry(const void* w, const QActRow* a, int n, int64_t k, float* out) {
  const auto* p = static_cast<const uint8_t*>(w);
  const int64_t nb = k / kBlockElems;
  switch (n) {
    case 1:
      return K1(p, a, nb, out);
    case 2:
      return K2(p, a, nb, out);
    case 3:
      return K3(p, a, nb, out);
    default:
      return K4(p, a, nb, out);
  }
}

// Activation quantization, bit-identical to the reference: the same scale and products, and
// FCVTNS rounds to nearest even as nearbyint does in the default rounding mode.
void quantize_act(const float* x, int64_t k, int8_t* q, float* d, int16_t* s) {
  for (int64_t b = 0; b < k / 32; ++b, x += 32, q += 32) {
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0);
    for (int i = 0; i < 8; ++i) {
      v[i] = vld1q_f32(x + 4 * i);
      amax = vmaxq_f32(amax, vabsq_f32(v[i]));
    }
    const float mx = vmaxvq_f32(amax);
    d[b] = mx / 127.0f;
    const float id = mx > 0 ? 127.0f / mx : 0.0f;
    for (int h = 0; h < 2; ++h) {
      int16x8_t s16[2];
      for (int i = 0; i < 2; ++i) {
        const int32x4_t a0 = vcvtnq_s32_f32(vmulq_n_f32(v[8 * h / 2 + 2 * i], id));
        const int32x4_t a1 = vcvtnq_s32_f32(vmulq_n_f32(v[8 * h / 2 + 2 * i + 1], id));
        s16[i] = vcombine_s16(vqmovn_s32(a0), vqmovn_s32(a1));
      }
      const int8x16_t q8 = vcombine_s8(vqmovn_s16(s16[0]), vqmovn_s16(s16[1]));
      vst1q_s8(q + 16 * h, q8);
      s[2 * b + h] = int16_t(vaddlvq_s8(q8));
    }
  }
}

QDotKernels make_set() {
  QDotKernels ks{};
  ks.isa = "neon-dotprod";
  ks.quantize = quantize_act;
  auto set = [&](DType t, QDotFn f) { ks.dot[uint32_t(t)] = f; };
  set(DType::Q4_0,
      entry<dot_32<1, false>, dot_32<2, false>, dot_32<3, false>, dot_32<4, false>, 32>);
  set(DType::Q8_0, entry<dot_32<1, true>, dot_32<2, true>, dot_32<3, true>, dot_32<4, true>, 32>);
  set(DType::Q4_K, entry<dot_k<1, false>, dot_k<2, false>, dot_k<3, false>, dot_k<4, false>, 256>);
  set(DType::Q5_K, entry<dot_k<1, true>, dot_k<2, true>, dot_k<3, true>, dot_k<4, true>, 256>);
  set(DType::Q4_1, entry<dot_32_affine<1, false, true>, dot_32_affine<2, false, true>,
                         dot_32_affine<3, false, true>, dot_32_affine<4, false, true>, 32>);
  set(DType::Q5_0, entry<dot_32_affine<1, true, false>, dot_32_affine<2, true, false>,
                         dot_32_affine<3, true, false>, dot_32_affine<4, true, false>, 32>);
  set(DType::Q5_1, entry<dot_32_affine<1, true, true>, dot_32_affine<2, true, true>,
                         dot_32_affine<3, true, true>, dot_32_affine<4, true, true>, 32>);
  set(DType::Q6_K, entry<dot_q6_k<1>, dot_q6_k<2>, dot_q6_k<3>, dot_q6_k<4>, 256>);
  set(DType::Q2_K, entry<dot_q2_k<1>, dot_q2_k<2>, dot_q2_k<3>, dot_q2_k<4>, 256>);
  set(DType::Q3_K, entry<dot_q3_k<1>, dot_q3_k<2>, dot_q3_k<3>, dot_q3_k<4>, 256>);
  return ks;
}

}  // namespace
}  // namespace hondo::qdot_neon

namespace hondo {
const QDotKernels& qdot_neon_kernels() {
  static const QDotKernels ks = qdot_neon::make_set();
  return ks;
}
}  // namespace hondo
