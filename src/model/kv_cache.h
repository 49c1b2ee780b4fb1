// Per-sequence attention cache: for every layer and position, one row of each of two streams.
// Dense models store K and V (all KV heads); MLA models store the compressed latent c_kv in
// the first stream and the shared rotated key k_pe in the second (see mla.h).
#pragma once
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "core/huge_pages.h"

namespace hondo {

class KvCache {
 public:
  // n_layer x n_ctx rows of k_width (first stream) and v_width (second) values, F32 or F16.
  KvCache(int n_layer, int n_ctx, int k_width, int v_width, DType type);

  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }  // tokens already stored
  void set_n_past(int n) { n_past_ = n; }
  void clear() { n_past_ = 0; }
  DType type() const { return type_; }
  int k_width() const { return k_width_; }  // values per position: the stride between rows
  int v_width() const { return v_width_; }
  size_t bytes() const { return k_size_ + v_size_; }
  static size_t bytes_per_token(int n_layer, int k_width, int v_width, DType type);

  void store(int layer, int pos, const float* k, const float* v);  // k: [k_width], v: [v_width]
  // Values [begin, begin + n) of the K or V row at (layer, pos), as F32: out: [n].
  void load_k(int layer, int pos, int begin, int n, float* out) const;
  void load_v(int layer, int pos, int begin, int n, float* out) const;
  const float* k_f32(int layer, int pos) const;  // only when type() == F32
  const float* v_f32(int layer, int pos) const;
  const uint16_t* k_f16(int layer, int pos) const;  // only when type() == F16
  const uint16_t* v_f16(int layer, int pos) const;

 private:
  size_t offset(int layer, int pos, int width) const;
  static void load(const uint8_t* row, DType type, int begin, int n, float* out);
  static void put(uint8_t* row, DType type, const float* x, int n);
  // Commits the pages of positions [committed_, end) or more of every layer before they are
  // first written (core/huge_pages.h: one call instead of a fault per page).
  void commit(int end);
  int n_layer_, n_ctx_, k_width_, v_width_;
  DType type_;
  int n_past_ = 0;
  size_t elem_;
  size_t k_size_ = 0, v_size_ = 0;
  int committed_ = 0;  // positions whose pages are resident in every layer
  HugeBuffer k_, v_;   // [n_layer, n_ctx, k_width|v_width]; pages committed ahead of writes
};

}  // namespace hondo
