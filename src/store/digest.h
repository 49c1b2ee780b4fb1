// Content digests (OpenSSL's EVP), as lowercase hex. The hub names each file of a repository
// by a hash of its content: large (git-lfs) files by the SHA-256 of their bytes, small files
// (config.json, tokenizer.json) by their git blob id, the SHA-1 of "blob <size>\0" + bytes.
// A download is verified by hashing what arrived.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hondo {

class Digest {
 public:
  enum class Algo { Sha256, Sha1 };
  explicit Digest(Algo algo = Algo::Sha256);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, size_t n);
  void reset();       // starts over, as if new
  std::string hex();  // finishes the digest; the object must not be updated afterwards

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Hashes `n` bytes of the file from its start (all of it when n is SIZE_MAX) into h.
void digest_update_file(Digest& h, const std::string& path, size_t n = SIZE_MAX);
std::string sha256_file(const std::string& path);
// The git blob id of a file or of bytes: SHA-1 over "blob <size>\0" followed by the content.
std::string git_blob_id_file(const std::string& path);
std::string git_blob_id(const std::string& bytes);

}  // namespace hondo
