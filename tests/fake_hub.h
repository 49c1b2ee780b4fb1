// A fake Hugging Face hub on loopback for store tests: the resolve endpoint (HEAD/GET, with
// the hub's headers and a redirect to a "CDN" for LFS files), byte ranges, the model info
// API, gated repositories, and injected faults (cut connections, wrong checksums).
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/digest.h"

namespace hondo::test {

class FakeHub {
 public:
  struct File {
    std::string content;
    bool lfs = true;
    std::string claimed_sha;  // non-empty: the hash announced instead of the real one
  };
  struct Repo {
    std::string commit;
    std::map<std::string, File> files;
    bool gated = false;  // needs "Authorization: Bearer <token>"
  };

  FakeHub() {
    srv_.Get(R"(/api/models/([^/]+/[^/]+)/revision/([^/]+))",
             [this](const httplib::Request& req, httplib::Response& res) { info(req, res); });
    srv_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
             [this](const httplib::Request& req, httplib::Response& res) { resolve(req, res); });
    srv_.Get(R"(/cdn/([0-9a-f]+))",
             [this](const httplib::Request& req, httplib::Response& res) { cdn(req, res); });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    while (!srv_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeHub() {
    srv_.stop();
    thread_.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void add(const std::string& repo, const std::string& file, File f, bool gated = false) {
    std::lock_guard<std::mutex> g(mu_);
    Repo& r = repos_[repo];
    if (r.commit.empty()) r.commit = std::string(40, 'a' + char(repos_.size() % 6));
    r.gated = r.gated || gated;
    r.files[file] = std::move(f);
  }
  void set_commit(const std::string& repo, const std::string& commit) {
    std::lock_guard<std::mutex> g(mu_);
    repos_[repo].commit = commit;
  }

  // The next `n` CDN transfers stop after `bytes` bytes of body, closing the connection.
  void cut_next(int n, size_t bytes) {
    cut_left_ = n;
    cut_bytes_ = bytes;
  }

  std::atomic<int> heads{0}, gets{0}, api_calls{0};
  std::atomic<size_t> body_bytes{0};  // CDN body bytes sent
  std::string token = "hf_secret";

  std::vector<std::string> ranges() {  // Range headers the CDN saw, in order
    std::lock_guard<std::mutex> g(mu_);
    return ranges_;
  }

  static std::string sha(const std::string& s) {
    Digest h;
    h.update(s.data(), s.size());
    return h.hex();
  }

 private:
  bool authorized(const Repo& r, const httplib::Request& req) const {
    return !r.gated || req.get_header_value("Authorization") == "Bearer " + token;
  }

  // The repository of the request, or end() with a 401 answered: like the hub, a repository
  // one has no access to does not visibly exist.
  std::map<std::string, Repo>::iterator visible_repo(const httplib::Request& req,
                                                     httplib::Response& res) {
    auto it = repos_.find(req.matches[1]);
    if (it != repos_.end() && authorized(it->second, req)) return it;
    res.status = 401;
    res.set_header("X-Error-Code", "RepoNotFound");
    return repos_.end();
  }

  void info(const httplib::Request& req, httplib::Response& res) {
    ++api_calls;
    std::lock_guard<std::mutex> g(mu_);
    auto it = visible_repo(req, res);
    if (it == repos_.end()) return;
    std::string j =
        "{\"id\":\"" + it->first + "\",\"sha\":\"" + it->second.commit + "\",\"siblings\":[";
    bool first = true;
    for (const auto& [name, f] : it->second.files) {
      j += std::string(first ? "" : ",") + "{\"rfilename\":\"" + name + "\"}";
      first = false;
    }
    res.set_content(j + "]}", "application/json");
  }

  void resolve(const httplib::Request& req, httplib::Response& res) {
    if (req.method == "HEAD")
      ++heads;
    else
      ++gets;
    std::lock_guard<std::mutex> g(mu_);
    auto it = visible_repo(req, res);
    if (it == repos_.end()) return;
    auto f = it->second.files.find(req.matches[3]);
    if (f == it->second.files.end()) {
      res.status = 404;
      res.set_header("X-Error-Code", "EntryNotFound");
      return;
    }
    res.set_header("X-Repo-Commit", it->second.commit);
    if (f->second.lfs) {
      const std::string h =
          f->second.claimed_sha.empty() ? sha(f->second.content) : f->second.claimed_sha;
      res.status = 302;
      res.set_header("Location", endpoint() + "/cdn/" + sha(f->second.content));
      res.set_header("X-Linked-Etag", quote(h));
      res.set_header("X-Linked-Size", std::to_string(f->second.content.size()));
      return;
    }
    res.set_header("ETag", quote(f->second.claimed_sha.empty() ? git_blob_id(f->second.content)
                                                               : f->second.claimed_sha));
    res.set_content(f->second.content, "application/octet-stream");
  }

  // "\"" + s + "\"" in steps: GCC 12 warns falsely (-Wrestrict) on the one-line form.
  static std::string quote(const std::string& s) {
    std::string q(1, '"');
    q += s;
    q += '"';
    return q;
  }

  void cdn(const httplib::Request& req, httplib::Response& res) {
    std::string content;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (const auto& [n, r] : repos_)
        for (const auto& [fn, f] : r.files)
          if (sha(f.content) == req.matches[1].str()) content = f.content;
      ranges_.push_back(req.get_header_value("Range"));
    }
    const size_t limit = cut_left_-- > 0 ? cut_bytes_ : SIZE_MAX;
    auto data = std::make_shared<std::string>(std::move(content));
    auto sent = std::make_shared<size_t>(0);
    res.set_content_provider(
        data->size(), "application/octet-stream",
        [this, data, sent, limit](size_t offset, size_t length, httplib::DataSink& sink) {
          size_t n = std::min<size_t>(length, 4096);
          if (*sent >= limit) return false;  // cut: the connection closes mid-body
          n = std::min(n, limit - *sent);
          sink.write(data->data() + offset, n);
          *sent += n;
          body_bytes += n;
          return true;
        });
  }

  httplib::Server srv_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::map<std::string, Repo> repos_;
  std::vector<std::string> ranges_;
  std::atomic<int> cut_left_{0};
  size_t cut_bytes_ = 0;
};

}  // namespace hondo::test
