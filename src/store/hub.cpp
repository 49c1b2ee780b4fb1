#include "store/hub.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "store/digest.h"
#include "store/memory.h"

namespace fs = std::filesystem;

namespace hondo {

namespace {

bool truthy(const std::string& v) {
  return v == "1" || v == "true" || v == "TRUE" || v == "True" || v == "yes" || v == "ON" ||
         v == "on";
}

// Exclusive advisory lock on a file, held for the object's life (works between threads too:
// each holder opens its own descriptor).
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fs::create_directories(fs::path(path).parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(path, ": cannot create lock file: ", std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) fail(path, ": cannot lock: ", std::strerror(errno));
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// ETag values come quoted and possibly weak: W/"abc" -> abc.
std::string clean_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e.erase(0, 2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

bool is_hex(const std::string& s, size_t digits) {
  if (s.size() != digits) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Percent-encodes what a path segment may not hold; '/' stays (files in folders).
std::string url_path(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += char(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

}  // namespace

HubOptions HubOptions::from_env() {
  HubOptions o;
  if (auto e = env_value("HF_ENDPOINT"); !e.empty()) o.endpoint = e;
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.token = env_value("HF_TOKEN");
  if (o.token.empty()) o.token = env_value("HUGGING_FACE_HUB_TOKEN");
  if (o.token.empty()) {  // the file `huggingface-cli login` writes
    const std::string home = env_value("HF_HOME").empty()
                                 ? env_value("HOME") + "/.cache/huggingface"
                                 : env_value("HF_HOME");
    std::ifstream in(home + "/token");
    std::getline(in, o.token);
  }
  o.offline = truthy(env_value("HF_HUB_OFFLINE"));
  o.cache_root = HfCache::default_root();
  return o;
}

Hub::Hub(HubOptions opt)
    : opt_(std::move(opt)),
      cache_(opt_.cache_root.empty() ? HfCache::default_root() : opt_.cache_root) {}

void Hub::note(const std::string& s) const {
  if (on_note) on_note(s);
}

HttpClient::Headers Hub::auth() const {
  HttpClient::Headers h;
  if (!opt_.token.empty()) h.push_back("Authorization: Bearer " + opt_.token);
  return h;
}

// Turns an error status of the hub into a message that says what to do.
[[noreturn]] static void hub_error(const HttpResponse& r, const std::string& what,
                                   const std::string& repo, bool have_token) {
  const std::string code = r.header("x-error-code");
  if (r.status == 401) {
    if (have_token)
      fail(what,
           ": the hub refused the token in HF_TOKEN (401 Unauthorized); check that it is "
           "valid");
    fail(what, ": authentication required (401): ", repo,
         " is gated or private, or does not exist; set HF_TOKEN to an access token that has "
         "access to it");
  }
  if (r.status == 403)
    fail(what, ": access denied (403): the token has no access to ", repo,
         "; accept the model's terms on its hub page, or use a token with read access");
  if (r.status == 404) {
    if (code == "EntryNotFound") fail(what, ": no such file in ", repo, " (404)");
    if (code == "RevisionNotFound") fail(what, ": no such revision in ", repo, " (404)");
    fail(what, ": not found (404): check the repository id ", repo, " and the file name");
  }
  fail(what, ": the hub answered HTTP ", r.status,
       r.body.empty() ? "" : " (" + r.body.substr(0, 200) + ")");
}

Hub::Remote Hub::head(const std::string& repo, const std::string& file,
                      const std::string& revision) {
  Remote r;
  r.url = opt_.endpoint + "/" + repo + "/resolve/" + url_path(revision) + "/" + url_path(file);
  HttpClient::Headers h = auth();
  h.push_back("Accept-Encoding: identity");  // sizes must be those of the file itself
  HttpResponse resp = http_.head(r.url, h);
  // A relative redirect is the hub itself (renamed repository): follow it. An absolute one is
  // the CDN holding a large file, and its answer already carries what we need.
  for (int hops = 0; hops < 5 && resp.status / 100 == 3; ++hops) {
    const std::string loc = resp.header("location");
    if (loc.empty() || loc.front() != '/') break;
    resp = http_.head(opt_.endpoint + loc, h);
  }
  if (resp.status >= 400) hub_error(resp, repo + "/" + file, repo, !opt_.token.empty());
  r.commit = resp.header("x-repo-commit");
  r.etag = clean_etag(resp.header("x-linked-etag", resp.header("etag")));
  const std::string size = resp.header("x-linked-size", resp.header("content-length"));
  r.size = size.empty() ? 0 : std::strtoull(size.c_str(), nullptr, 10);
  if (!is_commit_hash(r.commit) || r.etag.empty() || r.etag.find('/') != std::string::npos)
    fail(repo, "/", file, ": the hub's answer lacks a commit or a content id (X-Repo-Commit '",
         r.commit, "', ETag '", r.etag, "'); is ", opt_.endpoint, " a Hugging Face hub?");
  return r;
}

std::string Hub::download(const std::string& repo, const std::string& file,
                          const std::string& revision) {
  check_repo_id(repo);
  if (opt_.offline) {
    if (auto p = cache_.find(repo, revision, file)) return *p;
    fail("offline mode: ", repo, "/", file, " is not in the cache (", cache_.root(),
         "); download it once with network access (hondo pull)");
  }
  Remote r;
  try {
    r = head(repo, file, revision);
  } catch (const NetworkError& e) {
    // Unreachable hub: a cached copy still serves, as with huggingface_hub.
    if (auto p = cache_.find(repo, revision, file)) {
      note(cat("hub unreachable (", e.what(), "); using the cached copy"));
      return *p;
    }
    throw;
  }
  const std::string blob = cache_.blob_path(repo, r.etag);
  if (!fs::exists(blob)) {
    FileLock lock(cache_.lock_path(repo, r.etag));
    if (!fs::exists(blob)) fetch_blob(repo, r, file);  // else another pull finished it
  }
  cache_.link(repo, r.commit, file, r.etag);
  cache_.write_ref(repo, revision, r.commit);
  return cache_.snapshot_path(repo, r.commit, file);
}

void Hub::fetch_blob(const std::string& repo, const Remote& r, const std::string& file) {
  fs::create_directories(cache_.repo_dir(repo) + "/blobs");
  for (int attempt = 0;; ++attempt) {
    try {
      fetch_once(repo, r, file);
      return;
    } catch (const NetworkError& e) {
      if (attempt >= opt_.retries)
        fail(repo, "/", file, ": ", e.what(),
             "; the part already downloaded is kept, run the "
             "same command again to resume");
      note(cat(e.what(), "; resuming (attempt ", attempt + 2, " of ", opt_.retries + 1, ")"));
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
    }
  }
}

void Hub::fetch_once(const std::string& repo, const Remote& r, const std::string& file) {
  const std::string part = cache_.incomplete_path(repo, r.etag);
  std::error_code ec;
  uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  if (r.size && have > r.size) {  // not a prefix of this file: start over
    fs::remove(part, ec);
    have = 0;
  }
  if (r.size) {
    struct statvfs vfs {};
    if (::statvfs(fs::path(part).parent_path().c_str(), &vfs) == 0) {
      const uint64_t free_bytes = uint64_t(vfs.f_bavail) * vfs.f_frsize;
      if (r.size - have > free_bytes)
        fail(repo, "/", file, ": not enough disk space: needs ", format_size(r.size - have), ", ",
             format_size(free_bytes), " free in ", cache_.root());
    }
  }
  // LFS files are named by their SHA-256 (hashed as they arrive), small files by their git
  // blob id (hashed once complete).
  const bool verify = is_hex(r.etag, 64), git_blob = is_hex(r.etag, 40);
  Digest hash;
  if (verify && have) digest_update_file(hash, part, have);

  std::FILE* out = std::fopen(part.c_str(), have ? "ab" : "wb");
  if (!out) fail(part, ": cannot write: ", std::strerror(errno));
  uint64_t done = have;
  int write_errno = 0;
  bool restarted = false;
  Progress prog{file, done, r.size, have, 0, false};
  const auto t0 = std::chrono::steady_clock::now();
  auto last = t0;
  auto report = [&](bool finished) {
    if (!on_progress) return;
    prog.done = done;
    prog.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    prog.finished = finished;
    on_progress(prog);
  };
  HttpClient::Headers h = auth();
  h.push_back("Accept-Encoding: identity");
  if (have) h.push_back("Range: bytes=" + std::to_string(have) + "-");
  HttpClient::Sink sink = [&](long status, const char* data, size_t n) {
    if (status == 200 && have > 0 && !restarted) {  // the server ignored Range: start over
      restarted = true;
      if (std::freopen(part.c_str(), "wb", out) == nullptr) {
        write_errno = errno;
        return false;
      }
      done = 0;
      prog.resumed_from = 0;
      hash.reset();
    }
    if (std::fwrite(data, 1, n, out) != n) {
      write_errno = errno ? errno : EIO;
      return false;
    }
    if (verify) hash.update(data, n);
    done += n;
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::milliseconds(200)) {
      last = now;
      report(false);
    }
    return true;
  };
  HttpResponse resp;
  try {
    resp = http_.get_stream(r.url, h, sink);
  } catch (const NetworkError&) {
    std::fclose(out);
    throw;
  } catch (const Error&) {
    std::fclose(out);
    if (write_errno == ENOSPC)
      fail(repo, "/", file, ": disk full after ", format_size(done), " of ", format_size(r.size),
           " (in ", cache_.root(), "); the part is kept for resuming once space is freed");
    if (write_errno) fail(part, ": write failed: ", std::strerror(write_errno));
    throw;
  }
  if (std::fflush(out) != 0 || ::fsync(::fileno(out)) != 0) write_errno = errno;
  std::fclose(out);
  if (write_errno == ENOSPC)
    fail(repo, "/", file, ": disk full while finishing the download (in ", cache_.root(), ")");
  if (write_errno) fail(part, ": write failed: ", std::strerror(write_errno));
  if (resp.status == 416 && r.size && have == r.size) {
    // Everything was already there; verified below.
  } else if (resp.status >= 400) {
    hub_error(resp, repo + "/" + file, repo, !opt_.token.empty());
  }
  report(true);
  if (r.size && done != r.size)
    throw NetworkError(cat("the transfer ended after ", done, " of ", r.size, " bytes"));
  if (verify) {
    const std::string got = resp.status == 416 ? sha256_file(part) : hash.hex();
    if (got != r.etag) {
      fs::remove(part, ec);
      fail(repo, "/", file, ": checksum mismatch: the hub says SHA-256 ", r.etag,
           ", the downloaded file has ", got, "; it was discarded (not used)");
    }
  } else if (git_blob) {
    const std::string got = git_blob_id_file(part);
    if (got != r.etag) {
      fs::remove(part, ec);
      fail(repo, "/", file, ": checksum mismatch: the hub says git blob ", r.etag,
           ", the downloaded file has ", got, "; it was discarded (not used)");
    }
  }
  fs::rename(part, cache_.blob_path(repo, r.etag));
}

std::vector<std::string> Hub::list_files(const std::string& repo, const std::string& revision) {
  check_repo_id(repo);
  auto cached = [&]() {
    std::vector<std::string> files = cache_.snapshot_files(repo, revision);
    if (files.empty())
      fail(opt_.offline ? "offline mode: " : "", repo, " has no cached snapshot for revision '",
           revision, "' in ", cache_.root());
    return files;
  };
  if (opt_.offline) return cached();
  HttpResponse resp;
  try {
    resp = http_.get(opt_.endpoint + "/api/models/" + repo + "/revision/" + url_path(revision),
                     auth());
  } catch (const NetworkError& e) {
    note(cat("hub unreachable (", e.what(), "); listing the cached snapshot"));
    return cached();
  }
  if (resp.status >= 400) hub_error(resp, repo, repo, !opt_.token.empty());
  std::vector<std::string> files;
  try {
    const auto j = nlohmann::json::parse(resp.body);
    for (const auto& s : j.at("siblings")) files.push_back(s.at("rfilename").get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    fail(repo, ": the hub's file list is not the expected JSON (", e.what(), ")");
  }
  return files;
}

}  // namespace hondo
