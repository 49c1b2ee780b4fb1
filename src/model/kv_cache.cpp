#include "model/kv_cache.h"

#include <cstring>

#include "core/error.h"
#include "core/fp16.h"

namespace hondo {

KvCache::KvCache(int n_layer, int n_ctx, int width, DType type)
    : n_layer_(n_layer), n_ctx_(n_ctx), width_(width), type_(type) {
  if (type != DType::F32 && type != DType::F16)
    fail("KV cache type must be f32 or f16, not ", dtype_name(type));
  elem_ = type == DType::F32 ? 4 : 2;
  const size_t n = size_t(n_layer) * size_t(n_ctx) * size_t(width) * elem_;
  try {
    k_.reset(new uint8_t[n]);
    v_.reset(new uint8_t[n]);
    size_ = n;
  } catch (const std::bad_alloc&) {
    fail("out of memory allocating a KV cache of ", 2 * n / (1 << 20), " MiB for ", n_ctx,
         " tokens; use a smaller context (-c)");
  }
}

size_t KvCache::bytes_per_token(int n_layer, int width, DType type) {
  return 2 * size_t(n_layer) * size_t(width) * (type == DType::F32 ? 4 : 2);
}

size_t KvCache::offset(int layer, int pos) const {
  return (size_t(layer) * size_t(n_ctx_) + size_t(pos)) * size_t(width_) * elem_;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  if (pos >= n_ctx_) fail("KV cache full: position ", pos, " beyond context ", n_ctx_);
  uint8_t* kd = k_.get() + offset(layer, pos);
  uint8_t* vd = v_.get() + offset(layer, pos);
  if (type_ == DType::F32) {
    std::memcpy(kd, k, size_t(width_) * 4);
    std::memcpy(vd, v, size_t(width_) * 4);
    return;
  }
  auto* kh = reinterpret_cast<uint16_t*>(kd);
  auto* vh = reinterpret_cast<uint16_t*>(vd);
  for (int i = 0; i < width_; ++i) kh[i] = f32_to_f16(k[i]), vh[i] = f32_to_f16(v[i]);
}

void KvCache::load(const uint8_t* row, DType type, int begin, int n, float* out) {
  if (type == DType::F32) return (void)std::memcpy(out, row + size_t(begin) * 4, size_t(n) * 4);
  const auto* h = reinterpret_cast<const uint16_t*>(row) + begin;
  for (int i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
}

void KvCache::load_k(int layer, int pos, int begin, int n, float* out) const {
  load(k_.get() + offset(layer, pos), type_, begin, n, out);
}

void KvCache::load_v(int layer, int pos, int begin, int n, float* out) const {
  load(v_.get() + offset(layer, pos), type_, begin, n, out);
}

const float* KvCache::k_f32(int layer, int pos) const {
  return reinterpret_cast<const float*>(k_.get() + offset(layer, pos));
}
const float* KvCache::v_f32(int layer, int pos) const {
  return reinterpret_cast<const float*>(v_.get() + offset(layer, pos));
}

}  // namespace hondo
