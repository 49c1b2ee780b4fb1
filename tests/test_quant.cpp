// Quantization formats: half/bfloat conversions, quantize -> dequantize error bounds for each
// format, and the dispatched dot product against its scalar reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/dot.h"
#include "kernels/gemm_f32.h"
#include "kernels/half.h"
#include "kernels/head_rows.h"
#include "kernels/quant.h"
#include "kernels/vec_dot.h"
#include "kernels/vec_math.h"
#include "test_paths.h"

using namespace hondo;

TEST(Fp16, ExactValuesAndRounding) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f})
    EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  // Every half value converts to float and back unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  // Ties round to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(f32_to_f16(1.0f + 0.00048828125f), 0x3C00);
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0.00048828125f), 0x3C02);
}

// The F16C row conversions give the scalar reference's bits: every half value to float, and
// floats to half across normals, subnormals, overflow, exact ties and NaN.
TEST(HalfRows, FastConversionsMatchTheReferenceBitForBit) {
  if (!half_rows_use_simd()) GTEST_SKIP() << "no conversion instructions: the reference is used";
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  std::vector<float> a(all.size()), b(all.size());
  f16_to_f32_row_ref(all.data(), a.data(), int64_t(all.size()));
  f16_to_f32_row(all.data(), b.data(), int64_t(all.size()));
  for (size_t i = 0; i < all.size(); ++i) {
    if (std::isnan(a[i])) {
      EXPECT_TRUE(std::isnan(b[i])) << i;
      continue;
    }
    ASSERT_EQ(f32_to_bits(a[i]), f32_to_bits(b[i])) << i;
  }
  std::mt19937 rng(3);
  std::vector<float> x;
  for (int i = 0; i < 200000; ++i) {
    const int e = int(rng() % 48) - 30;  // 2^-30 .. 2^17: subnormal halves to overflow
    x.push_back(std::ldexp(float(int32_t(rng())) / 2147483648.0f, e));
  }
  for (uint16_t h : {uint16_t(0x3c00), uint16_t(0x0001), uint16_t(0x7bff)}) {  // exact ties
    const float f = f16_to_f32(h), up = f16_to_f32(uint16_t(h + 1));
    x.push_back((f + up) / 2);
    x.push_back(-(f + up) / 2);
  }
  x.push_back(65520.0f);  // rounds to infinity
  x.push_back(std::numeric_limits<float>::infinity());
  x.push_back(-0.0f);
  std::vector<uint16_t> ha(x.size()), hb(x.size());
  f32_to_f16_row_ref(x.data(), ha.data(), int64_t(x.size()));
  f32_to_f16_row(x.data(), hb.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(ha[i], hb[i]) << x[i];
}

TEST(Bf16, RoundTrip) {
  for (float v : {0.0f, 1.0f, -3.0f, std::ldexp(1.5f, 100)})
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(v)), v);
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3F80);  // halfway, rounds to even
}

struct FormatCase {
  DType type;
  double max_rel_rms;  // RMS error / RMS value bound for uniform random data
};

class QuantRoundTrip : public ::testing::TestWithParam<FormatCase> {};

TEST_P(QuantRoundTrip, ErrorWithinFormatBound) {
  const auto [type, bound] = GetParam();
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n = 32 * 64;
  std::vector<float> x(n), y(n);
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> q(row_bytes(type, n));
  quantize_row(type, x.data(), q.data(), n);
  dequantize_row(type, q.data(), y.data(), n);
  double err = 0, sig = 0;
  for (int i = 0; i < n; ++i)
    err += double(x[i] - y[i]) * (x[i] - y[i]), sig += double(x[i]) * x[i];
  const double rel = std::sqrt(err / sig);
  RecordProperty("rel_rms_error", std::to_string(rel));
  EXPECT_LE(rel, bound) << dtype_name(type);
  // Re-quantizing the dequantized values is stable: the legacy formats map their grid onto
  // itself; the K-quants, which search their scales, may pick another grid, but re-quantizing
  // values already on a grid costs far less than quantizing the original data did.
  std::vector<uint8_t> q2(q.size());
  std::vector<float> y2(n);
  quantize_row(type, y.data(), q2.data(), n);
  dequantize_row(type, q2.data(), y2.data(), n);
  if (dtype_info(type).block_elems == 256) {
    double err2 = 0;
    for (int i = 0; i < n; ++i) err2 += double(y2[i] - y[i]) * (y2[i] - y[i]);
    EXPECT_LE(std::sqrt(err2 / sig), rel / 2) << dtype_name(type);
    return;
  }
  for (int i = 0; i < n; ++i)
    ASSERT_NEAR(y2[i], y[i], 1e-3f * (1 + std::fabs(y[i]))) << dtype_name(type) << " " << i;
}

// Bounds: half a quantization step over the block range, for normal data.
INSTANTIATE_TEST_SUITE_P(
    Formats, QuantRoundTrip,
    ::testing::Values(FormatCase{DType::F16, 1e-3}, FormatCase{DType::BF16, 5e-3},
                      FormatCase{DType::Q8_0, 0.01}, FormatCase{DType::Q5_0, 0.05},
                      FormatCase{DType::Q5_1, 0.05}, FormatCase{DType::Q4_0, 0.11},
                      FormatCase{DType::Q4_1, 0.10}, FormatCase{DType::Q8_K, 0.01},
                      FormatCase{DType::Q6_K, 0.02}, FormatCase{DType::Q5_K, 0.04},
                      FormatCase{DType::Q4_K, 0.075}, FormatCase{DType::Q3_K, 0.16},
                      FormatCase{DType::Q2_K, 0.29}),
    [](const auto& p) { return std::string(dtype_name(p.param.type)); });

// Hand-built blocks decode to the values the GGML layouts define.
TEST(QuantLayout, Q4_0AndQ8_0KnownBlocks) {
  uint8_t b[18] = {};
  const uint16_t d = f32_to_f16(0.5f);
  std::memcpy(b, &d, 2);
  b[2] = 0x9F;  // element 0: low nibble 15 -> (15-8)*0.5 = 3.5; element 16: high 9 -> 0.5
  float y[32];
  dequantize_row(DType::Q4_0, b, y, 32);
  EXPECT_EQ(y[0], 3.5f);
  EXPECT_EQ(y[16], 0.5f);
  EXPECT_EQ(y[1], -4.0f);  // nibble 0
  uint8_t c[34] = {};
  const uint16_t d2 = f32_to_f16(0.25f);
  std::memcpy(c, &d2, 2);
  c[2 + 5] = uint8_t(int8_t(-12));
  dequantize_row(DType::Q8_0, c, y, 32);
  EXPECT_EQ(y[5], -3.0f);
}

// Q8_0's quantizer rounds as GGML's reference does (roundf: halves away from zero): every
// value of blocks whose scale is exactly 1 (largest 127) lies on a half, plus random blocks,
// against std::lround of the same products.
TEST(QuantLayout, Q8_0RoundsHalvesAwayFromZero) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x;
  for (int k = -127; k < 127; ++k) x.push_back(float(k) + 0.5f);  // halves, both signs
  while (x.size() % 31 != 0) x.push_back(0.5f);
  std::vector<float> blocks;  // each block: 31 halves and 127 (d = 1) or -127
  for (size_t i = 0; i < x.size(); i += 31) {
    blocks.insert(blocks.end(), x.begin() + long(i), x.begin() + long(i + 31));
    blocks.push_back(i % 62 ? -127.0f : 127.0f);
  }
  for (int i = 0; i < 64 * 32; ++i) blocks.push_back(nd(rng));
  const int64_t n = int64_t(blocks.size());
  std::vector<uint8_t> q(row_bytes(DType::Q8_0, n));
  quantize_row(DType::Q8_0, blocks.data(), q.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = blocks.data() + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j)
      ASSERT_EQ(int8_t(q[size_t(b * 34 + 2 + j)]), int8_t(std::lround(xb[j] * id)))
          << "block " << b << " value " << xb[j];
  }
}

TEST(Dot, DispatchedMatchesReference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> ud(-1, 1);
  for (int n : {1, 7, 16, 33, 257, 4096}) {
    std::vector<float> a(static_cast<size_t>(n)), b(a), y(a);
    for (int i = 0; i < n; ++i) a[size_t(i)] = ud(rng), b[size_t(i)] = ud(rng);
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), dot_f32_ref(a.data(), b.data(), n), 1e-5 * n) << n;
    y = b;
    axpy_f32(0.5f, a.data(), y.data(), n);
    for (int i = 0; i < n; ++i) ASSERT_FLOAT_EQ(y[size_t(i)], b[size_t(i)] + 0.5f * a[size_t(i)]);
  }
}

// Fused half-precision row dots equal dequantize + scalar reference dot, on whichever kernel
// this CPU selects (AVX2 or the portable loop). Quantized formats: test_qdot.
class FusedDot : public ::testing::TestWithParam<DType> {};
TEST_P(FusedDot, MatchesDequantizedReference) {
  const DType t = GetParam();
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int n : {32, 64, 1000, 2048, 5504}) {  // 1000: a tail after the vector steps
    std::vector<float> w(static_cast<size_t>(n)), x(w.size()), wd(w.size());
    for (size_t i = 0; i < w.size(); ++i) w[i] = nd(rng), x[i] = nd(rng);
    std::vector<uint8_t> q(row_bytes(t, n));
    quantize_row(t, w.data(), q.data(), n);
    dequantize_row(t, q.data(), wd.data(), n);
    const float want = dot_f32_ref(wd.data(), x.data(), n);
    float got = 0;
    ASSERT_TRUE(has_vec_dot(t));
    ASSERT_TRUE(vec_dot_row(t, q.data(), x.data(), n, &got)) << dtype_name(t);
    EXPECT_NEAR(got, want, 1e-5f * std::sqrt(float(n)) * 4) << dtype_name(t) << " n=" << n;
    if (t != DType::F16) continue;
    const auto* h = reinterpret_cast<const uint16_t*>(q.data());
    for (const F16Dot& v : f16_dot_variants()) {  // every instruction set of this CPU
      const float f = v.fn(h, x.data(), n);
      EXPECT_NEAR(f, want, 1e-5f * std::sqrt(float(n)) * 4) << v.name << " n=" << n;
    }
    for (const F16Axpy& v : f16_axpy_variants()) {  // y = 0.5 x + 0.25 w, against the floats
      std::vector<float> y(x);
      for (float& e : y) e *= 0.5f;
      v.fn(0.25f, h, y.data(), n);
      for (int i = 0; i < n; ++i)
        ASSERT_NEAR(y[size_t(i)], 0.5f * x[size_t(i)] + 0.25f * wd[size_t(i)], 1e-6f)
            << v.name << " n=" << n << " i=" << i;
    }
  }
}
// The weighted sum of F16 rows (attention output over an F16 value cache): every variant
// against the float reference, for widths with and without a tail after the vector blocks.
TEST(F16WeightedSum, EveryVariantMatchesReference) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_rows = 37, stride = 700;
  std::vector<uint16_t> rows(static_cast<size_t>(n_rows * stride));
  for (auto& h : rows) h = f32_to_f16(nd(rng));
  std::vector<float> p(static_cast<size_t>(n_rows));
  for (float& v : p) v = std::fabs(nd(rng));
  for (int64_t n : {128, 512, 200, 40}) {
    std::vector<double> want(size_t(n), 0.0);
    for (int64_t j = 0; j < n_rows; ++j)
      for (int64_t i = 0; i < n; ++i)
        want[size_t(i)] += double(p[size_t(j)]) * f16_to_f32(rows[size_t(j * stride + i)]);
    for (const F16WeightedSum& v : f16_weighted_sum_variants()) {
      std::vector<float> out(size_t(n), -1.0f);
      v.fn(rows.data(), stride, p.data(), n_rows, n, out.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(out[size_t(i)], want[size_t(i)], 1e-4) << v.name << " n=" << n << " i=" << i;
    }
  }
}

// A run of F16 or BF16 weight rows times up to 9 tokens (decode's products on a
// half-precision file): every variant against a double-precision reference, for widths with
// and without a tail after the vector steps, each token count (the kernels go 4 tokens at a
// time), and an output stride wider than the run; outputs outside the run stay untouched.
TEST(HalfRowsDot, EveryVariantTypeAndTokenCountMatchesReference) {
  std::mt19937 rng(19);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_rows = 11, y_stride = 13;
  for (DType type : {DType::F16, DType::BF16})
    for (int64_t k : {256, 200, 72, 5}) {
      std::vector<uint16_t> w(static_cast<size_t>(n_rows * k));
      std::vector<float> wf(w.size());  // the values w holds
      for (size_t i = 0; i < w.size(); ++i) {
        const float v = nd(rng);
        w[i] = type == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
        wf[i] = type == DType::BF16 ? bf16_to_f32(w[i]) : f16_to_f32(w[i]);
      }
      for (int64_t n_tok = 1; n_tok <= 9; ++n_tok) {
        std::vector<float> x(static_cast<size_t>(n_tok * k));
        for (float& v : x) v = nd(rng);
        for (const HalfRowsDot& v : half_rows_dot_variants()) {
          std::vector<float> y(static_cast<size_t>(n_tok * y_stride), -7.0f);
          v.fn(type, w.data(), k, n_rows, x.data(), n_tok, y.data(), y_stride);
          for (int64_t t = 0; t < n_tok; ++t)
            for (int64_t r = 0; r < y_stride; ++r) {
              const float got = y[size_t(t * y_stride + r)];
              if (r >= n_rows) {
                ASSERT_EQ(got, -7.0f) << v.name << " wrote past the run, r=" << r;
                continue;
              }
              double want = 0;
              for (int64_t i = 0; i < k; ++i)
                want += double(wf[size_t(r * k + i)]) * x[size_t(t * k + i)];
              ASSERT_NEAR(got, want, 1e-4 * std::sqrt(double(k)))
                  << v.name << " " << dtype_name(type) << " k=" << k << " n_tok=" << n_tok
                  << " t=" << t << " r=" << r;
            }
        }
      }
    }
}

// Several heads over the same cached rows (decode attention), F32 or F16 values or Q8_0 blocks:
// every variant and head count against a double-precision reference over the rows' stored
// values, for widths with and without a tail after the vector blocks (F32, F16; Q8_0 rows are whole
// blocks of 32), and rows enough for a run of the sums (kSumRows) and a part run. Both add
// to what the output holds; rows asked for beyond the ones used change nothing.
TEST(HeadRows, EveryVariantAndHeadCountMatchesReference) {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n_rows = kSumRows + 22, width = 576, q_stride = 600, o_stride = 610;
  const int64_t n_used = n_rows - 11;  // rows the kernels read; the others only asked for
  std::vector<float> x(static_cast<size_t>(n_rows * width));  // [n_rows, width] before storing
  for (float& v : x) v = nd(rng);
  std::vector<float> q(static_cast<size_t>(kMaxHeadRows * q_stride));
  for (float& v : q) v = nd(rng);
  std::vector<float> p(static_cast<size_t>(kMaxHeadRows * q_stride));
  for (float& v : p) v = std::fabs(nd(rng));
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    const int64_t stride = int64_t(row_bytes(type, width)) + 8;  // bytes between rows
    std::vector<uint8_t> rows(static_cast<size_t>(n_rows * stride));
    std::vector<float> stored(x.size());  // the rows' values as stored
    for (int64_t j = 0; j < n_rows; ++j) {
      quantize_row(type, x.data() + j * width, rows.data() + j * stride, width);
      dequantize_row(type, rows.data() + j * stride, stored.data() + j * width, width);
    }
    const auto widths = type != DType::Q8_0 ? std::vector<int64_t>{512, 200, 128, 64, 40, 8}
                                            : std::vector<int64_t>{576, 512, 128, 96, 64, 32};
    for (int64_t n : widths) {
      for (int n_q = 1; n_q <= kMaxHeadRows; ++n_q) {
        std::vector<double> dots(size_t(n_q * n_used)), sums(size_t(n_q * n));
        for (int i = 0; i < n_q; ++i)
          for (int64_t j = 0; j < n_used; ++j)
            for (int64_t c = 0; c < n; ++c) {
              const double w = stored[size_t(j * width + c)];
              dots[size_t(i * n_used + j)] += w * q[size_t(i * q_stride + c)];
              sums[size_t(i * n + c)] += w * p[size_t(i * q_stride + j)];
            }
        for (const HeadRowKernels& v : head_rows_variants(type)) {
          const std::string what = std::string(v.name) + " " + dtype_name(type) +
                                   " n=" + std::to_string(n) + " heads=" + std::to_string(n_q);
          std::vector<float> out(size_t(n_q * o_stride), 0.5f);
          v.dots(rows.data(), stride, n_used, q.data(), q_stride, n_q, n, out.data(), o_stride,
                 n_rows);
          for (int i = 0; i < n_q; ++i)
            for (int64_t j = 0; j < n_used; ++j)
              ASSERT_NEAR(out[size_t(i * o_stride + j)], 0.5 + dots[size_t(i * n_used + j)],
                          1e-5 * std::sqrt(double(n)) * 4)
                  << what << " dots i=" << i << " j=" << j;
          std::fill(out.begin(), out.end(), -1.0f);
          v.sums(rows.data(), stride, n_used, p.data(), q_stride, n_q, n, out.data(), o_stride,
                 n_rows);
          for (int i = 0; i < n_q; ++i)
            for (int64_t c = 0; c < n; ++c)
              ASSERT_NEAR(out[size_t(i * o_stride + c)], -1.0 + sums[size_t(i * n + c)], 1e-4)
                  << what << " sums i=" << i << " c=" << c;
        }
      }
    }
  }
  std::vector<float> out(8);
  EXPECT_THROW(head_dots(DType::Q8_0, x.data(), 34, 1, q.data(), 0, 1, 40, out.data(), 0), Error);
  EXPECT_THROW(head_dots(DType::F16, x.data(), 80, 1, q.data(), 0, 9, 40, out.data(), 0), Error);
}

// exp for softmax and SiLU for SwiGLU, every instruction set's loop against std::exp: a
// sweep over the whole range in steps of 1/1024 (and the tail after the vector steps), the
// clamped ends, and NaN passing through.
TEST(VecMath, EveryVariantWithinTwoUlpOfStdExp) {
  std::vector<float> x;
  for (float v = -87.3f; v < 88.7f; v += 1.0f / 1024) x.push_back(v);
  x.push_back(0.0f);
  std::vector<float> want(x.size()), got(x.size());
  exp_ref(x.data(), want.data(), int64_t(x.size()));
  auto ulps = [](float a, float b) {  // both positive and finite
    int32_t ia, ib;
    std::memcpy(&ia, &a, 4);
    std::memcpy(&ib, &b, 4);
    return std::abs(int64_t(ia) - int64_t(ib));
  };
  for (const VecMath& v : vec_math_variants()) {
    v.exp(x.data(), got.data(), int64_t(x.size()));
    int64_t worst = 0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulps(got[i], want[i]));
    EXPECT_LE(worst, 2) << v.name;
    const float edge[] = {-1000.0f, 1000.0f, std::numeric_limits<float>::quiet_NaN()};
    float out[3];
    v.exp(edge, out, 3);
    EXPECT_GE(out[0], 0.0f) << v.name;
    EXPECT_LE(out[0], 1.2e-38f) << v.name;
    EXPECT_TRUE(std::isfinite(out[1]) && out[1] > 3e38f) << v.name;
    EXPECT_TRUE(std::isnan(out[2])) << v.name;
  }
}

TEST(VecMath, EveryVariantsSiluMulMatchesReference) {
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  const int64_t n = 5504 + 7;
  std::vector<float> g(static_cast<size_t>(n)), u(g), want(g), got(g);
  for (int64_t i = 0; i < n; ++i) g[size_t(i)] = nd(rng), u[size_t(i)] = nd(rng);
  g[0] = -100.0f, g[1] = 100.0f;  // sigmoid saturated either way
  silu_mul_ref(g.data(), u.data(), want.data(), n);
  for (const VecMath& v : vec_math_variants()) {
    v.silu_mul(g.data(), u.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 4e-7f * std::fabs(want[size_t(i)]) + 1e-30f)
          << v.name << " g=" << g[size_t(i)];
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, FusedDot, ::testing::Values(DType::F16, DType::BF16),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

// The float GEMM (prefill on F32/F16/BF16 weights, and formats without an integer kernel)
// with every micro-kernel this CPU has, against the reference dot product of each dequantized
// row with each token: full and partial 12-row groups and 48-row blocks, partial token panels,
// k chunks of 512 with a partial one, and a row offset into the tensor.
TEST(GemmF32, EveryMicroKernelMatchesReferenceForEveryPair) {
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct Shape {
    DType type;
    int64_t rows, toks, k;
  };
  const Shape shapes[] = {{DType::F32, 13, 5, 100},  {DType::F16, 50, 33, 1100},
                          {DType::BF16, 7, 70, 512}, {DType::F32, 100, 40, 1030},
                          {DType::Q8_0, 25, 9, 608}, {DType::Q4_K, 12, 32, 768},
                          {DType::F16, 1, 1, 16}};
  ThreadPool pool(2);
  for (const GemmMicro& micro : gemm_micro_variants())
    for (const Shape& sh : shapes) {
      const int64_t row0 = 3, total = sh.rows + row0 + 2, k = sh.k;
      const size_t rs = row_bytes(sh.type, k);
      std::vector<float> wf(size_t(total * k)), x(size_t(sh.toks * k));
      for (float& v : wf) v = nd(rng);
      for (float& v : x) v = nd(rng);
      std::vector<uint8_t> rows(rs * size_t(total));
      for (int64_t r = 0; r < total; ++r) {
        quantize_row(sh.type, wf.data() + r * k, rows.data() + size_t(r) * rs, k);
        dequantize_row(sh.type, rows.data() + size_t(r) * rs, wf.data() + r * k, k);
      }
      Tensor w;
      w.type = sh.type, w.n_dims = 2, w.ne = {k, total, 1, 1}, w.data = rows.data();
      std::vector<float> y(size_t(sh.toks * sh.rows), NAN);
      gemm_f32(w, row0, sh.rows, x.data(), sh.toks, y.data(), pool, &micro);
      for (int64_t t = 0; t < sh.toks; ++t)
        for (int64_t r = 0; r < sh.rows; ++r) {
          const float want = dot_f32_ref(wf.data() + (row0 + r) * k, x.data() + t * k, k);
          ASSERT_NEAR(y[size_t(t * sh.rows + r)], want, 2e-5f * float(k))
              << micro.name << " " << dtype_name(sh.type) << " row " << r << " token " << t << " k "
              << k;
        }
    }
}

// BF16 weights times activations rounded to BF16, with every BF16 micro-kernel of this CPU
// (and the reference), against double-precision dots of the BF16 values: the sums may round
// differently (F32 accumulation in another order), nothing else. Also gemm_f32's own choice
// for BF16 weights, within the error of rounding the activations to BF16 (2^-9 relative).
TEST(GemmBf16, EveryMicroKernelMatchesDoubleDotsOfRoundedValues) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct Shape {
    int64_t rows, toks, k;
  };
  const Shape shapes[] = {{13, 5, 100}, {50, 33, 1100}, {7, 70, 512}, {100, 40, 1030}, {1, 1, 2}};
  ThreadPool pool(2);
  for (const Shape& sh : shapes) {
    const int64_t row0 = 3, total = sh.rows + row0 + 2, k = sh.k;
    std::vector<uint16_t> w16(size_t(total * k));
    std::vector<float> x(size_t(sh.toks * k));
    for (uint16_t& v : w16) v = f32_to_bf16(nd(rng));
    for (float& v : x) v = nd(rng);
    Tensor w;
    w.type = DType::BF16, w.n_dims = 2, w.ne = {k, total, 1, 1}, w.data = w16.data();
    auto want = [&](int64_t r, int64_t t, bool round_x, double* abs_sum) {
      double s = 0, a = 0;
      for (int64_t i = 0; i < k; ++i) {
        const float xi = x[size_t(t * k + i)];
        const double p = double(bf16_to_f32(w16[size_t((row0 + r) * k + i)])) *
                         (round_x ? bf16_to_f32(f32_to_bf16(xi)) : xi);
        s += p, a += std::fabs(p);
      }
      *abs_sum = a;
      return s;
    };
    std::vector<float> y(size_t(sh.toks * sh.rows));
    for (const GemmBf16Micro& micro : gemm_bf16_micro_variants()) {
      std::fill(y.begin(), y.end(), NAN);
      gemm_bf16(w, row0, sh.rows, x.data(), sh.toks, y.data(), pool, micro);
      for (int64_t t = 0; t < sh.toks; ++t)
        for (int64_t r = 0; r < sh.rows; ++r) {
          double abs_sum;
          const double exact = want(r, t, true, &abs_sum);
          ASSERT_NEAR(y[size_t(t * sh.rows + r)], exact, 1e-6 * abs_sum + 1e-30)
              << micro.name << " row " << r << " token " << t << " k " << k;
        }
    }
    std::fill(y.begin(), y.end(), NAN);
    gemm_f32(w, row0, sh.rows, x.data(), sh.toks, y.data(), pool);  // BF16 kernel or F32 path
    for (int64_t t = 0; t < sh.toks; ++t)
      for (int64_t r = 0; r < sh.rows; ++r) {
        double abs_sum;
        const double exact = want(r, t, false, &abs_sum);
        ASSERT_NEAR(y[size_t(t * sh.rows + r)], exact, 4e-3 * abs_sum)
            << "gemm_f32 row " << r << " token " << t << " k " << k;
      }
  }
  // An odd row length cannot pair columns: a clear error, not a wrong result.
  std::vector<uint16_t> odd(3 * 5, f32_to_bf16(1.0f));
  Tensor w;
  w.type = DType::BF16, w.n_dims = 2, w.ne = {5, 3, 1, 1}, w.data = odd.data();
  std::vector<float> x(5, 1.0f), y(3);
  EXPECT_THROW(gemm_bf16(w, 0, 3, x.data(), 1, y.data(), pool, gemm_bf16_micro_variants()[0]),
               Error);
}
