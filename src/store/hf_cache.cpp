#include "store/hf_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace hondo {

std::string env_value(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}

void check_repo_id(const std::string& repo) {
  const auto slash = repo.find('/');
  bool ok = !repo.empty() &&
            repo.find('/', slash == std::string::npos ? 0 : slash + 1) == std::string::npos;
  for (char c : repo)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
                c == '/');
  ok = ok && repo.find("..") == std::string::npos && repo.front() != '/' && repo.back() != '/' &&
       repo.front() != '.';
  if (!ok)
    fail("'", repo,
         "' is not a hub repository id (expected org/name: letters, digits, '-', '_', '.')");
}

bool is_commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

static void check_file_path(const std::string& file) {
  const fs::path p(file);
  bool ok = !file.empty() && p.is_relative();
  for (const auto& part : p) ok = ok && part != ".." && part != ".";
  if (!ok) fail("'", file, "' is not a file path inside a repository");
}

// A temporary name beside `p`, unique across processes and threads.
static fs::path temp_beside(const fs::path& p) {
  static std::atomic<uint64_t> counter{0};
  return p.string() + ".tmp" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

HfCache::HfCache(std::string root) : root_(std::move(root)) {}

std::string HfCache::default_root() {
  if (auto v = env_value("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env_value("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env_value("HF_HOME"); !v.empty()) return v + "/hub";
  if (auto v = env_value("XDG_CACHE_HOME"); !v.empty()) return v + "/huggingface/hub";
  if (auto v = env_value("HOME"); !v.empty()) return v + "/.cache/huggingface/hub";
  fail("cannot find the model cache: set HF_HOME or HOME");
}

static std::string folder_name(const std::string& repo) {
  check_repo_id(repo);
  std::string s = "models--";
  for (char c : repo)
    if (c == '/')
      s += "--";
    else
      s += c;
  return s;
}

std::string HfCache::repo_dir(const std::string& repo) const {
  return root_ + "/" + folder_name(repo);
}
std::string HfCache::blob_path(const std::string& repo, const std::string& etag) const {
  return repo_dir(repo) + "/blobs/" + etag;
}
std::string HfCache::incomplete_path(const std::string& repo, const std::string& etag) const {
  return blob_path(repo, etag) + ".incomplete";
}
std::string HfCache::lock_path(const std::string& repo, const std::string& etag) const {
  return root_ + "/.locks/" + folder_name(repo) + "/" + etag + ".lock";
}
std::string HfCache::snapshot_path(const std::string& repo, const std::string& commit,
                                   const std::string& file) const {
  check_file_path(file);
  return repo_dir(repo) + "/snapshots/" + commit + "/" + file;
}

std::optional<std::string> HfCache::commit_for(const std::string& repo,
                                               const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(repo_dir(repo) + "/refs/" + revision);
  std::string commit;
  if (!(in >> commit) || !is_commit_hash(commit)) return std::nullopt;
  return commit;
}

std::optional<std::string> HfCache::find(const std::string& repo, const std::string& revision,
                                         const std::string& file) const {
  const auto commit = commit_for(repo, revision);
  if (!commit) return std::nullopt;
  const std::string p = snapshot_path(repo, *commit, file);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;  // follows the link: blob present
  return p;
}

std::vector<std::string> HfCache::snapshot_files(const std::string& repo,
                                                 const std::string& revision) const {
  std::vector<std::string> out;
  const auto commit = commit_for(repo, revision);
  if (!commit) return out;
  const fs::path dir = repo_dir(repo) + "/snapshots/" + *commit;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (fs::is_regular_file(e.path(), ec)) out.push_back(e.path().lexically_relative(dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

void HfCache::write_ref(const std::string& repo, const std::string& revision,
                        const std::string& commit) const {
  if (revision == commit) return;
  const fs::path p = repo_dir(repo) + "/refs/" + revision;
  fs::create_directories(p.parent_path());
  const fs::path tmp = temp_beside(p);
  {
    std::ofstream out(tmp);
    out << commit;
    if (!out) fail(tmp.string(), ": cannot write");
  }
  fs::rename(tmp, p);
}

void HfCache::link(const std::string& repo, const std::string& commit, const std::string& file,
                   const std::string& etag) const {
  const fs::path p = snapshot_path(repo, commit, file);
  fs::create_directories(p.parent_path());
  // Relative, so the cache can be moved: one "../" per folder below the repository folder.
  const fs::path target = fs::relative(blob_path(repo, etag), p.parent_path());
  const fs::path tmp = temp_beside(p);
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) {  // file systems without symbolic links: a hard link, else a copy
    fs::create_hard_link(blob_path(repo, etag), tmp, ec);
    if (ec) fs::copy_file(blob_path(repo, etag), tmp, fs::copy_options::overwrite_existing);
  }
  fs::rename(tmp, p);
}

std::vector<CachedRepo> HfCache::list() const {
  std::vector<CachedRepo> out;
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return out;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("models--", 0) != 0 || !e.is_directory()) continue;
    CachedRepo r;
    r.repo = name.substr(8);
    if (auto pos = r.repo.find("--"); pos != std::string::npos) r.repo.replace(pos, 2, "/");
    const fs::path snaps = e.path() / "snapshots";
    if (fs::is_directory(snaps, ec))
      for (const auto& s : fs::directory_iterator(snaps, ec))
        for (const auto& f : fs::recursive_directory_iterator(s.path(), ec)) {
          if (!fs::is_regular_file(f.path(), ec)) continue;
          CachedFile cf;
          cf.path = f.path().lexically_relative(s.path()).string();
          cf.commit = s.path().filename().string();
          cf.local = f.path().string();
          cf.size = fs::file_size(f.path(), ec);
          r.files.push_back(cf);
        }
    const fs::path blobs = e.path() / "blobs";
    if (fs::is_directory(blobs, ec))
      for (const auto& b : fs::directory_iterator(blobs, ec))
        if (b.is_regular_file() && b.path().extension() != ".incomplete")
          r.blob_bytes += b.file_size();
    std::sort(r.files.begin(), r.files.end(),
              [](const CachedFile& a, const CachedFile& b) { return a.path < b.path; });
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const CachedRepo& a, const CachedRepo& b) { return a.repo < b.repo; });
  return out;
}

uint64_t HfCache::remove(const std::string& repo, const std::string& file) const {
  const fs::path dir = repo_dir(repo);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(repo, " is not in the cache (", root_, ")");
  if (file.empty()) {
    uint64_t freed = 0;
    for (const auto& b : fs::directory_iterator(dir / "blobs", ec))
      if (b.is_regular_file()) freed += b.file_size();
    fs::remove_all(dir);
    return freed;
  }
  check_file_path(file);
  bool matched = false;
  const fs::path snaps = dir / "snapshots";
  if (fs::is_directory(snaps, ec))
    for (const auto& s : fs::directory_iterator(snaps, ec))
      if (fs::remove(s.path() / file, ec)) matched = true;
  if (!matched) fail(file, " is not in the cached snapshots of ", repo);
  // Blobs still referenced by some snapshot entry stay.
  std::set<std::string> used;
  for (const auto& f : fs::recursive_directory_iterator(snaps, ec))
    if (f.is_symlink()) used.insert(fs::read_symlink(f.path()).filename().string());
  uint64_t freed = 0;
  for (const auto& b : fs::directory_iterator(dir / "blobs", ec)) {
    const std::string n = b.path().filename().string();
    if (!b.is_regular_file() || n.find(".incomplete") != std::string::npos || used.count(n))
      continue;
    freed += b.file_size();
    fs::remove(b.path());
  }
  return freed;
}

}  // namespace hondo
