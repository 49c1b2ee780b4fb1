#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/dot.h"
#include "kernels/quant.h"
#include "kernels/vec_dot.h"

namespace hondo {

namespace {
constexpr int64_t kRowBlock = 16;  // rows dequantized together, then used for every token
constexpr int64_t kFusedMaxTokens = 4;  // up to this many tokens, fused row dots are faster
}

void matmul_rows(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool) {
  const int64_t k = w.cols();
  // Few tokens (decode): fused per-row dots read each weight once, straight from the file.
  float probe;
  if (n_tok <= kFusedMaxTokens && w.type != DType::F32 &&
      vec_dot_row(w.type, w.row(row0), x, k, &probe)) {
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
