#include "io/requantize.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/quant.h"

namespace hondo {

namespace {

const std::vector<QuantMix>& mixes() {
  using D = DType;
  static const std::vector<QuantMix> all = {
      {"Q4_K_M", D::Q4_K, D::Q6_K, D::Q6_K, 15}, {"Q4_K_S", D::Q4_K, D::Q4_K, D::Q6_K, 14},
      {"Q5_K_M", D::Q5_K, D::Q6_K, D::Q6_K, 17}, {"Q5_K_S", D::Q5_K, D::Q5_K, D::Q6_K, 16},
      {"Q3_K_M", D::Q3_K, D::Q4_K, D::Q6_K, 12}, {"Q2_K", D::Q2_K, D::Q3_K, D::Q6_K, 10},
      {"Q6_K", D::Q6_K, D::Q6_K, D::Q6_K, 18},   {"Q8_0", D::Q8_0, D::Q8_0, D::Q8_0, 7},
      {"Q5_1", D::Q5_1, D::Q5_1, D::Q6_K, 9},    {"Q5_0", D::Q5_0, D::Q5_0, D::Q6_K, 8},
      {"Q4_1", D::Q4_1, D::Q4_1, D::Q6_K, 3},    {"Q4_0", D::Q4_0, D::Q4_0, D::Q6_K, 2},
      {"BF16", D::BF16, D::BF16, D::BF16, 32},   {"F16", D::F16, D::F16, D::F16, 1},
      {"F32", D::F32, D::F32, D::F32, 0},
  };
  return all;
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Layers that get more bits: first and last eighth, and every third layer between.
bool more_bits_layer(int layer, int n_layer) {
  if (n_layer <= 0 || layer < 0) return false;
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// When rows hold no whole blocks of t: llama.cpp's fallback chain (with Q4_0 standing in for
// IQ4_NL, which hondo does not write), ending at F16.
DType fit_rows(DType t, int64_t cols) {
  for (int guard = 0; guard < 4; ++guard) {
    if (cols % dtype_info(t).block_elems == 0) return t;
    switch (t) {
      case DType::Q2_K:
      case DType::Q3_K:
        t = DType::Q4_0;
        break;
      case DType::Q4_K:
        t = DType::Q5_0;
        break;
      case DType::Q5_K:
        t = DType::Q5_1;
        break;
      case DType::Q6_K:
        t = DType::Q8_0;
        break;
      default:
        return DType::F16;
    }
  }
  return DType::F16;
}

}  // namespace

std::vector<std::string> quant_mix_names() {
  std::vector<std::string> names;
  for (const QuantMix& m : mixes()) names.push_back(m.name);
  return names;
}

QuantMix quant_mix(const std::string& name) {
  for (const QuantMix& m : mixes())
    if (m.name == upper(name)) return m;
  std::string known;
  for (const QuantMix& m : mixes()) known += (known.empty() ? "" : " ") + m.name;
  fail("unknown quantization type '", name, "' (known: ", known, ")");
}

namespace {
// The type the mix asks for, before fitting it to the row length.
DType wanted_type(const QuantMix& mix, const std::string& name, int n_dims, DType current,
                  int n_layer, bool output_tied) {
  if (n_dims < 2 || !ends_with(name, ".weight")) return current;
  if (name.find("ffn_gate_inp") != std::string::npos) return current;  // MoE router
  const bool is_output = name == (output_tied ? "token_embd.weight" : "output.weight");
  DType want = mix.base;
  if (is_output) {
    want = mix.output;
  } else {
    const int layer = tensor_block_index(name);
    const bool values = name.find(".attn_v.") != std::string::npos ||
                        name.find(".attn_v_b.") != std::string::npos ||
                        name.find(".attn_kv_b.") != std::string::npos;
    const bool down = name.find(".ffn_down") != std::string::npos;
    if ((values || down) && more_bits_layer(layer, n_layer)) want = mix.sensitive;
  }
  return want;
}
}  // namespace

DType mix_tensor_type(const QuantMix& mix, const std::string& name, int n_dims, int64_t cols,
                      DType current, int n_layer, bool output_tied) {
  const DType want = wanted_type(mix, name, n_dims, current, n_layer, output_tied);
  return want == current ? current : fit_rows(want, cols);
}

RequantizeReport requantize_model(const std::string& in, const std::string& out,
                                  const QuantMix& mix, ThreadPool* pool) {
  auto src = GgufFile::open(in);
  GgufWriter w;
  w.copy_metadata(*src, "");
  w.set("general.file_type", GgufValue::make_u32(mix.file_type));
  const std::string arch = src->get_str("general.architecture", "");
  const int n_layer =
      int(src->get_int(arch + ".block_count", 0) - src->get_int(arch + ".nextn_predict_layers", 0));
  const bool tied = src->find_tensor("output.weight") == nullptr;
  RequantizeReport rep;
  std::map<DType, int> counts;
  for (const Tensor& t : src->tensors()) {
    if (!dtype_info(t.type).can_compute)
      fail(in, ": tensor '", t.name, "' has type ", dtype_name(t.type),
           " which hondo cannot read yet");
    const DType want = wanted_type(mix, t.name, t.n_dims, t.type, n_layer, tied);
    const DType to = want == t.type ? want : fit_rows(want, t.cols());
    if (want == t.type)
      ++rep.kept;
    else if (to == want)
      ++rep.converted;
    else
      ++rep.fallback;
    ++counts[to];
    rep.bytes_in += t.nbytes();
    rep.bytes_out += row_bytes(to, t.cols()) * size_t(t.rows());
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    const Tensor* tp = &t;
    w.add_tensor(t.name, to, ne, [tp, to, pool](uint8_t* dst, size_t) {
      const size_t rb = row_bytes(to, tp->cols());
      auto rows = [&](int64_t r0, int64_t r1) {
        std::vector<float> row(static_cast<size_t>(tp->cols()));
        for (int64_t r = r0; r < r1; ++r) {
          dequantize_row(tp->type, tp->row(r), row.data(), tp->cols());
          quantize_row(to, row.data(), dst + size_t(r) * rb, tp->cols());
        }
      };
      if (pool)
        pool->parallel_for(tp->rows(), rows);
      else
        rows(0, tp->rows());
    });
  }
  for (const auto& [type, n] : counts) rep.type_counts.emplace_back(type, n);
  w.write(out, src->alignment());
  return rep;
}

}  // namespace hondo
