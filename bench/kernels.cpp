// Kernel benchmarks (Google Benchmark): matrix times activations for every weight format
// hondo computes, on the kernels matmul picks for this CPU (HONDO_ISA selects another set).
//
//   decode:  1 token through 1 GiB of weights (several matrices in turn, so every pass reads
//            DRAM, not cache); the bytes/s counter is the weight bytes read per second, to be
//            compared with the bandwidth `hondo bench` measures. As much as a 1.3B model
//            reads a token: with 256 MB, Q8_0 tiles read as fast as the probe while in a model
//            they read 20 % slower (this machine's page walks, presumably).
//   cached:  1 token through one matrix of 4096 columns and at most 768 KiB (16-512 rows), which
//            stays in a 1 MiB L2: the kernel's own speed, with memory out of the way. (512 rows, as
//            before, is 1.2 MB of Q4_K and 2.2 MB of Q8_0: beyond a 1 MiB L2, it measured L3.)
//   read:    the bandwidth probe of `hondo bench` reading the same 1 GiB.
//   prefill: 64 tokens through one 4096 x 4096 matrix; items/s counts multiply-adds.
//
// Tiles: formats with a tile layout (kernels/packed.h) are benchmarked on repacked rows, as
// the model loader leaves them; "/rows" variants keep the GGUF rows and the row kernels.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/huge_pages.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "runtime/bench.h"

namespace {

using hondo::DType;

constexpr int64_t kCols = 4096;
constexpr size_t kDecodeBytes = size_t(1) << 30;

// A set of weight matrices of one format, all holding the same quantized random rows.
struct Weights {
  std::vector<uint8_t> base;                   // the GGUF rows of one matrix
  std::vector<hondo::HugeBuffer> rows, tiles;  // per matrix, in huge pages as the loader
                                               // gives weights: GGUF rows or repacked tiles
  std::vector<hondo::Tensor> tensors;
  size_t matrix_bytes = 0;
};

// The sets made last; older ones are freed (a decode set is 1 GiB; the read probe's and the
// one being measured stay).
const Weights& weights(DType t, bool packed, int64_t kRows, size_t total_bytes) {
  using Key = std::tuple<DType, bool, int64_t, size_t>;
  static std::map<Key, std::unique_ptr<Weights>> cache;
  static std::vector<Key> order;  // oldest first
  const Key key{t, packed, kRows, total_bytes};
  if (auto it = cache.find(key); it != cache.end()) return *it->second;
  if (order.size() >= 2) {
    cache.erase(order.front());
    order.erase(order.begin());
  }
  order.push_back(key);
  auto& w = cache[key];
  w = std::make_unique<Weights>();
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> x(size_t(kRows * kCols));
  for (float& v : x) v = normal(rng);
  const size_t rs = hondo::row_bytes(t, kCols);
  w->base.resize(rs * size_t(kRows));
  for (int64_t r = 0; r < kRows; ++r)
    hondo::quantize_row(t, x.data() + r * kCols, w->base.data() + size_t(r) * rs, kCols);
  w->matrix_bytes = w->base.size();
  const size_t n = std::max<size_t>(1, total_bytes / w->base.size());
  for (size_t i = 0; i < n; ++i) {
    hondo::Tensor tensor;
    tensor.type = t, tensor.n_dims = 2, tensor.ne = {kCols, kRows, 1, 1};
    if (packed) {  // the kernels read only the tiles; the rows are there for the tensor's sake
      w->tiles.push_back(hondo::alloc_huge(hondo::packed_bytes(t, kRows, kCols), "tiles"));
      hondo::pack_tiles(t, w->base.data(), kRows, kCols, w->tiles.back().get());
      tensor.data = w->base.data();
      tensor.packed = w->tiles.back().get();
    } else {
      w->rows.push_back(hondo::alloc_huge(w->base.size(), "weights"));
      std::memcpy(w->rows.back().get(), w->base.data(), w->base.size());
      tensor.data = w->rows.back().get();
    }
    w->tensors.push_back(tensor);
  }
  return *w;
}

hondo::ThreadPool& pool(int n) {
  static std::map<int, std::unique_ptr<hondo::ThreadPool>> pools;
  auto& p = pools[n];
  if (!p) p = std::make_unique<hondo::ThreadPool>(n);
  return *p;
}

void run(benchmark::State& state, DType t, bool packed, int64_t n_tok, int64_t kRows,
         size_t total_bytes) {
  const int threads = int(state.range(0));
  const Weights& w = weights(t, packed && hondo::has_tile_layout(t), kRows, total_bytes);
  std::vector<float> x(size_t(n_tok * kCols), 0.01f), y(size_t(n_tok * kRows));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 97) - 48) * 1e-3f;
  size_t i = 0;
  for (auto _ : state) {
    hondo::matmul(w.tensors[i], x.data(), n_tok, y.data(), pool(threads));
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % w.tensors.size();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(w.matrix_bytes));
  state.SetItemsProcessed(int64_t(state.iterations()) * n_tok * kRows * kCols);
}

// The bandwidth probe of `hondo bench` over the same 1 GiB (as F16 rows), one pass: its first
// reader alone (the baseline build with line prefetches), the rate the decode figures above
// are to be held against, best run interleaved with them
// (--benchmark_enable_random_interleaving).
void read_probe(benchmark::State& state) {
  const Weights& w = weights(DType::F16, false, 4096, kDecodeBytes);
  std::vector<hondo::MemoryRange> memory;
  for (const hondo::HugeBuffer& b : w.rows) memory.push_back({b.get(), w.matrix_bytes});
  for (auto _ : state)
    benchmark::DoNotOptimize(
        hondo::measure_read_bandwidth(pool(int(state.range(0))), memory, kDecodeBytes, 1));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kDecodeBytes));
}

// Rows of 4096 columns of t that fit in 768 KiB, a multiple of 16 (a tile), at most 512.
int64_t cached_rows(DType t) {
  const int64_t fit = int64_t(768 << 10) / int64_t(hondo::row_bytes(t, kCols)) / 16 * 16;
  return std::clamp<int64_t>(fit, 16, 512);
}

const DType kTypes[] = {DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                        DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                        DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

const int registered = [] {
  benchmark::RegisterBenchmark("decode/read", read_probe)
      ->Arg(1)
      ->Arg(2)
      ->ArgName("threads")
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  for (DType t : kTypes) {
    const std::string name = hondo::dtype_name(t);
    for (bool packed : {true, false}) {
      if (!packed && !hondo::has_tile_layout(t)) continue;
      const std::string suffix = packed ? "" : "/rows";
      benchmark::RegisterBenchmark(
          ("decode/" + name + suffix).c_str(),
          [=](benchmark::State& s) { run(s, t, packed, 1, 4096, kDecodeBytes); })
          ->Arg(1)
          ->Arg(2)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(
          ("cached/" + name + suffix).c_str(),
          [=](benchmark::State& s) { run(s, t, packed, 1, cached_rows(t), 0); })
          ->Arg(1)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("prefill/" + name + suffix).c_str(),
                                   [=](benchmark::State& s) { run(s, t, packed, 64, 4096, 0); })
          ->Arg(2)
          ->ArgName("threads")
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
