// The Hugging Face hub cache on disk, in the layout huggingface_hub uses, so that files
// downloaded by other tools are reused and theirs by us:
//
//   $HF_HUB_CACHE  (else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
//                   ~/.cache/huggingface/hub)
//     models--{org}--{name}/
//       blobs/{etag}               file contents, named by SHA-256 (LFS) or git blob id
//       blobs/{etag}.incomplete    a download in progress, resumed from its size
//       snapshots/{commit}/{path}  relative symlinks into ../../blobs/
//       refs/{revision}            the commit a branch or tag pointed to when last seen
//     .locks/models--{org}--{name}/{etag}.lock
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hondo {

// The value of an environment variable, "" when unset or empty.
std::string env_value(const char* name);

// Checks a hub repository id ("org/name" or "name"; letters, digits, '-', '_', '.').
void check_repo_id(const std::string& repo);
bool is_commit_hash(const std::string& s);  // 40 lowercase hex digits

struct CachedFile {
  std::string path;    // inside the repository, e.g. "model-Q4_K_M.gguf"
  std::string commit;  // the snapshot holding it
  std::string local;   // absolute path of the snapshot entry
  uint64_t size = 0;
};

struct CachedRepo {
  std::string repo;
  std::vector<CachedFile> files;
  uint64_t blob_bytes = 0;  // disk used by the repository's blobs (complete ones)
};

class HfCache {
 public:
  explicit HfCache(std::string root);
  static std::string default_root();

  const std::string& root() const { return root_; }
  std::string repo_dir(const std::string& repo) const;
  std::string blob_path(const std::string& repo, const std::string& etag) const;
  std::string incomplete_path(const std::string& repo, const std::string& etag) const;
  std::string lock_path(const std::string& repo, const std::string& etag) const;
  std::string snapshot_path(const std::string& repo, const std::string& commit,
                            const std::string& file) const;

  // The commit `revision` stands for, without the network: a commit hash is itself, a branch
  // or tag is read from refs/.
  std::optional<std::string> commit_for(const std::string& repo, const std::string& revision) const;
  // The local path of `file` at `revision` if it is cached completely.
  std::optional<std::string> find(const std::string& repo, const std::string& revision,
                                  const std::string& file) const;
  // Files present in the snapshot `revision` resolves to (paths inside the repository).
  std::vector<std::string> snapshot_files(const std::string& repo,
                                          const std::string& revision) const;

  void write_ref(const std::string& repo, const std::string& revision,
                 const std::string& commit) const;
  // snapshots/{commit}/{file} -> blobs/{etag}, replaced atomically.
  void link(const std::string& repo, const std::string& commit, const std::string& file,
            const std::string& etag) const;

  std::vector<CachedRepo> list() const;
  // Removes the repository's snapshot entries (all, or those of one file) and the blobs no
  // snapshot refers to any more. Returns the bytes freed; throws if nothing matched.
  uint64_t remove(const std::string& repo, const std::string& file = "") const;

 private:
  std::string root_;
};

}  // namespace hondo
