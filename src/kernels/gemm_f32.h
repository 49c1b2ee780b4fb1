// Float matrix product for prefill on float weights (F32, F16, BF16, and any format without
// an integer kernel): y[t * ldy + r] = sum_i w[r, i] * x[t, i].
//
// Tokens are the SIMD lanes. The activations are repacked once per product into panels of
// 32 tokens stored k-major ([k][32], zero padded), and a micro-kernel keeps up to 12 rows x
// 32 tokens of sums in registers: per k it loads the panel's 32 values once and broadcasts
// each row's weight onto them, so 24 FMAs need 2 vector loads and 12 scalar broadcasts
// (AVX-512 folds those into the FMAs). Weights are converted to F32 a block of rows and 256
// columns at a time, once per product, and reused by every token panel.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace hondo {

constexpr int kPanelTokens = 32;  // tokens per activation panel (lanes of the micro-kernel)

// acc[r * 32 + j] (+)= sum_{i < kc} w[r * ldw + i] * panel[i * 32 + j] for r < n_rows; the
// sums start from acc when add is set, from zero otherwise. n_rows <= the kernel's max_rows.
using GemmMicroFn = void (*)(const float* w, int64_t ldw, int n_rows, const float* panel,
                             int64_t kc, float* acc, bool add);

struct GemmMicro {
  const char* name;
  int max_rows;
  GemmMicroFn fn;
};

// The scalar reference first, then every SIMD micro-kernel this CPU can run; the last is the
// one gemm_f32 uses. The tests compare each with the reference.
std::vector<GemmMicro> gemm_micro_variants();

// The micro-kernel gemm_f32 uses: the last variant, unless HONDO_ISA lowers the instruction
// set (kernels/qdot.h).
const GemmMicro& gemm_micro_best();

// Rows [row0, row0 + n_rows) of w times x ([n_tok, k]) into y ([n_tok, n_rows]), split over
// the pool by blocks of rows. micro: a kernel of gemm_micro_variants() (null: the best).
void gemm_f32(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
              float* y, ThreadPool& pool, const GemmMicro* micro = nullptr);

}  // namespace hondo
