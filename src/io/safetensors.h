// safetensors, the checkpoint format of Hugging Face models:
//
//   u64 header_len (little-endian), header_len bytes of JSON:
//     { "NAME": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
//       "__metadata__": {...} }
//   then the data; offsets are relative to the end of the header. Shapes are PyTorch's
//   (outermost first), the reverse of GGUF's ne order; the bytes of a row-major tensor are
//   the same in both.
// Large models come in shards listed by model.safetensors.index.json ({"weight_map":
// {NAME: FILE}}).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"

namespace hondo {

enum class StDType { F32, F16, BF16, F8_E4M3, I32, I64, U8, I8, BOOL, F64 };
const char* st_dtype_name(StDType t);
size_t st_dtype_size(StDType t);

struct StTensor {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;  // PyTorch order, outermost first
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;
  int64_t elements() const;
};

// Every tensor of a checkpoint folder (one model.safetensors, or the shards of an index),
// mapped read-only; the OS pages data in as it is read and may drop it again, so reading a
// checkpoint larger than memory works.
class SafetensorsSet {
 public:
  static SafetensorsSet open_dir(const std::string& dir);
  static SafetensorsSet open_files(const std::vector<std::string>& files);

  const StTensor* find(const std::string& name) const;
  const StTensor& get(const std::string& name) const;  // throws naming the missing tensor
  const std::map<std::string, StTensor>& tensors() const { return tensors_; }

 private:
  void add_file(const std::string& path);
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::map<std::string, StTensor> tensors_;
};

// Writes one safetensors file (the project's test tool makes checkpoints with it).
struct StWriteTensor {
  std::string name;
  StDType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
void write_safetensors(const std::string& path, const std::vector<StWriteTensor>& tensors);

}  // namespace hondo
