#include "model/kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "core/error.h"
#include "core/huge_pages.h"
#include "kernels/half.h"

namespace hondo {

KvCache::KvCache(int n_layer, int n_ctx, int k_width, int v_width, DType type, int n_heads)
    : n_layer_(n_layer),
      n_ctx_(n_ctx),
      k_width_(k_width),
      v_width_(v_width),
      n_heads_(n_heads),
      n_rows_((n_ctx + kBlock - 1) / kBlock * kBlock),
      type_(type) {
  if (type != DType::F32 && type != DType::F16)
    fail("KV cache type must be f32 or f16, not ", dtype_name(type));
  if (n_heads < 1 || k_width % n_heads != 0 || v_width % n_heads != 0)
    fail("KV cache rows of ", k_width, " and ", v_width, " values do not split into ", n_heads,
         " heads");
  elem_ = type == DType::F32 ? 4 : 2;
  const size_t rows = size_t(n_layer) * size_t(n_rows_);
  k_size_ = rows * size_t(k_width) * elem_;
  v_size_ = rows * size_t(v_width) * elem_;
  // On huge pages, as the weights: a dense model's row of one position (all KV heads, 4 KiB
  // for Coder-1.3B) is a page of its own with 4 KiB pages, so one token's attention walked
  // the page tables for every position of every layer (1584 pages at 33 positions). Whole
  // decode steps, both caches in one process, alternated every 16 tokens, 8 runs: Coder-1.3B
  // Q4_K_M +0.8 to +1.9 % (8 of 8), R1-Distill-1.5B Q4_K_M -0.1 to +3.0 %; V2-Lite's latent
  // rows are a quarter as long, and its runs were within the noise (-3.3 to +8.1 %). The cost:
  // commit() makes a whole 2 MiB page resident per layer and stream at a time.
  try {
    k_ = alloc_huge(k_size_, "the KV cache");
    v_ = alloc_huge(v_size_, "the KV cache");
  } catch (const Error&) {
    fail("out of memory allocating a KV cache of ", (k_size_ + v_size_) / (1 << 20), " MiB for ",
         n_ctx, " tokens; use a smaller context (-c)");
  }
}

size_t KvCache::bytes_per_token(int n_layer, int k_width, int v_width, DType type) {
  return size_t(n_layer) * size_t(k_width + v_width) * (type == DType::F32 ? 4 : 2);
}

size_t KvCache::offset(int layer, int pos, int head, int width) const {
  const size_t head_width = size_t(width / n_heads_);
  const size_t block = size_t(pos / kBlock), in_block = size_t(pos % kBlock);
  const size_t block_start = (size_t(layer) * size_t(n_rows_) + block * kBlock) * size_t(width);
  return (block_start + (size_t(head) * kBlock + in_block) * head_width) * elem_;
}

void KvCache::put(uint8_t* row, DType type, const float* x, int n) {
  if (type == DType::F32) return (void)std::memcpy(row, x, size_t(n) * 4);
  f32_to_f16_row(x, reinterpret_cast<uint16_t*>(row), n);
}

void KvCache::commit(int end) {
  // At least 64 KiB of the wider row stream per commit: few calls, little memory committed
  // ahead. Whole blocks, so that each layer's positions [committed_, end) are one range.
  const size_t row = size_t(std::max(k_width_, v_width_)) * elem_;
  const int step = int(std::max<size_t>(16, (size_t(64) << 10) / std::max<size_t>(1, row)));
  end = std::max(end, committed_ + step);
  end = std::min(n_rows_, (end + kBlock - 1) / kBlock * kBlock);
  for (int l = 0; l < n_layer_; ++l) {
    commit_pages(k_.get() + offset(l, committed_, 0, k_width_),
                 size_t(end - committed_) * size_t(k_width_) * elem_);
    commit_pages(v_.get() + offset(l, committed_, 0, v_width_),
                 size_t(end - committed_) * size_t(v_width_) * elem_);
  }
  committed_ = end;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  if (pos >= n_ctx_) fail("KV cache full: position ", pos, " beyond context ", n_ctx_);
  if (pos >= committed_) commit(pos + 1);
  const int kh = k_width_ / n_heads_, vh = v_width_ / n_heads_;
  for (int h = 0; h < n_heads_; ++h) {
    put(k_.get() + offset(layer, pos, h, k_width_), type_, k + h * kh, kh);
    put(v_.get() + offset(layer, pos, h, v_width_), type_, v + h * vh, vh);
  }
}

void KvCache::load_values(const uint8_t* p, DType type, int n, float* out) {
  if (type == DType::F32) return (void)std::memcpy(out, p, size_t(n) * 4);
  f16_to_f32_row(reinterpret_cast<const uint16_t*>(p), out, n);
}

// Values [begin, begin + n) of a row, head by head.
void KvCache::load(const uint8_t* stream, int width, int layer, int pos, int begin, int n,
                   float* out) const {
  const int head_width = width / n_heads_;
  while (n > 0) {
    const int head = begin / head_width, in_head = begin % head_width;
    const int count = std::min(n, head_width - in_head);
    load_values(stream + offset(layer, pos, head, width) + size_t(in_head) * elem_, type_, count,
                out);
    begin += count, n -= count, out += count;
  }
}

void KvCache::load_k(int layer, int pos, int begin, int n, float* out) const {
  load(k_.get(), k_width_, layer, pos, begin, n, out);
}

void KvCache::load_v(int layer, int pos, int begin, int n, float* out) const {
  load(v_.get(), v_width_, layer, pos, begin, n, out);
}

const uint8_t* KvCache::block_rows(const HugeBuffer& stream, int width, int layer, int head,
                                   int block) const {
  return stream.get() + offset(layer, block * kBlock, head, width);
}

void KvCache::load_k_block(int layer, int head, int block, int count, float* out) const {
  assert(count <= kBlock);
  load_values(block_rows(k_, k_width_, layer, head, block), type_, count * (k_width_ / n_heads_),
              out);
}

void KvCache::load_v_block(int layer, int head, int block, int count, float* out) const {
  assert(count <= kBlock);
  load_values(block_rows(v_, v_width_, layer, head, block), type_, count * (v_width_ / n_heads_),
              out);
}

const float* KvCache::k_f32(int layer, int pos) const {
  assert(n_heads_ == 1 && type_ == DType::F32);
  return reinterpret_cast<const float*>(k_.get() + offset(layer, pos, 0, k_width_));
}
const float* KvCache::v_f32(int layer, int pos) const {
  assert(n_heads_ == 1 && type_ == DType::F32);
  return reinterpret_cast<const float*>(v_.get() + offset(layer, pos, 0, v_width_));
}

const uint16_t* KvCache::k_f16(int layer, int pos) const {
  assert(n_heads_ == 1 && type_ == DType::F16);
  return reinterpret_cast<const uint16_t*>(k_.get() + offset(layer, pos, 0, k_width_));
}
const uint16_t* KvCache::v_f16(int layer, int pos) const {
  assert(n_heads_ == 1 && type_ == DType::F16);
  return reinterpret_cast<const uint16_t*>(v_.get() + offset(layer, pos, 0, v_width_));
}

const uint16_t* KvCache::k_block_f16(int layer, int head, int block) const {
  assert(type_ == DType::F16);
  return reinterpret_cast<const uint16_t*>(block_rows(k_, k_width_, layer, head, block));
}
const uint16_t* KvCache::v_block_f16(int layer, int head, int block) const {
  assert(type_ == DType::F16);
  return reinterpret_cast<const uint16_t*>(block_rows(v_, v_width_, layer, head, block));
}

}  // namespace hondo
