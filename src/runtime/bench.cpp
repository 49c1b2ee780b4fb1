#include "runtime/bench.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "core/huge_pages.h"
#include "kernels/cpu.h"
#include "kernels/qdot.h"

namespace hondo {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

BenchStat summarize(std::vector<double> samples) {
  BenchStat s;
  s.samples = std::move(samples);
  if (s.samples.empty()) return s;
  for (double v : s.samples) s.mean += v;
  s.mean /= double(s.samples.size());
  if (s.samples.size() > 1) {
    double var = 0;
    for (double v : s.samples) var += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(var / double(s.samples.size() - 1));
  }
  return s;
}

// Sums of a buffer for the bandwidth measurement (the result only keeps the reads alive).
HONDO_FLOAT_CLONES float sum_f32(const float* x, int64_t n) {
  float acc[64] = {};  // four vector registers of partial sums: no add-latency bound
  for (int64_t i = 0; i + 64 <= n; i += 64)
    for (int j = 0; j < 64; ++j) acc[j] += x[i + j];
  float s = 0;
  for (int64_t i = n / 64 * 64; i < n; ++i) s += x[i];
  for (float v : acc) s += v;
  return s;
}

// Token ids for the tests: spread over the vocabulary, deterministic, never a control token.
std::vector<TokenId> bench_tokens(const Engine& engine, int n) {
  const Vocab& v = engine.tokenizer().vocab();
  std::vector<TokenId> ids;
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  while (int(ids.size()) < n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const TokenId id = TokenId((state >> 33) % uint64_t(v.size()));
    if (v.types.empty() || v.types[size_t(id)] == TokenType::Normal) ids.push_back(id);
  }
  return ids;
}

}  // namespace

size_t decode_weight_bytes(const GgufFile& f) {
  const std::string a = f.get_str("general.architecture");
  const int64_t n_blocks = f.get_int(a + ".block_count", 0);
  const int64_t n_nextn = f.get_int(a + ".nextn_predict_layers", 0);
  const int64_t n_expert = f.get_int(a + ".expert_count", 0);
  const int64_t n_used = f.get_int(a + ".expert_used_count", 0);
  const bool tied = f.find_tensor("output.weight") == nullptr;
  size_t total = 0;
  for (const Tensor& t : f.tensors()) {
    if (n_nextn > 0 && tensor_block_index(t.name) >= n_blocks - n_nextn) continue;  // MTP block
    if (t.name.rfind("token_embd.", 0) == 0 && !tied)
      total += t.row_size();
    else if (t.name.find("_exps.") != std::string::npos && n_expert > 0)
      total += t.nbytes() * size_t(n_used) / size_t(n_expert);
    else
      total += t.nbytes();
  }
  return total;
}

double measure_read_bandwidth(ThreadPool& pool, size_t buffer_bytes) {
  const int64_t n = int64_t(buffer_bytes / sizeof(float));
  // In huge pages, like the weights the model reads (GgufFile::pack_for_matmul).
  const HugeBuffer mem = alloc_huge(size_t(n) * sizeof(float), "the bandwidth probe");
  float* buf = reinterpret_cast<float*>(mem.get());
  // Each thread first touches (and so places) the part it will later read.
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = float(i & 7);
  });
  double best = 0;
  volatile float sink = 0;
  // Read in 4 KiB chunks with a software prefetch 4 KiB ahead, as the tile kernels read the
  // weights: the hardware prefetchers alone leave a core well below the bandwidth it can
  // reach, and the roofline must be the best rate a reader reaches, not a slow reader's.
  constexpr int64_t kChunk = 1024, kAhead = 1024;  // floats
  auto read = [&](int64_t b, int64_t e) {
    float s = 0;
    for (int64_t c = b; c < e; c += kChunk) {
      for (int64_t i = c + kAhead; i < std::min(e, c + kAhead + kChunk); i += 16)
        __builtin_prefetch(buf + i);
      s += sum_f32(buf + c, std::min(kChunk, e - c));
    }
    sink = sink + s;
  };
  // The best of 12 passes in 3 rounds half a second apart: on a shared machine one short
  // window may fall entirely into another tenant's burst of memory traffic.
  for (int pass = 0; pass < 12; ++pass) {
    if (pass && pass % 4 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n, read);
    best = std::max(best, double(n) * sizeof(float) / seconds_since(t0) / 1e9);
  }
  return best;
}

size_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return size_t(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

BenchResult run_bench(Engine& engine, const BenchParams& p) {
  BenchResult r;
  Model& model = engine.model();
  r.model_path = model.file().path();
  r.arch = model.arch();
  r.isa = qdot_best().isa;
  r.file_bytes = model.file().file_size();
  r.threads = engine.pool().size();
  r.n_prompt = p.n_prompt, r.n_gen = p.n_gen, r.reps = p.reps;
  const auto tokens = bench_tokens(engine, std::max(p.n_prompt, p.n_gen));

  {  // warm-up: every page of the weights mapped in, buffers grown
    auto seq = engine.new_sequence();
    engine.eval(*seq, {tokens.begin(), tokens.begin() + std::min<size_t>(tokens.size(), 16)});
  }
  std::vector<double> pp, tg;
  if (p.n_prompt > 0) {
    for (int rep = 0; rep < p.reps; ++rep) {
      auto seq = engine.new_sequence();
      const auto t0 = std::chrono::steady_clock::now();
      engine.eval(*seq, {tokens.begin(), tokens.begin() + p.n_prompt});
      pp.push_back(p.n_prompt / seconds_since(t0));
    }
  }
  if (p.n_gen > 0) {
    for (int rep = 0; rep < p.reps; ++rep) {
      auto seq = engine.new_sequence();
      std::vector<TokenId> ctx;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < p.n_gen; ++i) {
        ctx.push_back(tokens[size_t(i)]);
        engine.eval(*seq, ctx);
      }
      tg.push_back(p.n_gen / seconds_since(t0));
    }
  }
  r.prefill = summarize(pp);
  r.decode = summarize(tg);
  r.peak_rss_bytes = peak_rss_bytes();  // before the bandwidth buffer below

  r.bandwidth_gbps = measure_read_bandwidth(engine.pool());
  r.weight_bytes_per_token = decode_weight_bytes(model.file());
  // Decoding token i reads the cache of the i tokens before it: (n_gen - 1) / 2 on average.
  r.kv_bytes_per_token_read =
      model.kv_bytes_per_token(engine.kv_type()) * size_t(std::max(0, p.n_gen - 1)) / 2;
  const double bytes = double(r.weight_bytes_per_token + r.kv_bytes_per_token_read);
  r.roofline_tps = r.bandwidth_gbps * 1e9 / bytes;
  r.roofline_fraction = r.roofline_tps > 0 ? r.decode.mean / r.roofline_tps : 0;
  return r;
}

}  // namespace hondo
