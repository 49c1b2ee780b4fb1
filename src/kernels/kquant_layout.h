// Packing of the K-quant sub-block scales and value bits (GGML layouts), shared by the
// dequantizers, the quantizers, the tile packer, the reference dot products and the SIMD
// kernel files. Everything here has internal linkage (anonymous namespace): the SIMD files are
// compiled with other -m flags, and an inline function with external linkage could be linked
// from one of them into code that runs on any CPU.
#pragma once
#include <cstdint>

namespace hondo::kquant {
namespace {

// Q4_K / Q5_K: 8 sub-blocks, 6-bit scale and 6-bit minimum each, in 12 bytes. Bytes 0-3 hold
// the scales of sub-blocks 0-3, bytes 4-7 their minimums (low 6 bits); sub-blocks 4-7 keep
// their low 4 bits in bytes 8-11 (scale low nibble, minimum high nibble) and their high 2 bits
// in the top bits of bytes 0-3 (scale) and 4-7 (minimum).
inline void k4_scale_min(const uint8_t* p, int j, int& sc, int& m) {
  if (j < 4) {
    sc = p[j] & 63;
    m = p[j + 4] & 63;
  } else {
    sc = (p[j + 4] & 0xF) | ((p[j - 4] >> 6) << 4);
    m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
  }
}

inline void k4_pack(const uint8_t* sc, const uint8_t* m, uint8_t* p) {  // sc, m: [8] in 0..63
  for (int j = 0; j < 4; ++j) {
    p[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    p[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    p[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

// Q3_K: 16 signed 6-bit scales stored as scale + 32 in 12 bytes: the low 4 bits of scale g
// in byte g % 8 (low nibble for g < 8, high for g >= 8), the high 2 bits in byte 8 + g % 4 at
// bit 2 * (g / 4).
inline void q3_scales(const uint8_t* p, int* out) {  // out: [16] in -32..31
  for (int g = 0; g < 16; ++g) {
    const int low = (g < 8) ? (p[g] & 0xF) : (p[g - 8] >> 4);
    const int high = (p[8 + g % 4] >> (2 * (g / 4))) & 3;
    out[g] = (low | (high << 4)) - 32;
  }
}

inline void q3_pack(const int* sc, uint8_t* p) {  // sc: [16] in -32..31
  for (int i = 0; i < 12; ++i) p[i] = 0;
  for (int g = 0; g < 16; ++g) {
    const int v = sc[g] + 32;
    p[g % 8] |= uint8_t((v & 0xF) << (g < 8 ? 0 : 4));
    p[8 + g % 4] |= uint8_t(((v >> 4) & 3) << (2 * (g / 4)));
  }
}

// Q6_K: 256 unsigned 6-bit values (weight = d * scale * (v - 32)) as 128 bytes of low nibbles
// and 64 bytes of high bit pairs. In each half of 128 values, value 32c + l (c = 0..3) keeps
// its low 4 bits in ql[l + 32 (c % 2)] (low nibble for c < 2, high for c >= 2) and its high
// 2 bits in qh[l] at bit 2c.
inline void q6_values(const uint8_t* ql, const uint8_t* qh, uint8_t* v) {  // v: [256]
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, v += 128)
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = ql[l + 32 * (c % 2)];
        v[32 * c + l] =
            uint8_t(((c < 2) ? (lo & 0xF) : (lo >> 4)) | (((qh[l] >> (2 * c)) & 3) << 4));
      }
}

inline void q6_store(const uint8_t* v, uint8_t* ql, uint8_t* qh) {  // v: [256] in 0..63
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, v += 128) {
    for (int i = 0; i < 64; ++i) ql[i] = 0;
    for (int i = 0; i < 32; ++i) qh[i] = 0;
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l) {
        ql[l + 32 * (c % 2)] |= uint8_t((v[32 * c + l] & 0xF) << (c < 2 ? 0 : 4));
        qh[l] |= uint8_t((v[32 * c + l] >> 4) << (2 * c));
      }
  }
}

// Q3_K: 256 values v in 0..7 (weight = d * scale * (v - 4)): the low 2 bits of value 16g + l
// (g = 16 groups of 16: half = g / 8, j = (g % 8) / 2, part = g % 2) at bits 2j of
// qs[32 half + 16 part + l], the third bit at bit 4 half + j of hmask[16 part + l].
inline void q3_values(const uint8_t* hmask, const uint8_t* qs, uint8_t* v) {  // v: [256]
  for (int g = 0; g < 16; ++g) {
    const int half = g / 8, j = (g % 8) / 2, part = g % 2;
    for (int l = 0; l < 16; ++l)
      v[16 * g + l] = uint8_t(((qs[32 * half + 16 * part + l] >> (2 * j)) & 3) |
                              (((hmask[16 * part + l] >> (4 * half + j)) & 1) << 2));
  }
}

inline void q3_store(const uint8_t* v, uint8_t* hmask, uint8_t* qs) {  // v: [256] in 0..7
  for (int i = 0; i < 32; ++i) hmask[i] = 0;
  for (int i = 0; i < 64; ++i) qs[i] = 0;
  for (int g = 0; g < 16; ++g) {
    const int half = g / 8, j = (g % 8) / 2, part = g % 2;
    for (int l = 0; l < 16; ++l) {
      qs[32 * half + 16 * part + l] |= uint8_t((v[16 * g + l] & 3) << (2 * j));
      hmask[16 * part + l] |= uint8_t(((v[16 * g + l] >> 2) & 1) << (4 * half + j));
    }
  }
}

}  // namespace
}  // namespace hondo::kquant
