// How much memory running a model takes, judged from its GGUF header before loading it, and
// how much this machine (or its cgroup, or the user's limit) can give.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace hondo {

class GgufFile;

struct MemoryEstimate {
  uint64_t weights = 0;  // tensor bytes (read through the mapping; must stay resident to run)
  uint64_t kv = 0;       // KV cache for the context: n_ctx x bytes per token
  uint64_t scratch = 0;  // activations of one batch, logits, quantized activations
  uint64_t runtime = 0;  // the process itself and the tokenizer's tables
  int n_ctx = 0;
  uint64_t total() const { return weights + kv + scratch + runtime; }
  std::string describe() const;  // "2.15 GiB (weights 1.33 GiB + KV 768.0 MiB + ...)"
};

// n_ctx 0: the engine's default, min(training context, 4096).
MemoryEstimate estimate_memory(const GgufFile& f, int n_ctx, DType kv_type, int n_batch = 512);

// The memory a new model may use: MemAvailable, lowered by a cgroup limit (v2 memory.max minus
// memory.current, or v1) when there is one.
uint64_t available_memory();

// "8GiB", "512M", "1.5G", "1000000" -> bytes (K/M/G/T are powers of 1024; a trailing "B" or
// "iB" is accepted). Throws on anything else.
uint64_t parse_size(const std::string& s);
std::string format_size(uint64_t bytes);  // "1.23 GiB", "456.7 MiB"

}  // namespace hondo
