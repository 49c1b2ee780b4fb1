// Sampler, generation loop (stop strings, limits, streaming), chat formats and truncation.
#include <sys/resource.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fp16.h"
#include "core/huge_pages.h"
#include "kernels/quant.h"
#include "model/kv_cache.h"
#include "runtime/bench.h"
#include "runtime/chat.h"
#include "runtime/engine.h"
#include "test_util.h"

using namespace hondo;

namespace {

std::vector<float> test_logits(int n, uint64_t seed) {
  std::vector<float> l(static_cast<size_t>(n));
  uint64_t s = seed;
  for (float& v : l) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = float((s >> 40) % 1000) / 100.0f;
  }
  return l;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0;
  Sampler s(p);
  std::vector<float> l = {1, 5, 3, 5, 2};
  EXPECT_EQ(s.sample(l.data(), 5, {}), 1);
}

TEST(Sampler, SameSeedSameSamplesDifferentSeedsDiffer) {
  const auto l = test_logits(1000, 1);
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f;
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<TokenId> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(l.data(), 1000, out));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(Sampler, TopKOneIsGreedy) {
  const auto l = test_logits(500, 2);
  SamplerParams p;
  p.temperature = 1.5f, p.top_k = 1;
  Sampler s(p);
  const TokenId best = TokenId(std::max_element(l.begin(), l.end()) - l.begin());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(l.data(), 500, {}), best);
}

TEST(Sampler, TopPAndMinPRestrictTheDraw) {
  // Token 0 has ~88 % of the mass at temperature 1.
  std::vector<float> l = {4.0f, 2.0f, 0.0f, 0.0f, 0.0f};
  SamplerParams p;
  p.temperature = 1.0f, p.top_k = 0, p.top_p = 0.8f, p.min_p = 0.0f;
  Sampler top_p(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(top_p.sample(l.data(), 5, {}), 0);
  p.top_p = 1.0f, p.min_p = 0.1f;  // keeps tokens with p >= 0.1 * p_max: 0 and 1
  Sampler min_p(p);
  for (int i = 0; i < 200; ++i) EXPECT_LE(min_p.sample(l.data(), 5, {}), 1);
}

TEST(Sampler, PenaltiesPushRepeatedTokensDown) {
  std::vector<float> l = {3.0f, 2.9f, 1.0f};
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 1.2f;  // 3.0 / 1.2 = 2.5 < 2.9
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0}), 1);
  p.repeat_penalty = 1.0f;
  p.frequency_penalty = 0.1f;  // 3.0 - 2 * 0.1 = 2.8 < 2.9
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0, 0}), 1);
  p.frequency_penalty = 0, p.presence_penalty = 0.05f;  // 2.95 > 2.9
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0, 0}), 0);
}

class Generation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string m = test::shared("testdata/models/stories260K/stories260K-f32.gguf");
    if (!std::filesystem::exists(m)) return;
    EngineOptions opt;
    opt.n_ctx = 128;
    engine_ = new Engine(m, opt);
  }
  static void TearDownTestSuite() { delete engine_; }
  void SetUp() override {
    if (!engine_) GTEST_FAIL() << "missing stories260K test model";
  }
  GenerateResult run(const std::string& prompt, GenerateParams gp,
                     std::string* streamed = nullptr) {
    auto seq = engine_->new_sequence();
    std::string s;
    auto r = engine_->generate(*seq, engine_->tokenizer().encode(prompt, true, false), gp,
                               [&](std::string_view t) {
                                 s += t;
                                 return true;
                               });
    if (streamed) *streamed = s;
    return r;
  }
  static Engine* engine_;
};
Engine* Generation::engine_ = nullptr;

TEST_F(Generation, StopStringEndsOutputBeforeIt) {
  GenerateParams gp;
  gp.sampling.temperature = 0;
  gp.max_tokens = 100;
  const std::string full =
      run("Once upon a time", gp).text;  // ", there was a little girl named Lily..."
  ASSERT_NE(full.find("Lily"), std::string::npos);
  gp.stop = {"Lily"};
  std::string streamed;
  const auto r = run("Once upon a time", gp, &streamed);
  EXPECT_EQ(r.reason, FinishReason::StopString);
  EXPECT_EQ(r.text, full.substr(0, full.find("Lily")));
  EXPECT_EQ(streamed, r.text);  // nothing of the stop string was streamed
}

TEST_F(Generation, MaxTokensAndContextLimits) {
  GenerateParams gp;
  gp.sampling.temperature = 0;
  gp.max_tokens = 7;
  auto r = run("Once", gp);
  EXPECT_EQ(r.generated.size(), 7u);
  EXPECT_EQ(r.reason, FinishReason::MaxTokens);
  gp.max_tokens = -1;  // runs until the 128-token context is full
  r = run("Once", gp);
  EXPECT_TRUE(r.reason == FinishReason::ContextFull || r.reason == FinishReason::EndOfGeneration);
  if (r.reason == FinishReason::ContextFull) {
    EXPECT_EQ(int(r.generated.size()) + 2, 128 + 1);  // BOS + "Once" + generated, last not cached
  }
  // A prompt longer than the context is a clear error.
  std::string long_prompt;
  for (int i = 0; i < 200; ++i) long_prompt += "Once upon a time ";
  EXPECT_THROW(run(long_prompt, gp), Error);
}

TEST_F(Generation, ReusesCachedPrefix) {
  GenerateParams gp;
  gp.sampling.temperature = 0;
  gp.max_tokens = 5;
  auto seq = engine_->new_sequence();
  const auto& tok = engine_->tokenizer();
  auto sink = [](std::string_view) { return true; };
  const auto p1 = tok.encode("Once upon a time, there was", true, false);
  const auto r1 = engine_->generate(*seq, p1, gp, sink);
  auto p2 = p1;
  p2.insert(p2.end(), r1.generated.begin(), r1.generated.end() - 1);  // what the cache holds
  const auto r2 = engine_->generate(*seq, p2, gp, sink);
  EXPECT_EQ(r2.reused_tokens, int(p2.size()) - 1);
  // The same continuation as from scratch.
  auto fresh = engine_->new_sequence();
  EXPECT_EQ(engine_->generate(*fresh, p2, gp, sink).generated, r2.generated);
}

TEST(StreamDecoder, NeverSplitsUtf8) {
  auto f = GgufFile::open(test::vocab("deepseek-coder"));
  const Tokenizer tok(Vocab::from_gguf(*f));
  const std::string text = "héllo 🦙 世界 ✅ done";
  const auto ids = tok.encode(text, false, false);
  StreamDecoder dec(tok);
  std::string out;
  for (TokenId t : ids) {
    const std::string chunk = dec.push(t);
    // Every chunk is valid UTF-8 on its own.
    for (size_t i = 0; i < chunk.size();) {
      const size_t n = [&] {
        const auto c = uint8_t(chunk[i]);
        return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      }();
      ASSERT_LE(i + n, chunk.size()) << "split character in chunk";
      i += n;
    }
    out += chunk;
  }
  out += dec.flush();
  EXPECT_EQ(out, text);
}

TEST(Tokenizer, SpecialTokensParsedOnlyWhenAsked) {
  auto f = GgufFile::open(test::vocab("deepseek-coder"));
  const Tokenizer tok(Vocab::from_gguf(*f));
  const TokenId eot = tok.vocab().find("<|EOT|>");
  ASSERT_GE(eot, 0);
  const auto parsed = tok.encode("hi<|EOT|>", false, true);
  EXPECT_EQ(parsed.back(), eot);
  const auto plain = tok.encode("hi<|EOT|>", false, false);
  EXPECT_EQ(std::find(plain.begin(), plain.end(), eot), plain.end());
  EXPECT_TRUE(tok.vocab().is_eog(eot));
  // BOS is added when the model asks for it.
  const auto with_bos = tok.encode("hi", true, false);
  EXPECT_EQ(with_bos.front(), tok.vocab().bos);
}

// The built-in chat formats render exactly what the official templates render (llama.cpp's
// chat-template test expectations).
TEST(ChatFormat, MatchesOfficialTemplates) {
  std::ifstream in(test::shared("testdata/hf/chat_template_expected_llamacpp.json"));
  ASSERT_TRUE(in) << "missing chat template expectations";
  nlohmann::json j;
  in >> j;
  std::vector<ChatMessage> msgs;
  for (const auto& m : j["conversation"])
    msgs.push_back({m[0].get<std::string>(), m[1].get<std::string>()});
  Vocab v;  // only the EOS text matters for rendering
  v.tokens = {"<｜end▁of▁sentence｜>"};
  v.eos = 0;
  EXPECT_EQ(render_chat(ChatFormat::DeepSeekCoder, msgs, v),
            j["deepseek-coder-instruct"]["expected"].get<std::string>());
  EXPECT_EQ(render_chat(ChatFormat::DeepSeekLlm, msgs, v),
            j["deepseek-v2-chat"]["expected"].get<std::string>());
  // R1: reasoning of earlier answers is dropped, the answer cue opens a <think> block.
  std::vector<ChatMessage> r1 = {
      {"user", "2+2?"}, {"assistant", "<think>\nadd</think>\n\n4"}, {"user", "3+3?"}};
  EXPECT_EQ(render_chat(ChatFormat::DeepSeekR1, r1, v),
            "<｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><"
            "think>\n");
}

TEST(ChatFormat, DetectedFromTemplateOrPreTokenizer) {
  for (const char* name : {"deepseek-coder", "deepseek-llm", "deepseek-r1-qwen"}) {
    auto f = GgufFile::open(test::vocab(std::string(name) == "deepseek-r1-qwen" ? "qwen2" : name));
    Vocab v = Vocab::from_gguf(*f);
    if (std::string(name) == "deepseek-r1-qwen")
      v.pre = "deepseek-r1-qwen", v.chat_template.clear();
    const ChatFormat want = std::string(name) == "deepseek-coder" ? ChatFormat::DeepSeekCoder
                            : std::string(name) == "deepseek-llm" ? ChatFormat::DeepSeekLlm
                                                                  : ChatFormat::DeepSeekR1;
    EXPECT_EQ(detect_chat_format(v), want) << name;
  }
}

TEST(ChatFormat, TruncationKeepsSystemAndRecentTurns) {
  auto f = GgufFile::open(test::vocab("deepseek-llm"));
  const Tokenizer tok(Vocab::from_gguf(*f));
  std::vector<ChatMessage> msgs = {{"system", "Be brief."}};
  for (int i = 0; i < 10; ++i) {
    msgs.push_back(
        {"user", "Question number " + std::to_string(i) + " about something long enough."});
    msgs.push_back({"assistant", "Answer number " + std::to_string(i) + "."});
  }
  msgs.push_back({"user", "Final question?"});
  int dropped = 0;
  const auto all = chat_prompt(ChatFormat::DeepSeekLlm, msgs, tok, 100000, &dropped);
  EXPECT_EQ(dropped, 0);
  const auto cut = chat_prompt(ChatFormat::DeepSeekLlm, msgs, tok, int(all.size()) / 2, &dropped);
  EXPECT_LE(cut.size(), all.size() / 2);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(dropped % 2, 0);  // whole user/assistant pairs
  const std::string text = tok.decode(cut, true);
  EXPECT_NE(text.find("Be brief."), std::string::npos);
  EXPECT_NE(text.find("Final question?"), std::string::npos);
  EXPECT_EQ(text.find("Question number 0 "), std::string::npos);
  EXPECT_THROW(chat_prompt(ChatFormat::DeepSeekLlm, msgs, tok, 5, &dropped), Error);
}

}  // namespace

// The roofline holds each stretch of decoding to the bandwidth measured next to it.
TEST(Roofline, EachStretchAgainstItsOwnBandwidth) {
  // 1 GB at 50 GB/s in 25 ms (80 % of 20 ms), 1 GB at 25 GB/s in 50 ms (80 % of 40 ms).
  Roofline r = roofline_of({{0.025, 1e9, 50}, {0.050, 1e9, 25}});
  EXPECT_NEAR(r.fraction, 0.8, 1e-12);
  EXPECT_NEAR(r.bandwidth_gbps, 2e9 / 0.060 / 1e9, 1e-9);  // 2 GB in 60 ms at those rates
  // At full speed in one stretch and half in the other: 60 ms of roofline time in 80 ms.
  r = roofline_of({{0.020, 1e9, 50}, {0.060, 1e9, 25}});
  EXPECT_NEAR(r.fraction, 0.060 / 0.080, 1e-12);
  EXPECT_EQ(roofline_of({}).fraction, 0);
  EXPECT_EQ(roofline_of({{0.1, 1e9, 0}}).fraction, 0);  // no bandwidth measured: no figure
}

// The KV cache commits its pages ahead of the positions written, whole blocks of positions at
// a time: every value stored comes back across commit steps (three here), with rows split into
// heads (stored by head within blocks of positions) or not, and committing pages keeps what
// they hold. The values are small integers, exact in
// F32 and F16; Q8_0 rounds each to within half its block's step (max |x| / 127) plus the
// scale's F16 rounding.
TEST(KvCachePages, ValuesSurviveCommitSteps) {
  const int n_layer = 3, n_ctx = 2 * KvCache::kBlock + 188;
  struct Case {
    DType k_type, v_type;
    int n_heads, kw, vw, begin, count;  // [begin, begin + count): a load across heads
  };
  for (const Case& c : {Case{DType::F32, DType::F32, 1, 96, 40, 7, 50},
                        Case{DType::F16, DType::F16, 1, 96, 40, 7, 50},
                        Case{DType::F32, DType::F32, 4, 96, 40, 7, 50},
                        Case{DType::F16, DType::F16, 8, 96, 40, 7, 50},
                        Case{DType::Q8_0, DType::Q8_0, 2, 128, 64, 32, 64},
                        Case{DType::Q8_0, DType::F16, 1, 96, 40, 32, 64}}) {
    const int kw = c.kw, vw = c.vw;
    KvCache cache(n_layer, n_ctx, kw, vw, c.k_type, c.v_type, c.n_heads);
    auto value = [](int l, int p, int i) { return float((l * 7 + p * 3 + i) % 61) - 30.0f; };
    auto tolerance = [](DType t) { return t == DType::Q8_0 ? 30.0f / 254 + 30.0f / 1024 : 0.0f; };
    const float tk = tolerance(c.k_type), tv = tolerance(c.v_type);
    std::vector<float> k(static_cast<size_t>(kw)), v(static_cast<size_t>(vw)),
        out(static_cast<size_t>(kw));
    for (int p = 0; p < n_ctx; ++p)
      for (int l = 0; l < n_layer; ++l) {
        for (int i = 0; i < kw; ++i) k[size_t(i)] = value(l, p, i);
        for (int i = 0; i < vw; ++i) v[size_t(i)] = -value(l, p, i);
        cache.store(l, p, k.data(), v.data());
      }
    const std::string what = std::string(dtype_name(c.k_type)) + "/" + dtype_name(c.v_type) +
                             " heads " + std::to_string(c.n_heads);
    for (int p = 0; p < n_ctx; ++p)
      for (int l = 0; l < n_layer; ++l) {
        cache.load_k(l, p, 0, kw, out.data());
        for (int i = 0; i < kw; ++i)
          ASSERT_NEAR(out[size_t(i)], value(l, p, i), tk) << what << " " << l << " " << p;
        cache.load_v(l, p, 0, vw, out.data());
        for (int i = 0; i < vw; ++i)
          ASSERT_NEAR(out[size_t(i)], -value(l, p, i), tv) << what << " " << l << " " << p;
        cache.load_k(l, p, c.begin, c.count, out.data());  // across heads
        for (int i = 0; i < c.count; ++i)
          ASSERT_NEAR(out[size_t(i)], value(l, p, c.begin + i), tk) << what << " " << l << " " << p;
      }
    // One head's rows of a block lie one after the other, k_head_bytes() apart.
    const int hk = kw / c.n_heads, hv = vw / c.n_heads, h = c.n_heads - 1, l = 2;
    const int block = (n_ctx - 1) / KvCache::kBlock, p0 = block * KvCache::kBlock;
    std::vector<float> row(size_t(std::max(hk, hv)));
    for (int p = p0; p < n_ctx; ++p) {
      dequantize_row(c.k_type, cache.k_block(l, h, block) + size_t(p - p0) * cache.k_head_bytes(),
                     row.data(), hk);
      for (int i = 0; i < hk; ++i)
        ASSERT_NEAR(row[size_t(i)], value(l, p, h * hk + i), tk) << what << " " << p << " " << i;
      dequantize_row(c.v_type, cache.v_block(l, h, block) + size_t(p - p0) * cache.v_head_bytes(),
                     row.data(), hv);
      for (int i = 0; i < hv; ++i)
        ASSERT_NEAR(row[size_t(i)], -value(l, p, h * hv + i), tv) << what << " " << p << " " << i;
    }
    EXPECT_THROW(cache.store(0, n_ctx, k.data(), v.data()), Error);
  }
  EXPECT_THROW(KvCache(1, 16, 96, 40, DType::F16, DType::F16, 7), Error);  // rows that don't split
  EXPECT_THROW(KvCache(1, 16, 64, 64, DType::Q8_0, DType::Q8_0, 4), Error);  // heads of 16 values
  EXPECT_THROW(KvCache(1, 16, 64, 64, DType::Q4_0, DType::Q4_0, 1), Error);  // not a cache type
  HugeBuffer mem = alloc_huge(5 * 4096 + 100, "test");
  for (size_t i = 0; i < 5 * 4096 + 100; ++i) mem.get()[i] = uint8_t(i * 13);
  commit_pages(mem.get() + 4000, 3 * 4096);  // not page-aligned either end
  for (size_t i = 0; i < 5 * 4096 + 100; ++i) ASSERT_EQ(mem.get()[i], uint8_t(i * 13)) << i;
}

// Decoding a token allocates nothing large: the logits (151936 floats for a Qwen2 vocabulary)
// stay with the sequence, the layers' working buffers and the sampler's candidates with their
// owners. glibc serves blocks over 128 KiB with mmap and unmaps them when freed, so a buffer
// made anew each token was faulted in anew each token (~300 faults a token here, ~15 us each on
// a virtual machine). Checked in a fresh process (this test run again) with the allocator's
// default settings: glibc raises its limits after freeing large blocks, which this process has
// done writing the model, and would then hide such a buffer. Both ways of decoding: one token
// per Engine::eval, and the generation loop sampling from the whole vocabulary.
TEST(DecodeMemory, OneTokenStepsFaultInNoNewPages) {
  auto faults = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return long(ru.ru_minflt);
  };
  if (const char* path = std::getenv("HONDO_DECODE_MEMORY_MODEL")) {  // the fresh process
    EngineOptions eo;
    eo.n_threads = 2;
    eo.n_ctx = 96;
    Engine e(path, eo);
    ASSERT_GT(size_t(e.model().n_vocab()) * sizeof(float), size_t(512) << 10);
    const int steps = 16;
    auto seq = e.new_sequence();
    std::vector<TokenId> ctx{100};
    e.eval(*seq, ctx);
    for (int i = 0; i < 4; ++i) ctx.push_back(TokenId(200 + i)), e.eval(*seq, ctx);
    long before = faults();
    for (int i = 0; i < steps; ++i) ctx.push_back(TokenId(300 + 7 * i)), e.eval(*seq, ctx);
    EXPECT_LT(faults() - before, 4L * steps) << "page faults over " << steps << " evaluated tokens";

    // generate: the fault count at each token's text, from the 5th token to the 21st.
    GenerateParams gp;
    gp.max_tokens = 24;
    gp.sampling.temperature = 1.0f, gp.sampling.top_k = 0, gp.sampling.top_p = 1.0f;
    gp.sampling.min_p = 0.0f, gp.sampling.repeat_penalty = 1.1f, gp.sampling.seed = 7;
    gp.render_special = true;  // every token has text, so on_text sees each one
    std::vector<long> at;
    auto fresh = e.new_sequence();
    const auto r = e.generate(*fresh, {TokenId(100)}, gp, [&](std::string_view) {
      at.push_back(faults());
      return true;
    });
    ASSERT_GE(at.size(), size_t(4 + steps + 1)) << r.generated.size() << " tokens generated";
    EXPECT_LT(at[4 + steps] - at[4], 4L * steps)
        << "page faults over " << steps << " generated tokens";
    return;
  }
  const std::string model = test::synthetic("qwen2-f32-decode-memory", test::tiny("tiny-qwen2"));
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string cmd = "HONDO_DECODE_MEMORY_MODEL='" + model + "' '" + self +
                          "' --gtest_filter=DecodeMemory.OneTokenStepsFaultInNoNewPages";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// The probe reads only memory that decoding reads: on file pages (nothing repacked) the routed
// experts, an untied token embedding and the multi-token-prediction block are left out, every
// other matrix is in; the bytes per token count experts at their used share.
TEST(Roofline, ProbeMemoryIsWhatDecodingReads) {
  const std::string path = test::synthetic("bench-memory-v3", test::tiny("tiny-v3"));
  const auto f = GgufFile::open(path);
  const std::string a = f->get_str("general.architecture");
  const int mtp = int(f->get_int(a + ".block_count")) - 1;
  std::set<const void*> in;
  for (const MemoryRange& m : weight_memory(*f)) in.insert(m.data);
  size_t experts = 0, used_share = 0;
  for (const Tensor& t : f->tensors()) {
    if (t.n_dims < 2) continue;
    const bool expert = t.name.find("_exps.") != std::string::npos;
    const bool left_out = expert || t.name.rfind("token_embd.", 0) == 0 ||
                          t.name.rfind("blk." + std::to_string(mtp) + ".", 0) == 0;
    EXPECT_EQ(in.count(t.data), left_out ? 0u : 1u) << t.name;
    if (expert && tensor_block_index(t.name) != mtp) experts += t.nbytes();
  }
  ASSERT_GT(experts, 0u);
  used_share = experts * size_t(f->get_int(a + ".expert_used_count")) /
               size_t(f->get_int(a + ".expert_count"));
  size_t whole = 0;
  for (const MemoryRange& m : weight_memory(*f)) whole += m.bytes;
  EXPECT_LT(decode_weight_bytes(*f), whole + used_share + 1024 * 1024);  // + embedding row, norms
  EXPECT_GE(decode_weight_bytes(*f), whole + used_share);
}

// bench --phases: every tensor falls in the phase of the forward pass that reads it, and the
// phases' bytes add up to what a decoded token reads.
TEST(Phases, TensorsFallInThePhaseThatReadsThem) {
  EXPECT_EQ(phase_of_tensor("token_embd.weight"), Phase::kEmbed);
  EXPECT_EQ(phase_of_tensor("blk.0.attn_norm.weight"), Phase::kAttention);
  EXPECT_EQ(phase_of_tensor("blk.3.attn_kv_a_mqa.weight"), Phase::kAttention);
  EXPECT_EQ(phase_of_tensor("blk.3.attn_k_b.weight"), Phase::kAttention);
  EXPECT_EQ(phase_of_tensor("blk.12.attn_qkv.bias"), Phase::kAttention);
  EXPECT_EQ(phase_of_tensor("blk.3.ffn_norm.weight"), Phase::kFfn);
  EXPECT_EQ(phase_of_tensor("blk.3.ffn_gate_inp.weight"), Phase::kFfn);
  EXPECT_EQ(phase_of_tensor("blk.3.ffn_down_exps.weight"), Phase::kFfn);
  EXPECT_EQ(phase_of_tensor("blk.3.ffn_up_shexp.weight"), Phase::kFfn);
  EXPECT_EQ(phase_of_tensor("blk.3.exp_probs_b.bias"), Phase::kFfn);
  EXPECT_EQ(phase_of_tensor("output_norm.weight"), Phase::kOutput);
  EXPECT_EQ(phase_of_tensor("output.weight"), Phase::kOutput);

  const auto f = GgufFile::open(test::synthetic("bench-memory-v3", test::tiny("tiny-v3")));
  const std::array<size_t, kPhaseCount> by_phase = decode_weight_bytes_by_phase(*f);
  size_t sum = 0;
  for (size_t b : by_phase) sum += b;
  EXPECT_EQ(sum, decode_weight_bytes(*f));
  for (Phase p : {Phase::kAttention, Phase::kFfn, Phase::kOutput})
    EXPECT_GT(by_phase[size_t(p)], 0u) << phase_name(p);
}

// The model's marks add to a recording while one is alive, and to nothing otherwise; the
// dense and the DeepSeek2 forward passes both mark every phase.
TEST(Phases, ForwardPassesMarkEveryPhaseWhileRecorded) {
  for (const char* name : {"tiny-qwen2", "tiny-v3"}) {
    EngineOptions eo;
    eo.n_threads = 2;
    eo.n_ctx = 32;
    Engine e(test::synthetic(std::string("phases-") + name, test::tiny(name)), eo);
    auto seq = e.new_sequence();
    std::vector<TokenId> ctx{1, 2, 3};
    PhaseTotals totals;
    {
      PhaseRecording on(totals);
      EXPECT_EQ(PhaseRecording::current(), &totals);
      e.eval(*seq, ctx);
      ctx.push_back(4);
      e.eval(*seq, ctx);
    }
    EXPECT_EQ(PhaseRecording::current(), nullptr);
    for (Phase p : {Phase::kAttention, Phase::kFfn, Phase::kOutput})
      EXPECT_GT(totals.seconds[size_t(p)], 0.0) << name << " " << phase_name(p);
    const PhaseTotals before = totals;
    ctx.push_back(5);
    e.eval(*seq, ctx);
    EXPECT_EQ(totals.seconds, before.seconds) << name;
  }
}
