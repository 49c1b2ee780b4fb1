// Integer dot-product kernels (kernels/qdot.h): the scalar reference against exact
// arithmetic on dequantized values, every SIMD set this CPU has against the reference, and
// the activation quantization against its error bound.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include "core/fp16.h"
#include "kernels/cpu.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"

using namespace hondo;

namespace {

const DType kIntTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                           DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Offsets of the f16 scale fields in each block, which random bytes must not make inf/NaN.
std::vector<int> half_fields(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
      return {0};
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return {0, 2};
    case DType::Q2_K:
      return {80, 82};
    case DType::Q3_K:
      return {108};
    case DType::Q6_K:
      return {208};
    default:
      return {};
  }
}

// Sets the f16 scale fields of every block of format t in `blocks` to scale() in turn.
template <class Scale>
void set_block_scales(DType t, std::vector<uint8_t>& blocks, Scale scale) {
  const size_t block_bytes = size_t(dtype_info(t).block_bytes);
  for (size_t blk = 0; blk < blocks.size() / block_bytes; ++blk)
    for (int off : half_fields(t)) {
      const uint16_t h = f32_to_f16(scale());
      std::memcpy(blocks.data() + blk * block_bytes + off, &h, 2);
    }
}

// A weight row of k values in format t made of random bytes (every bit pattern of the
// quantized values and sub-scales is legal) with finite, modest block scales.
std::vector<uint8_t> random_row(DType t, int64_t k, std::mt19937& rng) {
  std::vector<uint8_t> row(row_bytes(t, k));
  for (auto& b : row) b = uint8_t(rng());
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  set_block_scales(t, row, [&] { return scale(rng); });
  return row;
}

std::vector<float> random_acts(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng) * (1.0f + float(rng() % 4));  // blocks of different ranges
  return x;
}

}  // namespace

class QDotFormat : public ::testing::TestWithParam<DType> {};

// The reference equals the exact dot of the dequantized weights with the dequantized
// activations (q * d), up to float rounding of the scales.
TEST_P(QDotFormat, ReferenceIsExactOnDequantizedValues) {
  const DType t = GetParam();
  const QDotKernels& ref = qdot_reference();
  ASSERT_NE(ref.for_type(t), nullptr);
  std::mt19937 rng(11);
  const int64_t k = 1024;
  for (int trial = 0; trial < 20; ++trial) {
    const auto w = random_row(t, k, rng);
    const auto x = random_acts(k, rng);
    QActs acts;
    acts.quantize(ref, x.data(), 1, k);
    const QActRow a = acts.row(0);
    std::vector<float> wf(k);
    dequantize_row(t, w.data(), wf.data(), k);
    double exact = 0, magnitude = 0;
    for (int64_t i = 0; i < k; ++i) {
      const double ai = double(a.q[i]) * a.d[i / 32];
      exact += double(wf[i]) * ai, magnitude += std::fabs(double(wf[i]) * ai);
    }
    float got;
    ref.for_type(t)(w.data(), &a, 1, k, &got);
    EXPECT_NEAR(got, exact, 1e-5 * magnitude + 1e-30) << dtype_name(t);
  }
}

// Every SIMD set against the reference, for 1..4 activation rows at once.
TEST_P(QDotFormat, EverySimdSetMatchesReference) {
  const DType t = GetParam();
  const QDotKernels& ref = qdot_reference();
  std::mt19937 rng(5);
  const int64_t k = 2048;
  int compared = 0;
  for (const QDotKernels* ks : qdot_available()) {
    if (ks == &ref) continue;
    // Every set covers every format (x86: AVX2, AVX-512 VNNI; ARM64: NEON dotprod).
    ASSERT_NE(ks->for_type(t), nullptr) << ks->isa;
    for (int trial = 0; trial < 10; ++trial) {
      const auto w = random_row(t, k, rng);
      const auto x = random_acts(kQDotMaxRows * k, rng);
      QActs acts;
      acts.quantize(ref, x.data(), kQDotMaxRows, k);
      for (int n = 1; n <= kQDotMaxRows; ++n) {
        QActRow a[kQDotMaxRows];
        for (int j = 0; j < n; ++j) a[j] = acts.row(j);
        float want[kQDotMaxRows], got[kQDotMaxRows];
        ref.for_type(t)(w.data(), a, n, k, want);
        ks->for_type(t)(w.data(), a, n, k, got);
        std::vector<float> wf(k);
        dequantize_row(t, w.data(), wf.data(), k);
        for (int j = 0; j < n; ++j) {
          double magnitude = 0;
          for (int64_t i = 0; i < k; ++i)
            magnitude += std::fabs(double(wf[i]) * a[j].q[i] * a[j].d[i / 32]);
          // float accumulation over k / 32 block terms: a few ulps of the magnitude
          EXPECT_NEAR(got[j], want[j], 2e-6 * magnitude + 1e-30)
              << ks->isa << " " << dtype_name(t) << " rows " << n << " row " << j;
        }
      }
    }
    ++compared;
  }
  RecordProperty("simd_sets_compared", compared);
}

INSTANTIATE_TEST_SUITE_P(AllIntegerFormats, QDotFormat, ::testing::ValuesIn(kIntTypes),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

TEST(QDotActivations, EverySetQuantizesBitIdentically) {
  std::mt19937 rng(3);
  const int64_t k = 4096;
  auto x = random_acts(k, rng);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = 0.0f;                   // an all-zero block
  x[40] = 1e-30f;                                                     // a tiny block
  for (int i = 64; i < 96; ++i) x[size_t(i)] = 0.5f * float(i - 80);  // exact ties at .5
  QActs want;
  want.quantize(qdot_reference(), x.data(), 1, k);
  for (const QDotKernels* ks : qdot_available()) {
    QActs got;
    got.quantize(*ks, x.data(), 1, k);
    const QActRow a = want.row(0), b = got.row(0);
    EXPECT_EQ(std::memcmp(a.q, b.q, size_t(k)), 0) << ks->isa;
    EXPECT_EQ(std::memcmp(a.d, b.d, size_t(k / 32) * 4), 0) << ks->isa;
    EXPECT_EQ(std::memcmp(a.s, b.s, size_t(k / 16) * 2), 0) << ks->isa;
  }
}

// Rounding each activation to its block's grid moves it by at most d / 2, so the dot with
// weights w moves by at most sum |w_i| d_i / 2.
TEST(QDotActivations, ErrorWithinRoundingBound) {
  std::mt19937 rng(9);
  const int64_t k = 2048;
  const QDotKernels& ks = qdot_best();
  for (DType t : kIntTypes) {
    if (!ks.for_type(t)) continue;  // no integer kernel in this set: matmul dequantizes
    const auto w = random_row(t, k, rng);
    const auto x = random_acts(k, rng);
    std::vector<float> wf(k);
    dequantize_row(t, w.data(), wf.data(), k);
    QActs acts;
    acts.quantize(ks, x.data(), 1, k);
    const QActRow a = acts.row(0);
    double exact = 0, bound = 0, magnitude = 0;
    for (int64_t i = 0; i < k; ++i) {
      exact += double(wf[i]) * x[i];
      bound += std::fabs(wf[i]) * a.d[i / 32] / 2;
      magnitude += std::fabs(double(wf[i]) * x[i]);
      EXPECT_LE(std::fabs(double(a.q[i]) * a.d[i / 32] - x[i]), a.d[i / 32] * 0.5001);
    }
    float got;
    ks.for_type(t)(w.data(), &a, 1, k, &got);
    EXPECT_LE(std::fabs(got - exact), bound + 1e-5 * magnitude) << dtype_name(t);
  }
}

TEST(QDotDispatch, BestIsAvailableAndReferenceIsFirst) {
  const auto sets = qdot_available();
  ASSERT_FALSE(sets.empty());
  EXPECT_EQ(sets.front(), &qdot_reference());
  bool found = false;
  for (auto* ks : sets) found |= ks == &qdot_best();
  EXPECT_TRUE(found);
  std::string names;
  for (auto* ks : sets) names += std::string(ks->isa) + " ";
  RecordProperty("isa_sets", names);
}

// ---- tile kernels on repacked rows (kernels/packed.h) ---------------------------------------

namespace {
std::vector<uint8_t> random_rows(DType t, int64_t rows, int64_t k, std::mt19937& rng) {
  std::vector<uint8_t> all;
  for (int64_t r = 0; r < rows; ++r) {
    const auto row = random_row(t, k, rng);
    all.insert(all.end(), row.begin(), row.end());
  }
  return all;
}
// Random rows of format t, the same rows packed into tiles, and kQDotMaxRows quantized
// activation rows.
struct TileInput {
  std::vector<uint8_t> rows, packed;
  QActs acts;
};
TileInput tile_input(DType t, int64_t rows, int64_t k, std::mt19937& rng) {
  TileInput in;
  in.rows = random_rows(t, rows, k, rng);
  in.packed.resize(packed_bytes(t, rows, k));
  pack_tiles(t, in.rows.data(), rows, k, in.packed.data());
  const auto x = random_acts(kQDotMaxRows * k, rng);
  in.acts.quantize(qdot_reference(), x.data(), kQDotMaxRows, k);
  return in;
}
}  // namespace

// Every tile layout keeps every bit: unpacking each row of the packed tiles gives the GGUF
// rows back byte for byte (29 rows: a whole tile and a padded one).
TEST(QDotTile, PackingRoundTripsEveryRow) {
  std::mt19937 rng(20);
  const int64_t rows = 29;
  int checked = 0;
  for (DType t : kIntTypes)
    // widths of an even and of an odd number of super-blocks (768) or block pairs (832)
    for (int64_t k : {int64_t(512), dtype_info(t).block_elems == 256 ? int64_t(768) : 832}) {
      if (!has_tile_layout(t)) continue;
      const auto w = random_rows(t, rows, k, rng);
      std::vector<uint8_t> packed(packed_bytes(t, rows, k)), back(row_bytes(t, k));
      pack_tiles(t, w.data(), rows, k, packed.data());
      for (int64_t r = 0; r < rows; ++r) {
        unpack_tile_row(t, packed.data() + size_t(r / kTileRows) * tile_bytes(t, k),
                        int(r % kTileRows), k, back.data());
        EXPECT_EQ(0, std::memcmp(back.data(), w.data() + size_t(r) * back.size(), back.size()))
            << dtype_name(t) << " k " << k << " row " << r;
      }
      ++checked;
    }
  EXPECT_EQ(checked, 20);  // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
}

// Rows are packed only in whole tile groups; other widths keep the GGUF layout (and the row
// kernels): 64 values for the formats whose groups hold two blocks, 32 for Q4_1 and Q5_1, a
// super-block for the K-quants; float formats have no tiles.
TEST(QDotTile, PacksWholeTileGroupsOnly) {
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q8_0}) {
    EXPECT_TRUE(can_pack(t, 128)) << dtype_name(t);
    EXPECT_FALSE(can_pack(t, 96)) << dtype_name(t);
    EXPECT_EQ(tile_bytes(t, 128), 2 * tile_bytes(t, 64)) << dtype_name(t);
    EXPECT_EQ(tile_bytes(t, 64) % 64, 0u) << dtype_name(t);  // groups start on cache lines
  }
  for (DType t : {DType::Q4_1, DType::Q5_1}) {
    EXPECT_TRUE(can_pack(t, 96)) << dtype_name(t);
    EXPECT_EQ(tile_bytes(t, 32) % 64, 0u) << dtype_name(t);
  }
  EXPECT_EQ(tile_bytes(DType::Q4_0, 64), size_t(16 * 36));  // 16 rows of two 18-byte blocks
  EXPECT_TRUE(can_pack(DType::Q6_K, 512));
  EXPECT_FALSE(can_pack(DType::Q6_K, 384));
  EXPECT_FALSE(can_pack(DType::F16, 4096));
  EXPECT_FALSE(can_pack(DType::Q4_0, 0));
}

// The reference tile kernel reads the packed layout back into GGUF blocks: on 13 packed rows
// it gives exactly the row reference's values, and 0 for the 3 padding rows.
TEST(QDotTile, PackedLayoutGivesTheRowReferenceExactly) {
  const QDotKernels& ref = qdot_reference();
  std::mt19937 rng(21);
  const int64_t k = 512, rows = 13;
  for (DType t : kIntTypes) {
    if (!has_tile_layout(t)) continue;
    ASSERT_NE(ref.tile_for(t), nullptr) << dtype_name(t);
    const TileInput in = tile_input(t, rows, k, rng);
    QActRow a[kQDotMaxRows];
    for (int j = 0; j < kQDotMaxRows; ++j) a[j] = in.acts.row(j);
    float tile[kQDotMaxRows * kTileRows];
    ref.tile_for(t)(in.packed.data(), a, kQDotMaxRows, k, tile);
    for (int r = 0; r < kTileRows; ++r) {
      float want[kQDotMaxRows] = {};
      if (r < rows) ref.for_type(t)(in.rows.data() + size_t(r) * row_bytes(t, k), a, 4, k, want);
      for (int j = 0; j < kQDotMaxRows; ++j)
        EXPECT_EQ(tile[j * kTileRows + r], want[j]) << dtype_name(t) << " row " << r;
    }
  }
}

// Every SIMD tile kernel against the reference tile kernel, for 1..4 activation rows.
TEST(QDotTile, EverySimdTileKernelMatchesReference) {
  const QDotKernels& ref = qdot_reference();
  std::mt19937 rng(22);
  int compared = 0;
  for (const QDotKernels* ks : qdot_available())
    for (DType t : kIntTypes) {
      if (ks == &ref || !ks->tile_for(t)) continue;
      for (int trial = 0; trial < 5; ++trial) {
        // odd trials: an odd number of super-blocks (1792) or of 64-value block pairs (1856)
        const int64_t k = trial % 2 ? (dtype_info(t).block_elems == 256 ? 1792 : 1856) : 2048;
        const TileInput in = tile_input(t, kTileRows, k, rng);
        for (int n = 1; n <= kQDotMaxRows; ++n) {
          QActRow a[kQDotMaxRows];
          for (int j = 0; j < n; ++j) a[j] = in.acts.row(j);
          float want[kQDotMaxRows * kTileRows], got[kQDotMaxRows * kTileRows];
          ref.tile_for(t)(in.packed.data(), a, n, k, want);
          ks->tile_for(t)(in.packed.data(), a, n, k, got);
          for (int r = 0; r < kTileRows; ++r) {
            std::vector<float> wf(k);
            dequantize_row(t, in.rows.data() + size_t(r) * row_bytes(t, k), wf.data(), k);
            for (int j = 0; j < n; ++j) {
              double magnitude = 0;
              for (int64_t i = 0; i < k; ++i)
                magnitude += std::fabs(double(wf[i]) * a[j].q[i] * a[j].d[i / 32]);
              EXPECT_NEAR(got[j * kTileRows + r], want[j * kTileRows + r], 2e-6 * magnitude)
                  << ks->isa << " " << dtype_name(t) << " rows " << n << " row " << r;
            }
          }
        }
      }
      ++compared;
    }
  RecordProperty("simd_tile_kernels_compared", compared);
}

// The SIMD tile kernels add products in narrow integers where they cannot overflow (the AVX2
// kernels sum several maddubs results in int16): every weight value at its largest (all bits
// set) against activations all at +127 or all at -127 must still give the reference's sums.
TEST(QDotTile, EverySimdTileKernelMatchesReferenceAtExtremes) {
  const QDotKernels& ref = qdot_reference();
  constexpr int64_t k = 512;
  int compared = 0;
  for (const QDotKernels* ks : qdot_available())
    for (DType t : kIntTypes) {
      if (ks == &ref || !ks->tile_for(t)) continue;
      std::vector<uint8_t> rows(size_t(kTileRows) * row_bytes(t, k), 0xFF);
      set_block_scales(t, rows, [] { return 0.01f; });
      std::vector<uint8_t> packed(packed_bytes(t, kTileRows, k));
      pack_tiles(t, rows.data(), kTileRows, k, packed.data());
      for (const float sign : {1.0f, -1.0f}) {
        const std::vector<float> x(size_t(kQDotMaxRows * k), sign);
        QActs acts;
        acts.quantize(qdot_reference(), x.data(), kQDotMaxRows, k);
        QActRow a[kQDotMaxRows];
        for (int j = 0; j < kQDotMaxRows; ++j) a[j] = acts.row(j);
        ASSERT_EQ(a[0].q[0], int8_t(sign * 127));
        float want[kQDotMaxRows * kTileRows], got[kQDotMaxRows * kTileRows];
        ref.tile_for(t)(packed.data(), a, kQDotMaxRows, k, want);
        ks->tile_for(t)(packed.data(), a, kQDotMaxRows, k, got);
        for (int i = 0; i < kQDotMaxRows * kTileRows; ++i)
          EXPECT_NEAR(got[i], want[i], 1e-5 * std::fabs(want[i]) + 1e-6)
              << ks->isa << " " << dtype_name(t) << " sign " << sign << " out " << i;
      }
      ++compared;
    }
  RecordProperty("simd_tile_kernels_compared", compared);
}

namespace {
// Random rows of format t as a plain tensor and as the same rows repacked into tiles.
struct PackedMatrix {
  std::vector<uint8_t> rows, packed;
  Tensor plain, tiled;
  static std::unique_ptr<PackedMatrix> random(DType t, int64_t n, int64_t k, std::mt19937& rng) {
    auto m = std::make_unique<PackedMatrix>();
    m->rows = random_rows(t, n, k, rng);
    m->packed.resize(packed_bytes(t, n, k));
    pack_tiles(t, m->rows.data(), n, k, m->packed.data());
    m->plain.type = t, m->plain.n_dims = 2, m->plain.ne = {k, n, 1, 1};
    m->plain.data = m->rows.data();
    m->tiled = m->plain;
    m->tiled.packed = m->packed.data();
    return m;
  }
};
}  // namespace

// matmul on a tensor with repacked rows (whole and partial tiles, a slice starting at a tile
// boundary, 1..9 tokens) equals matmul on the GGUF rows with the row kernels.
TEST(QDotTile, MatmulOnPackedRowsMatchesRowKernels) {
  std::mt19937 rng(23);
  const int64_t k = 256, rows = 45;
  ThreadPool pool(2);
  for (DType t : kIntTypes) {
    if (!has_tile_layout(t) || !qdot_best().tile_for(t)) continue;
    const auto m = PackedMatrix::random(t, rows, k, rng);
    const Tensor &plain = m->plain, &tiled = m->tiled;
    const std::vector<uint8_t>& w = m->rows;
    for (int64_t n_tok : {1, 3, 4, 5, 9}) {
      const auto x = random_acts(n_tok * k, rng);
      for (auto [row0, n] : {std::pair<int64_t, int64_t>{0, rows}, {16, 29}}) {
        std::vector<float> want(size_t(n_tok * n)), got(size_t(n_tok * n));
        matmul_rows(plain, row0, n, x.data(), n_tok, want.data(), pool);
        matmul_rows(tiled, row0, n, x.data(), n_tok, got.data(), pool);
        for (int64_t tok = 0; tok < n_tok; ++tok)
          for (int64_t r = 0; r < n; ++r) {
            // float rounding over k / 32 block terms: a few ulps of sum |w * x|
            std::vector<float> wf(k);
            dequantize_row(t, w.data() + size_t(row0 + r) * row_bytes(t, k), wf.data(), k);
            double magnitude = 0;
            for (int64_t i = 0; i < k; ++i) magnitude += std::fabs(double(wf[i]) * x[tok * k + i]);
            const size_t i = size_t(tok * n + r);
            EXPECT_NEAR(got[i], want[i], 4e-6 * magnitude)
                << dtype_name(t) << " tokens " << n_tok << " row0 " << row0 << " row " << r;
          }
      }
    }
  }
}

// matmul_batch gives each job exactly what matmul_rows gives it: jobs on packed and plain
// weights mixed, slices of one tensor (experts), a shared input and distinct inputs, decode
// (1 token) and prefill (9 tokens, tiles handed out dynamically).
TEST(MatmulBatch, EveryJobAsMatmulRows) {
  std::mt19937 rng(24);
  const int64_t k = 256, rows = 96;
  ThreadPool pool(2);
  const DType t = DType::Q4_0;
  const auto m = PackedMatrix::random(t, rows, k, rng);
  const Tensor &plain = m->plain, &tiled = m->tiled;
  const bool has_tiles = qdot_best().tile_for(t) != nullptr;
  for (int64_t n_tok : {1, 9}) {
    const auto x1 = random_acts(n_tok * k, rng), x2 = random_acts(n_tok * k, rng);
    struct Spec {
      const Tensor* w;
      int64_t row0, n;
      const float* x;
    };
    const Spec specs[] = {{&tiled, 0, 32, x1.data()},  {&tiled, 32, 48, x1.data()},
                          {&tiled, 80, 16, x2.data()}, {&plain, 16, 40, x2.data()},
                          {&tiled, 8, 20, x1.data()},   // not at a tile boundary: row kernels
                          {&tiled, 48, 40, x1.data()},  // the last tile partly: 8 of 16 rows
                          {&tiled, 0, rows, x2.data()}};
    std::vector<std::vector<float>> want, got;
    std::vector<MatmulJob> jobs;
    for (const Spec& s : specs) {
      want.emplace_back(size_t(n_tok * s.n));
      got.emplace_back(size_t(n_tok * s.n), -1.0f);
      matmul_rows(*s.w, s.row0, s.n, s.x, n_tok, want.back().data(), pool);
    }
    for (size_t i = 0; i < std::size(specs); ++i)
      jobs.push_back({specs[i].w, specs[i].row0, specs[i].n, specs[i].x, n_tok, got[i].data()});
    matmul_batch(jobs, pool);
    for (size_t i = 0; i < std::size(specs); ++i)
      EXPECT_EQ(got[i], want[i]) << "job " << i << " tokens " << n_tok
                                 << (has_tiles ? "" : " (no tile kernels on this CPU)");
  }
}

// parallel_for_balanced: every index exactly once, in contiguous pieces of at most `grain`
// (one thread: the whole range at once), for any thread count; and a slow thread's share is taken
// over by the others.
TEST(ThreadPoolBalanced, EveryIndexOnceInPiecesOfGrain) {
  for (int threads : {1, 2, 3, 4})
    for (int64_t n : {0, 1, 5, 1000})
      for (int64_t grain : {1, 3, 64}) {
        ThreadPool pool(threads);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<bool> bad{false};
        pool.parallel_for_balanced(n, grain, [&](int64_t b, int64_t e) {
          if (b < 0 || e > n || b >= e || (threads > 1 && e - b > grain)) bad = true;
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        });
        EXPECT_FALSE(bad) << threads << " threads, n " << n << ", grain " << grain;
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1)
              << "index " << i << " of " << n << ", " << threads << " threads, grain " << grain;
      }
}

TEST(ThreadPoolBalanced, SlowThreadsShareIsTakenOver) {
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> by_caller{0}, by_helper{0};
  pool.parallel_for_balanced(64, 1, [&](int64_t b, int64_t e) {
    if (std::this_thread::get_id() == caller) {
      by_caller += int(e - b);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the slow core
    } else {
      by_helper += int(e - b);
    }
  });
  EXPECT_EQ(by_caller + by_helper, 64);
  EXPECT_GT(by_helper.load(), 48) << "a static split would give the helper 32";
}

// The pool's sleeping paths: loops more than its spin time (200 us) apart, so that the helpers
// have gone to sleep and must be woken, and loops whose helper part outlasts the spin, so that
// the caller sleeps and must be woken; mixed with back-to-back loops. A double or skipped run
// miscounts; a lost wake-up hangs, which the watchdog turns into a failure within a minute
// (the hung threads cannot be joined, so the test program ends there).
TEST(ThreadPool, WakesSleepingHelpersAndCaller) {
  auto rounds = std::async(std::launch::async, [] {
    for (int threads : {2, 3}) {
      ThreadPool pool(threads);
      const auto caller = std::this_thread::get_id();
      int64_t expected = 0;
      std::atomic<int64_t> total{0};
      for (int round = 0; round < 60; ++round) {
        const int kind = round % 3;  // 0: back to back, 1: after a pause, 2: slow helpers
        if (kind == 1) std::this_thread::sleep_for(std::chrono::microseconds(600));
        pool.parallel_for(threads, [&](int64_t b, int64_t e) {
          if (kind == 2 && std::this_thread::get_id() != caller)
            std::this_thread::sleep_for(std::chrono::microseconds(600));
          total += e - b;
        });
        expected += threads;
        if (total.load() != expected) return false;
      }
    }
    return true;
  });
  if (rounds.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "ThreadPool.WakesSleepingHelpersAndCaller: a loop never finished\n");
    std::_Exit(1);
  }
  EXPECT_TRUE(rounds.get()) << "a loop ran a share twice or skipped one";
}
