// Per-sequence attention cache. Its layout belongs to the architecture: dense models keep
// K and V per KV head; MLA models keep only the compressed latent (see mla.h).
#pragma once
#include <cstdint>
#include <memory>

#include "core/dtype.h"

namespace hondo {

class KvCache {
 public:
  // n_layer x n_ctx rows of `width` values for K and for V, stored as F32 or F16.
  KvCache(int n_layer, int n_ctx, int width, DType type);

  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }  // tokens already stored
  void set_n_past(int n) { n_past_ = n; }
  void clear() { n_past_ = 0; }
  DType type() const { return type_; }
  size_t bytes() const { return 2 * size_; }
  static size_t bytes_per_token(int n_layer, int width, DType type);

  void store(int layer, int pos, const float* k, const float* v);  // k, v: [width]
  // Values [begin, begin + n) of the K or V row at (layer, pos), as F32: out: [n].
  void load_k(int layer, int pos, int begin, int n, float* out) const;
  void load_v(int layer, int pos, int begin, int n, float* out) const;
  const float* k_f32(int layer, int pos) const;  // only when type() == F32
  const float* v_f32(int layer, int pos) const;

 private:
  size_t offset(int layer, int pos) const;
  static void load(const uint8_t* row, DType type, int begin, int n, float* out);
  int n_layer_, n_ctx_, width_;
  DType type_;
  int n_past_ = 0;
  size_t elem_;
  size_t size_ = 0;                   // bytes of each of K and V
  std::unique_ptr<uint8_t[]> k_, v_;  // [n_layer, n_ctx, width]; pages commit on first write
};

}  // namespace hondo
