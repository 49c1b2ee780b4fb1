// The AVX2 (+FMA, F16C) kernel set. Compiled with -mavx2 -mfma -mf16c; see qdot_x86.inc.
// Besides the row kernels of qdot_x86.inc, tile kernels for the repacked layouts of
// packed.h: a 16-row tile is two halves of 8 rows, one 256-bit register holding 4 values of
// each of 8 rows, multiplied by a broadcast activation group with maddubs (no saturation:
// the unsigned values are at most 63, so a pair sums to at most 2 * 63 * 127), the products
// of several registers added in int16 as far as they cannot overflow, then widened by madd.
// Q8_0's values (stored + 128 for vpdpbusd) would saturate maddubs and go through |v| and the
// activation's sign instead (TileQ8).
#define HONDO_QDOT_NS qdot_avx2
#define HONDO_QDOT_VNNI 0
#include <algorithm>

#include "kernels/packed.h"
#include "kernels/qdot_x86.inc"

namespace hondo::qdot_avx2 {
namespace {

constexpr int kHalfRows = 8;

inline __m256i bcast4(const int8_t* p) {  // one 4-byte group of activations to all 8 lanes
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The int32 sums of registers w[c0 .. c0 + kCount) times the activation groups at q + 4 c
// (register c, lane r: 4 values of row r), kMax the largest weight value. maddubs gives pairs
// of products, at most 2 kMax 127 each; as many registers as keep their sum below 2^15 are
// added in int16 before one madd widens them (Q4: all 8, at most 30480; Q5: 4; Q6_K: 2).
template <int kMax, int c0, int kCount>
inline __m256i group_sums(const __m256i* w, const int8_t* q) {
  constexpr int kSpan = std::min(kCount, 32767 / (2 * kMax * 127));
  static_assert(kSpan >= 1 && kCount % kSpan == 0);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s = _mm256_setzero_si256();
  for (int c1 = c0; c1 < c0 + kCount; c1 += kSpan) {
    __m256i p = _mm256_maddubs_epi16(w[c1], bcast4(q + 4 * c1));
    for (int c = c1 + 1; c < c1 + kSpan; ++c)
      p = _mm256_add_epi16(p, _mm256_maddubs_epi16(w[c], bcast4(q + 4 * c)));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
  }
  return s;
}

// Adds to s0 and s1 the int32 sums over each half (16 values) of one activation block q:
// registers 0..3 hold the first half, 4..7 the second (values at most kMax <= 63).
template <int kMax>
inline void half_sums(const __m256i* w, const int8_t* q, __m256i& s0, __m256i& s1) {
  s0 = _mm256_add_epi32(s0, group_sums<kMax, 0, 4>(w, q));
  s1 = _mm256_add_epi32(s1, group_sums<kMax, 4, 4>(w, q));
}

inline __m256i scales8(const uint8_t* p) {  // 8 int8 -> 8 int32
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
// Q6_K / Q3_K: isum = sum_h sc_h * (sum(v * q_a) - kOffset * s_h) in int32, then
// acc + d * d_a * isum.
template <int kOffset>
inline __m256 block_two_scales(const __m256i* w, const QActRow& a, int64_t ab, __m256i sc0,
                               __m256i sc1, __m256 d, __m256 acc) {
  __m256i s0 = _mm256_set1_epi32(-kOffset * a.s[2 * ab]);
  __m256i s1 = _mm256_set1_epi32(-kOffset * a.s[2 * ab + 1]);
  half_sums<2 * kOffset - 1>(w, a.q + 32 * ab, s0, s1);  // values 0 .. 2 kOffset - 1
  const __m256i isum = _mm256_add_epi32(_mm256_mullo_epi32(s0, sc0), _mm256_mullo_epi32(s1, sc1));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, _mm256_set1_ps(a.d[ab])), acc);
}

// One group (32 values) of a Q6_K/Q3_K tile block for one half: the rows' int8 scales of its
// two halves of 16 values (at sc and sc + 16) and block_two_scales for every activation row.
template <int kOffset, int N>
inline void two_scale_group(const __m256i* w, const uint8_t* sc, __m256 d, const QActRow* a,
                            int64_t ab, __m256* acc) {
  const __m256i sc0 = scales8(sc), sc1 = scales8(sc + 16);
  for (int j = 0; j < N; ++j) acc[j] = block_two_scales<kOffset>(w, a[j], ab, sc0, sc1, d, acc[j]);
}

// The sums of N activation rows for the two 8-row halves into out[j * 16 + row].
template <int N>
inline void store_halves(const __m256 (*acc)[N], float* out) {
  for (int j = 0; j < N; ++j)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(out + kTileRows * j + kHalfRows * h, acc[h][j]);
}

// Activation block ab (32 values) of N activation rows against 8 registers (register c,
// lane r = values 4c..4c+3 of row r of the half, unsigned), per row (see qdot_avx512.cpp):
// constant offset (kMin false)  acc + scale * d_a * (sum(w * q_a) - offset * sum(q_a)),
// minimum per row (kMin)        acc + scale * d_a * sum(w * q_a) - offset * (d_a * sum(q_a)).
template <int N, int kMax, int kOffset, bool kMin>
inline void tile_block(const __m256i* w, const QActRow* a, int64_t ab, __m256 scale, __m256 offset,
                       __m256* acc) {
  for (int j = 0; j < N; ++j) {
    __m256i s = group_sums<kMax, 0, 8>(w, a[j].q + 32 * ab);
    if (!kMin) s = _mm256_sub_epi32(s, _mm256_set1_epi32(kOffset * sum32(a[j], ab)));
    const __m256 sum = _mm256_cvtepi32_ps(s);
    acc[j] = _mm256_fmadd_ps(sum, _mm256_mul_ps(scale, _mm256_set1_ps(a[j].d[ab])), acc[j]);
    if (kMin) acc[j] = _mm256_fnmadd_ps(offset, _mm256_set1_ps(a[j].ds[ab]), acc[j]);
  }
}

inline __m256 halves8(const uint8_t* p) {  // 8 f16 -> 8 floats
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i ints8(const uint8_t* p) {  // 8 unsigned bytes -> 8 int32
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Nibbles of half h of a tile block's 4 groups of 64 bytes (layouts in packed.h).
inline void unpack_nibbles(const uint8_t* qs, int h, __m256i* w) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int g = 0; g < 4; ++g) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64 * g + 32 * h));
    w[g] = _mm256_and_si256(v, low4);
    w[g + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
  }
}
// High bits (Q5's fifth, 16; Q3_K's third, 4): bits 32h .. 32h + 31 of each register's 64-bit
// lane mask; the bit is above the values already there, so or-ing adds it.
inline void add_high_bits(const uint8_t* qh, int h, __m256i* w, int8_t value = 16) {
  const __m256i v = _mm256_set1_epi8(value);
  for (int c = 0; c < 8; ++c) {
    uint32_t bits;
    std::memcpy(&bits, qh + 8 * c + 4 * h, 4);
    w[c] = _mm256_or_si256(w[c], _mm256_and_si256(bytes_from_bits(bits), v));
  }
}
// The 2-bit values of group grp (0..7) of a Q2_K/Q3_K tile block, half h, from the 512 bytes
// of 2-bit pairs of its four groups at lo2 (4 groups share a byte: bits 2 (grp % 4),
// 2 (grp % 4) + 1).
inline void unpack_pairs(const uint8_t* lo2, int grp, int h, __m256i* w) {
  const __m256i three = _mm256_set1_epi8(3);
  const uint8_t* p = lo2 + 32 * h;
  for (int c = 0; c < 8; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * c));
    w[c] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * (grp % 4)), three);
  }
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1 tiles (see qdot_avx512.cpp for the arithmetic and packed.h for
// the groups: a 64-byte header, then two blocks of values, or one with a minimum).
template <int kOffset, bool kMin, bool kFifth>
struct Tile32 {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
    constexpr int kBlocks = kMin ? 1 : 2, kValues = kFifth ? 320 : 256;
    constexpr int kGroup = 64 + kBlocks * kValues;
    __m256 acc[2][N];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < N; ++j) acc[h][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < k / 32; t += kGroup) {
      prefetch_ahead<kHint>(t, kGroup);
      for (int i = 0; i < kBlocks; ++i, ++b) {
        const uint8_t* v = t + 64 + kValues * i;
        for (int h = 0; h < 2; ++h) {
          const __m256 dw = halves8(t + 32 * i + 16 * h);
          const __m256 offset =
              kMin ? _mm256_sub_ps(_mm256_setzero_ps(), halves8(t + 32 + 16 * h)) : dw;
          __m256i w[8];
          unpack_nibbles(v, h, w);
          if (kFifth) add_high_bits(v + 256, h, w);
          tile_block<N, kFifth ? 31 : 15, kOffset, kMin>(w, a, b, dw, offset, acc[h]);
        }
      }
    }
    store_halves<N>(acc, out);
  }
};

// Q8_0 tiles (layout in packed.h: groups of two blocks, 2 x 16 f16 scales, then each block's
// values + 128 in 8 groups of 4 per row). Unsigned, a pair of products would reach
// 2 * 255 * 127 and saturate maddubs; so each register goes back to int8 v (xor 0x80) and
// maddubs multiplies |v| by the activation with v's sign, at most 2 * 128 * 127 per pair:
// acc += d_w * d_a * sum(v * q_a), exact in int32.
// Lines 6 KiB ahead: on Zen 3 (no page hint), R1-1.5B and V2-Lite Q8_0 decoded at 91.6-96.7 %
// of the roofline that way against 86.3-95.9 % at 4 KiB (8 KiB, R1 alone: 91.1-95.1 %), one binary
// with the distances in turn, three rounds each (docs/PERFORMANCE.md, 2026-12-08).
constexpr int kQ8LinesAhead = 6144;
struct TileQ8 {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
    constexpr int kGroup = 64 + 2 * 512;
    const __m256i flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
    __m256 acc[2][N];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < N; ++j) acc[h][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < k / 32; t += kGroup) {
      prefetch_ahead<kHint, kQ8LinesAhead>(t, kGroup);
      for (int i = 0; i < 2; ++i, ++b) {
        const uint8_t* vals = t + 64 + 512 * i;
        for (int h = 0; h < 2; ++h) {
          const __m256 dw = halves8(t + 32 * i + 16 * h);
          __m256i v[8], m[8];  // register c, lane r: values 4c..4c+3 of row 8h + r; m = |v|
          for (int c = 0; c < 8; ++c) {
            v[c] = _mm256_xor_si256(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vals + 64 * c + 32 * h)), flip);
            m[c] = _mm256_abs_epi8(v[c]);
          }
          for (int j = 0; j < N; ++j) {
            const int8_t* q = a[j].q + 32 * b;
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
            for (int c = 0; c < 8; c += 2) {
              s0 = _mm256_add_epi32(
                  s0,
                  _mm256_madd_epi16(
                      _mm256_maddubs_epi16(m[c], _mm256_sign_epi8(bcast4(q + 4 * c), v[c])), ones));
              s1 = _mm256_add_epi32(
                  s1, _mm256_madd_epi16(
                          _mm256_maddubs_epi16(m[c + 1],
                                               _mm256_sign_epi8(bcast4(q + 4 * c + 4), v[c + 1])),
                          ones));
            }
            const __m256 sum = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));
            acc[h][j] =
                _mm256_fmadd_ps(sum, _mm256_mul_ps(dw, _mm256_set1_ps(a[j].d[b])), acc[h][j]);
          }
        }
      }
    }
    store_halves<N>(acc, out);
  }
};

// Q4_K / Q5_K tiles.
template <bool kQ5>
struct TileK {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
    constexpr int kTileBlock = KTile::bytes(kQ5);
    const int64_t nb = k / 256;
    __m256 acc[2][N];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < N; ++j) acc[h][j] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; ++b, t += kTileBlock) {
      for (int sub = 0; sub < 8; ++sub) {
        prefetch_ahead<kHint>(t + kTileBlock / 8 * sub, kTileBlock / 8);
        const uint8_t* qs = t + KTile::qs(kQ5, sub / 2);
        const int64_t ab = 8 * b + sub;  // activation block
        for (int h = 0; h < 2; ++h) {
          // The rows' 6-bit scale and minimum (packed.h): sc = scm & 63, m = scm >> 6 | mh's
          // nibble << 2.
          const __m256i scm = ints8(t + KTile::kScm + 16 * sub + 8 * h);
          const __m256i mh = ints8(t + KTile::kMh + 16 * (sub / 2) + 8 * h);
          const __m256i m = _mm256_or_si256(
              _mm256_srli_epi32(scm, 6),
              _mm256_and_si256(sub % 2 ? _mm256_srli_epi32(mh, 2) : _mm256_slli_epi32(mh, 2),
                               _mm256_set1_epi32(60)));
          const __m256 scale =
              _mm256_mul_ps(halves8(t + KTile::kD + 16 * h),
                            _mm256_cvtepi32_ps(_mm256_and_si256(scm, _mm256_set1_epi32(63))));
          const __m256 min =
              _mm256_mul_ps(halves8(t + KTile::kDmin + 16 * h), _mm256_cvtepi32_ps(m));
          __m256i w[8];
          for (int g = 0; g < 8; ++g) {
            const __m256i v =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 64 * g + 32 * h));
            w[g] = _mm256_and_si256(sub % 2 ? _mm256_srli_epi16(v, 4) : v, low4);
          }
          if (kQ5) add_high_bits(t + KTile::qh(sub), h, w);
          tile_block<N, kQ5 ? 31 : 15, 0, true>(w, a, ab, scale, min, acc[h]);
        }
      }
    }
    store_halves<N>(acc, out);
  }
};

// Q6_K tiles: -32 applied in int32 with the activation sums of each 16, int8 scales per 16
// values multiplied in int32 (see qdot_avx512.cpp); 6-bit values keep maddubs unsaturated.
struct TileQ6K {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
    using L = Q6KTile;  // offsets in the tile block
    const int64_t nb = k / 256;
    __m256 acc[2][N];
    for (int h = 0; h < 2; ++h)
      for (int j = 0; j < N; ++j) acc[h][j] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F), high2 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; ++b, t += L::kBytes) {
      for (int grp = 0; grp < 8; ++grp) {
        prefetch_ahead<kHint>(t + L::kBytes / 8 * grp, L::kBytes / 8);  // in 8 steps
        const uint8_t* ql = t + L::ql(grp / 2);
        const uint8_t* qh = t + L::qh(grp / 4);
        const int pair = grp % 4;  // bits 2 pair, 2 pair + 1 of qh, moved to bits 4, 5
        const int64_t ab = 8 * b + grp;
        for (int h = 0; h < 2; ++h) {
          __m256i w[8];
          for (int c = 0; c < 8; ++c) {
            __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * c + 32 * h));
            if (grp % 2) lo = _mm256_srli_epi16(lo, 4);
            __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 64 * c + 32 * h));
            hi = pair < 2 ? _mm256_slli_epi16(hi, 4 - 2 * pair)
                          : _mm256_srli_epi16(hi, 2 * pair - 4);
            w[c] = _mm256_or_si256(_mm256_and_si256(lo, low4), _mm256_and_si256(hi, high2));
          }
          two_scale_group<32, N>(w, t + L::kSc + 32 * grp + 8 * h, halves8(t + L::kD + 16 * h), a,
                                 ab, acc[h]);
        }
      }
    }
    store_halves<N>(acc, out);
  }
};

// The 32-value groups of a row of K-quant tile blocks (kBlock bytes per 256 values), each
// 8-row half in turn: body(block, grp, h, ab), ab the activation block. Prefetches as it goes.
template <int kBlock, LineHint kHint, class Body>
__attribute__((always_inline)) inline void each_group_half(const uint8_t* t, int64_t k, Body body) {
  for (int64_t b = 0; b < k / 256; ++b, t += kBlock)
    for (int grp = 0; grp < 8; ++grp) {
      prefetch_ahead<kHint>(t + kBlock / 8 * grp, kBlock / 8);
      for (int h = 0; h < 2; ++h) body(t, grp, h, 8 * b + grp);
    }
}

// Q2_K tiles (layout in packed.h, arithmetic as in qdot_avx512.cpp): 2-bit values of 4
// groups share a byte; 4-bit scales and minimums per 16 values applied in int32.
struct TileQ2K {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
    using L = Q2KTile;  // offsets in the tile block
    __m256 acc[2][N] = {};
    const __m256i low4 = _mm256_set1_epi32(0xF);
    each_group_half<L::kBytes, kHint>(
        t, k, [&](const uint8_t* blk, int grp, int h, int64_t ab) __attribute__((always_inline)) {
          __m256i w[8];
          unpack_pairs(blk + L::qs(grp / 4), grp, h, w);
          const __m256 d = halves8(blk + L::kD + 16 * h), dmin = halves8(blk + L::kDmin + 16 * h);
          const __m256i sm0 = ints8(blk + L::kSc + 32 * grp + 8 * h);
          const __m256i sm1 = ints8(blk + L::kSc + 32 * grp + 16 + 8 * h);
          const __m256i sc0 = _mm256_and_si256(sm0, low4), sc1 = _mm256_and_si256(sm1, low4);
          const __m256i m0 = _mm256_srli_epi32(sm0, 4), m1 = _mm256_srli_epi32(sm1, 4);
          for (int j = 0; j < N; ++j) {
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
            half_sums<3>(w, a[j].q + 32 * ab, s0, s1);
            const __m256i isc =
                _mm256_add_epi32(_mm256_mullo_epi32(s0, sc0), _mm256_mullo_epi32(s1, sc1));
            const __m256i imin =
                _mm256_add_epi32(_mm256_mullo_epi32(m0, _mm256_set1_epi32(a[j].s[2 * ab])),
                                 _mm256_mullo_epi32(m1, _mm256_set1_epi32(a[j].s[2 * ab + 1])));
            const __m256 da = _mm256_set1_ps(a[j].d[ab]);
            acc[h][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isc), _mm256_mul_ps(d, da), acc[h][j]);
            acc[h][j] =
                _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_mul_ps(dmin, da), acc[h][j]);
          }
        });
    store_halves<N>(acc, out);
  }
};

// Q3_K tiles (layout in packed.h): 2-bit pairs plus a third bit from a lane mask; -4
// applied in int32 with the activation sums of each 16, int8 scales per 16 values.
struct TileQ3K {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
    using L = Q3KTile;  // offsets in the tile block
    __m256 acc[2][N] = {};
    each_group_half<L::kBytes, kHint>(
        t, k, [&](const uint8_t* blk, int grp, int h, int64_t ab) __attribute__((always_inline)) {
          __m256i w[8];
          unpack_pairs(blk + L::q2(grp / 4), grp, h, w);
          add_high_bits(blk + L::qh(grp), h, w, 4);
          two_scale_group<4, N>(w, blk + L::kSc + 32 * grp + 8 * h, halves8(blk + L::kD + 16 * h),
                                a, ab, acc[h]);
        });
    store_halves<N>(acc, out);
  }
};

}  // namespace
}  // namespace hondo::qdot_avx2

namespace hondo {
const QDotKernels& qdot_avx2_kernels() {
  static const QDotKernels ks = [] {
    QDotKernels s = qdot_avx2::make_set("avx2");
    using namespace qdot_avx2;
    auto set = [&](DType t, QTileFn f) { s.tile[uint32_t(t)] = f; };
    set(DType::Q4_0, tile_any<Tile32<8, false, false>>);
    set(DType::Q4_1, tile_any<Tile32<0, true, false>>);
    set(DType::Q5_0, tile_any<Tile32<16, false, true>>);
    set(DType::Q5_1, tile_any<Tile32<0, true, true>>);
    // The page hint alone on Zen 4 (page_hint_alone: measured there with HONDO_ISA=avx2, as
    // the AVX-512 Q8_0 tiles read everywhere); line prefetches elsewhere: on Zen 3, the CPU
    // this set is chosen for, they lift Coder-1.3B Q8_0 decode from 69-73 % of the roofline
    // to 87-93 % (with page_ahead off; qdot_x86.inc).
    set(DType::Q8_0, page_hint_alone ? tile_fixed<TileQ8, LineHint::kNone> : tile_any<TileQ8>);
    set(DType::Q2_K, tile_any<TileQ2K>);
    set(DType::Q3_K, tile_any<TileQ3K>);
    set(DType::Q4_K, tile_any<TileK<false>>);
    set(DType::Q5_K, tile_any<TileK<true>>);
    set(DType::Q6_K, tile_any<TileQ6K>);
    return s;
  }();
  return ks;
}
}  // namespace hondo
