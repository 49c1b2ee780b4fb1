// Downloads from the Hugging Face hub (or a mirror at HF_ENDPOINT) into the shared cache.
//
// One file: HEAD {endpoint}/{repo}/resolve/{revision}/{file} gives the commit (X-Repo-Commit),
// the content id (X-Linked-Etag for LFS files = their SHA-256, else ETag) and the size. The
// body goes to blobs/{etag}.incomplete, resumed with a Range request when a previous attempt
// left part of it; the SHA-256 of LFS files is checked; then the blob is renamed into place
// and snapshots/{commit}/{file} is linked to it. A lock file per blob keeps concurrent pulls
// of the same file (threads or processes) from writing it twice.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "store/hf_cache.h"
#include "store/http_client.h"

namespace hondo {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::string token;                                // HF_TOKEN, HUGGING_FACE_HUB_TOKEN
  bool offline = false;                             // HF_HUB_OFFLINE=1
  std::string cache_root;                           // HfCache::default_root()
  int retries = 3;  // further attempts after a dropped connection, each resuming
  // Defaults from the environment variables huggingface_hub reads.
  static HubOptions from_env();
};

struct Progress {
  std::string file;
  uint64_t done = 0, total = 0;  // bytes of the file (total 0: unknown)
  uint64_t resumed_from = 0;     // bytes already there when this attempt began
  double seconds = 0;            // since this attempt began
  bool finished = false;
};

class Hub {
 public:
  explicit Hub(HubOptions opt);
  const HubOptions& options() const { return opt_; }
  const HfCache& cache() const { return cache_; }

  std::function<void(const Progress&)> on_progress;
  std::function<void(const std::string&)> on_note;  // one-line notices (cache used, retrying)

  // The local path of `file`: from the cache when offline, else after making sure the cached
  // blob is the hub's current one (downloading it if not).
  std::string download(const std::string& repo, const std::string& file,
                       const std::string& revision = "main");
  // Paths of the files in the repository at `revision` (offline: of the cached snapshot).
  std::vector<std::string> list_files(const std::string& repo,
                                      const std::string& revision = "main");

 private:
  struct Remote {
    std::string commit, etag, url;
    uint64_t size = 0;
  };
  Remote head(const std::string& repo, const std::string& file, const std::string& revision);
  void fetch_blob(const std::string& repo, const Remote& r, const std::string& file);
  void fetch_once(const std::string& repo, const Remote& r, const std::string& file);
  HttpClient::Headers auth() const;
  void note(const std::string& s) const;

  HubOptions opt_;
  HfCache cache_;
  HttpClient http_;
};

}  // namespace hondo
