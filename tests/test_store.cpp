// The model store against a fake hub on loopback: downloads into the Hugging Face cache
// layout, resume, checksum, errors, offline mode, concurrency, aliases and removal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "fake_hub.h"
#include "model/model.h"
#include "store/digest.h"
#include "store/fallback.h"
#include "store/hub.h"
#include "store/memory.h"
#include "store/model_source.h"
#include "store/registry.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace hondo;
using test::FakeHub;

namespace {

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() /
             ("hondo-store-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
    content_ = random_bytes(300000, 1);
    hub_.add("org/model-GGUF", "model-Q4_K_M.gguf", {content_});
    hub_.add("org/model-GGUF", "model-Q8_0.gguf", {random_bytes(1000, 2)});
    hub_.add("org/model-GGUF", "config.json", {"{\"a\": 1}", false});
  }
  void TearDown() override { fs::remove_all(root_); }

  HubOptions opts(bool offline = false) const {
    HubOptions o;
    o.endpoint = hub_.endpoint();
    o.cache_root = root_;
    o.offline = offline;
    o.retries = 0;
    return o;
  }

  FakeHub hub_;
  std::string root_, content_;
};

TEST_F(StoreTest, FullDownloadInHubCacheLayout) {
  Hub hub(opts());
  const std::string p = hub.download("org/model-GGUF", "model-Q4_K_M.gguf");
  EXPECT_EQ(FakeHub::sha(test::read_file(p)), FakeHub::sha(content_));
  const std::string sha = FakeHub::sha(content_);
  // snapshots/<commit>/<file> is a relative symlink to blobs/<sha256>; refs/main names it.
  const std::string repo = root_ + "/models--org--model-GGUF";
  EXPECT_TRUE(fs::is_symlink(p));
  EXPECT_EQ(fs::read_symlink(p).string(), "../../blobs/" + sha);
  EXPECT_EQ(fs::path(p).parent_path().filename().string(), test::read_file(repo + "/refs/main"));
  EXPECT_TRUE(fs::exists(repo + "/blobs/" + sha));
  EXPECT_FALSE(fs::exists(repo + "/blobs/" + sha + ".incomplete"));
  // A small (non-LFS) file lands the same way, named by its ETag, its git blob id.
  const std::string cfg = hub.download("org/model-GGUF", "config.json");
  EXPECT_EQ(test::read_file(cfg), "{\"a\": 1}");
  EXPECT_EQ(fs::read_symlink(cfg).filename().string(), git_blob_id("{\"a\": 1}"));
  // Asked again, the hub is consulted (HEAD) but nothing is transferred.
  const int gets = hub_.gets;
  const size_t bytes = hub_.body_bytes;
  EXPECT_EQ(hub.download("org/model-GGUF", "model-Q4_K_M.gguf"), p);
  EXPECT_EQ(hub_.gets, gets);
  EXPECT_EQ(hub_.body_bytes, bytes);
}

TEST_F(StoreTest, InterruptedDownloadResumesToIdenticalFile) {
  Hub hub(opts());
  hub_.cut_next(1, 120000);
  try {
    hub.download("org/model-GGUF", "model-Q4_K_M.gguf");
    FAIL() << "the cut transfer should have failed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run the same command again to resume"), std::string::npos)
        << e.what();
  }
  const std::string part =
      root_ + "/models--org--model-GGUF/blobs/" + FakeHub::sha(content_) + ".incomplete";
  ASSERT_TRUE(fs::exists(part));
  const size_t have = fs::file_size(part);
  EXPECT_EQ(have, 120000u);
  EXPECT_EQ(FakeHub::sha(test::read_file(part)), FakeHub::sha(content_.substr(0, have)));
  const size_t before = hub_.body_bytes;
  const std::string p = hub.download("org/model-GGUF", "model-Q4_K_M.gguf");
  EXPECT_EQ(FakeHub::sha(test::read_file(p)), FakeHub::sha(content_));
  // The second transfer asked for the rest only, and only the rest was sent.
  ASSERT_EQ(hub_.ranges().size(), 2u);
  EXPECT_EQ(hub_.ranges()[0], "");
  EXPECT_EQ(hub_.ranges()[1], "bytes=120000-");
  EXPECT_EQ(hub_.body_bytes - before, content_.size() - have);
  EXPECT_FALSE(fs::exists(part));
}

TEST_F(StoreTest, RetriesResumeWithinOneCall) {
  HubOptions o = opts();
  o.retries = 3;
  Hub hub(o);
  std::vector<std::string> notes;
  hub.on_note = [&](const std::string& s) { notes.push_back(s); };
  hub_.cut_next(2, 50000);
  const std::string p = hub.download("org/model-GGUF", "model-Q4_K_M.gguf");
  EXPECT_EQ(FakeHub::sha(test::read_file(p)), FakeHub::sha(content_));
  EXPECT_EQ(notes.size(), 2u);
  const auto r = hub_.ranges();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1], "bytes=50000-");
  EXPECT_EQ(r[2], "bytes=100000-");
}

TEST_F(StoreTest, WrongHashIsRejectedAndNothingIsKept) {
  hub_.add("org/bad", "x.gguf", {content_, true, std::string(64, 'e')});
  Hub hub(opts());
  try {
    hub.download("org/bad", "x.gguf");
    FAIL() << "a wrong hash must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  const std::string repo = root_ + "/models--org--bad";
  EXPECT_FALSE(fs::exists(repo + "/blobs/" + std::string(64, 'e')));
  EXPECT_FALSE(fs::exists(repo + "/blobs/" + std::string(64, 'e') + ".incomplete"));
  EXPECT_FALSE(hub.cache().find("org/bad", "main", "x.gguf"));
}

TEST_F(StoreTest, WrongGitBlobIdIsRejected) {
  hub_.add("org/bad", "config.json", {"{}", false, std::string(40, 'a')});
  Hub hub(opts());
  try {
    hub.download("org/bad", "config.json");
    FAIL() << "a small file whose git blob id differs must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch: the hub says git blob"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(hub.cache().find("org/bad", "main", "config.json"));
}

// Blob ids as `git hash-object` prints them.
TEST(Digest, GitBlobIdsAndSha256MatchKnownValues) {
  EXPECT_EQ(git_blob_id(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  EXPECT_EQ(git_blob_id("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
  const std::string f = test::bin("test-models/digest-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(f) << "hello\n";
  EXPECT_EQ(git_blob_id_file(f), "ce013625030ba8dba906f756967f9e9ca394464a");
  EXPECT_EQ(sha256_file(f), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  fs::remove(f);
}

TEST_F(StoreTest, NotFoundAndUnauthorizedSayWhy) {
  Hub hub(opts());
  try {
    hub.download("org/model-GGUF", "missing.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such file in org/model-GGUF (404)"), std::string::npos)
        << e.what();
  }
  hub_.add("org/gated", "g.gguf", {content_}, /*gated=*/true);
  try {
    hub.download("org/gated", "g.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("401"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos) << e.what();
  }
  HubOptions wrong = opts();
  wrong.token = "hf_wrong";
  try {
    Hub(wrong).download("org/gated", "g.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refused the token"), std::string::npos) << e.what();
  }
  HubOptions right = opts();
  right.token = hub_.token;
  EXPECT_EQ(FakeHub::sha(test::read_file(Hub(right).download("org/gated", "g.gguf"))),
            FakeHub::sha(content_));
}

TEST_F(StoreTest, OfflineUsesTheCacheAndNeverTheNetwork) {
  Hub offline(opts(/*offline=*/true));
  try {
    offline.download("org/model-GGUF", "model-Q4_K_M.gguf");
    FAIL() << "nothing is cached yet";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("offline mode"), std::string::npos) << e.what();
  }
  EXPECT_EQ(hub_.heads + hub_.gets + hub_.api_calls, 0);
  Hub online(opts());
  const std::string p = online.download("org/model-GGUF", "model-Q4_K_M.gguf");
  const int requests = hub_.heads + hub_.gets + hub_.api_calls;
  EXPECT_EQ(offline.download("org/model-GGUF", "model-Q4_K_M.gguf"), p);
  EXPECT_EQ(offline.list_files("org/model-GGUF"), std::vector<std::string>{"model-Q4_K_M.gguf"});
  EXPECT_EQ(hub_.heads + hub_.gets + hub_.api_calls, requests);
}

TEST_F(StoreTest, OfflineFromEnvironment) {
  setenv("HF_HUB_OFFLINE", "1", 1);
  setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  const HubOptions o = HubOptions::from_env();
  unsetenv("HF_HUB_OFFLINE");
  unsetenv("HF_ENDPOINT");
  EXPECT_TRUE(o.offline);
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:9");
}

TEST_F(StoreTest, UnreachableHubFallsBackToTheCache) {
  const std::string p = Hub(opts()).download("org/model-GGUF", "model-Q4_K_M.gguf");
  HubOptions dead = opts();
  dead.endpoint = "http://127.0.0.1:9";  // discard port: connection refused
  Hub hub(dead);
  std::string note;
  hub.on_note = [&](const std::string& s) { note = s; };
  EXPECT_EQ(hub.download("org/model-GGUF", "model-Q4_K_M.gguf"), p);
  EXPECT_NE(note.find("cached copy"), std::string::npos);
  EXPECT_THROW(hub.download("org/model-GGUF", "model-Q8_0.gguf"), NetworkError);
}

TEST_F(StoreTest, ConcurrentPullsOfOneFileDownloadItOnce) {
  std::vector<std::thread> threads;
  std::vector<std::string> paths(4);
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string why;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      try {
        paths[size_t(i)] = Hub(opts()).download("org/model-GGUF", "model-Q4_K_M.gguf");
      } catch (const std::exception& e) {
        ++failures;
        std::lock_guard<std::mutex> g(mu);
        why = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0) << why;
  for (const auto& p : paths) EXPECT_EQ(p, paths[0]);
  EXPECT_EQ(FakeHub::sha(test::read_file(paths[0])), FakeHub::sha(content_));
  EXPECT_EQ(hub_.ranges().size(), 1u) << "the blob was transferred more than once";
  for (const auto& e : fs::directory_iterator(root_ + "/models--org--model-GGUF/blobs"))
    EXPECT_EQ(e.path().extension(), "") << e.path();
}

TEST_F(StoreTest, QuantSelectionAndAliases) {
  Hub hub(opts());
  Registry reg = Registry::builtin();
  reg.merge(R"({"models": {"mini": {"default_tag": "1b", "default_quant": "Q4_K_M",
              "tags": {"1b": {"repo": "org/model-GGUF", "file": "model-{QUANT}.gguf"}}}}})",
            "test");
  ModelSource src(hub, reg);
  const std::string q8 = src.locate("org/model-GGUF:q8_0", ModelSource::Fetch::IfMissing);
  EXPECT_EQ(fs::path(q8).filename(), "model-Q8_0.gguf");
  EXPECT_EQ(test::read_file(q8), random_bytes(1000, 2));
  EXPECT_EQ(FakeHub::sha(test::read_file(src.locate("mini", ModelSource::Fetch::IfMissing))),
            FakeHub::sha(content_));
  EXPECT_EQ(test::read_file(src.locate("mini:1b-q8_0", ModelSource::Fetch::Never)),
            random_bytes(1000, 2));
  EXPECT_THROW(src.locate("org/model-GGUF:Q2_K", ModelSource::Fetch::IfMissing), Error);
  EXPECT_THROW(src.locate("mini:7b", ModelSource::Fetch::IfMissing), Error);
  // Built-in aliases name real repositories and files.
  const auto r1 = reg.lookup("deepseek-r1:1.5b");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->repo, "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF");
  EXPECT_EQ(r1->file, "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf");
  EXPECT_EQ(reg.lookup("deepseek-v2-lite:q8_0")->file, "DeepSeek-V2-Lite-Chat-Q8_0.gguf");
  EXPECT_EQ(reg.lookup("deepseek-coder:6.7b-q5_k_m")->file,
            "deepseek-coder-6.7b-instruct.Q5_K_M.gguf");
  EXPECT_FALSE(reg.lookup("no-such-model"));
  EXPECT_THROW(reg.merge("{\"models\": {\"x\": {}}}", "bad.json"), Error);
}

TEST_F(StoreTest, PickGgufByWholeWord) {
  const std::vector<std::string> files = {"m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "m-Q4_0.gguf",
                                          "README.md"};
  EXPECT_EQ(pick_gguf(files, "q4_k_s", "r"), "m-Q4_K_S.gguf");
  EXPECT_EQ(pick_gguf(files, "", "r"), "m-Q4_K_M.gguf");
  EXPECT_EQ(pick_gguf(files, "Q4_0", "r"), "m-Q4_0.gguf");
  EXPECT_THROW(pick_gguf(files, "Q4_K", "r"), Error);  // "Q4_K" is not a whole word here
  EXPECT_THROW(
      pick_gguf({"a-Q4_K_M-00001-of-00002.gguf", "a-Q4_K_M-00002-of-00002.gguf"}, "Q4_K_M", "r"),
      Error);
}

TEST_F(StoreTest, ListAndRemove) {
  Hub hub(opts());
  hub.download("org/model-GGUF", "model-Q4_K_M.gguf");
  hub.download("org/model-GGUF", "model-Q8_0.gguf");
  auto repos = hub.cache().list();
  ASSERT_EQ(repos.size(), 1u);
  EXPECT_EQ(repos[0].repo, "org/model-GGUF");
  ASSERT_EQ(repos[0].files.size(), 2u);
  EXPECT_EQ(repos[0].blob_bytes, content_.size() + 1000);
  EXPECT_EQ(hub.cache().remove("org/model-GGUF", "model-Q8_0.gguf"), 1000u);
  EXPECT_EQ(hub.cache().list()[0].files.size(), 1u);
  EXPECT_TRUE(hub.cache().find("org/model-GGUF", "main", "model-Q4_K_M.gguf"));
  EXPECT_EQ(hub.cache().remove("org/model-GGUF"), content_.size());
  EXPECT_TRUE(hub.cache().list().empty());
  EXPECT_THROW(hub.cache().remove("org/model-GGUF"), Error);
}

TEST(StoreIds, RepoIdsAreChecked) {
  EXPECT_NO_THROW(check_repo_id("deepseek-ai/DeepSeek-V3"));
  EXPECT_NO_THROW(check_repo_id("gpt2"));
  EXPECT_THROW(check_repo_id("a/b/c"), Error);
  EXPECT_THROW(check_repo_id("../etc"), Error);
  EXPECT_THROW(check_repo_id("a b/c"), Error);
  HfCache c("/tmp/x");
  EXPECT_THROW(c.snapshot_path("a/b", std::string(40, 'a'), "../../etc/passwd"), Error);
}

}  // namespace

namespace {

// The estimate reads the cache size from the header alone; the loaded model must agree.
TEST(MemoryEstimate, KvMatchesTheLoadedModel) {
  for (const char* preset : {"tiny-llama", "tiny-qwen2", "tiny-v2-lite", "tiny-v3"}) {
    const std::string path = test::synthetic(std::string("estimate-") + preset, test::tiny(preset));
    const auto model = Model::load(path);
    for (DType kv : {DType::F16, DType::F32}) {
      const MemoryEstimate m = estimate_memory(model->file(), 100, kv);
      EXPECT_EQ(m.n_ctx, 100);
      EXPECT_EQ(m.kv, model->kv_bytes_per_token(kv) * 100) << preset;
      size_t weights = 0;
      for (const Tensor& t : model->file().tensors()) weights += t.nbytes();
      EXPECT_EQ(m.weights, weights);
      EXPECT_GT(m.scratch, 0u);
      // Prefill attention holds a layer's cache as F32 for every position: at least a
      // layer's share of an F32 cache per position of context.
      const MemoryEstimate m2 = estimate_memory(model->file(), 200, kv);
      EXPECT_GE(m2.scratch - m.scratch,
                100 * model->kv_bytes_per_token(DType::F32) /
                    size_t(model->file().get_int(model->file().get_str("general.architecture") +
                                                 ".block_count")))
          << preset;
    }
    // Without a context the engine's default is used: min(training context, 4096).
    EXPECT_EQ(estimate_memory(model->file(), 0, DType::F16).n_ctx,
              std::min(model->n_ctx_train(), 4096))
        << preset;
  }
}

TEST(MemoryEstimate, SizesParse) {
  EXPECT_EQ(parse_size("8GiB"), 8ull << 30);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("1.5 G"), 3ull << 29);
  EXPECT_EQ(parse_size("1000"), 1000u);
  EXPECT_EQ(parse_size("64kb"), 64u << 10);
  EXPECT_THROW(parse_size("lots"), Error);
  EXPECT_THROW(parse_size("8 parsecs"), Error);
  EXPECT_THROW(parse_size("-1G"), Error);
  EXPECT_GT(available_memory(), 0u);
}

TEST(FallbackConfig, ParsesAndRejectsWithTheFileName) {
  const FallbackConfig c = FallbackConfig::parse(
      R"({"_comment": "x", "models": ["a:1b", "/m.gguf"], "memory_limit": "2GiB"})", "f.json");
  EXPECT_EQ(c.models, (std::vector<std::string>{"a:1b", "/m.gguf"}));
  EXPECT_EQ(c.memory_limit, 2ull << 30);
  for (const char* bad : {"[1]", "{\"models\": [1]}", "{\"modles\": []}", "{\"models\": [",
                          "{\"memory_limit\": true}"}) {
    try {
      FallbackConfig::parse(bad, "f.json");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("f.json: ", 0), 0u) << e.what();
    }
  }
  EXPECT_TRUE(FallbackConfig::load("/nonexistent/fallback.json").models.empty());
}

}  // namespace
