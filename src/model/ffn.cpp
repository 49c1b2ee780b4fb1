#include "model/ffn.h"

#include <vector>

#include "kernels/matmul.h"
#include "model/layers.h"

namespace hondo {

void swiglu_ffn(const FfnWeights& w, const float* x, int64_t n_tok, int64_t n_embd, float* y,
                ThreadPool& pool) {
  thread_local std::vector<float> g_buf, u_buf;  // kept from call to call (layers.h, scratch)
  const size_t n = size_t(n_tok * w.width);
  float* g = scratch(g_buf, n);  // [n_tok, width]
  float* u = scratch(u_buf, n);  // [n_tok, width]
  matmul_rows(*w.gate, w.gate_row0, w.width, x, n_tok, g, pool);
  matmul_rows(*w.up, w.gate_row0, w.width, x, n_tok, u, pool);
  swiglu(g, u, g, int64_t(n), pool);
  matmul_rows(*w.down, w.down_row0, n_embd, g, n_tok, y, pool);
}

}  // namespace hondo
