#include "store/digest.h"

#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "core/error.h"

namespace hondo {

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
  const EVP_MD* type = nullptr;
};

Digest::Digest(Algo algo) : ctx_(std::make_unique<Ctx>()) {
  ctx_->type = algo == Algo::Sha1 ? EVP_sha1() : EVP_sha256();
  ctx_->md = EVP_MD_CTX_new();
  if (!ctx_->md) fail("digest: out of memory");
  reset();
}

void Digest::reset() {
  if (EVP_DigestInit_ex(ctx_->md, ctx_->type, nullptr) != 1)
    fail("digest: cannot initialise ", EVP_MD_get0_name(ctx_->type));
}

Digest::~Digest() {
  EVP_MD_CTX_free(ctx_->md);
}

void Digest::update(const void* data, size_t n) {
  if (n && EVP_DigestUpdate(ctx_->md, data, n) != 1) fail("digest update failed");
}

std::string Digest::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_->md, out, &len) != 1) fail("digest failed");
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s += kHex[out[i] >> 4];
    s += kHex[out[i] & 15];
  }
  return s;
}

void digest_update_file(Digest& h, const std::string& path, size_t n) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open to hash");
  std::vector<char> buf(1 << 20);
  while (n > 0) {
    const size_t want = n < buf.size() ? n : buf.size();
    const size_t got = std::fread(buf.data(), 1, want, f);
    if (got == 0) break;
    h.update(buf.data(), got);
    n -= got;
  }
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail(path, ": read error while hashing");
}

std::string sha256_file(const std::string& path) {
  Digest h;
  digest_update_file(h, path);
  return h.hex();
}

std::string git_blob_id_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, ": cannot open to hash: ", ec.message());
  Digest h(Digest::Algo::Sha1);
  const std::string head = "blob " + std::to_string(size);
  h.update(head.c_str(), head.size() + 1);  // with the terminating NUL
  digest_update_file(h, path);
  return h.hex();
}

std::string git_blob_id(const std::string& bytes) {
  Digest h(Digest::Algo::Sha1);
  const std::string head = "blob " + std::to_string(bytes.size());
  h.update(head.c_str(), head.size() + 1);
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

}  // namespace hondo
