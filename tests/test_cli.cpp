// The hondo binary end to end: commands work, bad input gives one clear error line and a
// non-zero exit status.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_runner.h"
#include "test_util.h"

using namespace hondo;

namespace {

using test::CliResult;
using test::expect_one_line_error;
using test::run;

const std::string kStories = test::shared("testdata/models/stories260K/stories260K-f32.gguf");

TEST(Cli, RunStreamsOnlyGeneratedText) {
  const CliResult r = run("run -m " + kStories + " -p 'Once upon a time' -n 12 --temp 0");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos);
}

TEST(Cli, RunWithoutModelUsesTheBundledOne) {
  const CliResult r = run("run -p 'def fibonacci(' -n 24 --temp 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("hondo-coder-tiny.gguf (bundled)"), std::string::npos) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST(Cli, SeedsReproduce) {
  const std::string base = "run -m " + kStories + " -p 'Once' -n 30 --temp 1 -q ";
  const CliResult a = run(base + "--seed 7"), b = run(base + "--seed 7"),
                  c = run(base + "--seed 8");
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST(Cli, TokenizeMatchesVectors) {
  const CliResult r = run("tokenize -m " + test::vocab("deepseek-coder") + " 'Hello world'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "17535 1835\n");  // the deepseek-coder vector for "Hello world"
}

TEST(Cli, InfoReportsShapesAndMemory) {
  const CliResult r = run("info " + kStories + " --json -c 512 --kv-type f32");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("\"architecture\": \"llama\""), std::string::npos);
  // 5 layers x 4 KV heads x 8 dims x (K + V) x 4 bytes = 1280 bytes per token.
  EXPECT_NE(r.out.find("\"kv_bytes_per_token\": 1280"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"kv_bytes\": 655360"), std::string::npos);
}

TEST(Cli, ChatKeepsHistoryAndSaves) {
  const std::string save = test::bin("test-models/chat-" + std::to_string(getpid()) + ".json");
  std::filesystem::remove(save);
  const CliResult r = run("chat -m " + kStories + " -n 8 --temp 0",
                          "Hello\nHow are you\n/save " + save + "\n/exit\n");
  EXPECT_EQ(r.status, 0) << r.err;
  std::ifstream in(save);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string saved = ss.str();
  EXPECT_NE(saved.find("\"How are you\""), std::string::npos) << saved;
  EXPECT_EQ(std::count(saved.begin(), saved.end(), '{') - 1, 4);  // 2 user + 2 assistant
}

TEST(Cli, PerplexityPrintsComparableFinalLine) {
  const std::string text = test::bin("test-models/ppl-" + std::to_string(getpid()) + ".txt");
  std::ofstream out(text);
  for (int i = 0; i < 40; ++i)
    out << "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
           "park. ";
  out.close();
  const CliResult r = run("perplexity -m " + kStories + " -f " + text + " -c 128");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Final estimate: PPL = "), std::string::npos) << r.out;
  const double ppl = std::stod(r.out.substr(r.out.find("PPL = ") + 6));
  EXPECT_GT(ppl, 1.0);
  EXPECT_LT(ppl, 3.0);  // a repeated simple story is easy for this model
}

TEST(Cli, OverlongPromptErrorsOrTruncatesAsAsked) {
  std::string prompt;
  for (int i = 0; i < 60; ++i) prompt += "Once upon a time ";
  const std::string base = "run -m " + kStories + " -c 64 -n 8 --temp 0 -p '" + prompt + "'";
  expect_one_line_error(run(base), "use --truncate");
  const CliResult r = run(base + " --truncate");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("prompt truncated"), std::string::npos) << r.err;
}

TEST(Cli, BadFilesGiveOneLineErrors) {
  const std::string dir = test::bin("test-models/");
  const std::string garbage = dir + "garbage-" + std::to_string(getpid()) + ".gguf";
  const std::string truncated = dir + "truncated-" + std::to_string(getpid()) + ".gguf";
  std::ofstream(garbage) << "this is not a model at all";
  expect_one_line_error(run("run --no-fallback -m " + garbage + " -p hi"), "not a GGUF file");
  expect_one_line_error(run("run --no-fallback -m " + dir + "no-such-file.gguf -p hi"),
                        "no such file");
  // Truncated real model.
  std::ifstream in(kStories, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_one_line_error(run("run --no-fallback -m " + truncated + " -p hi"), "truncated file");
  expect_one_line_error(run("info " + truncated), "truncated file");
  // A vocab-only GGUF of another architecture.
  expect_one_line_error(run("run --no-fallback -m " + test::vocab("gpt-2") + " -p hi"),
                        "unknown architecture 'gpt2'");
}

}  // namespace

TEST(Cli, BenchJsonHasTheFigures) {
  const CliResult r = run("bench -p 16 -n 8 -r 2 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"prefill_tps", "decode_tps", "threads", "peak_rss_bytes",
                          "bandwidth_gbps", "roofline_fraction", "weight_bytes_per_token"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_GT(j["prefill_tps"].get<double>(), 0);
  EXPECT_GT(j["decode_tps"].get<double>(), 0);
  EXPECT_GT(j["bandwidth_gbps"].get<double>(), 0);
  EXPECT_GT(j["roofline_fraction"].get<double>(), 0);
  EXPECT_EQ(j["decode_tps_samples"].size(), 2u);
  // The bundled model's routed experts are read 2 of 8 per token: fewer bytes than the file.
  EXPECT_LT(j["weight_bytes_per_token"].get<double>(), j["file_bytes"].get<double>());
}

// --phases: the decode steps' time by phase of the forward pass, next to the bytes each
// phase reads; the phases add up to the mean time a token took, and their bytes to what it
// read. Without the flag there is no breakdown.
TEST(Cli, BenchPhasesAddUpToTheDecodeStep) {
  const CliResult r = run("bench -p 0 -n 8 -r 2 --phases --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("phases")) << r.out;
  const auto& ph = j["phases"];
  ASSERT_EQ(ph.size(), 5u);
  const char* names[] = {"embed", "attention", "ffn", "output", "other"};
  double seconds = 0, bytes = 0;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ph[i]["name"].get<std::string>(), names[i]);
    seconds += ph[i]["seconds_per_token"].get<double>();
    bytes += ph[i]["bytes_per_token"].get<double>();
  }
  for (size_t i = 1; i < 4; ++i) EXPECT_GT(ph[i]["seconds_per_token"].get<double>(), 0) << i;
  double per_token = 0;  // mean time a decoded token took over the repetitions
  for (const auto& tps : j["decode_tps_samples"]) per_token += 0.5 / tps.get<double>();
  EXPECT_NEAR(seconds, per_token, 0.01 * per_token);
  EXPECT_EQ(bytes,
            j["weight_bytes_per_token"].get<double>() + j["kv_bytes_per_token_read"].get<double>());
  EXPECT_GE(ph[1]["bytes_per_token"].get<double>(), j["kv_bytes_per_token_read"].get<double>());
  const CliResult text = run("bench -p 0 -n 4 -r 1 --phases");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("  attention "), std::string::npos) << text.out;
  const CliResult plain = run("bench -p 0 -n 4 -r 1 --json");
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_FALSE(nlohmann::json::parse(plain.out).contains("phases"));
}

// HONDO_PREFETCH chooses the cache the weight readers' line prefetches fill (kernels/qdot.h):
// bench reports it, the generated text does not depend on it, and a value it does not know is
// reported on stderr and leaves the CPU's default.
TEST(Cli, PrefetchTargetIsReportedAndChangesNoResult) {
  std::string text[2];
  for (int i = 0; i < 2; ++i) {
    const std::string target = i ? "l2" : "l1", env = "HONDO_PREFETCH=" + target;
    const CliResult b = run("bench -p 0 -n 4 -r 1 --json", "", env);
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(nlohmann::json::parse(b.out)["line_prefetch"].get<std::string>(), target);
    const CliResult r = run("run -p 'def fibonacci(' -n 16 --temp 0", "", env);
    ASSERT_EQ(r.status, 0) << r.err;
    text[i] = r.out;
  }
  EXPECT_EQ(text[0], text[1]);
  EXPECT_FALSE(text[0].empty());
  const CliResult bad = run("bench -p 0 -n 4 -r 1 --json", "", "HONDO_PREFETCH=l3");
  const CliResult plain = run("bench -p 0 -n 4 -r 1 --json");
  ASSERT_EQ(bad.status, 0) << bad.err;
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_NE(bad.err.find("HONDO_PREFETCH=l3 is not l1 or l2"), std::string::npos) << bad.err;
  EXPECT_EQ(nlohmann::json::parse(bad.out)["line_prefetch"],
            nlohmann::json::parse(plain.out)["line_prefetch"]);
}

// A kernel switch read from the environment, NAME=off or NAME=on (kernels/qdot_dispatch.cpp),
// on a copy of the bundled model quantized to `type`: bench's JSON reports it under `key`, the
// text generated greedily from that copy and from the bundled F16 model does not depend on it,
// and a value it does not know is reported on stderr.
namespace {
void expect_switch_reported_without_effect(const std::string& type, const std::string& name,
                                           const std::string& off, const std::string& on,
                                           const std::string& key) {
  const std::string q =
      test::bin("test-models/cli-" + type + "-" + std::to_string(getpid()) + ".gguf");
  const CliResult quantized = run("quantize " + std::string(HONDO_SOURCE_DIR) +
                                  "/models/hondo-coder-tiny.gguf " + q + " " + type);
  ASSERT_EQ(quantized.status, 0) << quantized.err;
  std::string text[4];
  for (int i = 0; i < 2; ++i) {
    const std::string env = name + "=" + (i ? on : off);
    const CliResult b = run("bench -m " + q + " -p 0 -n 4 -r 1 --json", "", env);
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(nlohmann::json::parse(b.out)[key].get<bool>(), i == 1) << env;
    const CliResult r = run("run -m " + q + " -p 'def fibonacci(' -n 16 --temp 0", "", env);
    ASSERT_EQ(r.status, 0) << r.err;
    text[i] = r.out;
    const CliResult f16 = run("run -p 'def fibonacci(' -n 16 --temp 0", "", env);
    ASSERT_EQ(f16.status, 0) << f16.err;
    text[2 + i] = f16.out;
  }
  EXPECT_EQ(text[0], text[1]);
  EXPECT_FALSE(text[0].empty());
  EXPECT_EQ(text[2], text[3]);
  EXPECT_FALSE(text[2].empty());
  const CliResult bad = run("bench -m " + q + " -p 0 -n 4 -r 1 --json", "", name + "=2");
  ASSERT_EQ(bad.status, 0) << bad.err;
  EXPECT_NE(bad.err.find(name + "=2 is not " + off + " or " + on), std::string::npos) << bad.err;
  std::remove(q.c_str());
}
}  // namespace

// HONDO_PAGE_HINT=1 or 0 gives the Q4_0/Q4_1/Q4_K tiles and the F16/BF16 rows the page hint
// alone or their line prefetches (kernels/qdot.h; the CPU's default otherwise).
TEST(Cli, PageHintAloneIsReportedAndChangesNoResult) {
  expect_switch_reported_without_effect("Q4_0", "HONDO_PAGE_HINT", "0", "1", "page_hint_alone");
}

// HONDO_PAGE_AHEAD=on or off lets the weight readers announce pages ahead or not
// (kernels/qdot.h; off on Zen 3 by default); Q8_0 tiles read with line prefetches then.
TEST(Cli, PageAheadIsReportedAndChangesNoResult) {
  expect_switch_reported_without_effect("Q8_0", "HONDO_PAGE_AHEAD", "off", "on", "page_ahead");
}

// -d: every test after a context of that many tokens, named as llama-bench names it; each
// decoded token then reads the cache of the context too.
TEST(Cli, BenchDepthPrecedesEveryTest) {
  const CliResult text = run("bench -p 8 -n 8 -d 40 -r 1");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("pp8 @ d40"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("tg8 @ d40"), std::string::npos) << text.out;
  const CliResult flat = run("bench -p 0 -n 8 -r 1 --json");
  const CliResult deep = run("bench -p 0 -n 8 -d 40 -r 1 --json");
  ASSERT_EQ(flat.status, 0) << flat.err;
  ASSERT_EQ(deep.status, 0) << deep.err;
  const auto f = nlohmann::json::parse(flat.out), d = nlohmann::json::parse(deep.out);
  EXPECT_EQ(d["n_depth"].get<int>(), 40);
  EXPECT_EQ(f["n_depth"].get<int>(), 0);
  // Mean positions read per decoded token: 3.5 without a context, 43.5 after 40 tokens.
  const double per_position = f["kv_bytes_per_token_read"].get<double>() / 3.5;
  EXPECT_NEAR(d["kv_bytes_per_token_read"].get<double>(), 43.5 * per_position, per_position);
  EXPECT_GT(d["decode_tps"].get<double>(), 0);
  // The context counts against -c.
  expect_one_line_error(run("bench -p 8 -n 8 -d 40 -c 32"), "is smaller than the 49 tokens");
}

// --kv-type q8_0: the bundled model's latents in Q8_0 blocks (64 values: 68 bytes instead of
// 128), its rotary key (16 values, 32 bytes) in F16: 100 of 160 bytes a position and layer.
TEST(Cli, BenchReadsAQ8CacheOfFewerBytes) {
  const CliResult f16 = run("bench -p 0 -n 8 -d 40 -r 1 --json");
  const CliResult q8 = run("bench -p 0 -n 8 -d 40 -r 1 --json --kv-type q8_0");
  ASSERT_EQ(f16.status, 0) << f16.err;
  ASSERT_EQ(q8.status, 0) << q8.err;
  const auto a = nlohmann::json::parse(f16.out), b = nlohmann::json::parse(q8.out);
  EXPECT_EQ(a["kv_type"].get<std::string>(), "f16");
  EXPECT_EQ(b["kv_type"].get<std::string>(), "q8_0");
  EXPECT_NEAR(b["kv_bytes_per_token_read"].get<double>(),
              a["kv_bytes_per_token_read"].get<double>() * 100 / 160, 1.0);
  EXPECT_GT(b["decode_tps"].get<double>(), 0);
  const CliResult bad = run("bench -p 0 -n 8 --kv-type q4_0");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("q4_0 not in {f16,q8_0,f32}"), std::string::npos) << bad.err;
}

TEST(Cli, QuantizeWritesAMixAndRejectsUnknownTypes) {
  const std::string out = test::bin("test-models/cli-q4km-" + std::to_string(getpid()) + ".gguf");
  const CliResult r = run("quantize " + kStories + " " + out + " q4_k_m -t 2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Q4_K_M"), std::string::npos) << r.out;
  const CliResult gen = run("run -m " + out + " -p 'Once upon a time' -n 8 --temp 0 -q");
  EXPECT_EQ(gen.status, 0) << gen.err;
  std::remove(out.c_str());
  expect_one_line_error(run("quantize " + kStories + " " + out + " Q4_K_X"),
                        "unknown quantization type 'Q4_K_X'");
}
