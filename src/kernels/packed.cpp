#include "kernels/packed.h"

#include <cstring>

#include "core/error.h"

namespace hondo {

namespace {
constexpr size_t kQ4_0Block = 18;  // f16 d + 16 bytes of nibbles
constexpr size_t kQ8_0Block = 34;  // f16 d + 32 int8 values

size_t block_bytes(DType t) {
  return t == DType::Q4_0 ? kQ4_0Block : kQ8_0Block;
}
}  // namespace

bool has_tile_layout(DType t) {
  return t == DType::Q4_0 || t == DType::Q8_0;
}

size_t tile_bytes(DType t, int64_t cols) {
  if (!has_tile_layout(t)) fail("no tile layout for ", dtype_name(t));
  return size_t(cols / 32) * kTileRows * block_bytes(t);
}

size_t packed_bytes(DType t, int64_t rows, int64_t cols) {
  return size_t((rows + kTileRows - 1) / kTileRows) * tile_bytes(t, cols);
}

void pack_tiles(DType t, const void* src, int64_t rows, int64_t cols, void* dst) {
  if (!has_tile_layout(t) || cols % 32) fail("cannot pack ", dtype_name(t), " rows of ", cols);
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
