#include "io/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"

namespace hondo {

namespace {
struct DTypeInfo {
  const char* name;
  StDType t;
  size_t size;
};
constexpr DTypeInfo kTypes[] = {
    {"F32", StDType::F32, 4},         {"F16", StDType::F16, 2}, {"BF16", StDType::BF16, 2},
    {"F8_E4M3", StDType::F8_E4M3, 1}, {"I32", StDType::I32, 4}, {"I64", StDType::I64, 8},
    {"U8", StDType::U8, 1},           {"I8", StDType::I8, 1},   {"BOOL", StDType::BOOL, 1},
    {"F64", StDType::F64, 8},
};
}  // namespace

const char* st_dtype_name(StDType t) {
  for (const auto& d : kTypes)
    if (d.t == t) return d.name;
  return "?";
}
size_t st_dtype_size(StDType t) {
  for (const auto& d : kTypes)
    if (d.t == t) return d.size;
  return 0;
}

int64_t StTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void SafetensorsSet::add_file(const std::string& path) {
  auto f = std::make_shared<MappedFile>(path);
  if (f->size() < 8) fail(path, ": not a safetensors file (", f->size(), " bytes)");
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | f->data()[i];
  if (hlen > f->size() - 8 || hlen > (100u << 20))
    fail(path, ": not a safetensors file (header of ", hlen, " bytes in a file of ", f->size(),
         ")");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f->data() + 8, f->data() + 8 + hlen);
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": safetensors header is not valid JSON: ", e.what());
  }
  const uint8_t* base = f->data() + 8 + hlen;
  const size_t data_size = f->size() - 8 - hlen;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") continue;
    StTensor t;
    t.name = name;
    t.file = path;
    try {
      const std::string dt = v.at("dtype").get<std::string>();
      bool known = false;
      for (const auto& d : kTypes)
        if (dt == d.name) {
          t.dtype = d.t;
          known = true;
        }
      if (!known) fail(path, ": tensor ", name, " has dtype ", dt, ", which hondo cannot read");
      t.shape = v.at("shape").get<std::vector<int64_t>>();
      const auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
        fail(path, ": tensor ", name, " lies outside the file (offsets ",
             off.size() == 2 ? off[0] : 0, "..", off.size() == 2 ? off[1] : 0, ", data ", data_size,
             " bytes): truncated file?");
      t.data = base + off[0];
      t.nbytes = off[1] - off[0];
    } catch (const nlohmann::json::exception& e) {
      fail(path, ": tensor ", name, ": malformed entry (", e.what(), ")");
    }
    if (t.nbytes != size_t(t.elements()) * st_dtype_size(t.dtype))
      fail(path, ": tensor ", name, " holds ", t.nbytes, " bytes, its shape and dtype need ",
           size_t(t.elements()) * st_dtype_size(t.dtype));
    if (tensors_.count(name)) fail(path, ": tensor ", name, " appears in two files");
    tensors_[name] = t;
  }
  files_.push_back(f);
}

SafetensorsSet SafetensorsSet::open_files(const std::vector<std::string>& files) {
  SafetensorsSet s;
  for (const auto& f : files) s.add_file(f);
  return s;
}

SafetensorsSet SafetensorsSet::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> files;
  if (fs::exists(index)) {
    std::ifstream in(index);
    nlohmann::json j;
    try {
      in >> j;
      std::set<std::string> uniq;
      for (const auto& [name, file] : j.at("weight_map").items())
        uniq.insert(file.get<std::string>());
      for (const auto& f : uniq) files.push_back((fs::path(dir) / f).string());
    } catch (const nlohmann::json::exception& e) {
      fail(index.string(), ": not a safetensors index (", e.what(), ")");
    }
  } else if (fs::exists(fs::path(dir) / "model.safetensors")) {
    files.push_back((fs::path(dir) / "model.safetensors").string());
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) fail(dir, ": no .safetensors files (expected model.safetensors or an index)");
  return open_files(files);
}

const StTensor* SafetensorsSet::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const StTensor& SafetensorsSet::get(const std::string& name) const {
  if (const StTensor* t = find(name)) return *t;
  fail("checkpoint has no tensor ", name);
}

void write_safetensors(const std::string& path, const std::vector<StWriteTensor>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", st_dtype_name(t.dtype)},
                 {"shape", t.shape},
                 {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  h["__metadata__"] = {{"format", "pt"}};
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8) hs += ' ';  // data aligned to 8 bytes, as the reference writer does
  std::ofstream out(path, std::ios::binary);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(hs.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(hs.data(), std::streamsize(hs.size()));
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
  if (!out) fail(path, ": write failed");
}

}  // namespace hondo
