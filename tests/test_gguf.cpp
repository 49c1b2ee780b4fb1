// GGUF reader/writer: round trip of every metadata type, and clear errors (never a crash)
// for truncated, corrupted and malformed files.
#include <cstring>
#include <fstream>
#include <functional>
#include <random>

#include "core/error.h"
#include "io/gguf.h"
#include "model/model.h"
#include "test_util.h"

using namespace hondo;

namespace {

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
std::string tmp(const std::string& name) {
  std::filesystem::create_directories(test::bin("test-models"));
  return test::bin("test-models/" + name);
}
// Loads a model; returns the error message ("" if it loaded).
std::string load_error(const std::string& path) {
  try {
    Model::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gguf, RoundTripEveryMetadataType) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_str("llama"));
  GgufValue u8;
  u8.type = GgufType::U8;
  u8.i = 200;
  GgufValue i8;
  i8.type = GgufType::I8;
  i8.i = -100;
  GgufValue u16;
  u16.type = GgufType::U16;
  u16.i = 60000;
  GgufValue i16;
  i16.type = GgufType::I16;
  i16.i = -30000;
  GgufValue i64;
  i64.type = GgufType::I64;
  i64.i = -(int64_t(1) << 40);
  GgufValue f64;
  f64.type = GgufType::F64;
  f64.f = 3.141592653589793;
  w.set("t.u8", u8);
  w.set("t.i8", i8);
  w.set("t.u16", u16);
  w.set("t.i16", i16);
  w.set("t.u32", GgufValue::make_u32(4000000000u));
  w.set("t.i32", GgufValue::make_i32(-2000000000));
  w.set("t.u64", GgufValue::make_u64(18000000000000000000ull));
  w.set("t.i64", i64);
  w.set("t.f32", GgufValue::make_f32(0.25f));
  w.set("t.f64", f64);
  w.set("t.bool", GgufValue::make_bool(true));
  w.set("t.str", GgufValue::make_str("héllo ▁ world"));
  w.set("t.strs", GgufValue::make_strs({"a", "", "ccc"}));
  w.set("t.f32s", GgufValue::make_f32s({1.5f, -2.0f}));
  w.set("t.i32s", GgufValue::make_i32s({7, -8, 9}));
  w.add_tensor_f32("a", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  w.add_tensor_f32("b", {3}, {9, 10, 11});
  const std::string p = tmp("roundtrip.gguf");
  w.write(p, 64);
  auto f = GgufFile::open(p);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->get_int("t.u8"), 200);
  EXPECT_EQ(f->get_int("t.i8"), -100);
  EXPECT_EQ(f->get_int("t.u16"), 60000);
  EXPECT_EQ(f->get_int("t.i16"), -30000);
  EXPECT_EQ(f->get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(f->get_int("t.i32"), -2000000000);
  EXPECT_EQ(f->find("t.u64")->u, 18000000000000000000ull);
  EXPECT_EQ(f->get_int("t.i64"), -(int64_t(1) << 40));
  EXPECT_FLOAT_EQ(float(f->get_float("t.f32")), 0.25f);
  EXPECT_DOUBLE_EQ(f->get_float("t.f64"), 3.141592653589793);
  EXPECT_TRUE(f->get_bool("t.bool", false));
  EXPECT_EQ(f->get_str("t.str"), "héllo ▁ world");
  EXPECT_EQ(f->get_array("t.strs", GgufType::STRING).strs,
            (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f->get_array("t.f32s", GgufType::F32).floats, (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(f->get_array("t.i32s", GgufType::I32).ints, (std::vector<int64_t>{7, -8, 9}));
  const Tensor* a = f->find_tensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape_str(), "[4, 2]");
  EXPECT_EQ(static_cast<const float*>(a->data)[7], 8.0f);
  EXPECT_EQ(f->tensor_file_offset(*a) % 64, 0u);
  EXPECT_EQ(static_cast<const float*>(f->find_tensor("b")->data)[2], 11.0f);
  // Wrong-type access names the key and both types.
  try {
    f->get_int("t.str");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'t.str' should be an integer, found string"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(f->get_str("missing.key"), Error);
}

// A tensor source that fails halfway (bad checkpoint data, out of memory) leaves neither the
// output nor its temporary file behind, and an existing file of that name untouched.
TEST(Gguf, FailingTensorSourceLeavesNothingBehind) {
  const std::string dir = test::bin("test-models/writer-fail");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/out.gguf";
  std::ofstream(path) << "previous";
  GgufWriter w;
  w.add_tensor_f32("a", {4}, {1, 2, 3, 4});
  w.add_tensor("b", DType::F32, {1024}, [](uint8_t*, size_t) { throw std::bad_alloc(); });
  EXPECT_THROW(w.write(path), std::bad_alloc);
  EXPECT_EQ(test::read_file(path), "previous");
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);
  std::filesystem::remove_all(dir);
}

TEST(Gguf, FileTypeUsesLlamaCppEnum) {
  // general.file_type is llama.cpp's file-type enum, which differs from tensor type ids.
  EXPECT_EQ(file_type_of(DType::Q8_0), 7u);
  EXPECT_EQ(file_type_of(DType::Q5_0), 8u);
  EXPECT_EQ(file_type_of(DType::Q4_0), 2u);
  EXPECT_EQ(file_type_of(DType::BF16), 32u);
}

TEST(Gguf, ReadsPublishedVocabFiles) {
  // Files written by llama.cpp's own tools (GGUF v3, real tokenizer metadata).
  auto f = GgufFile::open(test::vocab("deepseek-coder"));
  EXPECT_EQ(f->get_str("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_str("tokenizer.ggml.pre"), "deepseek-coder");
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs.size(), 32256u);
}

class GgufCorruption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SynthSpec s = test::tiny("tiny-llama");
    good_ = test::synthetic("corruption-base", s);
  }
  static std::string good_;
};
std::string GgufCorruption::good_;

TEST_F(GgufCorruption, TruncatedAnywhereGivesClearError) {
  const auto bytes = read_bytes(good_);
  ASSERT_EQ(load_error(good_), "");
  const std::string p = tmp("truncated.gguf");
  std::vector<size_t> cuts = {0, 3, 4, 7, 8, 15, 23, 24, 40, 100, 1000};
  for (int k = 1; k < 40; ++k) cuts.push_back(bytes.size() * size_t(k) / 40);
  cuts.push_back(bytes.size() - 1);
  for (size_t cut : cuts) {
    write_bytes(p, std::vector<uint8_t>(bytes.begin(), bytes.begin() + long(cut)));
    const std::string err = load_error(p);
    EXPECT_NE(err, "") << "cut at " << cut;
    EXPECT_NE(err.find(p), std::string::npos) << "message should name the file: " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
  }
}

TEST_F(GgufCorruption, RandomByteFlipsNeverCrash) {
  const auto bytes = read_bytes(good_);
  const std::string p = tmp("flipped.gguf");
  std::mt19937 rng(1234);
  // Flip bytes in the header/metadata/tensor-table region, where structure lives.
  const size_t header = std::min<size_t>(bytes.size(), 1200000);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    auto b = bytes;
    for (int k = 0; k < 3; ++k) b[rng() % header] ^= uint8_t(1 + rng() % 255);
    write_bytes(p, b);
    errors += load_error(p).empty() ? 0 : 1;  // either loads or reports; must not crash
  }
  RecordProperty("rejected", errors);
  SUCCEED();
}

TEST_F(GgufCorruption, BadMagicAndVersions) {
  auto bytes = read_bytes(good_);
  const std::string p = tmp("badmagic.gguf");
  auto b = bytes;
  b[0] = 'X';
  write_bytes(p, b);
  EXPECT_NE(load_error(p).find("not a GGUF file"), std::string::npos) << load_error(p);
  b = bytes;
  b[4] = 1;
  write_bytes(p, b);
  EXPECT_NE(load_error(p).find("version 1 is obsolete"), std::string::npos) << load_error(p);
  b = bytes;
  b[4] = 2;  // GGUF v2 has the same layout as v3
  write_bytes(p, b);
  EXPECT_EQ(load_error(p), "");
  b = bytes;
  b[4] = 99;
  write_bytes(p, b);
  EXPECT_NE(load_error(p).find("unsupported GGUF version 99"), std::string::npos) << load_error(p);
  b = bytes;
  b[4] = 0, b[7] = 3;  // 3 as big-endian
  write_bytes(p, b);
  EXPECT_NE(load_error(p).find("big-endian"), std::string::npos) << load_error(p);
  write_bytes(p, {'h', 'e', 'l', 'l', 'o', '\n'});
  EXPECT_NE(load_error(p).find("not a GGUF file"), std::string::npos) << load_error(p);
  EXPECT_NE(load_error(tmp("does-not-exist.gguf")).find("cannot open"), std::string::npos);
}

TEST_F(GgufCorruption, HugeCountsRejectedBeforeAllocating) {
  auto b = read_bytes(good_);
  const std::string p = tmp("hugecount.gguf");
  for (int i = 8; i < 16; ++i) b[size_t(i)] = 0xff;  // tensor count
  write_bytes(p, b);
  EXPECT_NE(load_error(p).find("cannot fit"), std::string::npos) << load_error(p);
}

// Writes a tiny-llama-shaped file with one tensor changed by `edit`.
std::string variant(const std::string& name,
                    const std::function<void(SynthSpec&, GgufWriter&)>& edit) {
  // Re-create the base model's metadata and tensors, then let `edit` change them.
  SynthSpec s = test::tiny("tiny-llama");
  const std::string base = test::synthetic(name + "-base", s);
  auto f = GgufFile::open(base);
  GgufWriter w;
  w.copy_metadata(*f, "");
  edit(s, w);
  for (const Tensor& t : f->tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    if (t.name == "blk.1.attn_k.weight" && name == "wrong-shape") ne = {ne[0], ne[1] * 2};
    if (t.name == "blk.0.ffn_up.weight" && name == "missing-tensor") continue;
    const Tensor* tp = &t;
    const size_t n = row_bytes(t.type, ne[0]) * size_t(ne.size() > 1 ? ne[1] : 1);
    w.add_tensor(t.name, t.type, ne, [tp, n](uint8_t* dst, size_t) {
      std::memcpy(dst, tp->data, std::min(n, tp->nbytes()));
    });
  }
  const std::string p = tmp(name + ".gguf");
  w.write(p);
  return p;
}

TEST(GgufModel, WrongShapeNamesTensorExpectedAndFound) {
  const std::string p = variant("wrong-shape", [](SynthSpec&, GgufWriter&) {});
  const std::string err = load_error(p);
  EXPECT_NE(err.find("tensor 'blk.1.attn_k.weight' has shape [64, 64], expected [64, 32]"),
            std::string::npos)
      << err;
}

TEST(GgufModel, MissingTensorNamed) {
  const std::string p = variant("missing-tensor", [](SynthSpec&, GgufWriter&) {});
  const std::string err = load_error(p);
  EXPECT_NE(err.find("missing tensor 'blk.0.ffn_up.weight'"), std::string::npos) << err;
}

TEST(GgufModel, UnknownArchitecture) {
  const std::string p = variant("unknown-arch", [](SynthSpec&, GgufWriter& w) {
    w.set("general.architecture", GgufValue::make_str("mamba"));
  });
  const std::string err = load_error(p);
  EXPECT_NE(err.find("unknown architecture 'mamba'"), std::string::npos) << err;
}

TEST(GgufModel, InvalidHyperParameters) {
  const std::string p = variant("bad-heads", [](SynthSpec&, GgufWriter& w) {
    w.set("llama.attention.head_count_kv", GgufValue::make_u32(3));
  });
  const std::string err = load_error(p);
  EXPECT_NE(err.find("not a multiple of head_count_kv 3"), std::string::npos) << err;
}

TEST(GgufModel, WrongMetadataType) {
  const std::string p = variant("bad-type", [](SynthSpec&, GgufWriter& w) {
    w.set("llama.block_count", GgufValue::make_str("two"));
  });
  const std::string err = load_error(p);
  EXPECT_NE(err.find("'llama.block_count' should be an integer, found string"), std::string::npos)
      << err;
}

TEST(GgufModel, UnsupportedTensorTypeRejectedClearly) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::make_str("llama"));
  w.add_tensor("x", DType::IQ2_XXS, {256, 1}, [](uint8_t*, size_t) {});
  const std::string p = tmp("iq2.gguf");
  w.write(p);
  auto f = GgufFile::open(p);  // readable: the type is known
  EXPECT_EQ(f->find_tensor("x")->type, DType::IQ2_XXS);
  EXPECT_FALSE(dtype_info(DType::IQ2_XXS).can_compute);
}

}  // namespace

TEST(GgufNames, TensorBlockIndex) {
  EXPECT_EQ(tensor_block_index("blk.0.attn_q.weight"), 0);
  EXPECT_EQ(tensor_block_index("blk.61.nextn.eh_proj.weight"), 61);
  EXPECT_EQ(tensor_block_index("output.weight"), -1);
  EXPECT_EQ(tensor_block_index("blk.x.attn_q.weight"), -1);
  EXPECT_EQ(tensor_block_index("blk.12"), -1);
  EXPECT_EQ(tensor_block_index("token_embd.weight"), -1);
}
