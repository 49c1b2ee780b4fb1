// Per-sequence attention cache: for every layer and position, one row of each of two streams.
// Dense models store K and V (all KV heads); MLA models store the compressed latent c_kv in
// the first stream and the shared rotated key k_pe in the second (see mla.h).
//
// A row of n_heads heads is stored by head within blocks of kBlock positions:
//   [n_layer, n_ctx / kBlock, n_heads, kBlock, width / n_heads]
// so the keys (or values) of one head for kBlock positions are one contiguous run (128 KiB for
// 128 F16 values), which decoding reads as a stream. Laid out by position, one head's row was
// 256 bytes a whole row apart (4 KiB for 16 heads): every row a page of its own, out of the
// hardware prefetchers' reach. Positions stay contiguous per layer across heads block by block,
// so the pages are committed as positions grow, as before. A cache of one head (MLA's
// latents) is the plain [n_layer, n_ctx, width] layout.
//
// Why 512 positions: the longer a head's runs, the faster decoding streams them. Decode
// attention alone (test program outside the tree, 2 threads, F16, from memory), in blocks of
// 64 and of 512: Coder-1.3B's shape (16 KV heads) at 1024 positions 5.8-6.0 against 5.1-5.5 ms
// a token, R1-Distill-1.5B's (2 KV heads of 6 query heads) at 4096 positions 7.7-7.9 against
// 5.6-5.8; merely reading the same bytes, 64-position runs went at 54 GB/s and runs of a whole
// head at 76. Coder's block of all 16 heads is then 2 MiB, the huge page the cache commits
// anyway (kv_cache.cpp) once each layer's cache spans a page, so from 512 positions of context
// on the longer blocks cost it no memory. A shorter context pays for whole blocks: `hondo bench
// -p 128 -n 0` on Coder-1.3B Q4_0 (128 positions) peaked at 848.7 MiB, 788.8 with blocks of 64,
// whose layers then shared pages (96 MiB of cache committed against 24).
#pragma once
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "core/huge_pages.h"

namespace hondo {

class KvCache {
 public:
  static constexpr int kBlock = 512;  // positions per block of the layout above

  // n_layer x n_ctx rows of k_width (first stream) and v_width (second) values, each row
  // n_heads heads (widths divisible by n_heads). Each stream holds F32, F16 or Q8_0 values
  // (Q8_0: GGUF blocks of 32, so a head's width must be a multiple of 32).
  KvCache(int n_layer, int n_ctx, int k_width, int v_width, DType k_type, DType v_type,
          int n_heads = 1);

  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }  // tokens already stored
  void set_n_past(int n) { n_past_ = n; }
  void clear() { n_past_ = 0; }
  DType k_type() const { return k_type_; }
  DType v_type() const { return v_type_; }
  int k_width() const { return k_width_; }  // values per position
  int v_width() const { return v_width_; }
  int n_heads() const { return n_heads_; }
  // Bytes of one head's values of one position (the distance between a head's rows of a block,
  // or between the rows of a cache of one head).
  size_t k_head_bytes() const { return row_bytes(k_type_, k_width_ / n_heads_); }
  size_t v_head_bytes() const { return row_bytes(v_type_, v_width_ / n_heads_); }
  size_t bytes() const { return k_size_ + v_size_; }
  static size_t bytes_per_token(int n_layer, int k_width, int v_width, DType k_type, DType v_type);

  void store(int layer, int pos, const float* k, const float* v);  // k: [k_width], v: [v_width]
  // Asks for the lines store(layer, pos, ..) will write, for a store issued well after (the
  // layer's first products in between). Nothing for a position whose memory is not committed.
  void prefetch_store(int layer, int pos) const;
  // Values [begin, begin + n) of the K or V row at (layer, pos), as F32: out: [n]. In a Q8_0
  // stream begin and n are multiples of 32.
  void load_k(int layer, int pos, int begin, int n, float* out) const;
  void load_v(int layer, int pos, int begin, int n, float* out) const;
  // Rows [first, first + count) of head `head` in block b (positions b * kBlock ..) as F32, one
  // after the other: out [count, k_width() / n_heads()] (v_width() / n_heads());
  // first + count <= kBlock.
  void load_k_block(int layer, int head, int block, int first, int count, float* out) const;
  void load_v_block(int layer, int head, int block, int first, int count, float* out) const;
  // One head's rows of the positions of block b (b * kBlock ..) as stored, one after the
  // other, k_head_bytes() (v_head_bytes()) apart. In a cache of one head the rows of all
  // positions are one run: k_block(layer, 0, 0) is position 0's, the others follow.
  const uint8_t* k_block(int layer, int head, int block) const;
  const uint8_t* v_block(int layer, int head, int block) const;

 private:
  // Byte offset of head `head`'s values of position pos in a stream of `width` values a row.
  size_t offset(int layer, int pos, int head, int width, DType type) const;
  void load(const uint8_t* stream, int width, DType type, int layer, int pos, int begin, int n,
            float* out) const;
  static void load_values(const uint8_t* p, DType type, int n, float* out);
  static void put(uint8_t* row, DType type, const float* x, int n);
  // Commits the pages of positions [committed_, end) or more of every layer before they are
  // first written (core/huge_pages.h: one call instead of a fault per page).
  void commit(int end);
  int n_layer_, n_ctx_, k_width_, v_width_, n_heads_;
  int n_rows_;  // positions allocated per layer: n_ctx rounded up to whole blocks
  DType k_type_, v_type_;
  int n_past_ = 0;
  size_t k_size_ = 0, v_size_ = 0;
  int committed_ = 0;  // positions whose pages are resident in every layer
  HugeBuffer k_, v_;   // [n_layer, n_rows / kBlock, n_heads, kBlock, k_width|v_width / n_heads];
                       // pages committed ahead of writes
};

}  // namespace hondo
