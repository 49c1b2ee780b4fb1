#include "io/hf_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/utf8.h"

namespace hondo {

namespace {

using json = nlohmann::json;

// llama.cpp's token types.
enum TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5 };

json read_json(const std::string& path, bool required) {
  std::ifstream in(path);
  if (!in) {
    if (required) fail(path, ": cannot open (a Hugging Face model folder needs it)");
    return json();
  }
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
}

// "\x{4E00}" -> the character itself, so table entries and tokenizer.json texts compare.
std::string unescape_codepoints(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "\\x{") == 0) {
      const size_t end = s.find('}', i);
      if (end != std::string::npos) {
        utf8_append(out, uint32_t(std::stoul(s.substr(i + 3, end - i - 3), nullptr, 16)));
        i = end;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// An added token's text from tokenizer_config.json: a string or {"content": ...}.
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return "";
}

}  // namespace

std::string detect_pretokenizer(const std::string& text) {
  const json j = json::parse(text);
  const json& pre = j.at("pre_tokenizer");
  std::vector<std::string> found;
  bool byte_level_regex = false;
  auto visit = [&](const json& p) {
    const std::string type = p.value("type", "");
    if (type == "Split" && p.contains("pattern") && p["pattern"].contains("Regex"))
      found.push_back(p["pattern"]["Regex"].get<std::string>());
    if (type == "ByteLevel" && p.value("use_regex", true)) byte_level_regex = true;
  };
  if (pre.is_object() && pre.value("type", "") == "Sequence")
    for (const auto& p : pre.at("pretokenizers")) visit(p);
  else if (pre.is_object())
    visit(pre);
  if (found.empty() && byte_level_regex) return "gpt-2";
  for (auto& f : found) f = unescape_codepoints(f);
  // Names sharing expressions resolve to the first: the DeepSeek names llama.cpp uses.
  for (const char* name : {"deepseek-coder", "deepseek-llm", "deepseek-v3", "deepseek-r1-qwen",
                           "qwen2", "llama-bpe", "gpt-2"}) {
    std::vector<std::string> want = PreTokenizer::patterns(name);
    for (auto& w : want) w = unescape_codepoints(w);
    if (want == found) return name;
  }
  std::string first = found.empty() ? "(none)" : found[0].substr(0, 60);
  fail("tokenizer.json: pre-tokenizer with ", found.size(), " split expressions (first: ", first,
       ") is not one hondo knows");
}

void hf_tokenizer_to_gguf(const std::string& dir, int64_t n_vocab, GgufWriter& w) {
  const std::string tj_path = dir + "/tokenizer.json";
  std::string text;
  {
    std::ifstream in(tj_path);
    if (!in) fail(tj_path, ": cannot open (a Hugging Face model folder needs it)");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  json tj;
  try {
    tj = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(tj_path, ": not valid JSON: ", e.what());
  }
  const json& model = tj.at("model");
  if (model.value("type", "") != "BPE")
    fail(tj_path, ": model type '", model.value("type", "?"),
         "'; hondo converts byte-level BPE tokenizers (all DeepSeek models use one)");
  // Tokens by id: the BPE vocabulary, then added tokens (which may also sit inside it).
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  auto put = [&](int64_t id, const std::string& s, int32_t type) {
    if (id < 0 || id > 10'000'000) fail(tj_path, ": token id ", id, " out of range");
    if (size_t(id) >= tokens.size()) {
      tokens.resize(size_t(id) + 1);
      types.resize(size_t(id) + 1, 0);
    }
    tokens[size_t(id)] = s;
    types[size_t(id)] = type;
  };
  for (const auto& [tok, id] : model.at("vocab").items()) put(id.get<int64_t>(), tok, kNormal);
  if (tj.contains("added_tokens"))
    for (const auto& a : tj["added_tokens"])
      put(a.at("id").get<int64_t>(), a.at("content").get<std::string>(),
          a.value("special", false) ? kControl : kUserDefined);
  if (n_vocab > 0 && int64_t(tokens.size()) > n_vocab)
    fail(tj_path, ": ", tokens.size(), " tokens, but the model has only ", n_vocab,
         " embedding rows");
  if (n_vocab > int64_t(tokens.size())) {
    tokens.resize(size_t(n_vocab));
    types.resize(size_t(n_vocab), 0);
  }
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 0) {  // an id no token uses
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = kUnused;
    }
  std::vector<std::string> merges;
  for (const auto& m : model.at("merges")) {
    if (m.is_string())
      merges.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2)
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else
      fail(tj_path, ": a merge is neither \"a b\" nor [\"a\", \"b\"]");
  }
  w.set("tokenizer.ggml.model", GgufValue::make_str("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::make_str(detect_pretokenizer(text)));
  w.set("tokenizer.ggml.tokens", GgufValue::make_strs(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::make_i32s(types));
  w.set("tokenizer.ggml.merges", GgufValue::make_strs(merges));

  const json cfg = read_json(dir + "/tokenizer_config.json", false);
  auto id_of = [&](const std::string& t) -> int64_t {
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] == t) return int64_t(i);
    return -1;
  };
  auto special = [&](const char* cfg_key, const char* gguf_key) {
    if (!cfg.is_object() || !cfg.contains(cfg_key)) return;
    const std::string t = token_text(cfg[cfg_key]);
    if (t.empty()) return;
    const int64_t id = id_of(t);
    if (id < 0) fail(dir, "/tokenizer_config.json: ", cfg_key, " '", t, "' is not a token");
    w.set(gguf_key, GgufValue::make_u32(uint32_t(id)));
  };
  special("bos_token", "tokenizer.ggml.bos_token_id");
  special("eos_token", "tokenizer.ggml.eos_token_id");
  special("pad_token", "tokenizer.ggml.padding_token_id");
  if (cfg.is_object()) {
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
      w.set("tokenizer.ggml.add_bos_token", GgufValue::make_bool(cfg["add_bos_token"]));
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
      w.set("tokenizer.ggml.add_eos_token", GgufValue::make_bool(cfg["add_eos_token"]));
    if (cfg.contains("chat_template") && cfg["chat_template"].is_string())
      w.set("tokenizer.chat_template", GgufValue::make_str(cfg["chat_template"]));
  }
  std::ifstream jinja(dir + "/chat_template.jinja");  // newer checkpoints keep it apart
  if (jinja) {
    std::stringstream ss;
    ss << jinja.rdbuf();
    w.set("tokenizer.chat_template", GgufValue::make_str(ss.str()));
  }
}

void gguf_tokenizer_to_hf(const GgufFile& f, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto& tokens = f.get_array("tokenizer.ggml.tokens", GgufType::STRING).strs;
  const GgufValue* types = f.find("tokenizer.ggml.token_type");
  const std::string pre = f.get_str("tokenizer.ggml.pre", "gpt-2");
  json vocab = json::object(), added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t t = types ? types->ints[i] : int64_t(kNormal);
    if (t == kUnused) continue;
    if (t == kControl || t == kUserDefined)
      added.push_back({{"id", i},
                       {"content", tokens[i]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", t != kControl},
                       {"special", t == kControl}});
    else
      vocab[tokens[i]] = i;
  }
  json pres = json::array();
  for (const auto& p : PreTokenizer::patterns(pre))
    pres.push_back({{"type", "Split"},
                    {"pattern", {{"Regex", p}}},
                    {"behavior", "Isolated"},
                    {"invert", false}});
  pres.push_back({{"type", "ByteLevel"},
                  {"add_prefix_space", false},
                  {"trim_offsets", true},
                  {"use_regex", false}});
  json tj = {{"version", "1.0"},
             {"added_tokens", added},
             {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
             {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", pres}}},
             {"decoder", {{"type", "ByteLevel"}}},
             {"model",
              {{"type", "BPE"},
               {"vocab", vocab},
               {"merges", f.get_array("tokenizer.ggml.merges", GgufType::STRING).strs}}}};
  std::ofstream(dir + "/tokenizer.json") << tj.dump();
  json cfg = json::object();
  auto tok = [&](const char* key) -> json {
    const int64_t id = f.get_int(key, -1);
    return id >= 0 && size_t(id) < tokens.size() ? json(tokens[size_t(id)]) : json(nullptr);
  };
  cfg["bos_token"] = tok("tokenizer.ggml.bos_token_id");
  cfg["eos_token"] = tok("tokenizer.ggml.eos_token_id");
  if (f.has("tokenizer.ggml.add_bos_token"))
    cfg["add_bos_token"] = f.get_bool("tokenizer.ggml.add_bos_token", true);
  if (f.has("tokenizer.chat_template")) cfg["chat_template"] = f.get_str("tokenizer.chat_template");
  std::ofstream(dir + "/tokenizer_config.json") << cfg.dump(2);
}

}  // namespace hondo
