// hondo pull / list / rm against a fake hub, -m with hub references, offline mode, and the
// fallback chain end to end through the binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "fake_hub.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace hondo;
using test::CliResult;
using test::expect_one_line_error;
using test::FakeHub;

namespace {

const std::string kStories = test::shared("testdata/models/stories260K/stories260K-f32.gguf");

std::string bundled() {
  return std::string(HONDO_SOURCE_DIR) + "/models/hondo-coder-tiny.gguf";
}

class StoreCli : public ::testing::Test {
 protected:
  void SetUp() override {
    HONDO_REQUIRE_FILE(kStories);
    dir_ = test::bin("test-models/store-cli-" + std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/config");
    hub_.add("tiny/stories-GGUF", "stories260K-F32.gguf", {test::read_file(kStories)});
    hub_.add("tiny/stories-GGUF", "README.md", {"# stories", false});
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The binary with its own cache and config, talking to the fake hub.
  CliResult hondo(const std::string& args, bool online = true, const std::string& extra = "") {
    return test::run(args, "",
                     "HF_HOME=" + dir_ + "/hf HONDO_CONFIG_DIR=" + dir_ + "/config HF_ENDPOINT=" +
                         hub_.endpoint() + (online ? " HF_HUB_OFFLINE=0 " : " ") + extra);
  }
  void write_config(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/config/" + name) << text;
  }

  FakeHub hub_;
  std::string dir_;
};

TEST_F(StoreCli, PullListRunOfflineRemove) {
  const CliResult pull = hondo("pull tiny/stories-GGUF:f32");
  ASSERT_EQ(pull.status, 0) << pull.err;
  const std::string path = pull.out.substr(0, pull.out.find('\n'));
  EXPECT_NE(path.find("/hf/hub/models--tiny--stories-GGUF/snapshots/"), std::string::npos);
  EXPECT_EQ(FakeHub::sha(test::read_file(path)), FakeHub::sha(test::read_file(kStories)));
  EXPECT_NE(pull.err.find("pulling stories260K-F32.gguf"), std::string::npos) << pull.err;

  const CliResult list = hondo("list", false);
  EXPECT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("tiny/stories-GGUF"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("stories260K-F32.gguf"), std::string::npos) << list.out;

  // Offline, the cached copy runs; the hub sees no request.
  const int before = hub_.heads + hub_.gets + hub_.api_calls;
  const CliResult r =
      hondo("run -m tiny/stories-GGUF:F32 --offline -p 'Once upon a time' -n 12 --temp 0", false);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
  EXPECT_EQ(hub_.heads + hub_.gets + hub_.api_calls, before);

  const CliResult rm = hondo("rm tiny/stories-GGUF:f32", false);
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_NE(rm.out.find("1.0 MiB freed"), std::string::npos) << rm.out;
  EXPECT_FALSE(fs::exists(path));
  expect_one_line_error(hondo("run --no-fallback -m tiny/stories-GGUF:F32 -p hi", false),
                        "offline mode");
}

TEST_F(StoreCli, RunDownloadsWhatIsMissing) {
  const CliResult r = hondo("run -m tiny/stories-GGUF:F32 -p 'Once upon a time' -n 12 --temp 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
  EXPECT_EQ(hub_.gets, 1);
}

TEST_F(StoreCli, HubErrorsAreOneLine) {
  expect_one_line_error(hondo("pull tiny/stories-GGUF/missing.gguf"), "no such file");
  expect_one_line_error(hondo("pull tiny/stories-GGUF:Q2_K"), "no .gguf file for Q2_K");
  expect_one_line_error(hondo("pull nobody/nothing:Q4_0"), "HF_TOKEN");
  expect_one_line_error(hondo("pull deepseek-r1:13b"), "has no tag '13b'");
  expect_one_line_error(hondo("pull tiny/stories-GGUF:f32", false), "offline mode");
}

TEST_F(StoreCli, UserAliasesExtendTheRegistry) {
  write_config("models.json", R"({"models": {"stories": {"default_quant": "F32",
      "tags": {"260k": {"repo": "tiny/stories-GGUF", "file": "stories260K-{QUANT}.gguf"}}}}})");
  const CliResult r = hondo("run -m stories:260k -p 'Once upon a time' -n 12 --temp 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
  const CliResult list = hondo("list --aliases", false);
  EXPECT_NE(list.out.find("stories"), std::string::npos);
  EXPECT_NE(list.out.find("deepseek-r1"), std::string::npos);
  write_config("models.json", "{\"models\": [1, 2]}");
  expect_one_line_error(hondo("run -m stories -p hi"), "models.json");
}

TEST_F(StoreCli, FallbackSkipsMissingCorruptAndTooBigModels) {
  // A truncated copy of a real model, and a synthetic model far larger than the limit.
  const std::string corrupt = dir_ + "/corrupt.gguf";
  const std::string whole = test::read_file(kStories);
  std::ofstream(corrupt, std::ios::binary) << whole.substr(0, whole.size() / 3);
  const std::string big = bundled();  // about 43 MiB, over the limit
  write_config("fallback.json", R"({"models": ["deepseek-r1:1.5b", ")" + corrupt + R"(", ")" + big +
                                    R"(", ")" + kStories + R"("], "memory_limit": "24MiB"})");
  const CliResult r = hondo("run -p 'Once upon a time' -n 12 --temp 0", false);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("skipped deepseek-r1:1.5b: not on this machine"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("skipped " + corrupt + ": not a valid model file"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("skipped " + big + ": needs"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("more than the 24.0 MiB allowed by the memory limit"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("model: " + kStories + " (fallback)"), std::string::npos) << r.err;
}

TEST_F(StoreCli, WhenAllFailTheBundledModelAnswers) {
  write_config("fallback.json", R"({"models": ["deepseek-coder:1.3b", "/nonexistent/x.gguf"]})");
  const CliResult r = hondo("run -m deepseek-r1:1.5b -p 'def f(' -n 8 --temp 0", false);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("skipped deepseek-r1:1.5b"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped deepseek-coder:1.3b"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped /nonexistent/x.gguf: /nonexistent/x.gguf: no such file"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("hondo-coder-tiny.gguf (bundled)"), std::string::npos) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST_F(StoreCli, NoFallbackFailsClearly) {
  write_config("fallback.json", "{\"models\": [\"" + kStories + "\"]}");
  expect_one_line_error(hondo("run --no-fallback -m deepseek-r1:1.5b -p hi", false),
                        "fallback disabled by --no-fallback");
  expect_one_line_error(hondo("run --no-fallback -m " + kStories + " --memory-limit 1M -p hi"),
                        "needs");
  write_config("fallback.json", "{\"models\": \"not a list\"}");
  expect_one_line_error(hondo("run -p hi", false), "fallback.json");
}

}  // namespace
