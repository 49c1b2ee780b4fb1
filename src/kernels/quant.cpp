#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/half.h"
#include "kernels/kquant_layout.h"

namespace hondo {

namespace {

constexpr int QK = 32;     // block size of the legacy formats
constexpr int QK_K = 256;  // super-block size of the K-quants

inline uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void wrh(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// ---- legacy 32-element blocks ------------------------------------------------------------

// Q4_0: [d:f16][qs:16 bytes]; value = (nibble - 8) * d; low nibbles are elements 0..15.
void deq_q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = float((b[2 + j] & 0xF) - 8) * d;
    y[j + 16] = float((b[2 + j] >> 4) - 8) * d;
  }
}
// Q4_1: [d:f16][m:f16][qs:16]; value = nibble * d + m.
void deq_q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = float(b[4 + j] & 0xF) * d + m;
    y[j + 16] = float(b[4 + j] >> 4) * d + m;
  }
}
// Q5_0: [d:f16][qh:u32][qs:16]; 5th bit of element j is bit j of qh.
void deq_q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int j = 0; j < 16; ++j) {
    const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
    y[j] = float(((b[6 + j] & 0xF) | h0) - 16) * d;
    y[j + 16] = float(((b[6 + j] >> 4) | h1) - 16) * d;
  }
}
// Q5_1: [d:f16][m:f16][qh:u32][qs:16]; value = q5 * d + m.
void deq_q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (int j = 0; j < 16; ++j) {
    const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
    y[j] = float((b[8 + j] & 0xF) | h0) * d + m;
    y[j + 16] = float((b[8 + j] >> 4) | h1) * d + m;
  }
}
// Q8_0: [d:f16][qs:32 x i8]; Q8_1 adds [s:f16] (sum, unused for dequantization).
void deq_q8(const uint8_t* b, float* y, int header) {
  const float d = f16_at(b);
  const int8_t* q = reinterpret_cast<const int8_t*>(b + header);
  for (int j = 0; j < QK; ++j) y[j] = float(q[j]) * d;
}

// ---- K-quants: 256-element super-blocks of 16 or 8 sub-blocks --------------------------------

// Q2_K: [scales:16][qs:64][d:f16][dmin:f16]; 16 sub-blocks of 16, 2-bit values, 4-bit scale/min.
void deq_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  int is = 0;
  for (int n = 0; n < QK_K; n += 128) {
    for (int shift = 0; shift < 8; shift += 2) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = scales[is++];
        const float dl = d * float(sc & 0xF), ml = dmin * float(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * float((q[l + 16 * half] >> shift) & 3) - ml;
      }
    }
    q += 32;
  }
}

// Q3_K: [hmask:32][qs:64][scales:12][d:f16]; 3-bit values (2 low bits in qs, high bit in
// hmask, stored inverted), 16 signed 6-bit scales.
void deq_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const float d_all = f16_at(b + 108);
  int scales[16];
  kquant::q3_scales(b + 96, scales);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < QK_K; n += 128) {
    for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * float(scales[is++]);
        for (int l = 16 * half; l < 16 * half + 16; ++l)
          *y++ = dl * float(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      }
    }
    q += 32;
  }
}

// Q4_K: [d:f16][dmin:f16][scales:12][qs:128]; 8 sub-blocks of 32, 6-bit scales and mins.
void deq_q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int is = 0; is < 8; is += 2, q += 32) {
    int sc, m;
    kquant::k4_scale_min(scales, is, sc, m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    kquant::k4_scale_min(scales, is + 1, sc, m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
  }
}

// Q5_K: [d:f16][dmin:f16][scales:12][qh:32][qs:128]; as Q4_K with a 5th bit from qh.
void deq_q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    int sc, m;
    kquant::k4_scale_min(scales, is, sc, m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    kquant::k4_scale_min(scales, is + 1, sc, m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
  }
}

// Q6_K: [ql:128][qh:64][scales:16 x i8][d:f16]; 6-bit values, 16 sub-blocks of 16.
void deq_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * float(sc[is + 0]) * float(q1);
      y[l + 32] = d * float(sc[is + 2]) * float(q2);
      y[l + 64] = d * float(sc[is + 4]) * float(q3);
      y[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

// Q8_K: [d:f32][qs:256 x i8][bsums:16 x i16].
void deq_q8_k(const uint8_t* b, float* y) {
  float d;
  std::memcpy(&d, b, 4);
  const int8_t* q = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < QK_K; ++j) y[j] = d * float(q[j]);
}

// ---- quantizers (round to nearest, GGML's reference rules) ----------------------------------

// roundf's rounding (halves away from zero) for |v| < 2^23, inline: truncation is one
// instruction and v - trunc(v) is exact, where std::lround is a library call per value (a Q8_0
// KV cache quantizes every key and value it stores: the call was 1.9 % of the samples of a
// 4096-token prompt).
inline int round_half_away(float v) {
  int i = int(v);
  const float frac = v - float(i);
  if (frac >= 0.5f) ++i;
  if (frac <= -0.5f) --i;
  return i;
}

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
  wrh(b, d);
  for (int j = 0; j < QK; ++j) b[2 + j] = uint8_t(int8_t(round_half_away(x[j] * id)));
}

// The value of largest magnitude, with its sign (Q4_0 / Q5_0 map it to the most negative code).
float signed_absmax(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < QK; ++j)
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  return max;
}

void quant_q4_0(const float* x, uint8_t* b) {
  const float d = signed_absmax(x) / -8.0f, id = d ? 1.0f / d : 0.0f;
  wrh(b, d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, int(x[j] * id + 8.5f));
    const int q1 = std::min(15, int(x[j + 16] * id + 8.5f));
    b[2 + j] = uint8_t(q0 | (q1 << 4));
  }
}

void quant_q5_0(const float* x, uint8_t* b) {
  const float d = signed_absmax(x) / -16.0f, id = d ? 1.0f / d : 0.0f;
  wrh(b, d);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(31, int(x[j] * id + 16.5f));
    const int q1 = std::min(31, int(x[j + 16] * id + 16.5f));
    b[6 + j] = uint8_t((q0 & 0xF) | ((q1 & 0xF) << 4));
    qh |= uint32_t((q0 >> 4) & 1) << j;
    qh |= uint32_t((q1 >> 4) & 1) << (j + 16);
  }
  std::memcpy(b + 2, &qh, 4);
}

// Q4_1 / Q5_1: affine, min .. max over `levels` steps.
void quant_affine(const float* x, uint8_t* b, int levels) {
  float mn = x[0], mx = x[0];
  for (int j = 1; j < QK; ++j) mn = std::min(mn, x[j]), mx = std::max(mx, x[j]);
  const float d = (mx - mn) / float(levels), id = d ? 1.0f / d : 0.0f;
  wrh(b, d);
  wrh(b + 2, mn);
  int q[QK];
  for (int j = 0; j < QK; ++j) q[j] = std::min(levels, int((x[j] - mn) * id + 0.5f));
  if (levels == 15) {
    for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t(q[j] | (q[j + 16] << 4));
  } else {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      b[8 + j] = uint8_t((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
      qh |= uint32_t((q[j] >> 4) & 1) << j;
      qh |= uint32_t((q[j + 16] >> 4) & 1) << (j + 16);
    }
    std::memcpy(b + 4, &qh, 4);
  }
}

}  // namespace

void dequantize_row(DType t, const void* src, float* y, int64_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(src);
  const DTypeInfo& info = dtype_info(t);
  const int64_t nb = n / info.block_elems;
  const int bs = info.block_bytes, be = info.block_elems;
  switch (t) {
    case DType::F32:
      std::memcpy(y, b, size_t(n) * 4);
      return;
    case DType::F16:
      f16_to_f32_row(reinterpret_cast<const uint16_t*>(b), y, n);
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_f32(rd16(b + 2 * i));
      return;
    default:
      break;
  }
  void (*fn)(const uint8_t*, float*) = nullptr;
  switch (t) {
    case DType::Q4_0:
      fn = deq_q4_0;
      break;
    case DType::Q4_1:
      fn = deq_q4_1;
      break;
    case DType::Q5_0:
      fn = deq_q5_0;
      break;
    case DType::Q5_1:
      fn = deq_q5_1;
      break;
    case DType::Q8_0:
      fn = [](const uint8_t* p, float* o) { deq_q8(p, o, 2); };
      break;
    case DType::Q8_1:
      fn = [](const uint8_t* p, float* o) { deq_q8(p, o, 4); };
      break;
    case DType::Q2_K:
      fn = deq_q2_k;
      break;
    case DType::Q3_K:
      fn = deq_q3_k;
      break;
    case DType::Q4_K:
      fn = deq_q4_k;
      break;
    case DType::Q5_K:
      fn = deq_q5_k;
      break;
    case DType::Q6_K:
      fn = deq_q6_k;
      break;
    case DType::Q8_K:
      fn = deq_q8_k;
      break;
    default:
      fail("hondo cannot compute with tensors of type ", info.name, " yet");
  }
  for (int64_t i = 0; i < nb; ++i) fn(b + i * bs, y + i * be);
}

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::Q8_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(DType t, const float* x, void* dst, int64_t n) {
  uint8_t* b = static_cast<uint8_t*>(dst);
  const DTypeInfo& info = dtype_info(t);
  if (n % info.block_elems) fail("quantize: ", n, " is not a multiple of ", info.block_elems);
  const int64_t nb = n / info.block_elems;
  const int bs = info.block_bytes;
  switch (t) {
    case DType::F32:
      std::memcpy(b, x, size_t(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(b + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(b + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0:
      for (int64_t i = 0; i < nb; ++i) quant_q8_0(x + i * QK, b + i * bs);
      return;
    case DType::Q4_0:
      for (int64_t i = 0; i < nb; ++i) quant_q4_0(x + i * QK, b + i * bs);
      return;
    case DType::Q5_0:
      for (int64_t i = 0; i < nb; ++i) quant_q5_0(x + i * QK, b + i * bs);
      return;
    case DType::Q4_1:
      for (int64_t i = 0; i < nb; ++i) quant_affine(x + i * QK, b + i * bs, 15);
      return;
    case DType::Q5_1:
      for (int64_t i = 0; i < nb; ++i) quant_affine(x + i * QK, b + i * bs, 31);
      return;
    default:
      if (!quantize_row_k(t, x, b, n)) fail("hondo cannot quantize to ", info.name, " yet");
  }
}

}  // namespace hondo
