#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/dot.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"
#include "kernels/vec_dot.h"

namespace hondo {

namespace {

constexpr int64_t kRowBlock = 16;       // rows dequantized together, then used for every token
constexpr int64_t kFusedMaxTokens = 4;  // up to this many tokens, fused row dots are faster

// x: [n_tok, k] quantized to int8 once per call. One buffer per calling thread; the workers
// must see the caller's, so it is handed out as a plain reference (naming a thread_local in
// a lambda would give each worker its own, empty one).
const QActs& quantized_acts(const QDotKernels& ks, const float* x, int64_t n_tok, int64_t k,
                            ThreadPool& pool) {
  thread_local QActs caller_acts;
  caller_acts.quantize(ks, x, n_tok, k, &pool);
  return caller_acts;
}

// Quantized weights: each weight row is read once per group of up to kQDotMaxRows tokens. A
// tile of rows stays in cache while every token group passes over it.
void matmul_int8(const QDotKernels& ks, QDotFn dot, const Tensor& w, int64_t row0, int64_t n_rows,
                 const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const int64_t k = w.cols();
  const QActs& acts = quantized_acts(ks, x, n_tok, k, pool);
  const size_t rs = w.row_size();
  const auto* base = static_cast<const uint8_t*>(w.data) + size_t(row0) * rs;
  const int64_t tile = n_tok <= kQDotMaxRows ? 1 : kRowBlock;
  const int64_t n_tiles = (n_rows + tile - 1) / tile;
  pool.parallel_for(n_tiles, [&](int64_t b0, int64_t b1) {
    const int64_t r_begin = b0 * tile, r_end = std::min(n_rows, b1 * tile);
    for (int64_t r0 = r_begin; r0 < r_end; r0 += tile) {
      const int64_t r1 = std::min(r_end, r0 + tile);
      for (int64_t t0 = 0; t0 < n_tok; t0 += kQDotMaxRows) {
        const int nt = int(std::min<int64_t>(kQDotMaxRows, n_tok - t0));
        QActRow a[kQDotMaxRows];
        for (int j = 0; j < nt; ++j) a[j] = acts.row(t0 + j);
        float out[kQDotMaxRows];
        for (int64_t r = r0; r < r1; ++r) {
          dot(base + size_t(r) * rs, a, nt, k, out);
          for (int j = 0; j < nt; ++j) y[(t0 + j) * n_rows + r] = out[j];
        }
      }
    }
  });
}

// Repacked weights (packed.h): each task takes whole tiles of 16 rows and passes over a
// tile once per group of up to kQDotMaxRows tokens; the tile stays in cache meanwhile.
void matmul_tiles(const QDotKernels& ks, QTileFn tile_fn, const Tensor& w, int64_t row0,
                  int64_t n_rows, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const int64_t k = w.cols();
  const QActs& acts = quantized_acts(ks, x, n_tok, k, pool);
  const size_t tb = tile_bytes(w.type, k);
  const auto* tiles = static_cast<const uint8_t*>(w.packed) + size_t(row0 / kTileRows) * tb;
  const int64_t n_tiles = (n_rows + kTileRows - 1) / kTileRows;
  pool.parallel_for(n_tiles, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r0 = i * kTileRows, nr = std::min<int64_t>(kTileRows, n_rows - r0);
      for (int64_t t0 = 0; t0 < n_tok; t0 += kQDotMaxRows) {
        const int nt = int(std::min<int64_t>(kQDotMaxRows, n_tok - t0));
        QActRow a[kQDotMaxRows];
        for (int j = 0; j < nt; ++j) a[j] = acts.row(t0 + j);
        float out[kQDotMaxRows * kTileRows];  // [nt, 16]
        tile_fn(tiles + size_t(i) * tb, a, nt, k, out);
        for (int j = 0; j < nt; ++j)
          std::copy_n(out + j * kTileRows, nr, y + (t0 + j) * n_rows + r0);
      }
    }
  });
}

}  // namespace

void matmul_rows(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool) {
  const int64_t k = w.cols();
  const QDotKernels& ks = qdot_best();
  if (QTileFn tile = ks.tile_for(w.type); tile && w.packed && row0 % kTileRows == 0) {
    matmul_tiles(ks, tile, w, row0, n_rows, x, n_tok, y, pool);
    return;
  }
  if (QDotFn dot = ks.for_type(w.type); dot && k % kQActBlock == 0) {
    matmul_int8(ks, dot, w, row0, n_rows, x, n_tok, y, pool);
    return;
  }
  // Few tokens (decode) of F16/BF16 weights: fused per-row dots read each weight once,
  // straight from the file.
  if (n_tok <= kFusedMaxTokens && has_vec_dot(w.type)) {
    const size_t rs = w.row_size();
    const auto* base = static_cast<const uint8_t*>(w.data) + size_t(row0) * rs;
    pool.parallel_for(n_rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t t = 0; t < n_tok; ++t)
          vec_dot_row(w.type, base + size_t(r) * rs, x + t * k, k, y + t * n_rows + r);
    });
    return;
  }
  const int64_t n_blocks = (n_rows + kRowBlock - 1) / kRowBlock;
  pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<float> buf;
    if (w.type != DType::F32) buf.resize(size_t(kRowBlock * k));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRowBlock, r1 = std::min(n_rows, r0 + kRowBlock);
      const float* rows;  // [r1 - r0, k]
      if (w.type == DType::F32) {
        rows = reinterpret_cast<const float*>(w.row(row0 + r0));
      } else {
        for (int64_t r = r0; r < r1; ++r)
          dequantize_row(w.type, w.row(row0 + r), buf.data() + (r - r0) * k, k);
        rows = buf.data();
      }
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* xt = x + t * k;
        float* yt = y + t * n_rows;
        for (int64_t r = r0; r < r1; ++r) yt[r] = dot_f32(rows + (r - r0) * k, xt, k);
      }
    }
  });
}

void matmul(const Tensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul_rows(w, 0, w.rows(), x, n_tok, y, pool);
}

}  // namespace hondo
