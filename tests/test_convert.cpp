// hondo convert: checkpoints written by the project's exporter for each architecture convert
// back to the same tensors and logits as the GGUF they came from; FP8 blocks dequantize
// exactly; the real DeepSeek-V3 tokenizer.json converts to a vocabulary that passes its
// vectors; bad checkpoints give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
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
