// Weights repacked for the tile kernels of qdot.h: 16 rows interleaved so that one 512-bit
// register holds 4 consecutive values of each of the 16 rows. vpdpbusd multiplies such a
// register with one activation 4-byte group broadcast to all lanes, so every lane
// accumulates a different row and no horizontal sums are needed; one pass over a tile serves
// several tokens. Rows are repacked once, when a model is loaded.
//
// A packed matrix is a sequence of tiles of 16 rows (the last padded with zero rows); a tile
// is the sequence of its k/32 blocks. Q4_0 tile block, 288 bytes (16 x 18: the size of the
// rows it holds):
//   f16 d[16]          scale of each row's block
//   u8  qs[4][16][4]   qs[g][r][j] = byte 4g + j of row r's block (low nibble: value 4g + j,
//                      high nibble: value 16 + 4g + j); weight = d * (nibble - 8)
// Q8_0 tile block, 544 bytes (16 x 34):
//   f16 d[16]
//   u8  qs[8][16][4]   qs[g][r][j] = value 4g + j of row r's block + 128 (stored unsigned, as
//                      vpdpbusd's unsigned operand); weight = d * (qs - 128)
// Q4_K tile super-block (256 values per row), 2368 bytes (16 x 148: the 12 bytes of packed
// 6-bit sub-block scales per row become 16 plain bytes):
//   f16 d[16], dmin[16]
//   u8  sc[8][16], m[8][16]  sub-block j's scale and minimum for row r
//   u8  qs[4][8][16][4]      qs[p][g][r][j] = byte 32p + 4g + j of row r's nibbles (low
//                            nibble: sub-block 2p, high: 2p + 1, value 4g + j of each)
//   weight = d * sc * nibble - dmin * m
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace hondo {

constexpr int kTileRows = 16;

bool has_tile_layout(DType t);  // Q4_0, Q8_0, Q4_K
// Bytes of one tile (16 rows of `cols` values) and of a packed matrix of `rows` rows.
size_t tile_bytes(DType t, int64_t cols);
size_t packed_bytes(DType t, int64_t rows, int64_t cols);
// Repacks `rows` consecutive rows in GGUF layout into tiles.
void pack_tiles(DType t, const void* src, int64_t rows, int64_t cols, void* dst);

}  // namespace hondo
