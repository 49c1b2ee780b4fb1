// Scalar reference kernels for the integer dot products (see qdot.h). Each weight block is
// unpacked into small integers q and, per group of 16 values, a scale and a minimum such that
//   w[i] = scale[i / 16] * q[i] - min[i / 16]
// and the dot with a quantized activation block is
//   sum_g d_a * (scale[g] * sum_{i in g} q[i] * q_a[i] - min[g] * sum_{i in g} q_a[i]).
// The integer sums are exact; the reference accumulates the float terms in double.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "kernels/kquant_layout.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"

namespace hondo {

namespace {

// One weight block unpacked: up to 256 values in 16 groups of 16.
struct Unpacked {
  int8_t q[256];
  float scale[16];
  float min[16];
};

// ---- legacy formats: 32 values, one scale (and minimum) ----------------------------------

void set_groups(Unpacked& u, int n_groups, float scale, float min) {
  for (int g = 0; g < n_groups; ++g) u.scale[g] = scale, u.min[g] = min;
}

void unpack_q4_0(const uint8_t* b, Unpacked& u) {
  for (int j = 0; j < 16; ++j) {
    u.q[j] = int8_t((b[2 + j] & 0xF) - 8);
    u.q[j + 16] = int8_t((b[2 + j] >> 4) - 8);
  }
  set_groups(u, 2, f16_at(b), 0.0f);
}

void unpack_q4_1(const uint8_t* b, Unpacked& u) {
  for (int j = 0; j < 16; ++j) {
    u.q[j] = int8_t(b[4 + j] & 0xF);
    u.q[j + 16] = int8_t(b[4 + j] >> 4);
  }
  set_groups(u, 2, f16_at(b), -f16_at(b + 2));
}

// 5-bit values: low 4 bits in qs, bit 4 of value j is bit j of qh.
void unpack_5bit(const uint8_t* qh_bytes, const uint8_t* qs, int offset, Unpacked& u) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    u.q[j] = int8_t(((qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - offset);
    u.q[j + 16] = int8_t(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset);
  }
}

void unpack_q5_0(const uint8_t* b, Unpacked& u) {
  unpack_5bit(b + 2, b + 6, 16, u);
  set_groups(u, 2, f16_at(b), 0.0f);
}

void unpack_q5_1(const uint8_t* b, Unpacked& u) {
  unpack_5bit(b + 4, b + 8, 0, u);
  set_groups(u, 2, f16_at(b), -f16_at(b + 2));
}

void unpack_q8_0(const uint8_t* b, Unpacked& u) {
  std::memcpy(u.q, b + 2, 32);
  set_groups(u, 2, f16_at(b), 0.0f);
}

// ---- K-quants: 256 values ------------------------------------------------------------------

// Q2_K: 16 groups of 16; value = d * (sc & 15) * q - dmin * (sc >> 4), q in 0..3.
void unpack_q2_k(const uint8_t* b, Unpacked& u) {
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int g = 0; g < 16; ++g) {
    const int half = g / 8, shift = 2 * ((g % 8) / 2), part = g % 2;
    const uint8_t* qs = b + 16 + 32 * half + 16 * part;
    for (int l = 0; l < 16; ++l) u.q[16 * g + l] = int8_t((qs[l] >> shift) & 3);
    u.scale[g] = d * float(b[g] & 0xF);
    u.min[g] = dmin * float(b[g] >> 4);
  }
}

// Q3_K: value = d * scale * (v - 4), v the 3-bit values (bit layout in kquant_layout.h).
void unpack_q3_k(const uint8_t* b, Unpacked& u) {
  const float d = f16_at(b + 108);
  int sc[16];
  kquant::q3_scales(b + 96, sc);
  uint8_t v[256];
  kquant::q3_values(b, b + 32, v);
  for (int i = 0; i < 256; ++i) u.q[i] = int8_t(v[i] - 4);
  for (int g = 0; g < 16; ++g) u.scale[g] = d * float(sc[g]), u.min[g] = 0.0f;
}

// Q4_K / Q5_K: 8 sub-blocks of 32; value = d * sc * q - dmin * m. Sub-block 2i takes the low
// nibbles of qs[32i .. 32i+32), sub-block 2i+1 the high ones; Q5_K's bit 4 is bit j of qh[l].
void unpack_k4(const uint8_t* b, const uint8_t* qs, const uint8_t* qh, Unpacked& u) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    kquant::k4_scale_min(b + 4, j, sc, m);
    const uint8_t* q = qs + 32 * (j / 2);
    for (int l = 0; l < 32; ++l) {
      int v = (j % 2) ? (q[l] >> 4) : (q[l] & 0xF);
      if (qh) v |= ((qh[l] >> j) & 1) << 4;
      u.q[32 * j + l] = int8_t(v);
    }
    u.scale[2 * j] = u.scale[2 * j + 1] = d * float(sc);
    u.min[2 * j] = u.min[2 * j + 1] = dmin * float(m);
  }
}

void unpack_q4_k(const uint8_t* b, Unpacked& u) {
  unpack_k4(b, b + 16, nullptr, u);
}
void unpack_q5_k(const uint8_t* b, Unpacked& u) {
  unpack_k4(b, b + 48, b + 16, u);
}

// Q6_K: value = d * sc[g] * (v - 32), v the 6-bit values (bit layout in kquant_layout.h).
void unpack_q6_k(const uint8_t* b, Unpacked& u) {
  const float d = f16_at(b + 208);
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  uint8_t v[256];
  kquant::q6_values(b, b + 128, v);
  for (int i = 0; i < 256; ++i) u.q[i] = int8_t(v[i] - 32);
  for (int g = 0; g < 16; ++g) u.scale[g] = d * float(sc[g]), u.min[g] = 0.0f;
}

template <void (*Unpack)(const uint8_t*, Unpacked&), int kBlockElems, int kBlockBytes>
void ref_dot(const void* w, const QActRow* a, int n, int64_t k, float* out) {
  const auto* b = static_cast<const uint8_t*>(w);
  double acc[kQDotMaxRows] = {};
  Unpacked u;
  for (int64_t i0 = 0; i0 < k; i0 += kBlockElems, b += kBlockBytes) {
    Unpack(b, u);
    for (int g = 0; g < kBlockElems / 16; ++g) {
      const int64_t base = i0 + 16 * g;
      for (int j = 0; j < n; ++j) {
        int32_t isum = 0;
        for (int l = 0; l < 16; ++l) isum += int32_t(u.q[16 * g + l]) * a[j].q[base + l];
        acc[j] += double(a[j].d[base / 32]) *
                  (double(u.scale[g]) * isum - double(u.min[g]) * a[j].s[base / 16]);
      }
    }
  }
  for (int j = 0; j < n; ++j) out[j] = float(acc[j]);
}

void quantize_act_ref(const float* x, int64_t k, int8_t* q, float* d, int16_t* s) {
  for (int64_t b = 0; b < k / 32; ++b, x += 32, q += 32) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    d[b] = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    for (int i = 0; i < 32; ++i) q[i] = int8_t(std::nearbyint(x[i] * id));
    for (int h = 0; h < 2; ++h) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += q[16 * h + i];
      s[2 * b + h] = int16_t(sum);
    }
  }
}

// Tile reference: rebuilds each row's GGUF blocks from the tile (layouts in packed.h) and
// takes the row reference's dot, so the tile layout is checked against the file's.
template <DType kType, void (*RowDot)(const void*, const QActRow*, int, int64_t, float*)>
void ref_tile(const void* tile, const QActRow* a, int n, int64_t k, float* out) {
  std::vector<uint8_t> row(row_bytes(kType, k));  // one row, GGUF blocks
  for (int r = 0; r < kTileRows; ++r) {
    unpack_tile_row(kType, tile, r, k, row.data());
    float o[kQDotMaxRows];
    RowDot(row.data(), a, n, k, o);
    for (int j = 0; j < n; ++j) out[j * kTileRows + r] = o[j];
  }
}

QDotKernels make_reference() {
  QDotKernels ks{};
  ks.isa = "scalar";
  ks.quantize = quantize_act_ref;
  auto set = [&](DType t, QDotFn f) { ks.dot[uint32_t(t)] = f; };
  set(DType::Q4_0, ref_dot<unpack_q4_0, 32, 18>);
  set(DType::Q4_1, ref_dot<unpack_q4_1, 32, 20>);
  set(DType::Q5_0, ref_dot<unpack_q5_0, 32, 22>);
  set(DType::Q5_1, ref_dot<unpack_q5_1, 32, 24>);
  set(DType::Q8_0, ref_dot<unpack_q8_0, 32, 34>);
  set(DType::Q2_K, ref_dot<unpack_q2_k, 256, 84>);
  set(DType::Q3_K, ref_dot<unpack_q3_k, 256, 110>);
  set(DType::Q4_K, ref_dot<unpack_q4_k, 256, 144>);
  set(DType::Q5_K, ref_dot<unpack_q5_k, 256, 176>);
  set(DType::Q6_K, ref_dot<unpack_q6_k, 256, 210>);
  ks.tile[uint32_t(DType::Q4_0)] = ref_tile<DType::Q4_0, ref_dot<unpack_q4_0, 32, 18>>;
  ks.tile[uint32_t(DType::Q4_1)] = ref_tile<DType::Q4_1, ref_dot<unpack_q4_1, 32, 20>>;
  ks.tile[uint32_t(DType::Q5_0)] = ref_tile<DType::Q5_0, ref_dot<unpack_q5_0, 32, 22>>;
  ks.tile[uint32_t(DType::Q5_1)] = ref_tile<DType::Q5_1, ref_dot<unpack_q5_1, 32, 24>>;
  ks.tile[uint32_t(DType::Q8_0)] = ref_tile<DType::Q8_0, ref_dot<unpack_q8_0, 32, 34>>;
  ks.tile[uint32_t(DType::Q2_K)] = ref_tile<DType::Q2_K, ref_dot<unpack_q2_k, 256, 84>>;
  ks.tile[uint32_t(DType::Q3_K)] = ref_tile<DType::Q3_K, ref_dot<unpack_q3_k, 256, 110>>;
  ks.tile[uint32_t(DType::Q4_K)] = ref_tile<DType::Q4_K, ref_dot<unpack_q4_k, 256, 144>>;
  ks.tile[uint32_t(DType::Q5_K)] = ref_tile<DType::Q5_K, ref_dot<unpack_q5_k, 256, 176>>;
  ks.tile[uint32_t(DType::Q6_K)] = ref_tile<DType::Q6_K, ref_dot<unpack_q6_k, 256, 210>>;
  return ks;
}

}  // namespace

const QDotKernels& qdot_reference() {
  static const QDotKernels ks = make_reference();
  return ks;
}

}  // namespace hondo
