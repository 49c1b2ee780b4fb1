// hondo convert: checkpoints written by the project's exporter for each architecture convert
// back to the same tensors and logits as the GGUF they came from; FP8 blocks dequantize
// exactly; the real DeepSeek-V3 tokenizer.json converts to a vocabulary that passes its
// vectors; bad checkpoints give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "io/hf_convert.h"
#include "io/hf_tokenizer.h"
#include "io/safetensors.h"
#include "kernels/quant.h"
#include "model/model.h"
#include "synth/hf_export.h"
#include "test_util.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using namespace hondo;

namespace {

std::string dir_for(const std::string& tag) {
  const std::string d = test::bin("test-models/convert-" + tag);
  fs::remove_all(d);
  return d;
}

// The model's logits over a fixed token sequence (reference path: plain F32 math).
std::vector<float> logits(const std::string& path) {
  const auto m = Model::load(path);
  std::vector<TokenId> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(TokenId((i * 7919 + 13) % 1000 + 3));
  return m->reference_logits(ids);
}

class RoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(RoundTrip, SameTensorsAndLogitsAsTheDirectGguf) {
  const std::string preset = GetParam();
  const std::string direct =
      test::synthetic("convert-direct-" + preset, test::tiny(preset, DType::BF16));
  const std::string hf = dir_for(preset);
  export_hf_checkpoint(direct, hf, {});
  const std::string out = hf + ".gguf";
  ConvertOptions co;
  co.type = "F32";  // lossless: every value must come back exactly
  const ConvertReport r = convert_hf(hf, out, co);
  EXPECT_EQ(r.type, "F32");
  const auto a = GgufFile::open(direct), b = GgufFile::open(out);
  // Every tensor both files name holds the same values (the split MLA up-projection of the
  // converter may stand where the direct file has attn_kv_b; the logits cover it).
  int compared = 0;
  for (const Tensor& t : a->tensors()) {
    const Tensor* u = b->find_tensor(t.name);
    if (!u) {
      EXPECT_NE(t.name.find("attn_kv_b"), std::string::npos) << t.name << " is missing";
      continue;
    }
    ASSERT_EQ(t.shape_str(), u->shape_str()) << t.name;
    std::vector<float> x(size_t(t.cols())), y(size_t(t.cols()));
    for (int64_t row = 0; row < t.rows(); ++row) {
      dequantize_row(t.type, t.row(row), x.data(), t.cols());
      dequantize_row(u->type, u->row(row), y.data(), t.cols());
      ASSERT_EQ(x, y) << t.name << " row " << row;
    }
    ++compared;
  }
  const int n_layers = int(a->get_int(a->get_str("general.architecture") + ".block_count"));
  EXPECT_GE(compared, int(a->tensors().size()) - n_layers);  // at most kv_b per layer differs
  const std::vector<float> la = logits(direct), lb = logits(out);
  ASSERT_EQ(la.size(), lb.size());
  const float tol = 1e-5f * test::range(la.data(), la.size());
  EXPECT_LE(test::max_abs_diff(la.data(), lb.data(), la.size()), tol) << preset;
  // The tokenizer came through tokenizer.json and back.
  EXPECT_EQ(a->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs,
            b->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs);
  EXPECT_EQ(PreTokenizer::patterns(a->get_str("tokenizer.ggml.pre")),
            PreTokenizer::patterns(b->get_str("tokenizer.ggml.pre")));
  fs::remove_all(hf);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Convert, RoundTrip,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-v2-lite", "tiny-v3"));

// Logits of a Llama or Qwen2 checkpoint computed straight from its safetensors with the
// Hugging Face modeling code's semantics (rotate_half RoPE on the checkpoint's own q/k row
// order, GQA, SwiGLU), independent of the converter and of hondo's model code. The
// converted GGUF must give the same logits through hondo: this is what checks the llama q/k
// row permutation (a round trip through the project's exporter only shows the two are
// inverse).
std::vector<float> hf_semantics_logits(const std::string& dir, const std::vector<TokenId>& ids) {
  const auto cfg = nlohmann::json::parse(test::read_file(dir + "/config.json"));
  const SafetensorsSet st = SafetensorsSet::open_dir(dir);
  auto weight = [&](const std::string& name) {  // [rows, cols] row-major, as floats
    const StTensor& t = st.get(name);
    std::vector<float> v(size_t(t.elements()));
    for (size_t i = 0; i < v.size(); ++i) {
      if (t.dtype == StDType::F32) {
        std::memcpy(&v[i], t.data + 4 * i, 4);
        continue;
      }
      uint16_t b;
      std::memcpy(&b, t.data + 2 * i, 2);
      v[i] = t.dtype == StDType::BF16 ? bf16_to_f32(b) : f16_to_f32(b);
    }
    return v;
  };
  const int E = cfg["hidden_size"], H = cfg["num_attention_heads"];
  const int HKV = cfg.value("num_key_value_heads", H), L = cfg["num_hidden_layers"];
  const int F = cfg["intermediate_size"], V = cfg["vocab_size"], HD = E / H;
  const float eps = cfg.value("rms_norm_eps", 1e-6f), theta = cfg.value("rope_theta", 10000.0f);
  float pos_scale = 1.0f;  // linear RoPE scaling divides positions by the factor
  if (cfg.contains("rope_scaling") && cfg["rope_scaling"].is_object())
    pos_scale = 1.0f / cfg["rope_scaling"].value("factor", 1.0f);
  const int T = int(ids.size());
  auto linear = [](const std::vector<float>& w, const float* x, int rows, int cols, float* y) {
    for (int r = 0; r < rows; ++r) {
      double s = 0;
      for (int c = 0; c < cols; ++c) s += double(w[size_t(r) * cols + c]) * x[c];
      y[r] = float(s);
    }
  };
  auto rms_norm = [&](const float* x, const std::vector<float>& w, float* y) {
    double ss = 0;
    for (int i = 0; i < E; ++i) ss += double(x[i]) * x[i];
    const float k = float(1.0 / std::sqrt(ss / E + eps));
    for (int i = 0; i < E; ++i) y[i] = x[i] * k * w[size_t(i)];
  };
  // q*cos + rotate_half(q)*sin, rotate_half(x) = cat(-x[HD/2:], x[:HD/2]), per head.
  auto rope = [&](float* head, int pos) {
    for (int j = 0; j < HD / 2; ++j) {
      const double a = pos * pos_scale * std::pow(double(theta), -2.0 * j / HD);
      const float c = float(std::cos(a)), s = float(std::sin(a));
      const float x1 = head[j], x2 = head[j + HD / 2];
      head[j] = x1 * c - x2 * s;
      head[j + HD / 2] = x2 * c + x1 * s;
    }
  };
  const std::vector<float> embed = weight("model.embed_tokens.weight");
  std::vector<float> x(size_t(T) * E);  // [T, E] residual stream
  for (int t = 0; t < T; ++t) std::copy_n(&embed[size_t(ids[size_t(t)]) * E], E, &x[size_t(t) * E]);
  std::vector<float> h(static_cast<size_t>(E)), q(size_t(T) * H * HD), k(size_t(T) * HKV * HD),
      v(size_t(T) * HKV * HD), att(static_cast<size_t>(H * HD)), o(static_cast<size_t>(E)),
      g(static_cast<size_t>(F)), u(static_cast<size_t>(F));
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const auto wq = weight(p + "self_attn.q_proj.weight"),
               wk = weight(p + "self_attn.k_proj.weight"),
               wv = weight(p + "self_attn.v_proj.weight"),
               wo = weight(p + "self_attn.o_proj.weight");
    const bool bias = st.find(p + "self_attn.q_proj.bias") != nullptr;
    std::vector<float> bq(size_t(H) * HD), bk(size_t(HKV) * HD), bv(size_t(HKV) * HD);
    if (bias) {
      bq = weight(p + "self_attn.q_proj.bias");
      bk = weight(p + "self_attn.k_proj.bias");
      bv = weight(p + "self_attn.v_proj.bias");
    }
    const auto n1 = weight(p + "input_layernorm.weight"),
               n2 = weight(p + "post_attention_layernorm.weight");
    for (int t = 0; t < T; ++t) {
      rms_norm(&x[size_t(t) * E], n1, h.data());
      float *qt = &q[size_t(t) * H * HD], *kt = &k[size_t(t) * HKV * HD],
            *vt = &v[size_t(t) * HKV * HD];
      linear(wq, h.data(), H * HD, E, qt);
      linear(wk, h.data(), HKV * HD, E, kt);
      linear(wv, h.data(), HKV * HD, E, vt);
      for (int i = 0; i < H * HD; ++i) qt[i] += bias ? bq[size_t(i)] : 0.0f;
      for (int i = 0; i < HKV * HD; ++i) {
        kt[i] += bias ? bk[size_t(i)] : 0.0f;
        vt[i] += bias ? bv[size_t(i)] : 0.0f;
      }
      for (int hh = 0; hh < H; ++hh) rope(qt + hh * HD, t);
      for (int hh = 0; hh < HKV; ++hh) rope(kt + hh * HD, t);
    }
    const auto wg = weight(p + "mlp.gate_proj.weight"), wu = weight(p + "mlp.up_proj.weight"),
               wd = weight(p + "mlp.down_proj.weight");
    for (int t = 0; t < T; ++t) {  // causal attention, head hh reads kv head hh / (H / HKV)
      for (int hh = 0; hh < H; ++hh) {
        const int kv = hh / (H / HKV);
        std::vector<double> s(size_t(t) + 1);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= t; ++j) {
          double d = 0;
          for (int i = 0; i < HD; ++i)
            d += double(q[(size_t(t) * H + hh) * HD + i]) * k[(size_t(j) * HKV + kv) * HD + i];
          s[size_t(j)] = d / std::sqrt(double(HD));
          mx = std::max(mx, s[size_t(j)]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int i = 0; i < HD; ++i) {
          double a = 0;
          for (int j = 0; j <= t; ++j) a += s[size_t(j)] / sum * v[(size_t(j) * HKV + kv) * HD + i];
          att[size_t(hh) * HD + i] = float(a);
        }
      }
      float* xt = &x[size_t(t) * E];
      linear(wo, att.data(), E, H * HD, o.data());
      for (int i = 0; i < E; ++i) xt[i] += o[size_t(i)];
    }
    for (int t = 0; t < T; ++t) {  // down(silu(gate(h)) * up(h))
      float* xt = &x[size_t(t) * E];
      rms_norm(xt, n2, h.data());
      linear(wg, h.data(), F, E, g.data());
      linear(wu, h.data(), F, E, u.data());
      for (int i = 0; i < F; ++i)
        g[size_t(i)] = g[size_t(i)] / (1.0f + std::exp(-g[size_t(i)])) * u[size_t(i)];
      linear(wd, g.data(), E, F, o.data());
      for (int i = 0; i < E; ++i) xt[i] += o[size_t(i)];
    }
  }
  const auto norm = weight("model.norm.weight");
  const auto head = st.find("lm_head.weight") ? weight("lm_head.weight") : embed;
  std::vector<float> out(size_t(T) * V);
  for (int t = 0; t < T; ++t) {
    rms_norm(&x[size_t(t) * E], norm, h.data());
    linear(head, h.data(), V, E, &out[size_t(t) * V]);
  }
  return out;
}

class HfSemantics : public ::testing::TestWithParam<const char*> {};

TEST_P(HfSemantics, ConvertedModelMatchesTheCheckpointComputedTheHuggingFaceWay) {
  const std::string preset = GetParam();
  const std::string direct =
      test::synthetic("convert-direct-hfsem-" + preset, test::tiny(preset, DType::BF16));
  const std::string hf = dir_for("hfsem-" + preset);
  export_hf_checkpoint(direct, hf, {});
  const std::string out = hf + ".gguf";
  ConvertOptions co;
  co.type = "F32";
  convert_hf(hf, out, co);
  std::vector<TokenId> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(TokenId((i * 7919 + 13) % 1000 + 3));
  const std::vector<float> want = hf_semantics_logits(hf, ids);
  const std::vector<float> got = Model::load(out)->reference_logits(ids);
  ASSERT_EQ(want.size(), got.size());
  EXPECT_LE(test::max_abs_diff(want.data(), got.data(), want.size()),
            1e-4f * test::range(want.data(), want.size()))
      << preset;
  fs::remove_all(hf);
  fs::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Convert, HfSemantics, ::testing::Values("tiny-llama", "tiny-qwen2"));

// Converting streams tensor by tensor: the checkpoint's shards and the output are file
// mappings, and only a row of floats is private memory. Run under a data limit (RLIMIT_DATA:
// heap, anonymous and private writable mappings) a quarter of the checkpoint's size, the
// binary converts it; the same limit stops a program that holds the checkpoint in memory.
TEST(ConvertMemory, CheckpointLargerThanTheMemoryLimitConverts) {
  SynthSpec spec = test::tiny("tiny-llama", DType::BF16);
  spec.n_embd = 1024, spec.n_head = 8, spec.n_head_kv = 8, spec.n_ff = 4096, spec.n_layer = 4;
  const std::string direct = test::synthetic("convert-direct-big", spec);
  const std::string hf = dir_for("big");
  export_hf_checkpoint(direct, hf, {});
  uintmax_t checkpoint = 0;
  for (const auto& e : fs::directory_iterator(hf)) checkpoint += fs::file_size(e.path());
  ASSERT_GT(checkpoint, uintmax_t(240) << 20);
  const uintmax_t limit = checkpoint / 4;
  const std::string ulimit = "ulimit -d " + std::to_string(limit / 1024);
  // The limit bites: dd cannot allocate a buffer of the checkpoint's size under it.
  const std::string control = ulimit +
                              " && dd if=/dev/zero of=/dev/null bs=" + std::to_string(checkpoint) +
                              " count=1 2>/dev/null";
  ASSERT_NE(std::system(control.c_str()), 0) << "RLIMIT_DATA is not enforced here";
  const std::string out = hf + ".gguf";
  const auto r = test::run("convert " + hf + " " + out + " --type BF16", "", "", ulimit);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_GT(fs::file_size(out), checkpoint * 9 / 10);
  // Same tensors as the direct file (BF16 to BF16 is exact).
  const auto a = GgufFile::open(direct), b = GgufFile::open(out);
  for (const char* name : {"token_embd.weight", "blk.3.ffn_down.weight", "output.weight"}) {
    const Tensor *t = a->find_tensor(name), *u = b->find_tensor(name);
    ASSERT_TRUE(t && u) << name;
    ASSERT_EQ(t->nbytes(), u->nbytes()) << name;
    EXPECT_EQ(std::memcmp(t->data, u->data, t->nbytes()), 0) << name;
  }
  fs::remove_all(hf);
  fs::remove(out);
  fs::remove(direct);
}

// E4M3 decoding checked against the bit layout: for normal numbers the same value as the
// float whose exponent and top mantissa bits are copied over.
TEST(Fp8, DecodeMatchesTheBitLayoutAndEncodeRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    const int e = (b >> 3) & 15, m = b & 7;
    const float got = fp8_e4m3_to_f32(uint8_t(b));
    if (e == 15 && m == 7) {
      EXPECT_TRUE(std::isnan(got));
      continue;
    }
    float want;
    if (e == 0) {
      want = float(m) / 512.0f;  // 2^-6 * m/8
    } else {
      const uint32_t bits = (uint32_t(e - 7 + 127) << 23) | (uint32_t(m) << 20);
      std::memcpy(&want, &bits, 4);
    }
    if (b & 0x80) want = -want;
    EXPECT_EQ(got, want) << b;
    if (b != 0x80) {
      EXPECT_EQ(f32_to_fp8_e4m3(got), b) << b;
    }
  }
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(1000.0f)), 448.0f);  // saturates
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(1.0625f)), 1.0f);    // tie to even
  EXPECT_EQ(fp8_e4m3_to_f32(f32_to_fp8_e4m3(1.1875f)), 1.25f);   // tie to even
}

TEST(ConvertFp8, V3CheckpointDequantizesBlocksExactly) {
  const std::string direct = test::synthetic("convert-direct-v3-fp8", test::tiny("tiny-v3"));
  const std::string hf = dir_for("v3-fp8");
  HfExportOptions eo;
  eo.fp8 = true;
  export_hf_checkpoint(direct, hf, eo);
  const SafetensorsSet st = SafetensorsSet::open_dir(hf);
  const StTensor& w = st.get("model.layers.1.self_attn.o_proj.weight");
  const StTensor& s = st.get("model.layers.1.self_attn.o_proj.weight_scale_inv");
  ASSERT_EQ(w.dtype, StDType::F8_E4M3);
  const std::string out = hf + ".gguf";
  ConvertOptions co;
  co.type = "F32";
  convert_hf(hf, out, co);
  const auto g = GgufFile::open(out);
  const Tensor* t = g->find_tensor("blk.1.attn_output.weight");
  ASSERT_TRUE(t);
  const int64_t rows = w.shape[0], cols = w.shape[1], bc = (cols + 127) / 128;
  const float* got = static_cast<const float*>(t->data);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float scale;
      std::memcpy(&scale, s.data + 4 * ((r / 128) * bc + c / 128), 4);
      ASSERT_EQ(got[r * cols + c], fp8_e4m3_to_f32(w.data[r * cols + c]) * scale) << r << "," << c;
    }
  // FP8 weights run close to the original model.
  const std::vector<float> la = logits(direct), lb = logits(out);
  const size_t nv = size_t(Model::load(direct)->n_vocab());
  int agree = 0;
  for (size_t p = 0; p < la.size() / nv; ++p)
    agree += test::argmax(la.data() + p * nv, int(nv)) == test::argmax(lb.data() + p * nv, int(nv));
  EXPECT_GE(agree, int(la.size() / nv) * 3 / 4);
  fs::remove_all(hf);
  fs::remove(out);
}

TEST(ConvertTokenizer, RealDeepSeekV3TokenizerPassesItsVectors) {
  const std::string hf = test::shared("testdata/hf/DeepSeek-V3");
  HONDO_REQUIRE_FILE(hf + "/tokenizer.json");
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_str("deepseek2"));
  hf_tokenizer_to_gguf(hf, 129280, w);
  const std::string path = test::bin("test-models/convert-v3-vocab.gguf");
  w.write(path);
  const auto mine = GgufFile::open(path);
  const auto ref = GgufFile::open(test::vocab("deepseek-v3"));
  EXPECT_EQ(mine->get_str("tokenizer.ggml.pre"), "deepseek-v3");
  EXPECT_EQ(mine->get_array("tokenizer.ggml.merges", GgufType::STRING).strs,
            ref->get_array("tokenizer.ggml.merges", GgufType::STRING).strs);
  const auto& a = mine->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs;
  const auto& b = ref->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs;
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a, b);
  EXPECT_EQ(mine->get_int("tokenizer.ggml.bos_token_id"), 0);
  EXPECT_EQ(mine->get_int("tokenizer.ggml.eos_token_id"), 1);
  EXPECT_TRUE(mine->has("tokenizer.chat_template"));
  // The vectors of the reference vocabulary, through the converted one.
  const Tokenizer tok(Vocab::from_gguf(*mine));
  const std::string base = test::vocab("deepseek-v3");
  std::ifstream outp(base + ".out");
  const std::string all = test::read_file(base + ".inp"), sep = "\n__ggml_vocab_test__\n";
  int checked = 0;
  std::string line;
  for (size_t pos = 0, hit; (hit = all.find(sep, pos)) != std::string::npos;
       pos = hit + sep.size()) {
    std::getline(outp, line);
    std::vector<TokenId> want;
    std::istringstream ls(line);
    for (TokenId t; ls >> t;) want.push_back(t);
    EXPECT_EQ(tok.encode(all.substr(pos, hit - pos), false, false), want) << checked;
    ++checked;
  }
  EXPECT_EQ(checked, 46);
}

TEST(ConvertErrors, SayWhatIsWrong) {
  const std::string direct =
      test::synthetic("convert-direct-err", test::tiny("tiny-llama", DType::BF16));
  const std::string hf = dir_for("errors");
  export_hf_checkpoint(direct, hf, {});
  auto expect_error = [&](const std::string& needle) {
    try {
      convert_hf(hf, hf + ".gguf");
      ADD_FAILURE() << "expected an error with: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string cfg = test::read_file(hf + "/config.json");
  std::ofstream(hf + "/config.json")
      << std::string(cfg).replace(cfg.find("LlamaForCausalLM"), 16, "MambaForCausalLM");
  expect_error("architecture 'MambaForCausalLM' is not supported");
  std::ofstream(hf + "/config.json") << cfg;
  // A truncated shard.
  const std::string shard = hf + "/model-00002-of-00002.safetensors";
  fs::resize_file(shard, fs::file_size(shard) / 2);
  expect_error("truncated file?");
  fs::remove_all(hf);
}

}  // namespace
