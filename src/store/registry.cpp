#include "store/registry.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "store/hf_cache.h"

namespace hondo {

extern const char* const kBuiltinRegistryJson;  // store/registry.json, compiled in

std::string config_dir() {
  if (auto v = env_value("HONDO_CONFIG_DIR"); !v.empty()) return v;
  if (auto v = env_value("XDG_CONFIG_HOME"); !v.empty()) return v + "/hondo";
  if (auto v = env_value("HOME"); !v.empty()) return v + "/.config/hondo";
  return ".hondo";
}

std::string HubRef::display() const {
  std::string s = repo;
  if (!file.empty())
    s += "/" + file;
  else if (!quant.empty())
    s += ":" + quant;
  return s;
}

static std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}
static std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::toupper(c)); });
  return s;
}

// q4_k_m, Q8_0, iq2_xs, f16, bf16, f32
static bool looks_like_quant(const std::string& t) {
  const std::string s = lower(t);
  if (s == "f16" || s == "bf16" || s == "f32") return true;
  return (s.size() >= 2 && s[0] == 'q' && std::isdigit(static_cast<unsigned char>(s[1]))) ||
         (s.size() >= 3 && s.rfind("iq", 0) == 0 && std::isdigit(static_cast<unsigned char>(s[2])));
}

Registry Registry::builtin() {
  Registry r;
  r.merge(kBuiltinRegistryJson, "the built-in registry");
  return r;
}

Registry Registry::load() {
  Registry r = builtin();
  const std::string user = config_dir() + "/models.json";
  std::ifstream in(user);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    r.merge(ss.str(), user);
  }
  return r;
}

void Registry::merge(const std::string& json_text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(origin, ": not valid JSON: ", e.what());
  }
  if (!j.is_object() || !j.contains("models") || !j["models"].is_object())
    fail(origin, ": expected an object with \"models\": {NAME: {tags: {...}}}");
  for (const auto& [name, m] : j["models"].items()) {
    auto where = [&, n = name](const std::string& what) {
      fail(origin, ": model \"", n, "\": ", what);
    };
    if (name.empty() || name.find(':') != std::string::npos || name.find('/') != std::string::npos)
      where("a name may not be empty or contain ':' or '/'");
    if (!m.is_object() || !m.contains("tags") || !m["tags"].is_object() || m["tags"].empty())
      where("expected {\"tags\": {TAG: {\"repo\": ..., \"file\": ...}}}");
    Family f = families_[name];  // user entries extend a built-in family
    f.description = m.value("description", f.description);
    f.default_quant = m.value("default_quant", f.default_quant);
    for (const auto& [tag, t] : m["tags"].items()) {
      if (!t.is_object() || !t.contains("repo") || !t["repo"].is_string() || !t.contains("file") ||
          !t["file"].is_string())
        where("tag \"" + tag + "\" needs string fields \"repo\" and \"file\"");
      check_repo_id(t["repo"].get<std::string>());
      f.tags[lower(tag)] = {t["repo"].get<std::string>(), t["file"].get<std::string>()};
    }
    f.default_tag = lower(m.value("default_tag", f.default_tag));
    if (f.default_tag.empty()) f.default_tag = f.tags.begin()->first;
    if (!f.tags.count(f.default_tag)) where("default_tag \"" + f.default_tag + "\" is not a tag");
    families_[name] = f;
  }
}

std::optional<HubRef> Registry::lookup(const std::string& spec) const {
  const auto colon = spec.find(':');
  const std::string name = lower(spec.substr(0, colon));
  auto it = families_.find(name);
  if (it == families_.end()) return std::nullopt;
  const Family& f = it->second;
  std::string tag = colon == std::string::npos ? "" : lower(spec.substr(colon + 1));
  std::string quant;
  if (f.tags.count(tag) == 0) {
    // SIZE-QUANT, or QUANT alone (default size).
    const auto dash = tag.rfind('-');
    const std::string last = dash == std::string::npos ? tag : tag.substr(dash + 1);
    if (looks_like_quant(last)) {
      quant = last;
      tag = dash == std::string::npos ? "" : tag.substr(0, dash);
    }
    if (tag.empty()) tag = f.default_tag;
  }
  auto t = f.tags.find(tag);
  if (t == f.tags.end()) {
    std::string known;
    for (const auto& [k, v] : f.tags) known += (known.empty() ? "" : ", ") + k;
    fail("'", spec, "': ", name, " has no tag '", tag, "' (known: ", known,
         "; a quantization may follow, e.g. ", name, ":", f.default_tag, "-q8_0)");
  }
  HubRef r;
  r.repo = t->second.first;
  r.file = t->second.second;
  r.quant = upper(quant.empty() ? f.default_quant : quant);
  if (const auto pos = r.file.find("{QUANT}"); pos != std::string::npos) {
    if (r.quant.empty()) fail("'", spec, "': no quantization given and the alias has no default");
    r.file.replace(pos, 7, r.quant);
  } else if (!quant.empty()) {
    fail("'", spec, "': the alias names one file (", r.file, "); it offers no quantizations");
  }
  return r;
}

std::optional<HubRef> parse_hub_ref(const std::string& s) {
  const auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  HubRef r;
  const auto second = s.find('/', slash + 1);
  if (second == std::string::npos) {
    const auto colon = s.find(':');
    r.repo = s.substr(0, colon);
    if (colon != std::string::npos) r.quant = s.substr(colon + 1);
  } else {
    r.repo = s.substr(0, second);
    r.file = s.substr(second + 1);
    if (r.file.empty()) return std::nullopt;
  }
  check_repo_id(r.repo);
  return r;
}

static bool word_at(const std::string& hay, size_t pos, size_t len) {
  auto sep = [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '_'; };
  return (pos == 0 || sep(hay[pos - 1])) && (pos + len == hay.size() || sep(hay[pos + len]));
}

std::string pick_gguf(const std::vector<std::string>& files, const std::string& quant,
                      const std::string& repo) {
  std::vector<std::string> gguf;
  for (const auto& f : files)
    if (lower(f).size() > 5 && lower(f).substr(f.size() - 5) == ".gguf") gguf.push_back(f);
  if (gguf.empty())
    fail(repo, " has no .gguf file (for a safetensors checkpoint use hondo convert)");
  auto with = [&](const std::string& q) {
    std::vector<std::string> m;
    const std::string lq = lower(q);
    for (const auto& f : gguf) {
      const std::string lf = lower(std::filesystem::path(f).filename().string());
      for (size_t pos = lf.find(lq); pos != std::string::npos; pos = lf.find(lq, pos + 1))
        if (word_at(lf, pos, lq.size())) {
          m.push_back(f);
          break;
        }
    }
    return m;
  };
  std::vector<std::string> m = quant.empty() ? with("Q4_K_M") : with(quant);
  if (quant.empty() && m.empty() && gguf.size() == 1) m = gguf;
  std::string listing;
  for (const auto& f : gguf) listing += (listing.empty() ? " " : ", ") + f;
  if (m.empty())
    fail(repo, ": no .gguf file for ", quant.empty() ? "the default Q4_K_M" : quant,
         "; the repository has:", listing);
  std::sort(m.begin(), m.end());
  if (m.front().find("-00001-of-") != std::string::npos)
    fail(repo, ": ", m.front(),
         " is split in several files; hondo reads single-file GGUF only "
         "(merge the parts with llama.cpp's gguf-split --merge)");
  if (m.size() > 1) fail(repo, ": several files match ", quant, ":", listing);
  return m.front();
}

}  // namespace hondo
