// hondo quantize: which tensor gets which type under each mix, and models written in every
// mix compute (with integer kernels and int8 activations) what the dequantizing F32
// reference computes from the same file.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "io/gguf.h"
#include "io/requantize.h"
#include "runtime/engine.h"
#include "test_util.h"

using namespace hondo;
using test::argmax;
using test::max_abs_diff;
using test::range;

TEST(QuantMix, ChoosesTypesByRole) {
  const QuantMix m = quant_mix("q4_k_m");
  EXPECT_EQ(m.name, "Q4_K_M");
  EXPECT_EQ(m.file_type, 15u);
  const int L = 24;  // more bits: layers 0-2, 21-23 and 5, 8, 11, ...
  auto type = [&](const std::string& name, int64_t cols = 2048, int n_dims = 2, bool tied = false) {
    return mix_tensor_type(m, name, n_dims, cols, DType::F16, L, tied);
  };
  EXPECT_EQ(type("output.weight"), DType::Q6_K);
  EXPECT_EQ(type("token_embd.weight"), DType::Q4_K);
  EXPECT_EQ(type("token_embd.weight", 2048, 2, /*tied=*/true), DType::Q6_K);
  EXPECT_EQ(type("blk.0.attn_v.weight"), DType::Q6_K);
  EXPECT_EQ(type("blk.3.attn_v.weight"), DType::Q4_K);
  EXPECT_EQ(type("blk.5.attn_v.weight"), DType::Q6_K);
  EXPECT_EQ(type("blk.23.ffn_down.weight"), DType::Q6_K);
  EXPECT_EQ(type("blk.4.ffn_down_exps.weight"), DType::Q4_K);
  EXPECT_EQ(type("blk.2.ffn_down_shexp.weight"), DType::Q6_K);
  EXPECT_EQ(type("blk.1.attn_kv_b.weight"), DType::Q6_K);
  EXPECT_EQ(type("blk.4.attn_q.weight"), DType::Q4_K);
  // never quantized: norms, the MoE router, biases
  EXPECT_EQ(type("blk.4.attn_norm.weight", 2048, 1), DType::F16);
  EXPECT_EQ(type("blk.4.ffn_gate_inp.weight"), DType::F16);
  EXPECT_EQ(type("blk.4.exp_probs_b.bias", 64, 1), DType::F16);
  // rows without whole 256-blocks fall back as llama.cpp does
  EXPECT_EQ(type("blk.4.ffn_down_exps.weight", 1408), DType::Q5_0);
  EXPECT_EQ(type("blk.0.ffn_down.weight", 1408), DType::Q8_0);
  EXPECT_EQ(type("blk.4.attn_q.weight", 100), DType::F16);
  EXPECT_EQ(
      mix_tensor_type(quant_mix("Q2_K"), "blk.4.attn_q.weight", 2, 1408, DType::F16, L, false),
      DType::Q4_0);
  EXPECT_THROW(quant_mix("Q4_K_X"), Error);
}

namespace {

// A dense model whose rows hold whole 256-blocks, so every K-quant is used as such.
std::string k_friendly_model() {
  SynthSpec s = test::tiny("tiny-llama");
  s.n_embd = 256, s.n_ff = 512, s.n_head = 4, s.n_head_kv = 2, s.n_layer = 2;
  return test::synthetic("llama-256-f32", s);
}

}  // namespace

class QuantizedModel : public ::testing::TestWithParam<const char*> {};

// Every position's logits within a bound of the reference's. The reference dequantizes the
// same weights and keeps F32 activations; the fast path quantizes activations to int8 per
// 32 values, which moves each logit by well under 2 % of the logit range on this model.
TEST_P(QuantizedModel, FastPathMatchesDequantizedReference) {
  const QuantMix mix = quant_mix(GetParam());
  const std::string q =
      test::bin("test-models/llama-256-" + mix.name + "-" + std::to_string(getpid()) + ".gguf");
  ThreadPool pool(2);
  const RequantizeReport rep = requantize_model(k_friendly_model(), q, mix, &pool);
  EXPECT_EQ(rep.fallback, 0);
  EXPECT_EQ(GgufFile::open(q)->get_int("general.file_type"), int64_t(mix.file_type));
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 64;
  Engine e(q, opt);
  std::vector<TokenId> ids =
      e.tokenizer().encode("def add(a, b):\n    return a + b\n", true, false);
  const int V = e.model().n_vocab();
  auto seq = e.new_sequence();
  const std::vector<float> fast = e.eval(*seq, ids, /*all_logits=*/true);
  const std::vector<float> ref = e.model().reference_logits(ids);
  ASSERT_EQ(fast.size(), ref.size());
  double worst = 0;
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* r = ref.data() + p * size_t(V);
    worst = std::max(worst, double(max_abs_diff(fast.data() + p * size_t(V), r, size_t(V)) /
                                   range(r, size_t(V))));
  }
  RecordProperty("worst_error_over_range", std::to_string(worst));
  EXPECT_LT(worst, 0.02) << mix.name;
  std::remove(q.c_str());
}

INSTANTIATE_TEST_SUITE_P(Mixes, QuantizedModel,
                         ::testing::Values("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M",
                                           "Q2_K", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "BF16", "F16"));

// The bundled (trained) model in Q8_0 continues a prompt with the same greedy tokens as its
// F16 original, teacher-forced: >= 95 % of positions agree on the top token.
TEST(QuantizedModel, BundledQ8_0AgreesWithF16) {
  const std::string src = std::string(HONDO_SOURCE_DIR) + "/models/hondo-coder-tiny.gguf";
  const std::string q = test::bin("test-models/bundled-q8_0-" + std::to_string(getpid()) + ".gguf");
  requantize_model(src, q, quant_mix("Q8_0"));
  EngineOptions opt;
  Engine ef(src, opt), eq(q, opt);
  GenerateParams gp;
  gp.max_tokens = 96;
  gp.sampling.temperature = 0;
  auto seq = ef.new_sequence();
  std::vector<TokenId> ids =
      ef.tokenizer().encode("import os\n\ndef list_files(path):\n", true, false);
  const auto gen = ef.generate(*seq, ids, gp, [](std::string_view) { return true; }).generated;
  ids.insert(ids.end(), gen.begin(), gen.end());
  const double agree = test::top1_agreement(ef, eq, ids);
  RecordProperty("agreement", std::to_string(agree));
  EXPECT_GE(agree, 0.95);
  std::remove(q.c_str());
}
