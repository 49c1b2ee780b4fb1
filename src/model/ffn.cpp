#include "model/ffn.h"

#include <vector>

#include "kernels/matmul.h"
#include "model/layers.h"

namespace hondo {

void swiglu_ffn(const FfnWeights& w, const float* x, int64_t n_tok, int64_t n_embd, float* y,
                ThreadPool& pool) {
  std::vector<float> g(static_cast<size_t>(n_tok * w.width)), u(g.size());  // [n_tok, width]
  matmul_rows(*w.gate, w.gate_row0, w.width, x, n_tok, g.data(), pool);
  matmul_rows(*w.up, w.gate_row0, w.width, x, n_tok, u.data(), pool);
  swiglu(g.data(), u.data(), g.data(), int(g.size()));
  matmul_rows(*w.down, w.down_row0, n_embd, g.data(), n_tok, y, pool);
}

}  // namespace hondo
