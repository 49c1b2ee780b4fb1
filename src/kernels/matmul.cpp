#include "kernels/matmul.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/dot.h"
#include "kernels/gemm_f32.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"
#include "kernels/vec_dot.h"

namespace hondo {

namespace {

constexpr int64_t kRowBlock = 16;       // rows of the int8 row kernels passed together over tokens
constexpr int64_t kFusedMaxTokens = 4;  // up to this many tokens, fused row dots are faster
// Pieces in which threads take their share of a product (ThreadPool::parallel_for_balanced):
// large enough that taking one costs nothing next to reading it, small enough that a core
// which finishes early can take over the tail of a slower one's share. Taking a piece is a
// locked compare-and-swap, which waits for the core's reads in flight: with pieces of 4 tiles
// (74 KB of Q4_0 at 2048 columns, ~2 us of reading) that cost ~2 % of decoding, so tiled
// products are shared out by bytes (the pieces still shrink to one tile near a share's end).
constexpr size_t kGrainBytes = size_t(256) << 10;
constexpr int64_t kGrainRows = 16;

int64_t grain_tiles(size_t tile_bytes) {
  return std::max<int64_t>(1, int64_t(kGrainBytes / std::max<size_t>(1, tile_bytes)));
}

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
  pool.parallel_for_balanced(
      n_tiles, std::max<int64_t>(1, kGrainRows / tile), [&](int64_t b0, int64_t b1) {
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

// Repacked weights (packed.h): a task takes one tile of 16 rows and passes over it once per
// group of up to kQDotMaxRows tokens; the tile stays in cache meanwhile.
struct TileJob {
  const MatmulJob* job;
  const QActs* acts;
  QTileFn fn;
  const uint8_t* tiles;  // the job's first tile
  size_t tile_bytes;
};

void run_tile(const TileJob& tj, int64_t i) {
  const MatmulJob& j = *tj.job;
  const int64_t r0 = i * kTileRows, nr = std::min<int64_t>(kTileRows, j.n_rows - r0);
  const uint8_t* tile = tj.tiles + size_t(i) * tj.tile_bytes;
  if (j.n_tok == 1 && nr == kTileRows) {  // decode: the tile's 16 outputs are y[r0, r0 + 16)
    const QActRow a = tj.acts->row(0);
    tj.fn(tile, &a, 1, j.w->cols(), j.y + r0);
    return;
  }
  for (int64_t t0 = 0; t0 < j.n_tok; t0 += kQDotMaxRows) {
    const int nt = int(std::min<int64_t>(kQDotMaxRows, j.n_tok - t0));
    QActRow a[kQDotMaxRows];
    for (int t = 0; t < nt; ++t) a[t] = tj.acts->row(t0 + t);
    float out[kQDotMaxRows * kTileRows];  // [nt, 16]
    tj.fn(tile, a, nt, j.w->cols(), out);
    for (int t = 0; t < nt; ++t)
      std::copy_n(out + t * kTileRows, nr, j.y + (t0 + t) * j.n_rows + r0);
  }
}

int64_t n_tiles(const MatmulJob& j) {
  return (j.n_rows + kTileRows - 1) / kTileRows;
}

QTileFn tile_kernel(const QDotKernels& ks, const MatmulJob& j) {
  QTileFn fn = ks.tile_for(j.w->type);
  return fn && j.w->packed && j.row0 % kTileRows == 0 ? fn : nullptr;
}

TileJob tile_job(const MatmulJob& j, const QActs& acts, QTileFn fn) {
  const size_t tb = tile_bytes(j.w->type, j.w->cols());
  const auto* tiles = static_cast<const uint8_t*>(j.w->packed) + size_t(j.row0 / kTileRows) * tb;
  return {&j, &acts, fn, tiles, tb};
}

void matmul_tiles(const QDotKernels& ks, QTileFn fn, const MatmulJob& j, ThreadPool& pool) {
  const TileJob tj = tile_job(j, quantized_acts(ks, j.x, j.n_tok, j.w->cols(), pool), fn);
  pool.parallel_for_balanced(n_tiles(j), grain_tiles(tj.tile_bytes), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) run_tile(tj, i);
  });
}

}  // namespace

void matmul_rows(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool) {
  const int64_t k = w.cols();
  const QDotKernels& ks = qdot_best();
  const MatmulJob job{&w, row0, n_rows, x, n_tok, y};
  if (QTileFn tile = tile_kernel(ks, job)) {
    matmul_tiles(ks, tile, job, pool);
    return;
  }
  if (QDotFn dot = ks.for_type(w.type); dot && k % kQActBlock == 0) {
    matmul_int8(ks, dot, w, row0, n_rows, x, n_tok, y, pool);
    return;
  }
  // Few tokens (decode) of float weights: one pass over each row per token, straight from the
  // file (F16/BF16 converted in registers); more tokens go through the blocked float GEMM.
  if (n_tok <= kFusedMaxTokens && has_vec_dot(w.type)) {                // F16, BF16
    const auto* rows = reinterpret_cast<const uint16_t*>(w.row(row0));  // [n_rows, k]
    pool.parallel_for_balanced(n_rows, grain_tiles(w.row_size()), [&](int64_t r0, int64_t r1) {
      half_rows_dot(w.type, rows + r0 * k, k, r1 - r0, x, n_tok, y + r0, n_rows);
    });
    return;
  }
  if (n_tok <= kFusedMaxTokens) {
    pool.parallel_for_balanced(n_rows, kGrainRows, [&](int64_t r0, int64_t r1) {
      thread_local std::vector<float> buf;  // [k] a row of another type as F32
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w.row(row0 + r);
        const float* wr = reinterpret_cast<const float*>(row);
        if (w.type != DType::F32) {
          buf.resize(size_t(k));
          dequantize_row(w.type, row, buf.data(), k);
          wr = buf.data();
        }
        for (int64_t t = 0; t < n_tok; ++t) y[t * n_rows + r] = dot_f32(wr, x + t * k, k);
      }
    });
    return;
  }
  gemm_f32(w, row0, n_rows, x, n_tok, y, pool);
}

void matmul(const Tensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  matmul_rows(w, 0, w.rows(), x, n_tok, y, pool);
}

void matmul_batch(const std::vector<MatmulJob>& jobs, ThreadPool& pool) {
  const QDotKernels& ks = qdot_best();
  std::vector<TileJob> tiled;
  std::vector<int64_t> first_tile{0};  // [tiled.size() + 1] prefix sums of tile counts
  // Quantized inputs, one per distinct x. Kept per calling thread so that their buffers are
  // reused from call to call (decode calls this several times per layer); only `inputs.size()`
  // count. The workers must reach the caller's through a pointer (see quantized_acts).
  thread_local std::vector<std::unique_ptr<QActs>> acts;
  std::vector<std::unique_ptr<QActs>>* caller_acts = &acts;
  struct Input {
    const float* x;
    int64_t n_tok, k;
  };
  std::vector<Input> inputs;
  bool uneven = false;  // tiles of jobs with many tokens cost more: hand them out dynamically
  size_t bytes = 0;     // of all the jobs' tiles (pieces by their mean tile size)
  for (const MatmulJob& j : jobs) {
    QTileFn fn = tile_kernel(ks, j);
    if (!fn) {
      matmul_rows(*j.w, j.row0, j.n_rows, j.x, j.n_tok, j.y, pool);
      continue;
    }
    size_t a = 0;  // jobs on the same input share its quantized rows
    while (a < inputs.size() &&
           !(inputs[a].x == j.x && inputs[a].n_tok == j.n_tok && inputs[a].k == j.w->cols()))
      ++a;
    if (a == inputs.size()) {
      if (a == acts.size()) acts.push_back(std::make_unique<QActs>());
      inputs.push_back({j.x, j.n_tok, j.w->cols()});
    }
    tiled.push_back(tile_job(j, *acts[a], fn));
    first_tile.push_back(first_tile.back() + n_tiles(j));
    bytes += tiled.back().tile_bytes * size_t(n_tiles(j));
    uneven = uneven || j.n_tok > kQDotMaxRows;
  }
  if (tiled.empty()) return;
  // Several inputs of a few rows each (an MoE layer's down projections in decode: one per
  // expert) are quantized one per task, over all threads; V2-Lite's 7 took ~6 us on the
  // calling thread alone. One input, or inputs of many rows, split their rows over the pool.
  const bool few_rows = std::all_of(inputs.begin(), inputs.end(),
                                    [](const Input& in) { return in.n_tok <= kQDotMaxRows; });
  if (inputs.size() > 1 && few_rows) {
    pool.parallel_tasks(int64_t(inputs.size()), [&](int64_t a) {
      const Input& in = inputs[size_t(a)];
      (*caller_acts)[size_t(a)]->quantize(ks, in.x, in.n_tok, in.k);
    });
  } else {
    for (size_t a = 0; a < inputs.size(); ++a)
      acts[a]->quantize(ks, inputs[a].x, inputs[a].n_tok, inputs[a].k, &pool);
  }
  auto job_of = [&](int64_t i) {  // global tile index -> the job it belongs to
    return size_t(std::upper_bound(first_tile.begin(), first_tile.end(), i) - first_tile.begin() -
                  1);
  };
  if (uneven) {
    pool.parallel_tasks(first_tile.back(), [&](int64_t i) {
      const size_t jb = job_of(i);
      run_tile(tiled[jb], i - first_tile[jb]);
    });
  } else {
    // A piece of consecutive tiles: the job is looked up once, then followed across its end.
    const int64_t n = first_tile.back();
    pool.parallel_for_balanced(n, grain_tiles(bytes / size_t(n)), [&](int64_t i0, int64_t i1) {
      size_t jb = job_of(i0);
      for (int64_t i = i0; i < i1; ++i) {
        while (i >= first_tile[jb + 1]) ++jb;
        run_tile(tiled[jb], i - first_tile[jb]);
      }
    });
  }
}

}  // namespace hondo
