#include "store/memory.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "io/gguf.h"
#include "model/mla.h"

namespace hondo {

std::string format_size(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

std::string MemoryEstimate::describe() const {
  return cat(format_size(total()), " (weights ", format_size(weights), " + KV ", format_size(kv),
             " + scratch ", format_size(scratch), " + runtime ", format_size(runtime), ", ", n_ctx,
             "-token context)");
}

MemoryEstimate estimate_memory(const GgufFile& f, int n_ctx, DType kv_type, int n_batch) {
  MemoryEstimate m;
  for (const Tensor& t : f.tensors()) m.weights += t.nbytes();
  const std::string arch = f.get_str("general.architecture", "");
  auto key = [&](const char* k) { return arch + "." + k; };
  const int64_t n_ctx_train = f.get_int(key("context_length"), 4096);
  m.n_ctx = n_ctx > 0 ? n_ctx : int(std::min<int64_t>(n_ctx_train, 4096));
  const int64_t n_layer =
      f.get_int(key("block_count"), 0) - f.get_int(key("nextn_predict_layers"), 0);
  const int64_t n_embd = f.get_int(key("embedding_length"), 0);
  const int64_t n_head = std::max<int64_t>(1, f.get_int(key("attention.head_count"), 1));
  const int64_t elt = kv_type == DType::F32 ? 4 : 2;
  // Per token and layer: MLA keeps the compressed latent and the shared RoPE key; standard
  // attention keeps K and V of every KV head.
  // Prefill attention also holds one layer's keys and values as F32 for every position
  // (model/attention.cpp; MLA's naive path decompressed per head, values twice, at most
  // kMlaNaiveScratchBytes, beyond which it attends in latent space).
  int64_t width = 0;
  uint64_t prefill_attention = 0;
  if (f.has(key("attention.kv_lora_rank"))) {
    width = f.get_int(key("attention.kv_lora_rank")) + f.get_int(key("rope.dimension_count"), 64);
    // Per-head sizes: the *_mla keys of newer files, key/value_length of older ones (as
    // DeepSeek2Config reads them).
    const int64_t k_head =
        f.get_int(key("attention.key_length_mla"), f.get_int(key("attention.key_length"), 192));
    const int64_t v_head =
        f.get_int(key("attention.value_length_mla"), f.get_int(key("attention.value_length"), 128));
    prefill_attention =
        std::min(uint64_t(width + n_head * (k_head + 2 * v_head)) * 4 * uint64_t(m.n_ctx),
                 uint64_t(kMlaNaiveScratchBytes));
  } else {
    const int64_t n_head_kv = f.get_int(key("attention.head_count_kv"), n_head);
    const int64_t k_len = f.get_int(key("attention.key_length"), n_embd / n_head);
    const int64_t v_len = f.get_int(key("attention.value_length"), n_embd / n_head);
    width = n_head_kv * (k_len + v_len);
    prefill_attention = uint64_t(width) * 4 * uint64_t(m.n_ctx);
  }
  m.kv =
      uint64_t(std::max<int64_t>(n_layer, 0)) * uint64_t(width) * uint64_t(elt) * uint64_t(m.n_ctx);
  // One batch of activations: the residual stream and a handful of [n_batch, n_embd] buffers,
  // the FFN's gate/up/product, attention scores of one query row per head, logits, and the
  // prefill attention's F32 copy of a layer's cache.
  int64_t n_ff = f.get_int(key("feed_forward_length"), 4 * n_embd);
  if (f.has(key("expert_feed_forward_length")))
    n_ff = std::max<int64_t>(n_ff, f.get_int(key("expert_feed_forward_length")) *
                                       (f.get_int(key("expert_used_count"), 1) +
                                        f.get_int(key("expert_shared_count"), 0)));
  int64_t n_vocab = f.get_int(key("vocab_size"), 0);
  if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens"); tokens && n_vocab == 0)
    n_vocab = int64_t(tokens->array_size());
  const int64_t batch = std::min<int64_t>(n_batch, m.n_ctx);
  m.scratch = uint64_t(batch) * uint64_t(8 * n_embd + 3 * n_ff) * 4 +
              uint64_t(n_head) * uint64_t(m.n_ctx) * 4 + uint64_t(n_vocab) * 8 + prefill_attention;
  // Code, libraries, thread stacks (~12 MiB measured for a tiny model) and the tokenizer's
  // tables (~400 bytes per vocabulary entry: 41.7 MiB peak RSS measured for the bundled
  // 32k-vocabulary model whose other parts add up to 18.4 MiB).
  m.runtime = (12ull << 20) + uint64_t(n_vocab) * 400;
  return m;
}

static uint64_t read_u64_file(const std::string& path, bool& ok) {
  std::ifstream in(path);
  std::string s;
  ok = bool(in >> s) && !s.empty() && std::isdigit(static_cast<unsigned char>(s[0]));
  return ok ? std::strtoull(s.c_str(), nullptr, 10) : 0;
}

uint64_t available_memory() {
  uint64_t avail = 0;
  {
    std::ifstream in("/proc/meminfo");
    std::string name;
    uint64_t kb = 0;
    std::string unit;
    while (in >> name >> kb) {
      std::getline(in, unit);
      if (name == "MemAvailable:") {
        avail = kb * 1024;
        break;
      }
    }
  }
  bool ok_max = false, ok_cur = false;
  const uint64_t max2 = read_u64_file("/sys/fs/cgroup/memory.max", ok_max);
  const uint64_t cur2 = read_u64_file("/sys/fs/cgroup/memory.current", ok_cur);
  if (ok_max) {
    const uint64_t room = max2 > cur2 ? max2 - cur2 : 0;
    avail = avail ? std::min(avail, room) : room;
  } else {
    bool ok1 = false, ok1u = false;
    const uint64_t max1 = read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", ok1);
    const uint64_t cur1 = read_u64_file("/sys/fs/cgroup/memory/memory.usage_in_bytes", ok1u);
    if (ok1 && max1 < (1ull << 60)) {
      const uint64_t room = max1 > cur1 ? max1 - cur1 : 0;
      avail = avail ? std::min(avail, room) : room;
    }
  }
  return avail;
}

uint64_t parse_size(const std::string& text) {
  std::string s;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    fail("'", text, "' is not a size (expected e.g. 8GiB, 512M or a number of bytes)");
  }
  std::string unit = s.substr(used);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return char(std::toupper(c)); });
  if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "IB")
    unit.resize(unit.size() - 2);
  else if (!unit.empty() && unit.back() == 'B')
    unit.pop_back();
  double mul = 1;
  if (unit == "K")
    mul = 1024.0;
  else if (unit == "M")
    mul = 1024.0 * 1024;
  else if (unit == "G")
    mul = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    mul = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty())
    fail("'", text, "' is not a size (units: K, M, G, T, optionally followed by B or iB)");
  if (!(v >= 0) || !std::isfinite(v)) fail("'", text, "' is not a size");
  return uint64_t(std::llround(v * mul));
}

}  // namespace hondo
