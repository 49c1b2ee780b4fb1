// The fast forward path (batched, threaded, KV cache) against the scalar reference, on
// synthetic LLaMA and Qwen2 models, and the trained stories260K model against its published
// greedy outputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "io/requantize.h"
#include "kernels/qdot.h"
#include "model/attention.h"
#include "model/dense.h"
#include "model/ffn.h"
#include "model/kv_cache.h"
#include "model/layers.h"
#include "runtime/engine.h"
#include "test_util.h"

using namespace hondo;

namespace {

using test::argmax;
using test::max_abs_diff;
using test::range;
using test::top1_agreement;

std::vector<TokenId> prompt_ids(const Engine& e, int n) {
  // A natural prompt, then repeated so that tests can ask for any length.
  std::string text = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n";
  std::vector<TokenId> ids = e.tokenizer().encode(text, true, false);
  while (int(ids.size()) < n) ids.push_back(ids[ids.size() % 7 + 1]);
  ids.resize(size_t(n));
  return ids;
}

struct Case {
  const char* preset;
  const char* tag;
};

class FastVsReference : public ::testing::TestWithParam<Case> {
 protected:
  // The preset's model with an F32 cache (the reference keeps F32 keys and values).
  static Engine engine(int n_ctx, int n_batch) {
    const Case c = GetParam();
    EngineOptions opt;
    opt.kv_type = DType::F32;
    opt.n_ctx = n_ctx;
    opt.n_batch = n_batch;
    return Engine(test::synthetic(c.tag, test::tiny(c.preset)), opt);
  }
  // fast: [ids.size(), V], the logits after each token of ids. Every position's equal the
  // reference's within 1e-4 of the logit range.
  static void expect_reference(Engine& e, const std::vector<TokenId>& ids,
                               const std::vector<float>& fast) {
    const int V = e.model().n_vocab();
    const std::vector<float> ref = e.model().reference_logits(ids);
    ASSERT_EQ(ref.size(), fast.size());
    for (size_t p = 0; p < ids.size(); ++p) {
      const float* r = ref.data() + p * size_t(V);
      const float tol = 1e-4f * range(r, size_t(V));
      ASSERT_LE(max_abs_diff(fast.data() + p * size_t(V), r, size_t(V)), tol) << "position " << p;
    }
  }
};

// Prefill of a prompt in several batches, then token-by-token decode.
TEST_P(FastVsReference, LogitsMatchOverPrefillAndDecode) {
  Engine e = engine(256, 16);  // 16: several prefill chunks
  std::vector<TokenId> ids = prompt_ids(e, 40);
  const int V = e.model().n_vocab();
  auto seq = e.new_sequence();
  std::vector<float> fast = e.eval(*seq, ids, /*all_logits=*/true);  // [40, V]
  // Decode 24 more tokens greedily, one at a time, collecting logits.
  for (int i = 0; i < 24; ++i) {
    const TokenId next = argmax(fast.data() + fast.size() - size_t(V), V);
    ids.push_back(next);
    const std::vector<float> l = e.eval(*seq, ids, false);
    fast.insert(fast.end(), l.begin(), l.end());
  }
  expect_reference(e, ids, fast);
}

// A prompt longer than two of the FFN's token passes (model/ffn.h), in one batch.
TEST_P(FastVsReference, LongBatchMatchesReference) {
  Engine e = engine(512, 512);
  const std::vector<TokenId> ids = prompt_ids(e, int(2 * kFfnChunkTokens + 37));
  auto seq = e.new_sequence();
  expect_reference(e, ids, e.eval(*seq, ids, /*all_logits=*/true));
}

// 64 greedy tokens from the fast path equal 64 greedy tokens from the reference.
TEST_P(FastVsReference, GreedyContinuationIdentical) {
  const Case c = GetParam();
  const std::string path = test::synthetic(std::string(c.tag) + "-greedy", test::tiny(c.preset));
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 128;
  Engine e(path, opt);
  const std::vector<TokenId> prompt = prompt_ids(e, 8);
  GenerateParams gp;
  gp.max_tokens = 64;
  gp.sampling.temperature = 0;
  auto seq = e.new_sequence();
  std::vector<TokenId> fast =
      e.generate(*seq, prompt, gp, [](std::string_view) { return true; }).generated;
  // Reference: recompute the whole sequence for every new token.
  std::vector<TokenId> ids = prompt, ref;
  const int V = e.model().n_vocab();
  for (int i = 0; i < int(fast.size()); ++i) {
    const std::vector<float> l = e.model().reference_logits(ids, /*last_only=*/true);
    const TokenId t = argmax(l.data() + l.size() - size_t(V), V);
    ref.push_back(t);
    ids.push_back(t);
  }
  EXPECT_EQ(fast.size(), 64u);
  EXPECT_EQ(fast, ref);
}

INSTANTIATE_TEST_SUITE_P(Dense, FastVsReference,
                         ::testing::Values(Case{"tiny-llama", "llama-f32"},
                                           Case{"tiny-qwen2", "qwen2-f32"}),
                         [](const auto& p) { return std::string(p.param.tag).substr(0, 5); });

// softmax (model/layers.h) against a double-precision reference, for lengths below, at and
// past its lanes (16) and with a tail, the largest score anywhere (first, last, in the tail),
// and scores far apart (e^-x underflowing to 0 for most; two scores 100 above the rest, whose
// e^x would both reach exp's clamp unless the true maximum is taken off). Each output within
// 1e-6 relative.
TEST(Softmax, MatchesDoubleReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int n : {1, 2, 15, 16, 17, 33, 100, 1027, 4096}) {
    for (float spread : {1.0f, 40.0f}) {
      for (int peak : {0, n - 1, n / 2}) {
        std::vector<float> x(static_cast<size_t>(n));
        for (float& v : x) v = spread * nd(rng);
        const float others = *std::max_element(x.begin(), x.end());
        x[size_t(peak)] = others + (spread > 1.0f ? 100.0f : 3.0f);              // the largest
        if (n > 1) x[size_t(peak > 0 ? peak - 1 : 1)] = x[size_t(peak)] - 1.0f;  // and the next
        const float scale = spread > 1.0f ? 1.0f : 0.125f;
        const double mx = double(*std::max_element(x.begin(), x.end()));
        std::vector<double> ref(x.size());
        double sum = 0;
        for (size_t i = 0; i < x.size(); ++i) sum += ref[i] = std::exp((x[i] - mx) * scale);
        std::vector<float> y = x;
        softmax(y.data(), n, scale);
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_NEAR(y[i], ref[i] / sum, 1e-6 * ref[i] / sum + 1e-12)
              << "n=" << n << " spread=" << spread << " peak=" << peak << " i=" << i;
      }
    }
  }
}

// Block attention (prefill) with every float micro-kernel this CPU has, against attention
// one query at a time in double precision: keys split in two slices with their own strides
// (as MLA's [k^C ; k^R]), full, partial and single-query blocks, blocks starting at position
// 0 and deep into the context, and more keys than one pass of the output product (256).
TEST(AttentionBlock, EveryMicroKernelMatchesPerQueryReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t d0 = 24, d1 = 8, dv = 20, n_keys = 300, q_ld = 40, out_ld = 23;
  std::vector<float> k0(size_t(n_keys * 30)), k1(size_t(n_keys * d1)), vt(size_t(dv * 310));
  std::vector<float> q(size_t(32 * q_ld));
  for (auto* v : {&k0, &k1, &vt, &q})
    for (float& x : *v) x = nd(rng);
  const float scale = 0.3f;
  struct Block {
    int first, n_q;  // positions first .. first + n_q - 1
  };
  for (const GemmMicro& micro : gemm_micro_variants())
    for (const Block b :
         {Block{0, 32}, Block{0, 5}, Block{268, 32}, Block{150, 7}, Block{299, 1}, Block{40, 1}}) {
      std::vector<int> pos(size_t(b.n_q));
      for (int i = 0; i < b.n_q; ++i) pos[size_t(i)] = b.first + i;
      const KeySlice slices[2] = {{k0.data(), 30, q.data(), q_ld, d0},
                                  {k1.data(), d1, q.data() + d0, q_ld, d1}};
      std::vector<float> out(size_t(b.n_q * out_ld), NAN);
      attend_query_block(slices, 2, vt.data(), 310, dv, pos.data(), b.n_q, scale, out.data(),
                         out_ld, &micro);
      for (int i = 0; i < b.n_q; ++i) {
        const int n = pos[size_t(i)] + 1;
        std::vector<double> p(static_cast<size_t>(n));
        double mx = -1e300, sum = 0;
        for (int j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t c = 0; c < d0; ++c)
            s += double(q[size_t(i * q_ld + c)]) * k0[size_t(j * 30 + c)];
          for (int64_t c = 0; c < d1; ++c)
            s += double(q[size_t(i * q_ld + d0 + c)]) * k1[size_t(j * d1 + c)];
          p[size_t(j)] = s * scale;
          mx = std::max(mx, p[size_t(j)]);
        }
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (int64_t c = 0; c < dv; ++c) {
          double want = 0;
          for (int j = 0; j < n; ++j) want += p[size_t(j)] / sum * vt[size_t(c * 310 + j)];
          ASSERT_NEAR(out[size_t(i * out_ld + c)], want, 2e-5)
              << micro.name << " block at " << b.first << " query " << i << " value " << c;
        }
      }
    }
}

// Prefill attention over a layer of the cache, its KV heads in passes of one, two or all
// three heads (grouped-query: two query heads each), against attention one query at a time in
// double precision: a chunk of 70 tokens deep into the context, across a cache block boundary.
// The passes only change which heads' keys are converted together: all three agree exactly.
TEST(AttentionPrefill, HeadPassesMatchPerQueryReference) {
  const int n_kv = 3, group = 2, hd = 16, n_head = n_kv * group, n_pos = 600, n_new = 70;
  const int64_t KV = int64_t(n_kv) * hd, Q = int64_t(n_head) * hd;
  KvCache cache(1, 2 * KvCache::kBlock, int(KV), int(KV), DType::F32, DType::F32, n_kv);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> k(size_t(n_pos * KV)), v(size_t(n_pos * KV)), q(size_t(n_new * Q));
  for (auto* a : {&k, &v, &q})
    for (float& x : *a) x = nd(rng);
  for (int j = 0; j < n_pos; ++j) cache.store(0, j, k.data() + j * KV, v.data() + j * KV);
  std::vector<int> pos(static_cast<size_t>(n_new));
  for (int i = 0; i < n_new; ++i) pos[size_t(i)] = n_pos - n_new + i;
  const float scale = 0.25f;
  ThreadPool pool(2);
  const int64_t head_bytes = 2 * int64_t(n_pos) * hd * int64_t(sizeof(float));
  std::vector<std::vector<float>> outs;
  for (const int64_t pass_bytes : {int64_t(1), 2 * head_bytes, kPrefillPassBytes}) {
    outs.emplace_back(size_t(n_new * Q), NAN);
    attend_prefill(cache, 0, n_head, n_kv, hd, pos.data(), n_new, q.data(), Q, scale,
                   outs.back().data(), Q, pool, pass_bytes);
  }
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
  for (int i = 0; i < n_new; ++i)
    for (int h = 0; h < n_head; ++h) {
      const int64_t kv = h / group, n = pos[size_t(i)] + 1;
      std::vector<double> p(static_cast<size_t>(n));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int c = 0; c < hd; ++c)
          s += double(q[size_t(i * Q + h * hd + c)]) * k[size_t(j * KV + kv * hd + c)];
        mx = std::max(mx, p[size_t(j)] = s * scale);
      }
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int c = 0; c < hd; ++c) {
        double want = 0;
        for (int64_t j = 0; j < n; ++j)
          want += p[size_t(j)] / sum * v[size_t(j * KV + kv * hd + c)];
        ASSERT_NEAR(outs[0][size_t(i * Q + h * hd + c)], want, 2e-5)
            << "token " << i << " head " << h << " value " << c;
      }
    }
}

// Several sequences in one batched forward give the same logits as each sequence alone.
TEST(DenseModel, BatchedSequencesMatchSingle) {
  const std::string path = test::synthetic("llama-batch", test::tiny("tiny-llama"));
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 64;
  Engine e(path, opt);
  const int V = e.model().n_vocab();
  const std::vector<TokenId> a = prompt_ids(e, 12), b = {5, 17, 300, 42, 9};
  auto sa = e.new_sequence(), sb = e.new_sequence();
  std::vector<SeqBatch> batch{{sa->cache.get(), a, false}, {sb->cache.get(), b, true}};
  std::vector<float> together;
  e.model().forward(batch, e.pool(), together);  // rows: last of a, then all 5 of b
  ASSERT_EQ(together.size(), size_t(6 * V));
  auto s1 = e.new_sequence(), s2 = e.new_sequence();
  const std::vector<float> alone_a = e.eval(*s1, a, false);
  const std::vector<float> alone_b = e.eval(*s2, b, true);
  EXPECT_LE(max_abs_diff(together.data(), alone_a.data(), size_t(V)),
            1e-5f * range(alone_a.data(), size_t(V)));
  EXPECT_LE(max_abs_diff(together.data() + V, alone_b.data(), size_t(5 * V)),
            1e-5f * range(alone_b.data(), size_t(V)));
}

// A preset name as a test name ("tiny-v2-lite" -> "tiny_v2_lite").
std::string test_name(std::string n) {
  for (char& c : n) c = c == '-' ? '_' : c;
  return n;
}

// A stored cache (F16 or Q8_0) of the models below: tiny presets, the dense ones with heads of
// 32 values so that Q8_0's blocks fit (their own heads are 16 wide), the MoE one with every
// expert used. With top-6 of 16, two experts' router scores came within float rounding of
// each other at one position of the prompt, and the batched and the step-by-step orders of
// summation chose differently there (1.4e-4 of the logit range instead of 4e-7).
using CacheCase = std::tuple<const char*, DType>;
std::string cache_model(const std::string& preset) {
  SynthSpec s = test::tiny(preset);
  if (s.arch != "deepseek2") s.n_embd = 32 * s.n_head;
  s.n_expert_used = s.n_expert;
  return test::synthetic(preset + "-kv", s);
}

// An F16 cache stays close to the F32 one (its rounding is ~1e-3 relative), and a Q8_0 cache
// too, less closely (each value within 1/254 of its block's largest), over a batched prefill
// and then single-token decode steps (which read the cache in place, converting in registers,
// a dense model's one block of KvCache::kBlock positions at a time: the prompt fills the first
// block and most of the second, and the decode steps cross into the third), for grouped-query
// attention and for MLA's latent cache. Compared: the prompt's last logits and each step's.
class StoredCache : public ::testing::TestWithParam<CacheCase> {};
TEST_P(StoredCache, CloseToF32) {
  const auto [preset, type] = GetParam();
  const std::string path = cache_model(preset);
  EngineOptions o32, ot;
  o32.kv_type = DType::F32;
  ot.kv_type = type;
  o32.n_ctx = ot.n_ctx = 2 * KvCache::kBlock + 16;
  Engine e32(path, o32), et(path, ot);
  const int n_prompt = 2 * KvCache::kBlock - 3, n_decode = 6;
  std::vector<TokenId> ids = prompt_ids(e32, n_prompt);
  auto s32 = e32.new_sequence(), st = et.new_sequence();
  const int V = e32.model().n_vocab();
  std::vector<float> l32, lt;  // [n_decode + 1, V]: after the prompt, then after each step
  for (int i = 0; i <= n_decode; ++i) {  // decode: one token at a time, the F32 engine's choice
    if (i > 0) ids.push_back(argmax(l32.data() + l32.size() - size_t(V), V));
    const std::vector<float>& a = e32.eval(*s32, ids);
    l32.insert(l32.end(), a.begin(), a.end());
    const std::vector<float>& b = et.eval(*st, ids);
    lt.insert(lt.end(), b.begin(), b.end());
  }
  const float tolerance = type == DType::Q8_0 ? 0.02f : 0.01f;
  EXPECT_LE(max_abs_diff(l32.data(), lt.data(), l32.size()),
            tolerance * range(l32.data(), l32.size()))
      << preset;
}
// Decode steps read the cache in place, one block of KvCache::kBlock positions of a KV head
// at a time; a batched pass converts the cached rows to F32 first. Both read the same rounded
// values, so the logits of tokens decoded one at a time across a block boundary equal those
// of the same tokens evaluated as one batch after the same prompt (only float summation orders
// differ).
TEST_P(StoredCache, DecodeStepsMatchOneBatch) {
  const auto [preset, type] = GetParam();
  const std::string path = cache_model(preset);
  EngineOptions o;
  o.kv_type = type;
  o.n_ctx = 2 * KvCache::kBlock + 16;
  o.n_batch = 256;
  Engine e(path, o);
  const int n_first = 2 * KvCache::kBlock - 5, n_all = 2 * KvCache::kBlock + 7;
  const std::vector<TokenId> ids = prompt_ids(e, n_all);
  const int V = e.model().n_vocab();
  auto batch = e.new_sequence(), steps = e.new_sequence();
  std::vector<TokenId> fed(ids.begin(), ids.begin() + n_first);
  e.eval(*batch, fed);
  e.eval(*steps, fed);
  const std::vector<float> all = e.eval(*batch, ids, true);  // [n_all - n_first, V]
  ASSERT_EQ(all.size(), size_t(n_all - n_first) * size_t(V));
  for (int p = n_first; p < n_all; ++p) {
    fed.push_back(ids[size_t(p)]);
    const std::vector<float>& l = e.eval(*steps, fed, false);
    const float* r = all.data() + size_t(p - n_first) * size_t(V);
    EXPECT_LE(max_abs_diff(l.data(), r, size_t(V)), 1e-4f * range(r, size_t(V)))
        << preset << " position " << p;
  }
}

// With fewer KV heads than threads, a decode step splits each KV head's positions into
// ranges, one per thread, the partial results merged per query head (flash-decoding): its
// logits equal one thread's, which takes whole heads (only float summation orders differ).
// MQA (1 KV head, 2 threads) and GQA (2 KV heads of 3 query heads, or 3 of 2, on 4 threads),
// F16 and Q8_0 caches, decode steps from the end of the first cache block into the second.
TEST(DenseModel, DecodeRangesSplitBetweenThreadsMatchOneThread) {
  struct Split {
    const char* preset;
    int n_head_kv, threads;
  };
  for (const Split& c :
       {Split{"tiny-llama", 1, 2}, Split{"tiny-qwen2", 2, 4}, Split{"tiny-qwen2", 3, 4}}) {
    SynthSpec s = test::tiny(c.preset);
    s.n_embd = 32 * s.n_head;
    s.n_head_kv = c.n_head_kv;
    const std::string path =
        test::synthetic(std::string(c.preset) + "-split" + std::to_string(c.n_head_kv), s);
    for (DType type : {DType::F16, DType::Q8_0}) {
      SCOPED_TRACE(std::string(c.preset) + " " + dtype_name(type));
      EngineOptions one, many;
      one.kv_type = many.kv_type = type;
      one.n_ctx = many.n_ctx = KvCache::kBlock + 64;
      one.n_threads = 1;
      many.n_threads = c.threads;
      Engine e1(path, one), en(path, many);
      std::vector<TokenId> ids = prompt_ids(e1, KvCache::kBlock - 3);
      auto s1 = e1.new_sequence(), sn = en.new_sequence();
      e1.eval(*s1, ids);
      en.eval(*sn, ids);
      const int V = e1.model().n_vocab();
      for (int step = 0; step < 6; ++step) {
        ids.push_back(TokenId(50 + 31 * step));
        const std::vector<float> a = e1.eval(*s1, ids);
        const std::vector<float>& b = en.eval(*sn, ids);
        EXPECT_LE(max_abs_diff(a.data(), b.data(), size_t(V)), 1e-4f * range(a.data(), size_t(V)))
            << "position " << ids.size() - 1;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, StoredCache,
    ::testing::Combine(::testing::Values("tiny-qwen2", "tiny-llama", "tiny-v2-lite"),
                       ::testing::Values(DType::F16, DType::Q8_0)),
    [](const auto& p) {
      return test_name(std::string(std::get<0>(p.param)) + "_" + dtype_name(std::get<1>(p.param)));
    });

// A Q8_0 cache needs heads of whole blocks of 32 values: a model with heads of 16 is refused
// with a message that says so, before anything runs.
TEST(StoredCache, Q8NeedsHeadsOfWholeBlocks) {
  const std::string path = test::synthetic("tiny-llama-q8kv", test::tiny("tiny-llama"));
  EngineOptions o;
  o.kv_type = DType::Q8_0;
  try {
    Engine e(path, o);
    auto seq = e.new_sequence();
    FAIL() << "a q8_0 cache of heads of 16 values was accepted";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("multiple of 32"), std::string::npos) << err.what();
  }
}

// Weights repacked for the tile kernels give the logits of the row kernels on the file's own
// rows, over a batched prefill and decode, for dense and MoE/MLA models. Every matrix product
// agrees to ~1e-6 relative (only the float summation order differs), but the next layer
// rounds its input to int8 again, and a value close to a rounding boundary may land one step
// apart: so logits are compared within 1 % of their range (a wrong layout or scale is off by
// far more; with the scalar kernels, whose tile and row sums are identical, they are equal).
class Repacked : public ::testing::TestWithParam<std::tuple<const char*, DType>> {};
TEST_P(Repacked, SameLogitsAsRowKernels) {
  const std::string preset = std::get<0>(GetParam());
  const DType type = std::get<1>(GetParam());
  if (!qdot_best().tile_for(type)) GTEST_SKIP() << "no tile kernel for this type on this CPU";
  SynthSpec s = test::tiny(preset, type);
  if (dtype_info(type).block_elems == 256) {  // rows of whole super-blocks (qwen2: 6 q heads)
    s.n_embd = preset == "tiny-qwen2" ? 384 : 256;
    s.n_ff = 512;
  }
  const std::string path = test::synthetic("repack-" + preset + dtype_name(type), s);
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 128;
  opt.n_batch = 16;
  ::setenv("HONDO_REPACK", "0", 1);
  Engine rows(path, opt);
  ::unsetenv("HONDO_REPACK");
  Engine tiles(path, opt);
  int packed = 0;
  for (const Tensor& t : tiles.model().file().tensors()) packed += t.packed != nullptr;
  EXPECT_GT(packed, 0);
  for (const Tensor& t : rows.model().file().tensors()) EXPECT_EQ(t.packed, nullptr);
  std::vector<TokenId> ids = prompt_ids(rows, 30);
  const int V = rows.model().n_vocab();
  auto sa = rows.new_sequence(), sb = tiles.new_sequence();
  std::vector<float> a = rows.eval(*sa, ids, true), b = tiles.eval(*sb, ids, true);
  for (int i = 0; i < 8; ++i) {  // decode: one token at a time
    const std::vector<TokenId> next{argmax(a.data() + a.size() - size_t(V), V)};
    const auto la = rows.eval(*sa, next, false), lb = tiles.eval(*sb, next, false);
    a.insert(a.end(), la.begin(), la.end());
    b.insert(b.end(), lb.begin(), lb.end());
  }
  ASSERT_EQ(a.size(), b.size());
  // Expert routing is discontinuous: where two experts' scores nearly tie, a different float
  // summation order may pick the other one (seen with V3's sigmoid routing on AVX-512; with
  // the scalar kernels, whose tile and row sums are the same, every position matches). MoE
  // models may therefore differ at a few positions; dense models at none.
  const bool moe = preset.find("-v") != std::string::npos;
  const size_t n_pos = a.size() / size_t(V);
  size_t differ = 0;
  for (size_t p = 0; p < n_pos; ++p) {
    const float* r = a.data() + p * size_t(V);
    const bool close =
        max_abs_diff(b.data() + p * size_t(V), r, size_t(V)) <= 1e-2f * range(r, size_t(V));
    differ += !close;
    if (!moe) {
      EXPECT_TRUE(close) << preset << " position " << p;
    }
  }
  EXPECT_LE(differ, moe ? n_pos / 10 : 0) << preset;
}
INSTANTIATE_TEST_SUITE_P(
    Models, Repacked,
    ::testing::Combine(::testing::Values("tiny-llama", "tiny-qwen2", "tiny-v2-lite", "tiny-v3"),
                       ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                         DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                                         DType::Q5_K, DType::Q6_K)),
    [](const auto& p) {
      return test_name(std::string(std::get<0>(p.param)) + "_" + dtype_name(std::get<1>(p.param)));
    });

// Matrices without a tile layout (F16 here) are moved as they are into the huge-page arena:
// the same kernels on the same bytes, so the logits equal those of the file's own pages bit
// for bit, through batched prefill (float GEMM) and decode (row dots). MLA's W_UK/W_UV views
// must follow the move (V2-Lite).
class Relocated : public ::testing::TestWithParam<const char*> {};
TEST_P(Relocated, SameLogitsAsFilePages) {
  const std::string preset = GetParam();
  const std::string path = test::synthetic("moved-" + preset, test::tiny(preset, DType::F16));
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 128;
  opt.n_batch = 40;  // one prefill batch of more than one 32-token panel
  ::setenv("HONDO_REPACK", "0", 1);
  Engine in_file(path, opt);
  ::unsetenv("HONDO_REPACK");
  Engine moved(path, opt);
  const GgufFile& f = moved.model().file();
  int n_moved = 0;
  for (const Tensor& t : f.tensors()) {
    const bool outside = f.tensor_file_offset(t) >= f.file_size();  // (unsigned: also below)
    n_moved += outside;
    if (t.n_dims >= 2 && t.type == DType::F16 && t.name != "token_embd.weight") {
      EXPECT_TRUE(outside) << t.name << " still read from the file's pages";
    }
  }
  EXPECT_GT(n_moved, 0);
  std::vector<TokenId> ids = prompt_ids(in_file, 36);
  auto sa = in_file.new_sequence(), sb = moved.new_sequence();
  std::vector<float> a = in_file.eval(*sa, ids, true), b = moved.eval(*sb, ids, true);
  const int V = in_file.model().n_vocab();
  for (int i = 0; i < 4; ++i) {
    const std::vector<TokenId> next{argmax(a.data() + a.size() - size_t(V), V)};
    const auto la = in_file.eval(*sa, next, false), lb = moved.eval(*sb, next, false);
    a.insert(a.end(), la.begin(), la.end());
    b.insert(b.end(), lb.begin(), lb.end());
  }
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << preset;
}
INSTANTIATE_TEST_SUITE_P(Models, Relocated,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-v2-lite"),
                         [](const auto& p) { return test_name(p.param); });

// Quantized weights (same underlying values) choose the F32 model's top-1 token at >= 95 % of
// positions, teacher-forced on the F32 model's greedy text.
class QuantizedTop1 : public ::testing::TestWithParam<DType> {};
TEST_P(QuantizedTop1, AgreesWithF32) {
  const DType t = GetParam();
  SynthSpec s = test::tiny("tiny-llama");
  s.n_embd = 128, s.n_ff = 256;  // rows must hold whole 32-value blocks
  const std::string f32 = test::synthetic("llama-q-ref", s);
  s.type = s.embd_type = s.output_type = t;
  const std::string q = test::synthetic(std::string("llama-q-") + dtype_name(t), s);
  EngineOptions opt;
  opt.kv_type = DType::F32;
  opt.n_ctx = 256;
  Engine ef(f32, opt), eq(q, opt);
  GenerateParams gp;
  gp.max_tokens = 150;
  gp.sampling.temperature = 0;
  auto seq = ef.new_sequence();
  std::vector<TokenId> ids = prompt_ids(ef, 8);
  const auto gen = ef.generate(*seq, ids, gp, [](std::string_view) { return true; }).generated;
  ids.insert(ids.end(), gen.begin(), gen.end());
  const double agree = top1_agreement(ef, eq, ids);
  RecordProperty("agreement", std::to_string(agree));
  EXPECT_GE(agree, 0.95) << dtype_name(t) << " over " << ids.size() << " positions";
}
INSTANTIATE_TEST_SUITE_P(Dense, QuantizedTop1, ::testing::Values(DType::Q8_0),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

// On a trained model, quantized copies pick the F32 model's top-1 token as often as the format
// allows, teacher-forced on the F32 model's greedy story. Q8_0 must agree at >= 95 %. For Q4_0
// the bound is 85 %: hondo's Q4_0 file of this model is byte-identical to llama-quantize's, and
// llama.cpp's own KL-divergence run on it reports "Same top p" 88.6 +/- 1.8 % (Q8_0: 98.1 %);
// 4-bit weights on 64-wide rows cannot do better. (Random-weight models have flat logits, so
// they say nothing here; see docs/TESTING.md.)
class TrainedQuantizedTop1 : public ::testing::TestWithParam<DType> {};
TEST_P(TrainedQuantizedTop1, AgreesWithF32) {
  const DType t = GetParam();
  const std::string f32 = test::shared("testdata/models/stories260K/stories260K-f32.gguf");
  HONDO_REQUIRE_FILE(f32);
  std::filesystem::create_directories(test::bin("test-models"));
  const std::string q =
      test::bin(std::string("test-models/stories260K-") + dtype_name(t) + ".gguf");
  const RequantizeReport rep = requantize_model(f32, q, t);
  EXPECT_GT(rep.converted, 0);
  // ffn_down rows of 172 values hold no whole blocks: F16; for Q4_0 the output projection
  // asks for Q6_K, whose 256-blocks 64-wide rows cannot hold: Q8_0 (as llama-quantize does).
  EXPECT_EQ(rep.fallback, t == DType::Q4_0 ? 6 : 5);
  EngineOptions opt;
  opt.kv_type = DType::F32;
  Engine ef(f32, opt), eq(q, opt);
  GenerateParams gp;
  gp.max_tokens = 255;
  gp.sampling.temperature = 0;
  auto seq = ef.new_sequence();
  std::vector<TokenId> ids = ef.tokenizer().encode("", true, false);
  const auto gen = ef.generate(*seq, ids, gp, [](std::string_view) { return true; }).generated;
  ids.insert(ids.end(), gen.begin(), gen.end());
  const double agree = top1_agreement(ef, eq, ids);
  RecordProperty("agreement", std::to_string(agree));
  EXPECT_GE(agree, t == DType::Q8_0 ? 0.95 : 0.85)
      << dtype_name(t) << " over " << ids.size() << " positions";
}
INSTANTIATE_TEST_SUITE_P(Stories260K, TrainedQuantizedTop1,
                         ::testing::Values(DType::Q8_0, DType::Q4_0),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

// The real trained model reproduces llama2.c's and llama.cpp's published greedy outputs.
std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Stories260K, GreedyMatchesLlama2c) {
  const std::string dir = test::shared("testdata/models/stories260K/");
  HONDO_REQUIRE_FILE(dir + "stories260K-f32.gguf");
  EngineOptions opt;
  opt.n_ctx = 512;
  Engine e(dir + "stories260K-f32.gguf", opt);
  GenerateParams gp;
  gp.max_tokens = 256;
  gp.sampling.temperature = 0;
  auto seq = e.new_sequence();
  const auto r = e.generate(*seq, e.tokenizer().encode("", true, false), gp,
                            [](std::string_view) { return true; });
  std::string want = read_file(dir + "expected_greedy_t0_n256.txt");
  while (!want.empty() && want.back() == '\n') want.pop_back();
  EXPECT_EQ(r.text, want);
}

TEST(Stories260K, GreedyMatchesLlamaCpp) {
  const std::string dir = test::shared("testdata/models/stories260K/");
  HONDO_REQUIRE_FILE(dir + "stories260K-f32.gguf");
  Engine e(dir + "stories260K-f32.gguf", EngineOptions{});
  GenerateParams gp;
  gp.max_tokens = 200;
  gp.sampling.temperature = 0;
  auto seq = e.new_sequence();
  const auto r = e.generate(*seq, e.tokenizer().encode("Once upon a time", true, false), gp,
                            [](std::string_view) { return true; });
  std::string want = read_file(dir + "stories260K-f32.llama-simple.once_upon_a_time.n200.txt");
  const std::string printed_prompt = "<s> Once upon a time";
  ASSERT_EQ(want.rfind(printed_prompt, 0), 0u);
  want = want.substr(printed_prompt.size());
  while (!want.empty() && want.back() == '\n') want.pop_back();
  std::string got = r.text;
  while (!got.empty() && got.back() == '\n') got.pop_back();
  EXPECT_EQ(got, want);
}

}  // namespace
