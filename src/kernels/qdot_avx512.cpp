// The AVX-512 VNNI kernel set: the AVX2 code on 256-bit registers with vpdpbusd (AVX512_VNNI
// + AVX512VL) as the integer multiply-add, plus tile kernels on 512-bit registers for the
// repacked layouts of packed.h. Compiled with -mavx512vnni -mavx512vl ...
// GCC 12 warns inside its own _mm512_cvtph_ps / _mm512_cvtepi32_ps (their "undefined"
// pass-through operand); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define HONDO_QDOT_NS qdot_avx512vnni
#define HONDO_QDOT_VNNI 1
#include "kernels/packed.h"
#include "kernels/qdot_x86.inc"

namespace hondo::qdot_avx512vnni {
namespace {

inline __m512i bcast4(const int8_t* p) {  // one 4-byte group of activations to all 16 lanes
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// One activation block (32 values) against 8 weight registers (register c, lane r = values
// 4c..4c+3 of row r, as unsigned bytes): 8 vpdpbusd, exact in int32, in two chains, then
//   acc + scale * d_a * sum(w * q_a) - offset * (d_a * sum(q_a)).
inline __m512 tile_block(const __m512i* w, const int8_t* q, __m512 scale, float d_a, __m512 offset,
                         float ds, __m512 acc) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  for (int c = 0; c < 8; c += 2) {
    s0 = _mm512_dpbusd_epi32(s0, w[c], bcast4(q + 4 * c));
    s1 = _mm512_dpbusd_epi32(s1, w[c + 1], bcast4(q + 4 * c + 4));
  }
  const __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
  acc = _mm512_fmadd_ps(sum, _mm512_mul_ps(scale, _mm512_set1_ps(d_a)), acc);
  return _mm512_fnmadd_ps(offset, _mm512_set1_ps(ds), acc);
}

// Unpacking of one tile block's 512 values into 8 registers (register c, lane r = values
// 4c..4c+3 of row r, unsigned; layouts in packed.h).
inline void unpack_tile_q4_0(const uint8_t* qs, __m512i* w) {  // nibbles, 0..15
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int g = 0; g < 4; ++g) {
    const __m512i v = _mm512_loadu_si512(qs + 64 * g);
    w[g] = _mm512_and_si512(v, low4);
    w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
  }
}
inline void unpack_tile_q8_0(const uint8_t* qs, __m512i* w) {  // values + 128, stored as such
  for (int c = 0; c < 8; ++c) w[c] = _mm512_loadu_si512(qs + 64 * c);
}

// Tiles of 32-value blocks with one f16 scale per row and a constant offset (Q4_0: nibble - 8,
// Q8_0: stored value - 128), times N activation rows:
//   acc += d_w * d_a * sum(u * q_a) - offset * d_w * (d_a * sum(q_a)),  u the unsigned value,
// which is sum(d_w * (u - offset) * d_a * q_a), the weight times the activation.
template <int N, int kBlockBytes, int kOffset, void (*Unpack)(const uint8_t*, __m512i*)>
void tile_32(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  const int64_t nb = k / 32;
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, t += kTileRows * kBlockBytes) {
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)));
    const __m512 offset = _mm512_mul_ps(dw, _mm512_set1_ps(float(kOffset)));
    __m512i w[8];
    Unpack(t + 32, w);
    for (int j = 0; j < N; ++j)
      acc[j] = tile_block(w, a[j].q + 32 * b, dw, a[j].d[b], offset, a[j].ds[b], acc[j]);
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}
template <int N>
void tile_q4_0(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  tile_32<N, 18, 8, unpack_tile_q4_0>(t, a, k, out);
}
template <int N>
void tile_q8_0(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  tile_32<N, 34, 128, unpack_tile_q8_0>(t, a, k, out);
}

// Q4_K tile: per super-block the 16 rows' d and dmin, then per sub-block j of 32 values the
// rows' scales d * sc[j] and minimums dmin * m[j] as float vectors, its nibbles in 8
// registers, and for each activation row
//   acc += d * sc[j] * d_a * sum(nibble * q_a) - dmin * m[j] * (d_a * sum(q_a)).
template <int N>
void tile_q4_k(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  const int64_t nb = k / 256;
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  auto bytes16 = [](const uint8_t* p) {  // 16 bytes -> 16 floats
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  };
  for (int64_t b = 0; b < nb; ++b, t += kTileRows * 148) {
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 32)));
    for (int sub = 0; sub < 8; ++sub) {
      const __m512 scale = _mm512_mul_ps(d, bytes16(t + 64 + 16 * sub));
      const __m512 min = _mm512_mul_ps(dmin, bytes16(t + 192 + 16 * sub));
      const uint8_t* qs = t + 320 + 512 * (sub / 2);
      __m512i w[8];
      for (int g = 0; g < 8; ++g) {
        const __m512i v = _mm512_loadu_si512(qs + 64 * g);
        w[g] = _mm512_and_si512(sub % 2 ? _mm512_srli_epi16(v, 4) : v, low4);
      }
      const int64_t ab = 8 * b + sub;  // activation block
      for (int j = 0; j < N; ++j)
        acc[j] = tile_block(w, a[j].q + 32 * ab, scale, a[j].d[ab], min, a[j].ds[ab], acc[j]);
    }
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}

template <void (*Tile1)(const uint8_t*, const QActRow*, int64_t, float*),
          void (*Tile2)(const uint8_t*, const QActRow*, int64_t, float*),
          void (*Tile3)(const uint8_t*, const QActRow*, int64_t, float*),
          void (*Tile4)(const uint8_t*, const QActRow*, int64_t, float*)>
void tile_any(const void* tile, const QActRow* a, int n, int64_t k, float* out) {
  const auto* t = static_cast<const uint8_t*>(tile);
  switch (n) {
    case 1:
      return Tile1(t, a, k, out);
    case 2:
      return Tile2(t, a, k, out);
    case 3:
      return Tile3(t, a, k, out);
    default:
      return Tile4(t, a, k, out);
  }
}

}  // namespace
}  // namespace hondo::qdot_avx512vnni

namespace hondo {
const QDotKernels& qdot_avx512vnni_kernels() {
  static const QDotKernels ks = [] {
    QDotKernels s = qdot_avx512vnni::make_set("avx512vnni");
    using namespace qdot_avx512vnni;
    s.tile[uint32_t(DType::Q4_0)] =
        tile_any<tile_q4_0<1>, tile_q4_0<2>, tile_q4_0<3>, tile_q4_0<4>>;
    s.tile[uint32_t(DType::Q8_0)] =
        tile_any<tile_q8_0<1>, tile_q8_0<2>, tile_q8_0<3>, tile_q8_0<4>>;
    s.tile[uint32_t(DType::Q4_K)] =
        tile_any<tile_q4_k<1>, tile_q4_k<2>, tile_q4_k<3>, tile_q4_k<4>>;
    return s;
  }();
  return ks;
}
}  // namespace hondo
