// DeepSeek-V2/V3: the fast path (absorbed MLA, experts grouped per batch) against the naive
// reference (decompressed K/V, per-token experts), hand-computed routing for each gating
// variant, both KV up-projection layouts, and the MLA cache size.
#include <algorithm>
#include <cmath>
#include <random>

#include "model/deepseek2.h"
#include "model/latent_attention.h"
#include "model/mla.h"
#include "model/moe.h"
#include "runtime/bench.h"
#include "runtime/engine.h"
#include "test_util.h"

using namespace hondo;

namespace {

SynthSpec deepseek(const std::string& preset) {
  SynthSpec s = SynthSpec::preset(preset);
  s.vocab_path = test::vocab(preset == "tiny-v3" ? "deepseek-v3" : "deepseek-llm");
  return s;
}

using test::argmax;
using test::max_abs_diff;
using test::range;

// 512 prompt tokens (prefilled in chunks), then 64 greedy tokens one by one: every position's
// logits equal the naive reference's within 1e-4 of the logit range. split_positions: decode
// steps over at least that many positions split them between the threads (mla.h).
void expect_reference_logits(const std::string& preset, MlaMode mode,
                             int64_t split_positions = kMlaSplitPositions) {
  const std::string path = test::synthetic(preset + "-ref", deepseek(preset));
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 640;
  opt.n_batch = 200;  // chunks of 200, 200 and 112: the FFN's token passes too (model/ffn.h)
  opt.n_threads = 2;
  Engine e(path, opt);
  auto& model = dynamic_cast<DeepSeek2Model&>(e.model());
  model.set_mla_mode(mode);
  model.set_mla_split_positions(split_positions);
  std::string text;
  for (int i = 0; text.size() < 4000; ++i)
    text += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n";
  std::vector<TokenId> ids = e.tokenizer().encode(text, true, false);
  ASSERT_GE(ids.size(), 512u);
  ids.resize(512);
  const int V = e.model().n_vocab();
  auto seq = e.new_sequence();
  std::vector<float> fast = e.eval(*seq, ids, true);
  for (int i = 0; i < 64; ++i) {
    ids.push_back(argmax(fast.data() + fast.size() - size_t(V), V));
    const auto l = e.eval(*seq, ids, false);
    fast.insert(fast.end(), l.begin(), l.end());
  }
  const std::vector<float> ref = e.model().reference_logits(ids, false);
  ASSERT_EQ(ref.size(), fast.size());
  float worst = 0;
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* r = ref.data() + p * size_t(V);
    const float rel = max_abs_diff(fast.data() + p * size_t(V), r, size_t(V)) / range(r, size_t(V));
    worst = std::max(worst, rel);
    ASSERT_LE(rel, 1e-4f) << preset << " position " << p;
  }
  ::testing::Test::RecordProperty("worst_relative_diff", std::to_string(worst));
}

class AbsorbedVsNaive : public ::testing::TestWithParam<std::tuple<const char*, MlaMode>> {};

TEST_P(AbsorbedVsNaive, LogitsMatchOver512PlusDecode64) {
  expect_reference_logits(std::get<0>(GetParam()), std::get<1>(GetParam()));
}

// Every decode step with its positions split between two threads (from 512 on: two ranges of
// two chunks or more each, merged), against the same reference.
TEST(DeepSeek2, DecodeWithPositionsSplitBetweenThreadsMatchesReference) {
  for (const char* preset : {"tiny-v2-lite", "tiny-v3"}) {
    SCOPED_TRACE(preset);
    expect_reference_logits(preset, MlaMode::Absorbed, 1);
  }
}

// Every variant with attention forced absorbed, forced naive (decompressed), and chosen per
// batch by cost (which mixes both: naive for the first prefill chunk, absorbed for decode).
INSTANTIATE_TEST_SUITE_P(DeepSeek2, AbsorbedVsNaive,
                         ::testing::Combine(::testing::Values("tiny-v2-lite", "tiny-v2", "tiny-v3"),
                                            ::testing::Values(MlaMode::Absorbed, MlaMode::Naive,
                                                              MlaMode::Auto)),
                         [](const auto& p) {
                           const std::string v = std::string(std::get<0>(p.param)).substr(5);
                           const MlaMode m = std::get<1>(p.param);
                           return (v == "v2-lite" ? std::string("V2Lite")
                                   : v == "v2"    ? std::string("V2")
                                                  : std::string("V3")) +
                                  (m == MlaMode::Absorbed ? "_Absorbed"
                                   : m == MlaMode::Naive  ? "_Naive"
                                                          : "_Auto");
                         });

// Latent attention over ranges of positions (each in chunks, the softmax kept online), the
// partial results merged, against a double-precision softmax over all positions of the
// cache's stored values: 11 heads (a run of 8 and one of 3), F32, F16 and Q8_0 latents, ranges
// within and across chunks, one position alone and an empty range.
TEST(LatentAttention, RangesMergeToSoftmaxOverAllPositions) {
  constexpr int n_pos = 300, L = 96, R = 32, n_q = 11;
  const float scale = 0.2f;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> ql(size_t(n_q * L)), qr(size_t(n_q * R));
  for (float& x : ql) x = nd(rng);
  for (float& x : qr) x = nd(rng);
  for (auto [kt, vt] : {std::pair{DType::F32, DType::F32}, std::pair{DType::F16, DType::F16},
                        std::pair{DType::Q8_0, DType::F16}}) {
    SCOPED_TRACE(dtype_name(kt));
    KvCache cache(1, n_pos, L, R, kt, vt);
    std::vector<float> lat(size_t(n_pos * L)), kr(size_t(n_pos * R));  // as stored
    for (int j = 0; j < n_pos; ++j) {
      std::vector<float> c(L), k(R);
      for (float& x : c) x = nd(rng);
      for (float& x : k) x = nd(rng);
      cache.store(0, j, c.data(), k.data());
      cache.load_k(0, j, 0, L, lat.data() + j * L);
      cache.load_v(0, j, 0, R, kr.data() + j * R);
    }
    cache.set_n_past(n_pos);
    std::vector<double> want(size_t(n_q * L));  // [n_q, L]
    for (int i = 0; i < n_q; ++i) {
      std::vector<double> s(n_pos);
      for (int j = 0; j < n_pos; ++j) {
        double d = 0;
        for (int c = 0; c < L; ++c) d += double(ql[size_t(i * L + c)]) * lat[size_t(j * L + c)];
        for (int c = 0; c < R; ++c) d += double(qr[size_t(i * R + c)]) * kr[size_t(j * R + c)];
        s[size_t(j)] = d * scale;
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int j = 0; j < n_pos; ++j)
        for (int c = 0; c < L; ++c)
          want[size_t(i * L + c)] += s[size_t(j)] / sum * lat[size_t(j * L + c)];
    }
    for (const std::vector<int>& cuts : std::vector<std::vector<int>>{
             {0, 300}, {0, 1, 300}, {0, 64, 129, 300}, {0, 150, 150, 300}, {0, 37, 299, 300}}) {
      const int n_parts = int(cuts.size()) - 1;
      std::vector<float> stats(size_t(n_parts * 2 * n_q)), accs(size_t(n_parts * n_q * L));
      std::vector<LatentPartial> parts;
      for (int k = 0; k < n_parts; ++k) {
        parts.push_back({&stats[size_t(k * 2 * n_q)], &stats[size_t(k * 2 * n_q + n_q)],
                         &accs[size_t(k * n_q * L)], L});
        attend_latent_range(cache, 0, cuts[size_t(k)], cuts[size_t(k + 1)], L, R,
                            {ql.data(), L, qr.data(), R, n_q}, scale, parts.back());
      }
      std::vector<float> o(L);
      for (int i = 0; i < n_q; ++i) {
        merge_latent_partials(parts.data(), n_parts, i, L, o.data());
        for (int c = 0; c < L; ++c)
          ASSERT_NEAR(o[size_t(c)], want[size_t(i * L + c)], 2e-5)
              << n_parts << " parts, head " << i << " value " << c;
      }
    }
  }
}

// Decode steps over many positions split them, a range per thread; short contexts, single
// threads and batches of many tokens do not.
TEST(LatentAttention, SplitPositionsBetweenThreads) {
  auto split = [](const std::vector<int>& tok_pos, int n_threads, int64_t min_positions) {
    std::vector<PositionRange> r{{7, 7, 7}};  // what the call finds there is replaced
    split_positions(tok_pos, n_threads, min_positions, r);
    return r;
  };
  auto ranges = split({4999}, 2, 4096);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].begin, 0);
  EXPECT_EQ(ranges[0].end, 2500);
  EXPECT_EQ(ranges[1].begin, 2500);
  EXPECT_EQ(ranges[1].end, 5000);
  EXPECT_TRUE(split({3000}, 2, 4096).empty());
  EXPECT_TRUE(split({4999}, 1, 4096).empty());
  EXPECT_TRUE(split(std::vector<int>(kSplitTokens + 1, 5000), 2, 4096).empty());
  ranges = split({100, 4999}, 4, 1);  // the short one stays whole
  ASSERT_EQ(ranges.size(), 5u);
  EXPECT_EQ(ranges[0].token, 0);
  EXPECT_EQ(ranges[0].end, 101);
  for (size_t k = 1; k < 5; ++k) {
    EXPECT_EQ(ranges[k].token, 1);
    EXPECT_EQ(ranges[k].begin, k == 1 ? 0 : ranges[k - 1].end);
  }
  EXPECT_EQ(ranges[4].end, 5000);
}

TEST(DeepSeek2, CostModelPrefersNaiveForPrefillAbsorbedForDecode) {
  const auto c = DeepSeek2Config::from_gguf(
      *GgufFile::open(test::synthetic("v2lite-cost", deepseek("tiny-v2-lite"))));
  KvCache cache(c.n_layer, 4096, c.kv_lora_rank, c.qk_rope, DType::F32, DType::F32);
  std::vector<SeqBatch> prefill{{&cache, std::vector<TokenId>(512, 1), false}};
  EXPECT_LT(mla_cost(c, prefill, MlaMode::Naive), mla_cost(c, prefill, MlaMode::Absorbed));
  cache.set_n_past(2000);
  std::vector<SeqBatch> decode{{&cache, {1}, false}};
  EXPECT_LT(mla_cost(c, decode, MlaMode::Absorbed), mla_cost(c, decode, MlaMode::Naive));
}

TEST(DeepSeek2, KvBAndSplitLayoutsGiveSameLogits) {
  SynthSpec s = deepseek("tiny-v2");
  s.split_kv_b = true;
  const std::string split = test::synthetic("v2-split", s);
  s.split_kv_b = false;
  const std::string joined = test::synthetic("v2-joined", s);
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 64;
  Engine a(split, opt), b(joined, opt);
  EXPECT_TRUE(dynamic_cast<const DeepSeek2Model&>(a.model()).config().split_kv_b);
  EXPECT_FALSE(dynamic_cast<const DeepSeek2Model&>(b.model()).config().split_kv_b);
  const auto ids = a.tokenizer().encode("int main() { return 0; }", true, false);
  auto sa = a.new_sequence(), sb = b.new_sequence();
  const auto la = a.eval(*sa, ids, true), lb = b.eval(*sb, ids, true);
  EXPECT_LE(max_abs_diff(la.data(), lb.data(), la.size()), 1e-5f * range(la.data(), la.size()));
}

// An older file's quantized attn_kv_b is split into Q8_0 copies where their rows hold whole
// blocks (repacked into tiles where they hold whole tile groups, as here: rows of 64), float
// ones into copies of their own type; the joined model's logits follow the dequantizing
// reference (which reads attn_kv_b itself) over a prefill and decode steps, and the bench
// counts the copies' bytes for attn_kv_b.
TEST(DeepSeek2, JoinedKvBSplitIntoQ8Copies) {
  SynthSpec s = deepseek("tiny-v2-lite");
  s.type = DType::Q4_0;
  s.split_kv_b = false;
  s.qk_nope = 64, s.kv_lora_rank = 64, s.v_head = 32;
  const std::string path = test::synthetic("v2-q4-joined-64", s);
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 64;
  Engine e(path, opt);
  const DeepSeek2Config& c = dynamic_cast<const DeepSeek2Model&>(e.model()).config();
  ASSERT_FALSE(c.split_kv_b);
  EXPECT_EQ(kv_b_copy_type(c, DType::Q4_0), DType::Q8_0);
  EXPECT_EQ(kv_b_copy_type(c, DType::F16), DType::F16);
  EXPECT_EQ(kv_b_copy_type(c, DType::BF16), DType::BF16);
  DeepSeek2Config odd = c;
  odd.qk_nope = 16;  // rows of W_UK^T shorter than a block
  EXPECT_EQ(kv_b_copy_type(odd, DType::Q4_0), DType::F32);

  std::vector<TokenId> ids =
      e.tokenizer().encode("def add(a, b):\n    return a + b\n", true, false);
  const int V = e.model().n_vocab();
  auto seq = e.new_sequence();
  std::vector<float> fast = e.eval(*seq, ids, true);
  for (int step = 0; step < 4; ++step) {  // decode steps, one token at a time
    ids.push_back(TokenId(100 + 37 * step));
    const std::vector<float>& l = e.eval(*seq, ids);
    fast.insert(fast.end(), l.begin(), l.end());
  }
  const std::vector<float> ref = e.model().reference_logits(ids, false);
  ASSERT_EQ(fast.size(), ref.size());
  for (size_t p = 0; p < ids.size(); ++p) {
    const float* r = ref.data() + p * size_t(V);
    EXPECT_LE(max_abs_diff(fast.data() + p * size_t(V), r, size_t(V)), 0.02f * range(r, size_t(V)))
        << "position " << p;
  }

  // The bench: the joined file reads what the split one does, with the Q8_0 copies for the
  // split file's attn_k_b and attn_v_b.
  s.split_kv_b = true;
  const std::string split_path = test::synthetic("v2-q4-split-64", s);
  auto joined = GgufFile::open(path), split = GgufFile::open(split_path);
  size_t copies = 0, split_bytes = 0;
  for (const Tensor& t : joined->tensors())
    if (t.name.find(".attn_kv_b.") != std::string::npos)
      copies += row_bytes(DType::Q8_0, t.elements());
  for (const Tensor& t : split->tensors())
    if (t.name.find(".attn_k_b.") != std::string::npos ||
        t.name.find(".attn_v_b.") != std::string::npos)
      split_bytes += t.nbytes();
  EXPECT_GT(copies, 0u);
  EXPECT_EQ(decode_weight_bytes(*joined), decode_weight_bytes(*split) - split_bytes + copies);
}

// A quantized file stores its KV up-projection (attn_k_b/attn_v_b, or attn_kv_b) quantized
// like its other matrices, as llama.cpp's converter and quantizer do, wherever its rows hold
// whole blocks (tiny-v2-lite: W_UK^T rows of qk_nope = 16 values cannot, so they stay F32).
// The engine reads those layouts as the dequantizing reference does.
TEST(DeepSeek2, QuantizedFileKeepsKvUpProjectionQuantized) {
  for (const bool split : {true, false}) {
    SynthSpec s = deepseek("tiny-v2-lite");
    s.type = DType::Q8_0;
    s.split_kv_b = split;
    const std::string path = test::synthetic(split ? "v2-q8-split" : "v2-q8-joined", s);
    {
      auto f = GgufFile::open(path);
      if (split) {
        EXPECT_EQ(f->find_tensor("blk.1.attn_k_b.weight")->type, DType::F32);
        EXPECT_EQ(f->find_tensor("blk.1.attn_v_b.weight")->type, DType::Q8_0);
      } else {
        EXPECT_EQ(f->find_tensor("blk.1.attn_kv_b.weight")->type, DType::Q8_0);
      }
    }
    EngineOptions opt;
    opt.kv_type = DType::F32;
    opt.n_ctx = 64;
    Engine e(path, opt);
    const auto ids = e.tokenizer().encode("def add(a, b):\n    return a + b\n", true, false);
    const int V = e.model().n_vocab();
    auto seq = e.new_sequence();
    const std::vector<float> fast = e.eval(*seq, ids, true);
    const std::vector<float> ref = e.model().reference_logits(ids, false);
    ASSERT_EQ(fast.size(), ref.size());
    for (size_t p = 0; p < ids.size(); ++p) {
      const float* r = ref.data() + p * size_t(V);
      EXPECT_LE(max_abs_diff(fast.data() + p * size_t(V), r, size_t(V)),
                0.02f * range(r, size_t(V)))
          << (split ? "split" : "joined") << " position " << p;
    }
  }
}

TEST(DeepSeek2, VariantsDetectedFromKeysAndTensors) {
  const auto lite = DeepSeek2Config::from_gguf(
      *GgufFile::open(test::synthetic("v2lite-cfg", deepseek("tiny-v2-lite"))));
  EXPECT_EQ(lite.q_lora_rank, 0);
  EXPECT_EQ(lite.gating, Gating::Softmax);
  EXPECT_FALSE(lite.expert_bias);
  EXPECT_TRUE(lite.yarn);
  EXPECT_NEAR(lite.mscale_all_dim, 0.707f, 1e-6f);
  const auto v3 =
      DeepSeek2Config::from_gguf(*GgufFile::open(test::synthetic("v3-cfg", deepseek("tiny-v3"))));
  EXPECT_EQ(v3.q_lora_rank, 48);
  EXPECT_EQ(v3.gating, Gating::Sigmoid);
  EXPECT_TRUE(v3.expert_bias);
  EXPECT_TRUE(v3.norm_topk);
  EXPECT_EQ(v3.n_group, 8);
  EXPECT_EQ(v3.n_group_used, 4);
  EXPECT_FLOAT_EQ(v3.routed_scale, 2.5f);
  EXPECT_EQ(v3.n_nextn, 1);
  EXPECT_EQ(v3.n_layer, 3);
}

// ---- routing, hand-computed ----------------------------------------------------------------

DeepSeek2Config router(int n_expert, int used, int groups, int groups_used, Gating g, bool norm,
                       float scale) {
  DeepSeek2Config c;
  c.n_expert = n_expert, c.n_expert_used = used, c.n_group = groups, c.n_group_used = groups_used;
  c.gating = g, c.norm_topk = norm, c.routed_scale = scale;
  return c;
}

TEST(Routing, SoftmaxTopK) {  // V2-Lite: softmax over all experts, top-k, weights unnormalised
  const auto c = router(4, 2, 1, 1, Gating::Softmax, false, 1.0f);
  const float logits[4] = {1, 2, 3, 4};
  int ids[2];
  float w[2];
  route_token(c, logits, nullptr, ids, w);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(4.0);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], std::exp(4.0) / z, 1e-6);  // 0.6439
  EXPECT_NEAR(w[1], std::exp(3.0) / z, 1e-6);  // 0.2369
}

TEST(Routing, GroupLimitedGreedy) {  // V2: group score = max; only the best 2 of 4 groups
  const auto c = router(8, 2, 4, 2, Gating::Softmax, false, 16.0f);
  // groups: {0,1} max 5 | {2,3} max 4 | {4,5} max 0 | {6,7} max 4.5
  const float logits[8] = {0, 5, 4, 3.9f, 0, 0, 4.5f, 0};
  int ids[2];
  float w[2];
  route_token(c, logits, nullptr, ids, w);
  // Best groups: {0,1} (5) and {6,7} (4.5); expert 2 (4) is excluded with its group.
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 6);
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  EXPECT_NEAR(w[0], 16.0 * std::exp(5.0) / z, 1e-5);
  EXPECT_NEAR(w[1], 16.0 * std::exp(4.5) / z, 1e-5);
}

TEST(Routing, SigmoidWithBiasNoauxTc) {  // V3: bias picks, unbiased scores weigh, top-2-sum groups
  const auto c = router(8, 2, 4, 2, Gating::Sigmoid, true, 2.5f);
  const float logits[8] = {2.0f, 1.0f, 0.0f, 0.0f, 1.5f, 1.4f, 0.5f, 0.4f};
  // The bias lifts experts 2 and 3 (group 1) above group 2 ({4,5}), which has higher raw scores.
  const float bias[8] = {0, 0, 0.9f, 0.9f, 0, 0, 0, 0};
  int ids[2];
  float w[2];
  route_token(c, logits, bias, ids, w);
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  // group scores (sum of top-2 of score + bias): g0 0.881+0.731=1.612, g1 1.4+1.4=2.8,
  // g2 0.818+0.802=1.620, g3 0.622+0.599=1.221 -> g1 and g2 kept.
  // choice values: e2 = e3 = 0.5+0.9 = 1.4 (tie: lower index first), e4 0.818, e5 0.802
  EXPECT_EQ(ids[0], 2);
  EXPECT_EQ(ids[1], 3);
  // Weights use the unbiased sigmoid scores, normalised, times 2.5.
  EXPECT_NEAR(w[0], 2.5 * sig(0) / (sig(0) + sig(0)), 1e-6);
  EXPECT_NEAR(w[1], 1.25, 1e-6);
  // Without the bias, groups 0 and 2 win and experts 0 and 4 are chosen.
  route_token(c, logits, nullptr, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 4);
  EXPECT_NEAR(w[0], 2.5 * sig(2.0) / (sig(2.0) + sig(1.5)), 1e-6);
}

TEST(DeepSeek2, MlaCacheIsLatentPlusRopeKey) {
  const std::string path = test::synthetic("v2lite-kv", deepseek("tiny-v2-lite"));
  auto m = Model::load(path);
  const auto& c = dynamic_cast<const DeepSeek2Model&>(*m).config();
  // (kv_lora_rank + qk_rope) x layers x 2 bytes (F16)
  EXPECT_EQ(m->kv_bytes_per_token(DType::F16),
            size_t((c.kv_lora_rank + c.qk_rope) * c.n_layer * 2));
  // MHA: n_head x (qk_head + v_head) x layers x 2 bytes
  EXPECT_EQ(m->kv_bytes_per_token_mha(DType::F16),
            size_t(c.n_head * (c.qk_head() + c.v_head) * c.n_layer * 2));
}

TEST(DeepSeek2, YarnSoftmaxScale) {
  DeepSeek2Config c;
  c.qk_nope = 128, c.qk_rope = 64, c.yarn = true, c.yarn_factor = 40, c.mscale_all_dim = 0.707f;
  const double m = 0.1 * 0.707 * std::log(40.0) + 1.0;  // 1.2608
  EXPECT_NEAR(c.softmax_scale(), m * m / std::sqrt(192.0), 1e-6);
  c.yarn = false;
  EXPECT_NEAR(c.softmax_scale(), 1.0 / std::sqrt(192.0), 1e-7);
}

}  // namespace
