#include "store/model_source.h"

#include <filesystem>

namespace fs = std::filesystem;

namespace hondo {

static bool looks_like_path(const std::string& s) {
  return s.rfind("/", 0) == 0 || s.rfind("./", 0) == 0 || s.rfind("../", 0) == 0 ||
         s.rfind("~", 0) == 0 ||
         (s.find('/') == std::string::npos && s.size() > 5 && s.substr(s.size() - 5) == ".gguf");
}

std::optional<HubRef> ModelSource::hub_ref(const std::string& spec) const {
  std::error_code ec;
  if (fs::exists(spec, ec) || looks_like_path(spec)) return std::nullopt;
  if (auto r = registry_.lookup(spec)) return r;
  if (auto r = parse_hub_ref(spec)) return r;
  std::string names;
  for (const auto& [n, f] : registry_.families()) names += (names.empty() ? "" : ", ") + n;
  fail("'", spec, "' is not a file, an alias (", names, ") or a hub repository (org/name)");
}

std::string ModelSource::file_of(const HubRef& ref, bool may_ask_hub) {
  if (!ref.file.empty()) return ref.file;
  std::vector<std::string> files;
  if (may_ask_hub && !hub_.options().offline) {
    files = hub_.list_files(ref.repo, ref.revision);
  } else {
    files = hub_.cache().snapshot_files(ref.repo, ref.revision);
    if (files.empty()) {
      if (hub_.options().offline)
        throw NotCachedError(cat("offline mode: ", ref.display(), " is not in the cache (",
                                 hub_.cache().root(), ")"));
      throw NotCachedError(
          cat(ref.display(), " is not downloaded (hondo pull ", ref.display(), ")"));
    }
  }
  return pick_gguf(files, ref.quant, ref.repo);
}

std::string ModelSource::locate(const std::string& spec, Fetch fetch) {
  const auto ref = hub_ref(spec);
  if (!ref) {
    std::error_code ec;
    if (!fs::exists(spec, ec)) fail(spec, ": no such file");
    return spec;
  }
  const bool online = fetch != Fetch::Never && !hub_.options().offline;
  // Choosing by quantization asks the hub only when the cache has no match or a refresh is
  // wanted.
  std::string file;
  if (fetch != Fetch::Always) {
    try {
      file = file_of(*ref, false);
    } catch (const NotCachedError&) {
      if (!online) throw;
    }
  }
  if (file.empty()) file = file_of(*ref, online);
  if (fetch != Fetch::Always || !online)
    if (auto p = hub_.cache().find(ref->repo, ref->revision, file)) return *p;
  if (!online)
    throw NotCachedError(cat(hub_.options().offline ? "offline mode: " : "", spec, " (", ref->repo,
                             "/", file, ") is not downloaded",
                             hub_.options().offline ? "" : cat(" (hondo pull ", spec, ")")));
  return hub_.download(ref->repo, file, ref->revision);
}

}  // namespace hondo
