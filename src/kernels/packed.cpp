#include "kernels/packed.h"

#include <cstring>

#include "core/error.h"
#include "kernels/kquant_layout.h"

namespace hondo {

namespace {

// One format's tile layout: how row r's GGUF blocks of one tile block (a super-block, or a
// group of 32-value blocks) go into the tile block and back.
struct TileFormat {
  int block_elems;                                      // values of a row per tile block
  size_t row_block;                                     // their bytes in GGUF
  size_t tile_block;                                    // bytes of a tile block (16 rows)
  void (*put)(const uint8_t* blk, int r, uint8_t* tb);  // row r's block into the tile block
  void (*get)(const uint8_t* tb, int r, uint8_t* blk);  // and back
};

// 32-value formats. GGUF block: kHalves f16 (d, and m for Q4_1/Q5_1), the 4 bytes of high bits
// (Q5_0/Q5_1), then kQs bytes of nibbles or int8 values; Q8_0's become value + 128. A tile
// group holds kBlocks = 2 / kHalves consecutive blocks of each row: a 64-byte header of the
// blocks' f16 halves, then each block's values (qs, and qh for the fifth bits). Here blk is
// the row's first block of the group.
template <int kBlocks, bool kHighBits, int kQs, uint8_t kFlip>
struct Blocks32 {
  static constexpr int kHalves = 2 / kBlocks;
  static constexpr size_t kRowBlock = 2 * kHalves + (kHighBits ? 4 : 0) + kQs;  // GGUF bytes
  static constexpr size_t kValues = kTileRows * kQs + (kHighBits ? 64 : 0);     // tile bytes

  static TileFormat format() {  // a group: the 64-byte header, then each block's values
    return {32 * kBlocks, kBlocks * kRowBlock, 64 + kBlocks * kValues, put, get};
  }

  static void put(const uint8_t* row, int r, uint8_t* tb) {
    for (int i = 0; i < kBlocks; ++i) {
      const uint8_t* blk = row + i * kRowBlock;
      for (int h = 0; h < kHalves; ++h)
        std::memcpy(tb + 32 * (kHalves * i + h) + 2 * r, blk + 2 * h, 2);
      put_values(blk + 2 * kHalves, r, tb + 64 + i * kValues);
    }
  }
  static void get(const uint8_t* tb, int r, uint8_t* row) {
    for (int i = 0; i < kBlocks; ++i) {
      uint8_t* blk = row + i * kRowBlock;
      for (int h = 0; h < kHalves; ++h)
        std::memcpy(blk + 2 * h, tb + 32 * (kHalves * i + h) + 2 * r, 2);
      get_values(tb + 64 + i * kValues, r, blk + 2 * kHalves);
    }
  }

 private:
  // src: the GGUF block after its halves (qh if any, then qs); tv: the block's tile values.
  static void put_values(const uint8_t* src, int r, uint8_t* tv) {
    const uint8_t* qs = src + (kHighBits ? 4 : 0);
    for (int g = 0; g < kQs / 4; ++g) {
      uint32_t v;  // 4 values at once; Q8_0 flips the sign bit of each byte
      std::memcpy(&v, qs + 4 * g, 4);
      v ^= 0x01010101u * kFlip;
      std::memcpy(tv + 64 * g + 4 * r, &v, 4);
    }
    if (kHighBits) {  // bit 4c + j of the row's qh -> bit 4r + j of the tile's 64-bit qh[c]
      uint32_t qh;
      std::memcpy(&qh, src, 4);
      uint8_t* th = tv + kTileRows * kQs;
      for (int c = 0; c < 8; ++c)
        for (int j = 0; j < 4; ++j)
          th[8 * c + (4 * r + j) / 8] |= uint8_t(((qh >> (4 * c + j)) & 1) << ((4 * r + j) % 8));
    }
  }
  static void get_values(const uint8_t* tv, int r, uint8_t* dst) {
    uint8_t* qs = dst + (kHighBits ? 4 : 0);
    for (int g = 0; g < kQs / 4; ++g)
      for (int j = 0; j < 4; ++j) qs[4 * g + j] = uint8_t(tv[64 * g + 4 * r + j] ^ kFlip);
    if (kHighBits) {
      uint32_t qh = 0;
      const uint8_t* th = tv + kTileRows * kQs;
      for (int c = 0; c < 8; ++c)
        for (int j = 0; j < 4; ++j)
          qh |= uint32_t((th[8 * c + (4 * r + j) / 8] >> ((4 * r + j) % 8)) & 1) << (4 * c + j);
      std::memcpy(dst, &qh, 4);
    }
  }
};

// Q4_K: GGUF block = f16 d, f16 dmin, 12 bytes of packed scales/minimums, 128 bytes of nibbles.
// Q5_K: the same with 32 bytes of fifth bits (bit j of qh[l]: value l of sub-block j) before
// the nibbles; in the tile they follow the nibbles they complete as one 64-bit lane mask per
// register.
// The 6-bit scales and minimums keep the file's 12 bytes a row (packed.h: scm and mh).
template <bool kQ5>
void put_k(const uint8_t* blk, int r, uint8_t* tb) {
  std::memcpy(tb + KTile::kD + 2 * r, blk, 2);         // d
  std::memcpy(tb + KTile::kDmin + 2 * r, blk + 2, 2);  // dmin
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    kquant::k4_scale_min(blk + 4, j, sc, m);
    tb[KTile::kScm + 16 * j + r] = uint8_t(sc | (m & 3) << 6);
    tb[KTile::kMh + 16 * (j / 2) + r] |= uint8_t((m >> 2) << (4 * (j % 2)));
  }
  const uint8_t* qs = blk + (kQ5 ? 48 : 16);
  for (int p = 0; p < 4; ++p)
    for (int g = 0; g < 8; ++g)
      std::memcpy(tb + KTile::qs(kQ5, p) + 64 * g + 4 * r, qs + 32 * p + 4 * g, 4);
  if (kQ5)  // qh[sub][c]: bit 4r + j = bit sub of the row's qh[4c + j]
    for (int sub = 0; sub < 8; ++sub)
      for (int c = 0; c < 8; ++c)
        for (int j = 0; j < 4; ++j)
          tb[KTile::qh(sub) + 8 * c + (4 * r + j) / 8] |=
              uint8_t(((blk[16 + 4 * c + j] >> sub) & 1) << ((4 * r + j) % 8));
}
template <bool kQ5>
void get_k(const uint8_t* tb, int r, uint8_t* blk) {
  std::memcpy(blk, tb + KTile::kD + 2 * r, 2);
  std::memcpy(blk + 2, tb + KTile::kDmin + 2 * r, 2);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    const uint8_t scm = tb[KTile::kScm + 16 * j + r], mh = tb[KTile::kMh + 16 * (j / 2) + r];
    sc[j] = scm & 63;
    m[j] = uint8_t(scm >> 6 | ((mh >> (4 * (j % 2))) & 15) << 2);
  }
  kquant::k4_pack(sc, m, blk + 4);
  uint8_t* qs = blk + (kQ5 ? 48 : 16);
  for (int p = 0; p < 4; ++p)
    for (int g = 0; g < 8; ++g)
      std::memcpy(qs + 32 * p + 4 * g, tb + KTile::qs(kQ5, p) + 64 * g + 4 * r, 4);
  if (kQ5) {
    std::memset(blk + 16, 0, 32);
    for (int sub = 0; sub < 8; ++sub)
      for (int c = 0; c < 8; ++c)
        for (int j = 0; j < 4; ++j)
          blk[16 + 4 * c + j] |= uint8_t(
              ((tb[KTile::qh(sub) + 8 * c + (4 * r + j) / 8] >> ((4 * r + j) % 8)) & 1) << sub);
  }
}

// Q6_K: GGUF block = ql[128], qh[64], i8 scales[16], f16 d.
void put_q6_k(const uint8_t* blk, int r, uint8_t* tb) {
  std::memcpy(tb + Q6KTile::kD + 2 * r, blk + 208, 2);
  for (int g = 0; g < 16; ++g) tb[Q6KTile::kSc + 16 * g + r] = blk[192 + g];
  uint8_t v[256];
  kquant::q6_values(blk, blk + 128, v);
  for (int i = 0; i < 256; ++i) {
    const int g = (i % 32) / 4, j = i % 4;
    const int p = i / 64, nib = (i % 64) / 32;  // low nibbles: 64 values per p
    tb[Q6KTile::ql(p) + 64 * g + 4 * r + j] |= uint8_t((v[i] & 0xF) << (4 * nib));
    const int h = i / 128, pair = (i % 128) / 32;  // high pairs: 128 values per h
    tb[Q6KTile::qh(h) + 64 * g + 4 * r + j] |= uint8_t((v[i] >> 4) << (2 * pair));
  }
}
void get_q6_k(const uint8_t* tb, int r, uint8_t* blk) {
  std::memcpy(blk + 208, tb + Q6KTile::kD + 2 * r, 2);
  for (int g = 0; g < 16; ++g) blk[192 + g] = tb[Q6KTile::kSc + 16 * g + r];
  uint8_t v[256];
  for (int i = 0; i < 256; ++i) {
    const int g = (i % 32) / 4, j = i % 4;
    const int p = i / 64, nib = (i % 64) / 32, h = i / 128, pair = (i % 128) / 32;
    const int lo = (tb[Q6KTile::ql(p) + 64 * g + 4 * r + j] >> (4 * nib)) & 0xF;
    const int hi = (tb[Q6KTile::qh(h) + 64 * g + 4 * r + j] >> (2 * pair)) & 3;
    v[i] = uint8_t(lo | (hi << 4));
  }
  kquant::q6_store(v, blk, blk + 128);
}

// Q3_K: GGUF block = hmask[32], qs[64], 12 bytes of packed 6-bit scales, f16 d.
void put_q3_k(const uint8_t* blk, int r, uint8_t* tb) {
  std::memcpy(tb + Q3KTile::kD + 2 * r, blk + 108, 2);
  int sc[16];
  kquant::q3_scales(blk + 96, sc);
  for (int g = 0; g < 16; ++g) tb[Q3KTile::kSc + 16 * g + r] = uint8_t(int8_t(sc[g]));
  uint8_t v[256];
  kquant::q3_values(blk, blk + 32, v);
  for (int i = 0; i < 256; ++i) {
    const int blk32 = i / 32, c = (i % 32) / 4, j = i % 4;
    const int h = i / 128, pair = (i % 128) / 32;  // low 2 bits: 128 values per h
    tb[Q3KTile::q2(h) + 64 * c + 4 * r + j] |= uint8_t((v[i] & 3) << (2 * pair));
    const int bit = 4 * r + j;  // third bit: one 64-bit lane mask per (block, register)
    tb[Q3KTile::qh(blk32) + 8 * c + bit / 8] |= uint8_t(((v[i] >> 2) & 1) << (bit % 8));
  }
}
void get_q3_k(const uint8_t* tb, int r, uint8_t* blk) {
  std::memcpy(blk + 108, tb + Q3KTile::kD + 2 * r, 2);
  int sc[16];
  for (int g = 0; g < 16; ++g) sc[g] = int8_t(tb[Q3KTile::kSc + 16 * g + r]);
  kquant::q3_pack(sc, blk + 96);
  uint8_t v[256];
  for (int i = 0; i < 256; ++i) {
    const int blk32 = i / 32, c = (i % 32) / 4, j = i % 4, h = i / 128, pair = (i % 128) / 32;
    const int bit = 4 * r + j;
    v[i] = uint8_t(((tb[Q3KTile::q2(h) + 64 * c + 4 * r + j] >> (2 * pair)) & 3) |
                   (((tb[Q3KTile::qh(blk32) + 8 * c + bit / 8] >> (bit % 8)) & 1) << 2));
  }
  kquant::q3_store(v, blk, blk + 32);
}

// Q2_K: GGUF block = scales[16] (scale | min << 4 per 16 values), qs[64], f16 d, f16 dmin.
// Byte qs[32h + m] holds values 128h + 32p + m at bits 2p (p = 0..3), so 4-byte groups of qs
// go to the tile as they are: register c of half h, lane r = qs[32h + 4c .. +4] of row r.
void put_q2_k(const uint8_t* blk, int r, uint8_t* tb) {
  std::memcpy(tb + Q2KTile::kD + 2 * r, blk + 80, 2);
  std::memcpy(tb + Q2KTile::kDmin + 2 * r, blk + 82, 2);
  for (int g = 0; g < 16; ++g) tb[Q2KTile::kSc + 16 * g + r] = blk[g];
  for (int h = 0; h < 2; ++h)
    for (int c = 0; c < 8; ++c)
      std::memcpy(tb + Q2KTile::qs(h) + 64 * c + 4 * r, blk + 16 + 32 * h + 4 * c, 4);
}
void get_q2_k(const uint8_t* tb, int r, uint8_t* blk) {
  std::memcpy(blk + 80, tb + Q2KTile::kD + 2 * r, 2);
  std::memcpy(blk + 82, tb + Q2KTile::kDmin + 2 * r, 2);
  for (int g = 0; g < 16; ++g) blk[g] = tb[Q2KTile::kSc + 16 * g + r];
  for (int h = 0; h < 2; ++h)
    for (int c = 0; c < 8; ++c)
      std::memcpy(blk + 16 + 32 * h + 4 * c, tb + Q2KTile::qs(h) + 64 * c + 4 * r, 4);
}

const TileFormat* tile_format(DType t) {
  static const TileFormat q4_0 = Blocks32<2, false, 16, 0>::format();
  static const TileFormat q4_1 = Blocks32<1, false, 16, 0>::format();
  static const TileFormat q5_0 = Blocks32<2, true, 16, 0>::format();
  static const TileFormat q5_1 = Blocks32<1, true, 16, 0>::format();
  static const TileFormat q8_0 = Blocks32<2, false, 32, 0x80>::format();
  static const TileFormat q2_k{256, 84, Q2KTile::kBytes, put_q2_k, get_q2_k};
  static const TileFormat q3_k{256, 110, Q3KTile::kBytes, put_q3_k, get_q3_k};
  static const TileFormat q4_k{256, 144, KTile::bytes(false), put_k<false>, get_k<false>};
  static const TileFormat q5_k{256, 176, KTile::bytes(true), put_k<true>, get_k<true>};
  static const TileFormat q6_k{256, 210, Q6KTile::kBytes, put_q6_k, get_q6_k};
  switch (t) {
    case DType::Q4_0:
      return &q4_0;
    case DType::Q4_1:
      return &q4_1;
    case DType::Q5_0:
      return &q5_0;
    case DType::Q5_1:
      return &q5_1;
    case DType::Q8_0:
      return &q8_0;
    case DType::Q4_K:
      return &q4_k;
    case DType::Q2_K:
      return &q2_k;
    case DType::Q3_K:
      return &q3_k;
    case DType::Q5_K:
      return &q5_k;
    case DType::Q6_K:
      return &q6_k;
    default:
      return nullptr;
  }
}

const TileFormat& checked_format(DType t, int64_t cols) {
  const TileFormat* f = tile_format(t);
  if (!f) fail("no tile layout for ", dtype_name(t));
  if (cols % f->block_elems) fail("cannot pack ", dtype_name(t), " rows of ", cols, " values");
  return *f;
}

}  // namespace

bool has_tile_layout(DType t) {
  return tile_format(t) != nullptr;
}

bool can_pack(DType t, int64_t cols) {
  const TileFormat* f = tile_format(t);
  return f && cols > 0 && cols % f->block_elems == 0;
}

size_t tile_bytes(DType t, int64_t cols) {
  const TileFormat& f = checked_format(t, cols);
  return size_t(cols / f.block_elems) * f.tile_block;
}

size_t packed_bytes(DType t, int64_t rows, int64_t cols) {
  return size_t((rows + kTileRows - 1) / kTileRows) * tile_bytes(t, cols);
}

void pack_tiles(DType t, const void* src, int64_t rows, int64_t cols, void* dst) {
  const TileFormat& f = checked_format(t, cols);
  const int64_t nb = cols / f.block_elems;
  const size_t row_size = size_t(nb) * f.row_block;
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t r0 = 0; r0 < rows; r0 += kTileRows) {
    for (int64_t b = 0; b < nb; ++b, out += f.tile_block) {
      std::memset(out, 0, f.tile_block);  // padding rows: scale 0
      for (int r = 0; r < kTileRows && r0 + r < rows; ++r)
        f.put(in + size_t(r0 + r) * row_size + size_t(b) * f.row_block, r, out);
    }
  }
}

void unpack_tile_row(DType t, const void* tile, int r, int64_t cols, void* row) {
  const TileFormat& f = checked_format(t, cols);
  const auto* tb = static_cast<const uint8_t*>(tile);
  auto* out = static_cast<uint8_t*>(row);
  for (int64_t b = 0; b < cols / f.block_elems; ++b)
    f.get(tb + size_t(b) * f.tile_block, r, out + size_t(b) * f.row_block);
}

}  // namespace hondo
