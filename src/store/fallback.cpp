#include "store/fallback.h"

#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "io/gguf.h"

namespace hondo {

std::string FallbackConfig::default_path() {
  return config_dir() + "/fallback.json";
}

FallbackConfig FallbackConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    FallbackConfig c;
    c.origin = path;
    return c;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

FallbackConfig FallbackConfig::parse(const std::string& text, const std::string& origin) {
  FallbackConfig c;
  c.origin = origin;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(origin, ": not valid JSON: ", e.what());
  }
  const char* shape =
      ": expected {\"models\": [\"alias, org/repo:quant or path\", ...], \"memory_limit\": "
      "\"8GiB\"}";
  if (!j.is_object()) fail(origin, shape);
  for (const auto& [k, v] : j.items()) {
    if (k == "models") {
      if (!v.is_array()) fail(origin, ": \"models\" must be an array of strings");
      for (const auto& m : v) {
        if (!m.is_string() || m.get<std::string>().empty())
          fail(origin, ": \"models\" must be an array of non-empty strings");
        c.models.push_back(m.get<std::string>());
      }
    } else if (k == "memory_limit") {
      if (v.is_number_unsigned())
        c.memory_limit = v.get<uint64_t>();
      else if (v.is_string())
        c.memory_limit = parse_size(v.get<std::string>());
      else
        fail(origin, ": \"memory_limit\" must be a size such as \"8GiB\" or a number of bytes");
    } else if (k.rfind("_", 0) != 0) {  // "_comment" and the like are allowed
      fail(origin, ": unknown key \"", k, "\"", shape);
    }
  }
  return c;
}

namespace {

// What stops a candidate, or the loaded engine. Every failure becomes a one-line reason.
struct Attempt {
  std::unique_ptr<Engine> engine;
  std::string path, reason;
  MemoryEstimate estimate;
};

Attempt try_candidate(const Candidate& c, ModelSource& source, const EngineOptions& eo,
                      uint64_t limit, const std::string& limit_origin,
                      const std::function<void(const std::string&)>& note) {
  Attempt a;
  try {
    a.path = c.bundled ? c.spec
                       : source.locate(c.spec, c.download ? ModelSource::Fetch::IfMissing
                                                          : ModelSource::Fetch::Never);
  } catch (const NotCachedError& e) {
    a.reason = cat("not on this machine: ", e.what());
    return a;
  } catch (const Error& e) {
    a.reason = e.what();
    return a;
  }
  std::unique_ptr<GgufFile> f;
  try {
    f = GgufFile::open(a.path);
  } catch (const Error& e) {
    a.reason = cat("not a valid model file: ", e.what());
    return a;
  }
  a.estimate = estimate_memory(*f, eo.n_ctx, eo.kv_type, eo.n_batch);
  f.reset();
  if (limit && a.estimate.total() > limit) {
    a.reason = cat("needs ", a.estimate.describe(), ", more than the ", format_size(limit), " ",
                   limit_origin);
    return a;
  }
  if (note) note(cat("loading ", a.path, " (needs about ", format_size(a.estimate.total()), ")"));
  try {
    a.engine = std::make_unique<Engine>(a.path, eo);
  } catch (const std::bad_alloc&) {
    a.reason = "out of memory while loading";
  } catch (const Error& e) {
    a.reason = cat("failed to load: ", e.what());
  }
  return a;
}

}  // namespace

LoadedModel load_with_fallback(const std::vector<Candidate>& candidates, ModelSource& source,
                               const EngineOptions& engine_opt, const FallbackOptions& opt) {
  if (candidates.empty()) fail("no model to load");
  uint64_t limit = available_memory();
  std::string limit_origin = "available on this machine";
  if (opt.memory_limit && (limit == 0 || opt.memory_limit < limit)) {
    limit = opt.memory_limit;
    limit_origin = "allowed by the memory limit";
  }
  LoadedModel out;
  const size_t n = opt.enabled ? candidates.size() : 1;
  for (size_t i = 0; i < n; ++i) {
    const Candidate& c = candidates[i];
    Attempt a = try_candidate(c, source, engine_opt, limit, limit_origin, opt.on_note);
    if (a.engine) {
      out.engine = std::move(a.engine);
      out.spec = c.spec;
      out.path = a.path;
      out.bundled = c.bundled;
      out.estimate = a.estimate;
      return out;
    }
    out.skipped.push_back({c.spec, a.reason});
    if (opt.on_note && opt.enabled && i + 1 < n)
      opt.on_note(cat("skipped ", c.spec, ": ", a.reason));
  }
  if (!opt.enabled) {
    const std::string& why = out.skipped[0].reason;
    const std::string& spec = candidates[0].spec;
    fail(why.find(spec) == std::string::npos ? spec + ": " : "", why,
         " (fallback disabled by --no-fallback)");
  }
  std::string all;
  for (const auto& s : out.skipped) all += cat("; ", s.spec, ": ", s.reason);
  fail("no model could be loaded", all);
}

}  // namespace hondo
