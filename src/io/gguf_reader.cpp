#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/gguf.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"

namespace hondo {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxDims = 4;

// Bounds-checked little-endian reader over the mapped file. Every read names what it reads,
// so a truncated file reports e.g. "truncated while reading the name of tensor 12".
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string str(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " (length)");
    if (n > remaining())
      fail(path_, ": corrupt file: ", what, " claims ", n, " bytes at offset ", pos_, " but only ",
           remaining(), " remain");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

  void need(size_t n, const std::string& what) const {
    if (n > remaining())
      fail(path_, ": truncated file: needed ", n, " bytes for ", what, " at offset ", pos_,
           ", file has ", size_, " bytes");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    default:
      return 0;
  }
}

// Reads one scalar of type t into v.i / v.u / v.f.
void read_scalar(Cursor& c, GgufType t, GgufValue& v, const std::string& what) {
  switch (t) {
    case GgufType::U8:
      v.i = c.read<uint8_t>(what);
      break;
    case GgufType::I8:
      v.i = c.read<int8_t>(what);
      break;
    case GgufType::U16:
      v.i = c.read<uint16_t>(what);
      break;
    case GgufType::I16:
      v.i = c.read<int16_t>(what);
      break;
    case GgufType::U32:
      v.i = c.read<uint32_t>(what);
      break;
    case GgufType::I32:
      v.i = c.read<int32_t>(what);
      break;
    case GgufType::I64:
      v.i = c.read<int64_t>(what);
      break;
    case GgufType::U64:
      v.u = c.read<uint64_t>(what);
      v.i = int64_t(v.u);
      break;
    case GgufType::BOOL:
      v.i = c.read<uint8_t>(what) != 0;
      break;
    case GgufType::F32:
      v.f = c.read<float>(what);
      break;
    case GgufType::F64:
      v.f = c.read<double>(what);
      break;
    default:
      break;
  }
  if (t != GgufType::U64) v.u = uint64_t(v.i);
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key, const std::string& path) {
  GgufValue v;
  v.type = t;
  const std::string what = "value of '" + key + "'";
  if (t == GgufType::STRING) {
    v.s = c.str(what);
  } else if (t == GgufType::ARRAY) {
    const uint32_t et = c.read<uint32_t>(what + " (element type)");
    if (et > uint32_t(GgufType::F64))
      fail(path, ": corrupt metadata: array '", key, "' has element type ", et,
           " (valid types are 0..12)");
    v.elem = GgufType(et);
    if (v.elem == GgufType::ARRAY)
      fail(path, ": metadata key '", key, "' is an array of arrays, which hondo does not read");
    const uint64_t n = c.read<uint64_t>(what + " (element count)");
    // Each element takes at least one byte (strings: 8), so a count beyond that is corrupt.
    const size_t min_elem = v.elem == GgufType::STRING ? 8 : scalar_size(v.elem);
    if (n > c.remaining() / min_elem)
      fail(path, ": corrupt metadata: array '", key, "' claims ", n, " elements, more than the ",
           c.remaining(), " remaining bytes can hold");
    if (v.elem == GgufType::STRING) {
      v.strs.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.strs.push_back(c.str(what + " element"));
    } else if (v.elem == GgufType::F32 || v.elem == GgufType::F64) {
      v.floats.resize(size_t(n));
      GgufValue e;
      for (uint64_t k = 0; k < n; ++k) read_scalar(c, v.elem, e, what), v.floats[k] = e.f;
    } else {
      v.ints.resize(size_t(n));
      GgufValue e;
      for (uint64_t k = 0; k < n; ++k) read_scalar(c, v.elem, e, what), v.ints[k] = e.i;
    }
  } else if (uint32_t(t) <= uint32_t(GgufType::F64)) {
    read_scalar(c, t, v, what);
  } else {
    fail(path, ": corrupt metadata: key '", key, "' has value type ", uint32_t(t),
         " (valid types are 0..12)");
  }
  return v;
}

}  // namespace

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->file_ = std::make_unique<MappedFile>(path);
  f->parse();
  return f;
}

void GgufFile::parse() {
  const std::string& p = file_->path();
  Cursor c(file_->data(), file_->size(), p);
  if (file_->size() < 4) fail(p, ": not a GGUF file (only ", file_->size(), " bytes)");
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    char m[5] = {};
    std::memcpy(m, file_->data(), 4);
    for (char& ch : m)
      if (ch && (ch < 32 || ch > 126)) ch = '?';
    fail(p, ": not a GGUF file (expected magic \"GGUF\", found \"", m, "\")");
  }
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) fail(p, ": GGUF version 1 is obsolete; re-convert the model (need v2 or v3)");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffff) == 0)
      fail(p, ": GGUF file is big-endian (version field ", version_,
           "); hondo reads little-endian");
    fail(p, ": unsupported GGUF version ", version_, " (expected 2 or 3)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // A key takes >= 12 bytes, a tensor record >= 24: larger counts cannot fit in the file.
  if (n_kv > c.remaining() / 12)
    fail(p, ": corrupt header: ", n_kv, " metadata entries cannot fit in ", file_->size(),
         " bytes");
  if (n_tensors > c.remaining() / 24)
    fail(p, ": corrupt header: ", n_tensors, " tensors cannot fit in ", file_->size(), " bytes");

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.str(cat("metadata key #", k));
    const uint32_t t = c.read<uint32_t>("type of '" + key + "'");
    GgufValue v = read_value(c, GgufType(t), key, p);
    if (kv_index_.count(key)) fail(p, ": corrupt metadata: key '", key, "' appears twice");
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_int() || a->i <= 0 || (a->i & (a->i - 1)) != 0)
      fail(p, ": general.alignment must be a positive power of two, found ", a->to_string());
    alignment_ = size_t(a->i);
  }

  std::vector<uint64_t> offsets;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Tensor t;
    t.name = c.str(cat("name of tensor #", k));
    const std::string what = "tensor '" + t.name + "'";
    const uint32_t nd = c.read<uint32_t>(what + " dimension count");
    if (nd == 0 || nd > kMaxDims)
      fail(p, ": corrupt ", what, ": ", nd, " dimensions (expected 1..", kMaxDims, ")");
    t.n_dims = int(nd);
    uint64_t total = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t ne = c.read<uint64_t>(what + " shape");
      if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max()) / total)
        fail(p, ": corrupt ", what, ": dimension ", d, " is ", ne);
      total *= ne;
      t.ne[d] = int64_t(ne);
    }
    const uint32_t type = c.read<uint32_t>(what + " type");
    const DTypeInfo* info = dtype_info(type);
    if (!info) fail(p, ": ", what, " has unknown type id ", type);
    t.type = DType(type);
    if (t.ne[0] % info->block_elems != 0)
      fail(p, ": ", what, " of type ", info->name, " has rows of ", t.ne[0],
           " values, not a multiple of its block size ", info->block_elems);
    const uint64_t off = c.read<uint64_t>(what + " data offset");
    if (off % alignment_ != 0)
      fail(p, ": corrupt ", what, ": data offset ", off, " is not aligned to ", alignment_);
    if (tensor_index_.count(t.name)) fail(p, ": corrupt file: tensor '", t.name, "' appears twice");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
    offsets.push_back(off);
  }

  data_start_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    Tensor& t = tensors_[k];
    const size_t nbytes = t.nbytes();
    const uint64_t begin = data_start_ + offsets[k];
    if (offsets[k] > file_->size() || begin + nbytes > file_->size())
      fail(p, ": truncated file: tensor '", t.name, "' ", t.shape_str(), " ", dtype_name(t.type),
           " needs bytes ", begin, "..", begin + nbytes, " but the file has ", file_->size());
    t.data = file_->data() + begin;
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

int tensor_block_index(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int index = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && index < 1000000; ++i)
    index = index * 10 + (name[i] - '0');
  return (i > 4 && i < name.size() && name[i] == '.') ? index : -1;
}

const Tensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

size_t GgufFile::tensor_file_offset(const Tensor& t) const {
  return size_t(static_cast<const uint8_t*>(t.data) - file_->data());
}

namespace {
[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const char* want,
                             const GgufValue& v) {
  fail(path, ": metadata key '", key, "' should be ", want, ", found ", gguf_type_name(v.type), " ",
       v.to_string(3));
}
}  // namespace

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  if (!v->is_int()) wrong_type(path(), key, "an integer", *v);
  return v->i;
}
int64_t GgufFile::get_int(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
double GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  if (v->is_float()) return v->f;
  if (v->is_int()) return double(v->i);
  wrong_type(path(), key, "a number", *v);
}
double GgufFile::get_float(const std::string& key, double def) const {
  return has(key) ? get_float(key) : def;
}
bool GgufFile::get_bool(const std::string& key, bool def) const {
  const GgufValue* v = find(key);
  if (!v) return def;
  if (v->type != GgufType::BOOL) wrong_type(path(), key, "a bool", *v);
  return v->i != 0;
}
std::string GgufFile::get_str(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  if (v->type != GgufType::STRING) wrong_type(path(), key, "a string", *v);
  return v->s;
}
std::string GgufFile::get_str(const std::string& key, const std::string& def) const {
  return has(key) ? get_str(key) : def;
}
const GgufValue& GgufFile::get_array(const std::string& key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  if (v->type != GgufType::ARRAY) wrong_type(path(), key, "an array", *v);
  const bool ok =
      elem == GgufType::STRING ? v->elem == GgufType::STRING
      : (elem == GgufType::F32 || elem == GgufType::F64)
          ? (v->elem == GgufType::F32 || v->elem == GgufType::F64)
          : (v->elem != GgufType::STRING && v->elem != GgufType::F32 && v->elem != GgufType::F64);
  if (!ok)
    fail(path(), ": metadata key '", key, "' should be an array of ", gguf_type_name(elem),
         ", found an array of ", gguf_type_name(v->elem));
  return *v;
}

}  // namespace hondo

namespace hondo {

size_t GgufFile::pack_for_matmul(const std::function<bool(const Tensor&)>& want,
                                 const std::function<bool(const Tensor&)>& keep_original) {
  if (const char* e = std::getenv("HONDO_REPACK"); e && std::string(e) == "0") return 0;
  const QDotKernels& ks = qdot_best();
  struct Placed {
    Tensor* t;
    size_t offset;  // of its tiles (or moved rows) in the arena
    bool tiles;     // repacked into tiles, or moved as it is
  };
  std::vector<Placed> todo;
  size_t total = 0;
  for (Tensor& t : tensors_) {
    if (t.packed || t.n_dims < 2 || !want(t)) continue;
    const bool tiles = can_pack(t.type, t.cols()) && ks.tile_for(t.type);
    todo.push_back({&t, total, tiles});
    total += ((tiles ? packed_bytes(t.type, t.rows(), t.cols()) : t.nbytes()) + 63) / 64 * 64;
  }
  if (todo.empty()) return 0;
  // One arena in huge pages: besides reading faster, touched 4 KiB at a time a 9 GB model
  // costs millions of page faults (measured: most of the load time of DeepSeek-V2-Lite).
  packed_.push_back(alloc_huge(total, "the repacked weights"));
  uint8_t* arena = packed_.back().get();
  // Tensors one after another, so that each one's file pages are released before the next is
  // read (peak memory stays at the file's size); the rows of a tensor on every core.
  ThreadPool pool(ThreadPool::default_threads());
  constexpr int64_t kChunkRows = 16 * kTileRows;
  for (const Placed& p : todo) {
    Tensor& t = *p.t;
    uint8_t* dst = arena + p.offset;
    const int64_t rows = t.rows(), cols = t.cols();
    if (!p.tiles) {  // moved as it is; t.data now serves every reader, so no original kept
      pool.parallel_for(int64_t(t.nbytes()), [&](int64_t b, int64_t e) {  // a byte range each
        std::memcpy(dst + b, t.row(0) + b, size_t(e - b));
      });
      file_->release(t.data, t.nbytes());
      t.data = dst;
      continue;
    }
    const size_t tb = tile_bytes(t.type, cols);
    pool.parallel_tasks((rows + kChunkRows - 1) / kChunkRows, [&](int64_t c) {
      const int64_t r0 = c * kChunkRows;
      pack_tiles(t.type, t.row(r0), std::min(kChunkRows, rows - r0), cols,
                 dst + size_t(r0 / kTileRows) * tb);
    });
    t.packed = dst;
    if (!keep_original(t)) file_->release(t.data, t.nbytes());
  }
  return total;
}

}  // namespace hondo
