// SHA-256 of byte streams and files (OpenSSL's EVP digest), as lowercase hex. The hub names
// large files by the SHA-256 of their content (the git-lfs object id), so a download is
// verified by hashing what arrived.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hondo {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t n);
  void reset();       // starts over, as if new
  std::string hex();  // finishes the digest; the object must not be updated afterwards

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Hashes `n` bytes of the file from its start (all of it when n is SIZE_MAX) into h.
void sha256_update_file(Sha256& h, const std::string& path, size_t n = SIZE_MAX);
std::string sha256_file(const std::string& path);

}  // namespace hondo
