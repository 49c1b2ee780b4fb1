// The SwiGLU feed-forward network, y = W_down · (silu(W_gate·x) ⊙ W_up·x), over a slice of
// rows of its weights, so one call serves a dense FFN, the shared experts, or one routed
// expert inside 3-D expert tensors.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace hondo {

struct FfnWeights {
  const Tensor* gate = nullptr;  // [n_embd, width (x n_expert)]
  const Tensor* up = nullptr;    // [n_embd, width (x n_expert)]
  const Tensor* down = nullptr;  // [width, n_embd (x n_expert)]
  int64_t width = 0;             // inner width of this FFN
  int64_t gate_row0 = 0;         // first row of gate/up used (expert e: e * width)
  int64_t down_row0 = 0;         // first row of down used (expert e: e * n_embd)
};

// Tokens per pass of swiglu_ffn: a prompt's tokens go through the FFN this many at a time, so
// that its inner activations ([tokens, width] for gate and up, 2 x 11 MiB at 512 tokens of
// DeepSeek-Coder-1.3B) do not grow with the prompt batch. The weights are read once per pass.
constexpr int64_t kFfnChunkTokens = 128;

// x: [n_tok, n_embd] -> y: [n_tok, n_embd]
void swiglu_ffn(const FfnWeights& w, const float* x, int64_t n_tok, int64_t n_embd, float* y,
                ThreadPool& pool);

}  // namespace hondo
