// Quantizers for the K-quant formats (Q2_K .. Q6_K, Q8_K). The layouts are GGML's, so the
// files interoperate; the choice of scales is hondo's own: for each group of 16 or 32
// values a few candidate scales are tried, each followed by the least-squares refit of
// scale (and minimum) for the integers it produced, and the one with the smallest squared
// error is kept. Sub-block scales are then quantized to the format's 4, 6 or 8 bits relative
// to the super-block scale, and the values re-rounded with the scales as stored.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/kquant_layout.h"
#include "kernels/quant.h"

namespace hondo {

namespace {

constexpr int QK_K = 256;

inline int round_clamp(float v, int lo, int hi) {
  return std::clamp(int(std::nearbyint(v)), lo, hi);
}

inline void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// Symmetric fit x ~ s * q, q in [qmin, qmax] (qmin = -qmax - 1). The value of largest
// magnitude anchors the grid: candidates map it to qmin + t/10 for t in 0..10 (and to qmax
// with the other sign), each refined by s = sum(x q) / sum(q q). Returns s (0 for all-zero x).
float fit_symmetric(const float* x, int n, int qmin, int qmax) {
  float peak = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(peak)) peak = x[i];
  if (peak == 0) return 0;
  float best_s = peak / float(qmin), best_err = INFINITY;
  auto consider = [&](float s) {
    float sxq = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp(x[i] / s, qmin, qmax);
      sxq += x[i] * float(q), sqq += float(q * q);
    }
    if (sqq == 0) return;
    const float refit = sxq / sqq;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = x[i] - refit * float(round_clamp(x[i] / refit, qmin, qmax));
      err += e * e;
    }
    if (err < best_err) best_err = err, best_s = refit;
  };
  for (int t = 0; t <= 10; ++t) consider(peak / (float(qmin) + 0.1f * float(t)));
  for (int t = 0; t <= 10; ++t) consider(peak / (float(qmax) - 0.1f * float(t)));
  return best_s;
}

// Affine fit x ~ s * q - m with q in [0, qmax], s >= 0, m >= 0 (the grid's zero must not sit
// above the smallest value). Candidates stretch the range [min(x, 0), max(x)] over qmax + t/10
// steps; each is refined by least squares for (s, m) given its integers.
void fit_affine(const float* x, int n, int qmax, float& s_out, float& m_out) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  s_out = 0, m_out = -lo;
  if (hi <= lo) return;  // all values equal to lo (<= 0): q = 0 represents them exactly
  float best_err = INFINITY;
  int q[32];
  for (int t = -5; t <= 10; ++t) {
    const float s0 = (hi - lo) / (float(qmax) + 0.1f * float(t));
    if (s0 <= 0) continue;
    for (int i = 0; i < n; ++i) q[i] = round_clamp((x[i] - lo) / s0, 0, qmax);
    // least squares for x = s q + c, then m = -c clamped to >= 0
    float sq = 0, sx = 0, sqq = 0, sxq = 0;
    for (int i = 0; i < n; ++i)
      sq += float(q[i]), sx += x[i], sqq += float(q[i] * q[i]), sxq += x[i] * float(q[i]);
    const float det = float(n) * sqq - sq * sq;
    float s = s0, c = lo;
    if (det > 0) {
      s = (float(n) * sxq - sq * sx) / det;
      c = (sx - s * sq) / float(n);
    }
    if (c > 0 || s <= 0) {  // minimum must be >= 0: fit s alone with c = 0
      c = 0;
      s = sqq > 0 ? sxq / sqq : s0;
      if (s <= 0) continue;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = x[i] - (s * float(round_clamp((x[i] - c) / s, 0, qmax)) + c);
      err += e * e;
    }
    if (err < best_err) best_err = err, s_out = s, m_out = -c;
  }
}

// Quantizes per-group scales v[n] (>= 0) to integers in 0..levels with one float step.
float quantize_scales(const float* v, int n, int levels, uint8_t* out) {
  float mx = 0;
  for (int i = 0; i < n; ++i) mx = std::max(mx, v[i]);
  const float step = mx / float(levels);
  for (int i = 0; i < n; ++i) out[i] = uint8_t(step > 0 ? round_clamp(v[i] / step, 0, levels) : 0);
  return step;
}

// ---- Q4_K / Q5_K: 8 sub-blocks of 32, value = d * sc * q - dmin * m --------------------------

template <int kBits>
void quant_k4(const float* x, uint8_t* b) {
  constexpr int qmax = (1 << kBits) - 1;
  float s[8], m[8];
  for (int j = 0; j < 8; ++j) fit_affine(x + 32 * j, 32, qmax, s[j], m[j]);
  uint8_t sc[8], mn[8];
  const float d = quantize_scales(s, 8, 63, sc);
  const float dmin = quantize_scales(m, 8, 63, mn);
  put_half(b, d);
  put_half(b + 2, dmin);
  kquant::k4_pack(sc, mn, b + 4);
  // Re-round with the scales exactly as stored (f16 and 6-bit).
  const float d_st = f16_at(b), dmin_st = f16_at(b + 2);
  uint8_t* qh = b + 16;
  uint8_t* qs = b + (kBits == 5 ? 48 : 16);
  if (kBits == 5) std::memset(qh, 0, 32);
  std::memset(qs, 0, 128);
  for (int j = 0; j < 8; ++j) {
    const float step = d_st * float(sc[j]), off = dmin_st * float(mn[j]);
    for (int l = 0; l < 32; ++l) {
      const int q = step > 0 ? round_clamp((x[32 * j + l] + off) / step, 0, qmax) : 0;
      qs[32 * (j / 2) + l] |= uint8_t((q & 0xF) << (4 * (j % 2)));
      if (kBits == 5) qh[l] |= uint8_t(((q >> 4) & 1) << j);
    }
  }
}

// The 16 groups of 16 of a symmetric K-quant: each group's scale fitted for values in
// [qmin, qmax], then the scales themselves quantized to integers in [smin, smax] with the
// largest one mapped to smin (as Q4_0 maps its values). Returns the super-block scale d.
float fit_groups_symmetric(const float* x, int qmin, int qmax, int smin, int smax, int* sc) {
  float s[16];
  float peak = 0;
  for (int g = 0; g < 16; ++g) {
    s[g] = fit_symmetric(x + 16 * g, 16, qmin, qmax);
    if (std::fabs(s[g]) > std::fabs(peak)) peak = s[g];
  }
  const float d = peak / float(smin);
  for (int g = 0; g < 16; ++g) sc[g] = d != 0 ? round_clamp(s[g] / d, smin, smax) : 0;
  return d;
}

// ---- Q6_K: 16 groups of 16, value = d * sc * q, q in -32..31, sc int8 ------------------------

void quant_q6_k(const float* x, uint8_t* b) {
  int scales[16];
  const float d = fit_groups_symmetric(x, -32, 31, -128, 127, scales);
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int g = 0; g < 16; ++g) sc[g] = int8_t(scales[g]);
  put_half(b + 208, d);
  const float d_st = f16_at(b + 208);
  uint8_t v[QK_K];  // 0..63
  for (int i = 0; i < QK_K; ++i) {
    const float step = d_st * float(sc[i / 16]);
    v[i] = uint8_t((step != 0 ? round_clamp(x[i] / step, -32, 31) : 0) + 32);
  }
  kquant::q6_store(v, b, b + 128);
}

// ---- Q3_K: 16 groups of 16, value = d * sc * q, q in -4..3, sc in -32..31 --------------------

void quant_q3_k(const float* x, uint8_t* b) {
  int sc[16];
  const float d = fit_groups_symmetric(x, -4, 3, -32, 31, sc);
  kquant::q3_pack(sc, b + 96);
  put_half(b + 108, d);
  const float d_st = f16_at(b + 108);
  uint8_t v[QK_K];  // 0..7
  for (int i = 0; i < QK_K; ++i) {
    const float step = d_st * float(sc[i / 16]);
    v[i] = uint8_t((step != 0 ? round_clamp(x[i] / step, -4, 3) : 0) + 4);
  }
  kquant::q3_store(v, b, b + 32);
}

// ---- Q2_K: 16 groups of 16, value = d * (sc & 15) * q - dmin * (sc >> 4), q in 0..3 ----------

void quant_q2_k(const float* x, uint8_t* b) {
  float s[16], m[16];
  for (int g = 0; g < 16; ++g) fit_affine(x + 16 * g, 16, 3, s[g], m[g]);
  uint8_t sc[16], mn[16];
  const float d = quantize_scales(s, 16, 15, sc);
  const float dmin = quantize_scales(m, 16, 15, mn);
  for (int g = 0; g < 16; ++g) b[g] = uint8_t(sc[g] | (mn[g] << 4));
  put_half(b + 80, d);
  put_half(b + 82, dmin);
  const float d_st = f16_at(b + 80), dmin_st = f16_at(b + 82);
  uint8_t* qs = b + 16;
  std::memset(qs, 0, 64);
  for (int g = 0; g < 16; ++g) {
    const float step = d_st * float(sc[g]), off = dmin_st * float(mn[g]);
    const int half = g / 8, shift = 2 * ((g % 8) / 2), part = g % 2;
    for (int l = 0; l < 16; ++l) {
      const int q = step > 0 ? round_clamp((x[16 * g + l] + off) / step, 0, 3) : 0;
      qs[32 * half + 16 * part + l] |= uint8_t(q << shift);
    }
  }
}

// ---- Q8_K: [d:f32][qs:256 x i8][bsums:16 x i16] (GGML's activation format) ----------------------

void quant_q8_k(const float* x, uint8_t* b) {
  float amax = 0;
  for (int i = 0; i < QK_K; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
  std::memcpy(b, &d, 4);
  auto* q = reinterpret_cast<int8_t*>(b + 4);
  for (int i = 0; i < QK_K; ++i) q[i] = int8_t(round_clamp(x[i] * id, -127, 127));
  for (int g = 0; g < 16; ++g) {
    int16_t sum = 0;
    for (int l = 0; l < 16; ++l) sum = int16_t(sum + q[16 * g + l]);
    std::memcpy(b + 260 + 2 * g, &sum, 2);
  }
}

}  // namespace

bool quantize_row_k(DType t, const float* x, void* dst, int64_t n) {
  void (*fn)(const float*, uint8_t*) = nullptr;
  switch (t) {
    case DType::Q2_K:
      fn = quant_q2_k;
      break;
    case DType::Q3_K:
      fn = quant_q3_k;
      break;
    case DType::Q4_K:
      fn = quant_k4<4>;
      break;
    case DType::Q5_K:
      fn = quant_k4<5>;
      break;
    case DType::Q6_K:
      fn = quant_q6_k;
      break;
    case DType::Q8_K:
      fn = quant_q8_k;
      break;
    default:
      return false;
  }
  const int bytes = dtype_info(t).block_bytes;
  auto* b = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i) fn(x + i * QK_K, b + i * bytes);
  return true;
}

}  // namespace hondo
