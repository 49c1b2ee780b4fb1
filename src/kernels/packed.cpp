#include "kernels/packed.h"

#include <cstring>

#include "core/error.h"

namespace hondo {

namespace {
constexpr size_t kQ4_0Block = 18;  // f16 d + 16 bytes of nibbles
}

bool has_tile_layout(DType t) {
  return t == DType::Q4_0;
}

size_t tile_bytes(DType t, int64_t cols) {
  if (!has_tile_layout(t)) fail("no tile layout for ", dtype_name(t));
  return size_t(cols / 32) * kTileRows * kQ4_0Block;
}

size_t packed_bytes(DType t, int64_t rows, int64_t cols) {
  return size_t((rows + kTileRows - 1) / kTileRows) * tile_bytes(t, cols);
}

void pack_tiles(DType t, const void* src, int64_t rows, int64_t cols, void* dst) {
  if (!has_tile_layout(t) || cols % 32) fail("cannot pack ", dtype_name(t), " rows of ", cols);
  const int64_t nb = cols / 32;
  const size_t row_size = size_t(nb) * kQ4_0Block;
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    for (int64_t b = 0; b < nb; ++b, out += kTileRows * kQ4_0Block) {
      std::memset(out, 0, kTileRows * kQ4_0Block);  // padding rows: scale 0
      for (int r = 0; r < kTileRows && r0 + r < rows; ++r) {
        const uint8_t* blk = in + size_t(r0 + r) * row_size + size_t(b) * kQ4_0Block;
        std::memcpy(out + 2 * r, blk, 2);
        for (int g = 0; g < 4; ++g) std::memcpy(out + 32 + 64 * g + 4 * r, blk + 2 + 4 * g, 4);
      }
    }
  }
}

}  // namespace hondo
