#include "kernels/packed.h"

#include <cstring>

#include "core/error.h"
#include "kernels/kquant_layout.h"

namespace hondo {

namespace {
constexpr size_t kQ4_0Block = 18;  // f16 d + 16 bytes of nibbles
constexpr size_t kQ8_0Block = 34;  // f16 d + 32 int8 values

constexpr size_t kQ4_KBlock = 144;      // GGUF super-block: d, dmin, 12 scale bytes, 128 qs
constexpr size_t kQ4_KTileBlock = 148;  // per row in a tile: 16 plain scale/min bytes

size_t block_bytes(DType t) {
  return t == DType::Q4_0 ? kQ4_0Block : kQ8_0Block;
}

void pack_q4_k(const uint8_t* in, int64_t rows, int64_t cols, uint8_t* out) {
  const int64_t nb = cols / 256;
  const size_t row_size = size_t(nb) * kQ4_KBlock;
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    for (int64_t b = 0; b < nb; ++b, out += kTileRows * kQ4_KTileBlock) {
      std::memset(out, 0, kTileRows * kQ4_KTileBlock);
      for (int r = 0; r < kTileRows && r0 + r < rows; ++r) {
        const uint8_t* blk = in + size_t(r0 + r) * row_size + size_t(b) * kQ4_KBlock;
        std::memcpy(out + 2 * r, blk, 2);           // d
        std::memcpy(out + 32 + 2 * r, blk + 2, 2);  // dmin
        for (int j = 0; j < 8; ++j) {
          int sc, m;
          kquant::k4_scale_min(blk + 4, j, sc, m);
          out[64 + 16 * j + r] = uint8_t(sc);
          out[192 + 16 * j + r] = uint8_t(m);
        }
        for (int p = 0; p < 4; ++p)
          for (int g = 0; g < 8; ++g)
            std::memcpy(out + 320 + 512 * p + 64 * g + 4 * r, blk + 16 + 32 * p + 4 * g, 4);
      }
    }
  }
}
}  // namespace

bool has_tile_layout(DType t) {
  return t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K;
}

size_t tile_bytes(DType t, int64_t cols) {
  if (!has_tile_layout(t)) fail("no tile layout for ", dtype_name(t));
  if (t == DType::Q4_K) return size_t(cols / 256) * kTileRows * kQ4_KTileBlock;
  return size_t(cols / 32) * kTileRows * block_bytes(t);
}

size_t packed_bytes(DType t, int64_t rows, int64_t cols) {
  return size_t((rows + kTileRows - 1) / kTileRows) * tile_bytes(t, cols);
}

void pack_tiles(DType t, const void* src, int64_t rows, int64_t cols, void* dst) {
  if (!has_tile_layout(t) || cols % dtype_info(t).block_elems)
    fail("cannot pack ", dtype_name(t), " rows of ", cols);
  if (t == DType::Q4_K)
    return pack_q4_k(static_cast<const uint8_t*>(src), rows, cols, static_cast<uint8_t*>(dst));
  const int64_t nb = cols / 32;
  const size_t bb = block_bytes(t), row_size = size_t(nb) * bb;
  const int groups = int(bb - 2) / 4;  // 4-byte groups per block: 4 (Q4_0) or 8 (Q8_0)
  const uint8_t flip = t == DType::Q8_0 ? 0x80 : 0x00;  // int8 -> int8 + 128 as uint8
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    for (int64_t b = 0; b < nb; ++b, out += kTileRows * bb) {
      std::memset(out, 0, kTileRows * bb);  // padding rows: scale 0
      for (int r = 0; r < kTileRows && r0 + r < rows; ++r) {
        const uint8_t* blk = in + size_t(r0 + r) * row_size + size_t(b) * bb;
        std::memcpy(out + 2 * r, blk, 2);
        for (int g = 0; g < groups; ++g)
          for (int j = 0; j < 4; ++j)
            out[32 + 64 * g + 4 * r + j] = uint8_t(blk[2 + 4 * g + j] ^ flip);
      }
    }
  }
}

}  // namespace hondo
