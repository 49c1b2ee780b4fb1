// The benchmark behind `hondo bench`: prompt processing and generation speed of a model file,
// peak memory, and generation speed as a fraction of the memory-bandwidth limit.
//
// Decoding one token reads every weight the token passes through once (for MoE layers only
// the experts it is routed to) plus the KV cache, so bandwidth / bytes-read-per-token is the
// most tokens per second the machine can decode: the roofline.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "core/phase_clock.h"
#include "runtime/engine.h"

namespace hondo {

struct BenchParams {
  int n_prompt = 512;   // prompt tokens evaluated in one batch (0: skip)
  int n_gen = 128;      // tokens decoded one at a time (0: skip)
  int depth = 0;        // tokens already in the context before each test (llama-bench's -d)
  int reps = 3;         // repetitions of each test
  bool phases = false;  // time the decode steps by phase (core/phase_clock.h)
};

struct BenchStat {
  double mean = 0, stddev = 0;  // tokens per second over the repetitions
  std::vector<double> samples;
};

// One phase of the decode steps (core/phase_clock.h), per decoded token: the time it took and
// the bytes it read (its weights; attention also the KV cache), hence the rate it read them at.
struct PhaseStat {
  std::string name;  // "embed", "attention", "ffn", "output", or "other" (outside the model)
  double seconds_per_token = 0;
  size_t bytes_per_token = 0;
  double gbps() const {
    return seconds_per_token > 0 ? bytes_per_token / seconds_per_token / 1e9 : 0;
  }
};

struct BenchResult {
  std::string model_path, arch, isa;
  std::string kv_type;           // the KV cache's element type: "f16", "q8_0", "f32"
  std::string line_prefetch;     // "l1" or "l2": where the weight readers' prefetches go (qdot.h)
  bool page_hint_alone = false;  // the Q4_0/Q4_1/Q4_K tiles and F16/BF16 rows: no line prefetches
  bool page_ahead = true;        // whether the tile kernels announce pages ahead (qdot.h)
  size_t file_bytes = 0;
  int threads = 0;
  int n_prompt = 0, n_gen = 0, depth = 0, reps = 0;
  BenchStat prefill, decode;
  size_t peak_rss_bytes = 0;  // of the whole process, after the tests
  // Read bandwidth of the weights' memory with the same threads, measured between stretches
  // of decoding (see roofline_of); the best and worst probe of the run beside it.
  double bandwidth_gbps = 0, bandwidth_best_gbps = 0, bandwidth_worst_gbps = 0;
  size_t weight_bytes_per_token = 0;
  size_t kv_bytes_per_token_read = 0;  // mean KV cache bytes read per decoded token
  double roofline_tps = 0;             // bandwidth / (weight + KV bytes per token)
  double roofline_fraction = 0;        // decode time at the bandwidth / decode time taken
  std::vector<PhaseStat> phases;       // with BenchParams::phases: the model's phases, then other
};

// A stretch of decoding and the memory bandwidth measured around it.
struct DecodeStretch {
  double seconds = 0;         // time the stretch took
  double bytes = 0;           // weights and KV cache it read
  double bandwidth_gbps = 0;  // the better of the probes just before and just after it
};

struct Roofline {
  double bandwidth_gbps = 0;  // bytes / time at the stretches' bandwidths
  double fraction = 0;        // time at the stretches' bandwidths / time taken
};

// On a shared machine the bandwidth available swings by 2x within seconds, so a probe taken
// once, apart from decoding, says little about the limit decoding ran against. Each stretch
// is held to the bandwidth measured next to it: the roofline time of the whole run is the
// sum of bytes / bandwidth over the stretches, and the fraction is that over the time taken.
Roofline roofline_of(const std::vector<DecodeStretch>& stretches);

// Bytes of weights read to decode one token: every tensor, except that the token embedding
// contributes one row (unless the output projection is tied to it), routed-expert tensors
// their used fraction (expert_used_count / expert_count), and multi-token-prediction blocks
// nothing (plain decoding does not run them).
size_t decode_weight_bytes(const GgufFile& f);
// The same by the phase of a forward pass that reads each tensor (phase_of_tensor), indexed by
// Phase; they add up to decode_weight_bytes.
std::array<size_t, kPhaseCount> decode_weight_bytes_by_phase(const GgufFile& f);
// blk.N.ffn_* (experts, router, norm) and blk.N.exp_probs_b: ffn; other blk.N.*: attention;
// output*: output; anything else (the token embedding): embed.
Phase phase_of_tensor(const std::string& name);

// Ranges of memory holding the weights decoding reads, as matmul reads them (the repacked
// tiles, or the matrix where it lies), all resident after one evaluation: repacked matrices
// decoding reads, and matrices on file pages that it reads whole (not routed experts, an
// untied token embedding or multi-token-prediction blocks, whose pages it may never touch). The
// bandwidth probe reads these, so it needs no memory of its own and reads the same pages (and page
// size) as decoding.
struct MemoryRange {
  const uint8_t* data = nullptr;
  size_t bytes = 0;
};
std::vector<MemoryRange> weight_memory(const GgufFile& f);

// Read bandwidth in GB/s (1e9 bytes/s) with all of the pool's threads summing `pass_bytes`
// taken from `memory` in order (again from the start if it holds less), shared out as matmul
// shares weights and read with a software prefetch ahead as the tile kernels read; the best
// of `passes` passes, which take four readers in turn: built with the baseline's vectors or
// with the widest the CPU has, each asking ahead for every line or for each page alone
// (none of them is the fastest on every CPU).
double measure_read_bandwidth(ThreadPool& pool, const std::vector<MemoryRange>& memory,
                              size_t pass_bytes, int passes);

// Peak resident set size of this process so far, in bytes.
size_t peak_rss_bytes();

BenchResult run_bench(Engine& engine, const BenchParams& p);

}  // namespace hondo
