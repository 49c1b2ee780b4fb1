#include "io/requantize.h"

#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/quant.h"

namespace hondo {

RequantizeReport requantize_model(const std::string& in, const std::string& out, DType type) {
  if (!can_quantize(type)) fail("cannot quantize to ", dtype_name(type), " yet");
  auto src = GgufFile::open(in);
  GgufWriter w;
  w.copy_metadata(*src, "");
  w.set("general.file_type", GgufValue::make_u32(file_type_of(type)));
  RequantizeReport rep;
  // The output projection decides every token; like llama.cpp, keep it at >= 8 bits when the
  // target has fewer (the token embedding plays that role when the output is tied to it).
  const bool tied = src->find_tensor("output.weight") == nullptr;
  const std::string output_role = tied ? "token_embd.weight" : "output.weight";
  const bool low_bit =
      type == DType::Q4_0 || type == DType::Q4_1 || type == DType::Q5_0 || type == DType::Q5_1;
  for (const Tensor& t : src->tensors()) {
    DType to = t.type;
    if (t.n_dims >= 2) {
      const DType want = (low_bit && t.name == output_role) ? DType::Q8_0 : type;
      to = t.ne[0] % dtype_info(want).block_elems == 0 ? want : DType::F16;
      (to == want ? rep.converted : rep.fallback) += 1;
    } else {
      ++rep.kept;
    }
    if (!dtype_info(t.type).can_compute)
      fail(in, ": tensor '", t.name, "' has type ", dtype_name(t.type),
           " which hondo cannot read yet");
    rep.bytes_in += t.nbytes();
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    rep.bytes_out += row_bytes(to, t.ne[0]) * size_t(t.rows());
    const Tensor* tp = &t;
    w.add_tensor(t.name, to, ne, [tp, to](uint8_t* dst, size_t) {
      std::vector<float> row(static_cast<size_t>(tp->cols()));
      const size_t rb = row_bytes(to, tp->cols());
      for (int64_t r = 0; r < tp->rows(); ++r) {
        dequantize_row(tp->type, tp->row(r), row.data(), tp->cols());
        quantize_row(to, row.data(), dst + size_t(r) * rb, tp->cols());
      }
    });
  }
  w.write(out, src->alignment());
  return rep;
}

}  // namespace hondo
