#include "model/kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <tuple>

#include "core/error.h"
#include "core/huge_pages.h"
#include "kernels/half.h"
#include "kernels/quant.h"

namespace hondo {

KvCache::KvCache(int n_layer, int n_ctx, int k_width, int v_width, DType k_type, DType v_type,
                 int n_heads)
    : n_layer_(n_layer),
      n_ctx_(n_ctx),
      k_width_(k_width),
      v_width_(v_width),
      n_heads_(n_heads),
      n_rows_((n_ctx + kBlock - 1) / kBlock * kBlock),
      k_type_(k_type),
      v_type_(v_type) {
  if (n_heads < 1 || k_width % n_heads != 0 || v_width % n_heads != 0)
    fail("KV cache rows of ", k_width, " and ", v_width, " values do not split into ", n_heads,
         " heads");
  for (auto [type, width] : {std::pair{k_type, k_width / n_heads}, {v_type, v_width / n_heads}}) {
    if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
      fail("KV cache type must be f32, f16 or q8_0, not ", dtype_name(type));
    if (type == DType::Q8_0 && width % 32 != 0)
      fail(
          "a q8_0 KV cache needs heads of a multiple of 32 values (blocks of 32); this "
          "model's are ",
          width, " values: use f16");
  }
  const size_t rows = size_t(n_layer) * size_t(n_rows_);
  k_size_ = rows * row_bytes(k_type, k_width);
  v_size_ = rows * row_bytes(v_type, v_width);
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

size_t KvCache::bytes_per_token(int n_layer, int k_width, int v_width, DType k_type, DType v_type) {
  return size_t(n_layer) * (row_bytes(k_type, k_width) + row_bytes(v_type, v_width));
}

size_t KvCache::offset(int layer, int pos, int head, int width, DType type) const {
  const int64_t head_width = width / n_heads_;
  const int64_t block = pos / kBlock, in_block = pos % kBlock;
  const int64_t block_start = (int64_t(layer) * n_rows_ + block * kBlock) * width;
  return row_bytes(type, block_start + (int64_t(head) * kBlock + in_block) * head_width);
}

void KvCache::put(uint8_t* row, DType type, const float* x, int n) {
  if (type == DType::F32) return (void)std::memcpy(row, x, size_t(n) * 4);
  if (type == DType::F16) return f32_to_f16_row(x, reinterpret_cast<uint16_t*>(row), n);
  quantize_row(type, x, row, n);
}

void KvCache::commit(int end) {
  // At least 64 KiB of the wider row stream per commit: few calls, little memory committed
  // ahead. Whole blocks, so that each layer's positions [committed_, end) are one range.
  const size_t row = std::max(row_bytes(k_type_, k_width_), row_bytes(v_type_, v_width_));
  const int step = int(std::max<size_t>(16, (size_t(64) << 10) / std::max<size_t>(1, row)));
  end = std::max(end, committed_ + step);
  end = std::min(n_rows_, (end + kBlock - 1) / kBlock * kBlock);
  for (int l = 0; l < n_layer_; ++l) {
    commit_pages(k_.get() + offset(l, committed_, 0, k_width_, k_type_),
                 size_t(end - committed_) * row_bytes(k_type_, k_width_));
    commit_pages(v_.get() + offset(l, committed_, 0, v_width_, v_type_),
                 size_t(end - committed_) * row_bytes(v_type_, v_width_));
  }
  committed_ = end;
}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  if (pos >= n_ctx_) fail("KV cache full: position ", pos, " beyond context ", n_ctx_);
  if (pos >= committed_) commit(pos + 1);
  const int kh = k_width_ / n_heads_, vh = v_width_ / n_heads_;
  for (int h = 0; h < n_heads_; ++h) {
    put(k_.get() + offset(layer, pos, h, k_width_, k_type_), k_type_, k + h * kh, kh);
    put(v_.get() + offset(layer, pos, h, v_width_, v_type_), v_type_, v + h * vh, vh);
  }
}

void KvCache::prefetch_store(int layer, int pos) const {
  if (pos >= committed_) return;
  for (auto [base, width, type] :
       {std::tuple{k_.get(), k_width_, k_type_}, {v_.get(), v_width_, v_type_}}) {
    const size_t head = row_bytes(type, width / n_heads_);
    for (int h = 0; h < n_heads_; ++h) {
      const auto p = reinterpret_cast<uintptr_t>(base + offset(layer, pos, h, width, type));
      for (uintptr_t a = p & ~uintptr_t(63); a < p + head; a += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(a), 1, 3);
    }
  }
}

void KvCache::load_values(const uint8_t* p, DType type, int n, float* out) {
  if (type == DType::F32) return (void)std::memcpy(out, p, size_t(n) * 4);
  if (type == DType::F16) return f16_to_f32_row(reinterpret_cast<const uint16_t*>(p), out, n);
  dequantize_row(type, p, out, n);
}

// Values [begin, begin + n) of a row, head by head.
void KvCache::load(const uint8_t* stream, int width, DType type, int layer, int pos, int begin,
                   int n, float* out) const {
  const int head_width = width / n_heads_;
  while (n > 0) {
    const int head = begin / head_width, in_head = begin % head_width;
    const int count = std::min(n, head_width - in_head);
    load_values(stream + offset(layer, pos, head, width, type) + row_bytes(type, in_head), type,
                count, out);
    begin += count, n -= count, out += count;
  }
}

void KvCache::load_k(int layer, int pos, int begin, int n, float* out) const {
  load(k_.get(), k_width_, k_type_, layer, pos, begin, n, out);
}

void KvCache::load_v(int layer, int pos, int begin, int n, float* out) const {
  load(v_.get(), v_width_, v_type_, layer, pos, begin, n, out);
}

const uint8_t* KvCache::k_block(int layer, int head, int block) const {
  return k_.get() + offset(layer, block * kBlock, head, k_width_, k_type_);
}
const uint8_t* KvCache::v_block(int layer, int head, int block) const {
  return v_.get() + offset(layer, block * kBlock, head, v_width_, v_type_);
}

void KvCache::load_k_block(int layer, int head, int block, int first, int count, float* out) const {
  assert(first >= 0 && first + count <= kBlock);
  load_values(k_block(layer, head, block) + size_t(first) * k_head_bytes(), k_type_,
              count * (k_width_ / n_heads_), out);
}

void KvCache::load_v_block(int layer, int head, int block, int first, int count, float* out) const {
  assert(first >= 0 && first + count <= kBlock);
  load_values(v_block(layer, head, block) + size_t(first) * v_head_bytes(), v_type_,
              count * (v_width_ / n_heads_), out);
}

}  // namespace hondo
