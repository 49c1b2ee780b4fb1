#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"

namespace hondo {

namespace {

class Out {
 public:
  explicit Out(std::ofstream& os) : os_(os) {}
  template <typename T>
  void put(T v) {
    os_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    pos_ += sizeof(T);
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    os_.write(s.data(), std::streamsize(s.size()));
    pos_ += s.size();
  }
  void bytes(const void* p, size_t n) {
    os_.write(static_cast<const char*>(p), std::streamsize(n));
    pos_ += n;
  }
  void pad(size_t align) {
    static const char zeros[256] = {};
    while (pos_ % align) bytes(zeros, std::min<size_t>(align - pos_ % align, sizeof zeros));
  }
  size_t pos() const { return pos_; }

 private:
  std::ofstream& os_;
  size_t pos_ = 0;
};

void put_scalar(Out& o, GgufType t, int64_t i, uint64_t u, double f) {
  switch (t) {
    case GgufType::U8:
      o.put<uint8_t>(uint8_t(i));
      break;
    case GgufType::I8:
      o.put<int8_t>(int8_t(i));
      break;
    case GgufType::U16:
      o.put<uint16_t>(uint16_t(i));
      break;
    case GgufType::I16:
      o.put<int16_t>(int16_t(i));
      break;
    case GgufType::U32:
      o.put<uint32_t>(uint32_t(i));
      break;
    case GgufType::I32:
      o.put<int32_t>(int32_t(i));
      break;
    case GgufType::U64:
      o.put<uint64_t>(u);
      break;
    case GgufType::I64:
      o.put<int64_t>(i);
      break;
    case GgufType::BOOL:
      o.put<uint8_t>(i ? 1 : 0);
      break;
    case GgufType::F32:
      o.put<float>(float(f));
      break;
    case GgufType::F64:
      o.put<double>(f);
      break;
    default:
      fail("internal: not a scalar GGUF type");
  }
}

void put_value(Out& o, const GgufValue& v) {
  o.put<uint32_t>(uint32_t(v.type));
  if (v.type == GgufType::STRING) {
    o.str(v.s);
  } else if (v.type == GgufType::ARRAY) {
    o.put<uint32_t>(uint32_t(v.elem));
    o.put<uint64_t>(v.array_size());
    for (const auto& s : v.strs) o.str(s);
    for (double f : v.floats) put_scalar(o, v.elem, 0, 0, f);
    for (int64_t i : v.ints) put_scalar(o, v.elem, i, uint64_t(i), 0);
  } else {
    put_scalar(o, v.type, v.i, v.u, v.f);
  }
}

size_t tensor_bytes(DType type, const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  return row_bytes(type, ne[0]) * size_t(rows);
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::remove(const std::string& key) {
  for (size_t k = 0; k < kv_.size(); ++k)
    if (kv_[k].first == key) {
      kv_.erase(kv_.begin() + long(k));
      return;
    }
}

void GgufWriter::copy_metadata(const GgufFile& src, const std::string& prefix) {
  for (const auto& [key, value] : src.metadata())
    if (key.rfind(prefix, 0) == 0) set(key, value);
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                            Producer fill) {
  if (ne.empty() || ne.size() > 4) fail("tensor '", name, "': 1 to 4 dimensions, got ", ne.size());
  for (const auto& t : tensors_)
    if (t.name == name) fail("tensor '", name, "' added twice");
  (void)tensor_bytes(type, ne);  // validates the block size
  tensors_.push_back({name, type, std::move(ne), std::move(fill)});
}

void GgufWriter::add_tensor_f32(const std::string& name, std::vector<int64_t> ne,
                                std::vector<float> data) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  if (int64_t(data.size()) != n)
    fail("tensor '", name, "': ", data.size(), " values for ", n, " elements");
  add_tensor(name, DType::F32, std::move(ne),
             [data = std::move(data)](uint8_t* dst, size_t nbytes) {
               std::memcpy(dst, data.data(), nbytes);
             });
}

void GgufWriter::write(const std::string& path, size_t alignment) const {
  const std::string tmp = path + ".part." + std::to_string(::getpid());  // unique per writer
  size_t data_start = 0, data_size = 0;
  {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    if (!os) fail(path, ": cannot create file");
    Out o(os);
    o.put<uint32_t>(0x46554747);
    o.put<uint32_t>(3);
    o.put<uint64_t>(tensors_.size());
    auto kv = kv_;
    bool has_align = false;
    for (auto& [k, v] : kv)
      if (k == "general.alignment") v = GgufValue::make_u32(uint32_t(alignment)), has_align = true;
    if (!has_align && alignment != 32)
      kv.emplace_back("general.alignment", GgufValue::make_u32(uint32_t(alignment)));
    o.put<uint64_t>(kv.size());
    for (const auto& [k, v] : kv) {
      o.str(k);
      put_value(o, v);
    }
    size_t offset = 0;
    for (const auto& t : tensors_) {
      o.str(t.name);
      o.put<uint32_t>(uint32_t(t.ne.size()));
      for (int64_t d : t.ne) o.put<uint64_t>(uint64_t(d));
      o.put<uint32_t>(uint32_t(t.type));
      o.put<uint64_t>(offset);
      offset += (tensor_bytes(t.type, t.ne) + alignment - 1) / alignment * alignment;
    }
    o.pad(alignment);
    os.flush();
    if (!os) {
      std::remove(tmp.c_str());
      fail(path, ": write failed (disk full?)");
    }
    data_start = size_t(os.tellp());
    data_size = offset;
  }
  // Tensor data goes straight into a shared mapping of the file, one tensor at a time: no
  // copy of a tensor is held in memory, so files larger than RAM can be written. The space is
  // reserved first, so a full disk is an error here rather than a fault while filling.
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot reopen: ", std::strerror(errno));
  auto fail_closed = [&](const std::string& what) {
    ::close(fd);
    std::remove(tmp.c_str());
    fail(path, ": ", what);
  };
  if (data_size > 0) {
    if (const int rc = ::posix_fallocate(fd, off_t(data_start), off_t(data_size)); rc != 0)
      fail_closed(rc == ENOSPC ? cat("disk full: ", data_size, " bytes of tensor data do not fit")
                               : cat("cannot reserve space: ", std::strerror(rc)));
  }
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  size_t offset = 0;
  for (const auto& t : tensors_) {
    const size_t n = tensor_bytes(t.type, t.ne);
    if (n > 0) {
      const size_t at = data_start + offset, base = at / page * page;
      void* m =
          ::mmap(nullptr, n + (at - base), PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(base));
      if (m == MAP_FAILED) fail_closed(cat("cannot map for writing: ", std::strerror(errno)));
      try {  // a failing source (bad data, out of memory) leaves no partial file behind
        t.fill(static_cast<uint8_t*>(m) + (at - base), n);
      } catch (...) {
        ::munmap(m, n + (at - base));
        ::close(fd);
        std::remove(tmp.c_str());
        throw;
      }
      ::munmap(m, n + (at - base));
    }
    offset += (n + alignment - 1) / alignment * alignment;
  }
  if (::fsync(fd) != 0) fail_closed(cat("write failed: ", std::strerror(errno)));
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, ": cannot rename temporary file into place");
  }
}

}  // namespace hondo
