// GGUF (v2, v3): the model file format of llama.cpp and Ollama.
//
//   header   : "GGUF" u32 version, u64 n_tensors, u64 n_kv
//   metadata : n_kv x (string key, u32 value_type, value)
//   tensors  : n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 dtype, u64 offset)
//   padding to `general.alignment` (default 32), then the tensor data; each offset is
//   relative to the data section and aligned.
// Strings are u64 length + UTF-8 bytes; everything is little-endian.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/huge_pages.h"
#include "core/mapped_file.h"
#include "core/tensor.h"

namespace hondo {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Integers of every width are held in `i` (u64 values above INT64_MAX
// in `u`), floats in `f`; arrays keep their element type in `elem` and values in the vector
// that matches it.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem = GgufType::U32;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strs;

  bool is_int() const;
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
  size_t array_size() const;
  std::string to_string(size_t max_items = 8) const;  // for `hondo info`

  static GgufValue make_u32(uint32_t v);
  static GgufValue make_i32(int32_t v);
  static GgufValue make_u64(uint64_t v);
  static GgufValue make_f32(float v);
  static GgufValue make_bool(bool v);
  static GgufValue make_str(std::string v);
  static GgufValue make_strs(std::vector<std::string> v);
  static GgufValue make_f32s(const std::vector<float>& v);
  static GgufValue make_i32s(const std::vector<int32_t>& v);
};

// The transformer block a tensor belongs to: N for "blk.N.<name>", -1 for other tensors.
int tensor_block_index(const std::string& tensor_name);

class GgufFile {
 public:
  // Maps and validates the whole file; throws hondo::Error naming the file and the problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  size_t file_size() const { return file_->size(); }
  size_t alignment() const { return alignment_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed getters. Without a default a missing key is an error; a key of the wrong type is
  // always an error ("expected an integer, found string").
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_str(const std::string& key) const;
  std::string get_str(const std::string& key, const std::string& def) const;
  const GgufValue& get_array(const std::string& key, GgufType elem) const;

  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* find_tensor(const std::string& name) const;
  // Offset of a tensor's data from the start of the file.
  size_t tensor_file_offset(const Tensor& t) const;

  // Moves every matrix that `want` names into one arena of transparent huge pages: with
  // 4 KiB pages of the mapped file, every 4 KiB of weights read costs a TLB miss and stops
  // the hardware prefetcher (F16 decode 15 -> 17.4 t/s, prefill 100 -> 113 t/s on a 1.3B
  // model). Matrices this CPU has a tile kernel for get a repacked copy (Tensor::packed,
  // kernels/packed.h); their file pages are released unless keep_original(t) (e.g. a token
  // embedding also read row by row). The others are copied as they are and Tensor::data
  // points at the copy. Memory holds the weights once. HONDO_REPACK=0 in the environment
  // turns this off. Returns the bytes placed in the arena.
  size_t pack_for_matmul(const std::function<bool(const Tensor&)>& want,
                         const std::function<bool(const Tensor&)>& keep_original);

 private:
  GgufFile() = default;
  void parse();

  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_start_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
  std::vector<HugeBuffer> packed_;  // owned by the tensors' .packed (and moved .data)
};

// Builds a GGUF file: metadata in insertion order, tensors whose bytes are produced on demand
// (so a file larger than memory can be written one tensor at a time).
class GgufWriter {
 public:
  void set(const std::string& key, GgufValue v);
  void remove(const std::string& key);
  // Copies every metadata key of `src` whose name starts with `prefix`.
  void copy_metadata(const GgufFile& src, const std::string& prefix);

  using Producer = std::function<void(uint8_t* dst, size_t nbytes)>;
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, Producer fill);
  void add_tensor_f32(const std::string& name, std::vector<int64_t> ne, std::vector<float> data);

  // Writes to `path` via a temporary file renamed into place; throws on I/O errors.
  void write(const std::string& path, size_t alignment = 32) const;

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    Producer fill;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace hondo
