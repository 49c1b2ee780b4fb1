// Read-only memory mapping of a whole file. Model weights are used in place from the mapping,
// so loading a model costs no copy and the OS pages weights in as they are first touched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hondo {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the pages wholly inside [p, p + n) from this process's memory; reading them again
  // pages them back in from the file. For data the program has copied elsewhere.
  void release(const void* p, size_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hondo
