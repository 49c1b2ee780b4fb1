#include "runtime/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "kernels/cpu.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"
#include "model/deepseek2_config.h"
#include "model/mla.h"

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

// The bandwidth probe's reader: the bytes [p, p + n) summed as 32-bit words (any bit pattern:
// weights read as integers; the sum only keeps the reads alive), read as the kernels read their
// weights (kernels/qdot.h). Every kProbeStep bytes it announces the step ahead with the
// kernels' prefetch_ahead (its lines kPrefetchAhead bytes ahead, its page kPageAhead ahead),
// then sums the step in address order. The prefetches go out a few at a time between the loads, as
// the tile and row kernels issue theirs. Until 2026-12-06 the probe asked for 64 lines in a
// burst before each 4 KiB; once the kernels' prefetch addresses were folded (LineHint), the
// F16 row kernels read faster than it (Coder-1.3B and R1-1.5B F16 decoded at 100-101 % of that
// roofline). 1 GiB of F16 rows, two threads, the readers in turn, five rounds: this probe
// 70-77 GB/s, the F16 kernel 66-77 (and the burst probe 68-74 in earlier rounds). The loads stay
// in address order (unroll 1): with GCC's unrolled and reordered loads the probe read 68-74.
// Without the guards that kept its prefetches inside the piece, as the kernels have none: 78-83
// against 78-82 with them, the F16 kernel 65-81 (seven rounds).
constexpr size_t kProbeStep = 512;
using Word = uint32_t __attribute__((may_alias));
// kHint: the line prefetches (kNone: none); kPage: whether each page is announced too
// (announce_page, whatever page_ahead says: the probe reads each way a kernel might).
template <LineHint kHint, bool kPage>
__attribute__((always_inline)) inline uint32_t read_ahead(const uint8_t* p, size_t n) {
  constexpr size_t kWords = kProbeStep / sizeof(Word);
  uint32_t acc[32] = {};  // two to four vector registers of partial sums
  size_t c = 0;
  for (; c + kProbeStep <= n; c += kProbeStep) {
    // as the kernels: past the end too
    prefetch_lines<kHint>(p + c + kPrefetchAhead, int64_t(kProbeStep));
    if (kPage) announce_page(p + c, int64_t(kProbeStep));
    const Word* w = reinterpret_cast<const Word*>(p + c);
#pragma GCC unroll 1
    for (size_t i = 0; i < kWords; i += 32)
      for (int j = 0; j < 32; ++j) acc[j] += w[i + size_t(j)];
  }
  uint32_t s = 0;
  for (const Word* w = reinterpret_cast<const Word*>(p + c); c + sizeof(Word) <= n;
       c += sizeof(Word))
    s += *w++;
  for (uint32_t v : acc) s += v;
  return s;
}
// Two builds of the reader, which the probe's passes take in turn (measure_read_bandwidth):
// read_piece_wide with the widest vectors the CPU has (AVX-512, AVX2), read_piece_baseline with
// the baseline's (SSE2 on x86-64). Neither is always the faster: on a Zen 4 guest, 1 GiB,
// two threads, the builds in turn, 12 rounds, % of each round's best: baseline 97.4, the
// AVX-512 clone 85.2, AVX2 84.9 (probes 22-35 GB/s). In a faster state the cloned reader read
// ~45 GB/s where the same loop compiled in a test program for the native CPU (also 512-bit)
// and the Q8_0 tiles read ~60: not explained. On Zen 5 the wide clone alone read as fast as
// the F16 row kernels (note above read_ahead).
// The probe's three ways of asking ahead (measure_read_bandwidth).
enum class ProbeWay { kLinesAndPages, kPagesAlone, kLinesAlone };
__attribute__((always_inline)) inline uint32_t read_way(const uint8_t* p, size_t n, ProbeWay way,
                                                        bool l2) {
  switch (way) {
    case ProbeWay::kLinesAndPages:
      return l2 ? read_ahead<LineHint::kL2, true>(p, n) : read_ahead<LineHint::kL1, true>(p, n);
    case ProbeWay::kLinesAlone:
      return l2 ? read_ahead<LineHint::kL2, false>(p, n) : read_ahead<LineHint::kL1, false>(p, n);
    default:
      return read_ahead<LineHint::kNone, true>(p, n);
  }
}
HONDO_FLOAT_CLONES uint32_t read_piece_wide(const uint8_t* p, size_t n, ProbeWay way, bool l2) {
  return read_way(p, n, way, l2);
}
uint32_t read_piece_baseline(const uint8_t* p, size_t n, ProbeWay way, bool l2) {
  return read_way(p, n, way, l2);
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

// What decoding one token reads of each tensor of a file.
class DecodeReads {
 public:
  explicit DecodeReads(const GgufFile& f) {
    const std::string a = f.get_str("general.architecture");
    n_blocks_ = f.get_int(a + ".block_count", 0);
    n_nextn_ = f.get_int(a + ".nextn_predict_layers", 0);
    n_expert_ = f.get_int(a + ".expert_count", 0);
    n_used_ = f.get_int(a + ".expert_used_count", 0);
    tied_ = f.find_tensor("output.weight") == nullptr;
    if (a == "deepseek2") mla_ = DeepSeek2Config::from_gguf(f);
  }
  // Bytes of t read per decoded token (of its GGUF rows, or of the engine's copy).
  size_t bytes(const Tensor& t) const {
    if (n_nextn_ > 0 && tensor_block_index(t.name) >= n_blocks_ - n_nextn_) return 0;  // MTP
    if (t.name.rfind("token_embd.", 0) == 0 && !tied_) return t.row_size();
    if (mla_ && t.name.find(".attn_kv_b.") != std::string::npos)  // its split copies (mla.h)
      return row_bytes(kv_b_copy_type(*mla_, t.type), t.elements());
    if (t.name.find("_exps.") != std::string::npos && n_expert_ > 0)
      return t.nbytes() * size_t(n_used_) / size_t(n_expert_);
    return t.nbytes();
  }

 private:
  int64_t n_blocks_, n_nextn_, n_expert_, n_used_;
  bool tied_;
  std::optional<DeepSeek2Config> mla_;  // an MLA model's shape
};

}  // namespace

size_t decode_weight_bytes(const GgufFile& f) {
  const DecodeReads reads(f);
  size_t total = 0;
  for (const Tensor& t : f.tensors()) total += reads.bytes(t);
  return total;
}

Phase phase_of_tensor(const std::string& name) {
  if (name.rfind("blk.", 0) == 0)
    return name.find(".ffn_") != std::string::npos || name.find(".exp_probs_b") != std::string::npos
               ? Phase::kFfn
               : Phase::kAttention;
  if (name.rfind("output", 0) == 0) return Phase::kOutput;
  return Phase::kEmbed;
}

std::array<size_t, kPhaseCount> decode_weight_bytes_by_phase(const GgufFile& f) {
  const DecodeReads reads(f);
  std::array<size_t, kPhaseCount> bytes{};
  for (const Tensor& t : f.tensors()) bytes[size_t(phase_of_tensor(t.name))] += reads.bytes(t);
  return bytes;
}

std::vector<MemoryRange> weight_memory(const GgufFile& f) {
  const DecodeReads reads(f);
  std::vector<MemoryRange> out;
  for (const Tensor& t : f.tensors()) {
    if (t.n_dims < 2) continue;  // norms and biases: nothing to speak of
    const size_t read = reads.bytes(t);
    if (t.packed && read > 0)  // repacked memory is resident whatever part of it is read
      out.push_back(
          {static_cast<const uint8_t*>(t.packed), packed_bytes(t.type, t.rows(), t.cols())});
    else if (!t.packed && read == t.nbytes())  // file pages: only those decoding touches
      out.push_back({static_cast<const uint8_t*>(t.data), t.nbytes()});
  }
  return out;
}

double measure_read_bandwidth(ThreadPool& pool, const std::vector<MemoryRange>& memory,
                              size_t pass_bytes, int passes) {
  // The pass as pieces of at most 256 KiB, in memory order. Each thread reads its half of them
  // and then takes pieces from the end of the other's, as matmul shares out weights
  // (ThreadPool::parallel_for_balanced): on a shared machine one core is often slowed for a
  // while, and a probe that waited for the slow half would set the roofline below the rate
  // decoding itself reaches.
  constexpr size_t kPiece = size_t(256) << 10;
  std::vector<MemoryRange> pieces;
  size_t total = 0;
  for (size_t r = 0; total < pass_bytes && r < memory.size() * 1024; ++r) {
    const MemoryRange& m = memory[r % memory.size()];
    for (size_t o = 0; o < m.bytes && total < pass_bytes; o += kPiece) {
      pieces.push_back({m.data + o, std::min(kPiece, m.bytes - o)});
      total += pieces.back().bytes;
    }
  }
  if (total == 0) return 0;
  // Each piece read with software prefetches ahead as the kernels read the weights
  // (read_piece): the hardware prefetchers alone leave a core well below the bandwidth it can
  // reach, and the roofline must be the best rate a reader reaches, not a slow reader's.
  // Passes take the reader's two builds (see read_piece_wide) with each of three ways of asking
  // ahead in turn: the kernels' line prefetches (to the CPU's cache, line_prefetch_to_l2) with
  // the page hint, the page hint alone (as the Q8_0 tiles read on AVX-512 and the Q4 tiles on
  // Zen 4), and the line prefetches alone (as the tiles read on Zen 3, page_ahead), so that
  // no choice of the kernels can lower the roofline they are judged against. On a
  // Zen 4 guest, 1 GiB, two threads, the readers in turn (a test program with copies of them),
  // 10 rounds, % of each round's best: baseline 91.5 with line prefetches and 99.3 without,
  // AVX-512 74.5 and 88.6, this function with its two earlier passes 86.7 (probes 42-60 GB/s).
  std::atomic<uint32_t> sink{0};
  uint32_t (*read_piece)(const uint8_t*, size_t, ProbeWay, bool) = read_piece_baseline;
  ProbeWay way = ProbeWay::kLinesAndPages;
  auto read = [&](int64_t b, int64_t e) {
    uint32_t s = 0;
    for (int64_t i = b; i < e; ++i)
      s += read_piece(pieces[size_t(i)].data, pieces[size_t(i)].bytes, way, line_prefetch_to_l2);
    sink.fetch_add(s, std::memory_order_relaxed);
  };
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    read_piece = pass % 2 ? read_piece_wide : read_piece_baseline;
    way = ProbeWay(pass / 2 % 3);
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for_balanced(int64_t(pieces.size()), 1, read);
    best = std::max(best, double(total) / seconds_since(t0) / 1e9);
  }
  return best;
}

Roofline roofline_of(const std::vector<DecodeStretch>& stretches) {
  double bytes = 0, taken = 0, at_bandwidth = 0;
  for (const DecodeStretch& s : stretches) {
    if (s.bandwidth_gbps <= 0) return {};
    bytes += s.bytes;
    taken += s.seconds;
    at_bandwidth += s.bytes / (s.bandwidth_gbps * 1e9);
  }
  if (taken <= 0 || at_bandwidth <= 0) return {};
  return {bytes / at_bandwidth / 1e9, at_bandwidth / taken};
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
  r.kv_type = dtype_name(engine.kv_type());  // as --kv-type names it: "q8_0"
  for (char& ch : r.kv_type) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  r.line_prefetch = line_prefetch_to_l2 ? "l2" : "l1";
  r.page_hint_alone = page_hint_alone;
  r.page_ahead = page_ahead;
  r.file_bytes = model.file().file_size();
  r.threads = engine.pool().size();
  r.n_prompt = p.n_prompt, r.n_gen = p.n_gen, r.depth = p.depth, r.reps = p.reps;
  const int depth = p.depth;
  const auto tokens = bench_tokens(engine, depth + std::max({1, p.n_prompt, p.n_gen}));

  // One sequence for every run, emptied before each (as llama-bench clears its context's KV
  // cache): the first write to a page of fresh memory costs several microseconds (measured
  // ~7 us per 4 KiB page in a virtual machine, ~300 us a token for a 24-layer model's K and V
  // rows), a cost paid once per context, not per token. The warm-up fills as many positions as
  // the longest run, so every cache page the timed runs write is resident, and maps in every
  // page of the weights and grows the working buffers. With a depth its first `depth` tokens
  // stay as the context of every test: a restart cuts the sequence back to them, and the
  // engine's prefix reuse evaluates only what follows.
  auto seq = engine.new_sequence();
  auto restart = [&] {
    seq->tokens.resize(size_t(depth));
    seq->cache->set_n_past(depth);
  };
  engine.eval(*seq, tokens);
  const std::vector<TokenId> context(tokens.begin(), tokens.begin() + depth);
  std::vector<double> pp, tg;
  if (p.n_prompt > 0) {
    std::vector<TokenId> prompt = context;
    prompt.insert(prompt.end(), tokens.begin() + depth, tokens.begin() + depth + p.n_prompt);
    for (int rep = 0; rep < p.reps; ++rep) {
      restart();
      const auto t0 = std::chrono::steady_clock::now();
      engine.eval(*seq, prompt);
      pp.push_back(p.n_prompt / seconds_since(t0));
    }
  }
  r.weight_bytes_per_token = decode_weight_bytes(model.file());
  const size_t kv_per_position = model.kv_bytes_per_token(engine.kv_type());
  // Decoding token i reads the cache of the depth + i tokens before it: depth + (n_gen - 1) / 2
  // on average.
  r.kv_bytes_per_token_read =
      kv_per_position * (2 * size_t(depth) + size_t(std::max(0, p.n_gen - 1))) / 2;

  // Decoding in stretches of 16 tokens with a bandwidth probe (6 passes over up to 1 GiB of
  // the weights, one per reader, tens of milliseconds) between them, outside the timed
  // stretches.
  constexpr int kStretch = 16, kProbePasses = 6;  // each reader once
  const std::vector<MemoryRange> memory = weight_memory(model.file());
  const size_t probe_bytes = size_t(1) << 30;
  std::vector<DecodeStretch> stretches;
  std::vector<double> probes;
  auto probe = [&] {
    probes.push_back(measure_read_bandwidth(engine.pool(), memory, probe_bytes, kProbePasses));
    return probes.back();
  };
  PhaseTotals phase_totals;  // over every timed decode step (bench --phases)
  if (p.n_gen > 0) {
    double before = probe();
    for (int rep = 0; rep < p.reps; ++rep) {
      restart();
      std::vector<TokenId> ctx = context;
      double taken = 0;
      for (int i = 0; i < p.n_gen;) {
        const int begin = i, end = std::min(p.n_gen, i + kStretch);
        const auto t0 = std::chrono::steady_clock::now();
        for (; i < end; ++i) {
          ctx.push_back(tokens[size_t(depth + i)]);
          std::optional<PhaseRecording> recording;
          if (p.phases) recording.emplace(phase_totals);
          engine.eval(*seq, ctx);
        }
        const double seconds = seconds_since(t0);
        taken += seconds;
        const double after = probe();
        // Tokens begin .. end-1 read depth + begin .. depth + end-1 cached tokens before them.
        const double kv =
            double(kv_per_position) * double(2 * depth + end - 1 + begin) * (end - begin) / 2;
        stretches.push_back({seconds, double(r.weight_bytes_per_token) * (end - begin) + kv,
                             std::max(before, after)});
        before = after;
      }
      tg.push_back(p.n_gen / taken);
    }
  }
  r.prefill = summarize(pp);
  r.decode = summarize(tg);
  r.peak_rss_bytes = peak_rss_bytes();

  if (probes.empty())
    probes.push_back(measure_read_bandwidth(engine.pool(), memory, probe_bytes, 12));
  r.bandwidth_best_gbps = *std::max_element(probes.begin(), probes.end());
  r.bandwidth_worst_gbps = *std::min_element(probes.begin(), probes.end());
  const Roofline roof = roofline_of(stretches);
  r.bandwidth_gbps = stretches.empty() ? r.bandwidth_best_gbps : roof.bandwidth_gbps;
  const double bytes = double(r.weight_bytes_per_token + r.kv_bytes_per_token_read);
  r.roofline_tps = r.bandwidth_gbps * 1e9 / bytes;
  r.roofline_fraction = roof.fraction;
  if (p.phases && p.n_gen > 0) {
    const double n_tokens = double(p.n_gen) * p.reps;
    const std::array<size_t, kPhaseCount> phase_bytes = decode_weight_bytes_by_phase(model.file());
    double in_model = 0;
    for (int i = 0; i < kPhaseCount; ++i) {
      PhaseStat s{phase_name(Phase(i)), phase_totals.seconds[size_t(i)] / n_tokens,
                  phase_bytes[size_t(i)]};
      if (Phase(i) == Phase::kAttention) s.bytes_per_token += r.kv_bytes_per_token_read;
      in_model += s.seconds_per_token;
      r.phases.push_back(s);
    }
    double per_token = 0;  // mean decode time per token over the repetitions
    for (double tps : tg) per_token += 1.0 / tps / double(tg.size());
    r.phases.push_back({"other", std::max(0.0, per_token - in_model), 0});
  }
  return r;
}

}  // namespace hondo
