#include "model/ffn.h"

#include <algorithm>
#include <vector>

#include "kernels/matmul.h"
#include "model/layers.h"

namespace hondo {

void swiglu_ffn(const FfnWeights& w, const float* x, int64_t n_tok, int64_t n_embd, float* y,
                ThreadPool& pool) {
  // Kept from call to call (layers.h, scratch), at most kFfnChunkTokens rows of the inner width.
  thread_local std::vector<float> g_buf, u_buf;
  const int64_t chunk = std::min(n_tok, kFfnChunkTokens);
  float* g = scratch(g_buf, size_t(chunk * w.width));  // [chunk, width]
  float* u = scratch(u_buf, size_t(chunk * w.width));  // [chunk, width]
  for (int64_t t0 = 0; t0 < n_tok; t0 += chunk) {
    const int64_t n = std::min(chunk, n_tok - t0);
    const float* xc = x + t0 * n_embd;  // [n, n_embd]
    // Gate and up read the same input: one batch, one activation quantization, one loop.
    matmul_batch({{w.gate, w.gate_row0, w.width, xc, n, g}, {w.up, w.gate_row0, w.width, xc, n, u}},
                 pool);
    swiglu(g, u, g, n * w.width, pool);
    matmul_rows(*w.down, w.down_row0, n_embd, g, n, y + t0 * n_embd, pool);
  }
}

}  // namespace hondo
