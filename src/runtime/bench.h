// The benchmark behind `hondo bench`: prompt processing and generation speed of a model file,
// peak memory, and generation speed as a fraction of the memory-bandwidth limit.
//
// Decoding one token reads every weight the token passes through once (for MoE layers only
// the experts it is routed to) plus the KV cache, so bandwidth / bytes-read-per-token is the
// most tokens per second the machine can decode: the roofline.
#pragma once
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace hondo {

struct BenchParams {
  int n_prompt = 512;  // prompt tokens evaluated in one batch (0: skip)
  int n_gen = 128;     // tokens decoded one at a time from an empty context (0: skip)
  int reps = 3;        // repetitions of each test
};

struct BenchStat {
  double mean = 0, stddev = 0;  // tokens per second over the repetitions
  std::vector<double> samples;
};

struct BenchResult {
  std::string model_path, arch, isa;
  size_t file_bytes = 0;
  int threads = 0;
  int n_prompt = 0, n_gen = 0, reps = 0;
  BenchStat prefill, decode;
  size_t peak_rss_bytes = 0;  // of the whole process, after the tests
  double bandwidth_gbps = 0;  // measured read bandwidth with the same threads
  size_t weight_bytes_per_token = 0;
  size_t kv_bytes_per_token_read = 0;  // mean KV cache bytes read per decoded token
  double roofline_tps = 0;             // bandwidth / (weight + KV bytes per token)
  double roofline_fraction = 0;        // decode mean / roofline
};

// Bytes of weights read to decode one token: every tensor, except that the token embedding
// contributes one row (unless the output projection is tied to it), routed-expert tensors
// their used fraction (expert_used_count / expert_count), and multi-token-prediction blocks
// nothing (plain decoding does not run them).
size_t decode_weight_bytes(const GgufFile& f);

// Read bandwidth of main memory in GB/s (1e9 bytes/s) with all of the pool's threads, each
// summing its share of a buffer far larger than the caches; best of a few passes.
double measure_read_bandwidth(ThreadPool& pool, size_t buffer_bytes = size_t(1) << 30);

// Peak resident set size of this process so far, in bytes.
size_t peak_rss_bytes();

BenchResult run_bench(Engine& engine, const BenchParams& p);

}  // namespace hondo
