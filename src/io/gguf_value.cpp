#include <sstream>

#include "io/gguf.h"

namespace hondo {

const char* gguf_type_name(GgufType t) {
  static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = uint32_t(t);
  return i < 13 ? names[i] : "invalid";
}

bool GgufValue::is_int() const {
  switch (type) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64:
      return true;
    default:
      return false;
  }
}

size_t GgufValue::array_size() const {
  return ints.size() + floats.size() + strs.size();
}

std::string GgufValue::to_string(size_t max_items) const {
  std::ostringstream os;
  switch (type) {
    case GgufType::STRING:
      os << '"' << s << '"';
      break;
    case GgufType::BOOL:
      os << (i ? "true" : "false");
      break;
    case GgufType::F32:
    case GgufType::F64:
      os << f;
      break;
    case GgufType::U64:
      os << u;
      break;
    case GgufType::ARRAY: {
      os << gguf_type_name(elem) << "[" << array_size() << "] [";
      const size_t n = std::min(array_size(), max_items);
      for (size_t k = 0; k < n; ++k) {
        if (k) os << ", ";
        if (!strs.empty())
          os << '"' << strs[k] << '"';
        else if (!floats.empty())
          os << floats[k];
        else
          os << ints[k];
      }
      if (array_size() > n) os << ", ...";
      os << "]";
      break;
    }
    default:
      os << i;
  }
  return os.str();
}

GgufValue GgufValue::make_u32(uint32_t v) {
  GgufValue x;
  x.type = GgufType::U32;
  x.i = v;
  x.u = v;
  return x;
}
GgufValue GgufValue::make_i32(int32_t v) {
  GgufValue x;
  x.type = GgufType::I32;
  x.i = v;
  x.u = uint64_t(v);
  return x;
}
GgufValue GgufValue::make_u64(uint64_t v) {
  GgufValue x;
  x.type = GgufType::U64;
  x.i = int64_t(v);
  x.u = v;
  return x;
}
GgufValue GgufValue::make_f32(float v) {
  GgufValue x;
  x.type = GgufType::F32;
  x.f = v;
  return x;
}
GgufValue GgufValue::make_bool(bool v) {
  GgufValue x;
  x.type = GgufType::BOOL;
  x.i = v;
  return x;
}
GgufValue GgufValue::make_str(std::string v) {
  GgufValue x;
  x.type = GgufType::STRING;
  x.s = std::move(v);
  return x;
}
GgufValue GgufValue::make_strs(std::vector<std::string> v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem = GgufType::STRING;
  x.strs = std::move(v);
  return x;
}
GgufValue GgufValue::make_f32s(const std::vector<float>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem = GgufType::F32;
  x.floats.assign(v.begin(), v.end());
  return x;
}
GgufValue GgufValue::make_i32s(const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.elem = GgufType::I32;
  x.ints.assign(v.begin(), v.end());
  return x;
}

}  // namespace hondo
