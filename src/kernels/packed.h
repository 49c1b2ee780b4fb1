// Weights repacked for the tile kernels of qdot.h: 16 rows interleaved so that one 512-bit
// register holds 4 consecutive values of each of the 16 rows. vpdpbusd multiplies such a
// register with one activation 4-byte group broadcast to all lanes, so every lane
// accumulates a different row and no horizontal sums are needed; one pass over a tile serves
// several tokens. Rows are repacked once, when a model is loaded.
//
// A packed matrix is a sequence of tiles of 16 rows (the last padded with zero rows); a tile
// is the sequence of its tile blocks: k/256 super-blocks for K-quants, and for the 32-value
// formats groups of blocks with a 64-byte header of f16 values, so that every 64-byte load of
// values is aligned to a cache line (the formats with one f16 per row and block take two
// blocks a group). Values are stored unsigned (vpdpbusd's unsigned operand); their offsets are
// applied with the activations' block sums.
// Q4_0 tile group, 576 bytes (16 x 36: the size of the two blocks of each row it holds):
//   f16 d[2][16]       scale of block i of row r
//   u8  qs[2][4][16][4]  qs[i][g][r][j] = byte 4g + j of row r's block i (low nibble: value
//                      4g + j, high nibble: value 16 + 4g + j); weight = d * (nibble - 8)
// Q4_1 tile block, 320 bytes: f16 d[16], f16 m[16], qs[4][16][4] as Q4_0;
//   weight = d * nibble + m
// Q5_0 tile group, 704 bytes: f16 d[2][16], then per block i the 320 bytes of
//   u8  qs[4][16][4]   as Q4_0 (the low 4 bits)
//   u64 qh[8]          bit 4r + j of qh[c] = bit 4 of value 4c + j of row r (the 64 lanes
//                      of register c); weight = d * (value - 16)
// Q5_1 tile block, 384 bytes: f16 d[16], f16 m[16], qs, qh as Q5_0; weight = d * value + m
// Q8_0 tile group, 1088 bytes (16 x 68):
//   f16 d[2][16]
//   u8  qs[2][8][16][4]  qs[i][g][r][j] = value 4g + j of row r's block i + 128;
//                      weight = d * (qs - 128)
// Q3_K tile super-block, 1824 bytes (16 x 114), v the 3-bit values 0..7 in row order:
//   f16 d[16]
//   i8  sc[16][16]           signed scale of group g (16 values) of row r
//   then for each half h of the values (Q3KTile::q2, qh):
//   u8  q2[h][8][16][4]      bits 2i, 2i+1 of q2[h][c][r][j] = low 2 bits of v[128h + 32i + 4c + j]
//   u64 qh[4h..4h+3][8]      bit 4r + j of qh[b][c] = bit 2 of v[32b + 4c + j] of row r
//   weight = d * sc * (v - 4)
// Q4_K tile super-block (256 values per row), 2304 bytes (16 x 144, as in the file; KTile):
//   f16 d[16], dmin[16]
//   u8  scm[8][16]           sub-block j of row r: bits 0-5 its scale sc, bits 6-7 the low two
//                            bits of its minimum m
//   u8  mh[4][16]            sub-blocks 2q and 2q + 1 of row r: the high four bits of their m
//                            (low nibble: 2q, high: 2q + 1)
//   u8  qs[4][8][16][4]      qs[p][g][r][j] = byte 32p + 4g + j of row r's nibbles (low
//                            nibble: sub-block 2p, high: 2p + 1, value 4g + j of each)
//   weight = d * sc * nibble - dmin * m
// (Until 2026-12-07 sc and m were a byte each, 16 x 148 bytes: decoding read 2.8 % more than the
// file's bytes of every Q4_K matrix.)
// Q5_K tile super-block, 2816 bytes (16 x 176): the Q4_K layout (the low 4 bits), each qs[p]
// followed by the fifth bits of its two sub-blocks (KTile::qs, qh):
//   u64 qh[sub][8]           bit 4r + j of qh[sub][c] = bit 4 of value 4c + j of sub-block sub
//                            of row r; weight = d * sc * value - dmin * m
// Q2_K tile super-block, 1344 bytes (16 x 84), v the 2-bit values 0..3 in row order:
//   f16 d[16], dmin[16]
//   u8  sc[16][16]           group g (16 values) of row r: scale (low nibble) and minimum m
//                            (high nibble), as in the file
//   u8  qs[2][8][16][4]      qs[h][c][r][j] = byte 32h + 4c + j of row r's qs: bits 2i, 2i+1
//                            = v[128h + 32i + 4c + j]
//   weight = d * scale * v - dmin * m
// Q6_K tile super-block, 3360 bytes (16 x 210), v the 6-bit values 0..63 in row order:
//   f16 d[16]
//   i8  sc[16][16]           scale of group g (16 values) of row r
//   then six blocks of 512 bytes, four of low bits and two of high bits:
//   u8  ql[p][8][16][4]      ql[p][g][r][j]: low nibble = low 4 bits of v[64p + 4g + j],
//                            high nibble = low 4 bits of v[64p + 32 + 4g + j]
//   u8  qh[h][8][16][4]      qh[h][g][r][j]: bits 2i, 2i+1 = high 2 bits of v[128h + 32i + 4g + j]
//   in the order the kernels first read them: ql[0], qh[0], ql[1], ql[2], qh[1], ql[3]
//   (Q6KTile::ql, qh);
//   weight = d * sc * (v - 32)
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace hondo {

constexpr int kTileRows = 16;

// Byte offsets in a Q4_K / Q5_K tile super-block (layout above), for the packing and the
// kernels alike. Every tile super-block lies in the order the kernels read it, so that its
// reads run from its start to its end (the Q6_K measurements in qdot_avx512.cpp).
struct KTile {
  static constexpr int kD = 0, kDmin = 32, kScm = 64, kMh = 192, kQs = 256;
  static constexpr int bytes(bool q5) { return kTileRows * (q5 ? 176 : 144); }
  // The nibbles of sub-blocks 2p and 2p + 1 (512 bytes), and Q5_K's fifth bits of sub-block
  // sub (64 bytes), which follow the nibbles they complete.
  static constexpr int qs(bool q5, int p) { return kQs + (q5 ? 640 : 512) * p; }
  static constexpr int qh(int sub) { return qs(true, sub / 2) + 512 + 64 * (sub % 2); }
};
static_assert(KTile::qs(false, 3) + 512 == KTile::bytes(false) &&
              KTile::qh(7) + 64 == KTile::bytes(true));
// The same for the Q2_K, Q3_K and Q6_K tile super-blocks.
struct Q2KTile {
  static constexpr int kD = 0, kDmin = 32, kSc = 64, kQs = 320, kBytes = kTileRows * 84;
  static constexpr int qs(int h) { return kQs + 512 * h; }  // the 2-bit values of half h
};
static_assert(Q2KTile::qs(1) + 512 == Q2KTile::kBytes);
struct Q3KTile {
  static constexpr int kD = 0, kSc = 32, kQ2 = 288, kBytes = kTileRows * 114;
  // The low 2 bits of half h (512 bytes), then the third bits of its groups grp = 4h .. 4h + 3
  // (64 bytes each).
  static constexpr int q2(int h) { return kQ2 + 768 * h; }
  static constexpr int qh(int grp) { return q2(grp / 4) + 512 + 64 * (grp % 4); }
};
static_assert(Q3KTile::qh(7) + 64 == Q3KTile::kBytes);
struct Q6KTile {
  static constexpr int kD = 0, kSc = 32, kValues = 288, kBytes = kTileRows * 210;
  // The six value blocks, 512 bytes each after d and sc, in the order of first use: groups
  // 0-1 read ql[0] and qh[0], 2-3 ql[1], 4-5 ql[2] and qh[1], 6-7 ql[3]. So ql[p] is block
  // 0, 2, 3, 5 and qh[h] block 1, 4 (as arithmetic, not a table: the kernels' loops index
  // them with a running group).
  static constexpr int ql(int p) { return kValues + 512 * (p + (p >= 1) + (p >= 3)); }
  static constexpr int qh(int h) { return kValues + 512 * (1 + 3 * h); }
};
static_assert(Q6KTile::kValues + 6 * 512 == Q6KTile::kBytes && Q6KTile::ql(0) == 288 &&
              Q6KTile::qh(0) == 800 && Q6KTile::ql(1) == 1312 && Q6KTile::ql(2) == 1824 &&
              Q6KTile::qh(1) == 2336 && Q6KTile::ql(3) == 2848);

bool has_tile_layout(DType t);  // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K .. Q6_K
// Whether rows of `cols` values of t can be packed: whole tile groups only (64 values for
// Q4_0, Q5_0, Q8_0; 32 for Q4_1, Q5_1; 256 for the K-quants). Other rows keep the GGUF layout.
bool can_pack(DType t, int64_t cols);
// Bytes of one tile (16 rows of `cols` values) and of a packed matrix of `rows` rows.
size_t tile_bytes(DType t, int64_t cols);
size_t packed_bytes(DType t, int64_t rows, int64_t cols);
// Repacks `rows` consecutive rows in GGUF layout into tiles.
void pack_tiles(DType t, const void* src, int64_t rows, int64_t cols, void* dst);
// The inverse for one row: row r (0..15) of `tile` in GGUF layout, `cols` values.
void unpack_tile_row(DType t, const void* tile, int r, int64_t cols, void* row);

}  // namespace hondo
