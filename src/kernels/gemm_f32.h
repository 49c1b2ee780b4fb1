// Float matrix product for prefill on float weights (F32, F16, BF16, and any format without
// an integer kernel): y[t * ldy + r] = sum_i w[r, i] * x[t, i].
//
// Tokens are the SIMD lanes. The activations are repacked once per product into panels of
// 32 tokens stored k-major ([k][32], zero padded), and a micro-kernel keeps up to 12 rows x
// 32 tokens of sums in registers: per k it loads the panel's 32 values once and broadcasts
// each row's weight onto them, so 24 FMAs need 2 vector loads and 12 scalar broadcasts
// (AVX-512 folds those into the FMAs). Weights are converted to F32 a block of rows and 512
// columns at a time, once per product, and reused by every token panel. BF16 weights on a CPU
// with AVX-512 BF16 skip the conversion: gemm_bf16 below.
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

// BF16 weights: acc[r * 32 + j] (+)= sum_{i < kc} w[r * ldw + i] * x[j, i], the weights BF16 as
// stored and the activations rounded to BF16 in panels of [kc / 2][32][2] (a token's two
// consecutive values side by side), sums in F32. With AVX-512 BF16 (`vdpbf16ps`: two products
// per lane and instruction) this is twice the F32 FMA rate and needs no weight conversion;
// the cost is the activations' rounding to 8 significant bits, as in llama.cpp's BF16 path.
using GemmBf16MicroFn = void (*)(const uint16_t* w, int64_t ldw, int n_rows, const uint16_t* panel,
                                 int64_t kc, float* acc, bool add);

struct GemmBf16Micro {
  const char* name;
  int max_rows;
  GemmBf16MicroFn fn;
};

// The scalar reference first, then the BF16 dot-product kernels this CPU can run (none on
// CPUs without AVX-512 BF16; gemm_f32 then converts BF16 weights to F32 like F16).
std::vector<GemmBf16Micro> gemm_bf16_micro_variants();

// Rows [row0, row0 + n_rows) of w times x ([n_tok, k]) into y ([n_tok, n_rows]), split over
// the pool by blocks of rows. micro: a kernel of gemm_micro_variants() (null: the best, and
// for BF16 weights gemm_bf16 with the best BF16 kernel when the CPU has one and HONDO_ISA is
// not set).
void gemm_f32(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
              float* y, ThreadPool& pool, const GemmMicro* micro = nullptr);

// The same product for BF16 weights (even row length) through a BF16 micro-kernel.
void gemm_bf16(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
               float* y, ThreadPool& pool, const GemmBf16Micro& micro);

}  // namespace hondo
