// The AVX-512 VNNI kernel set: the AVX2 code on 256-bit registers with vpdpbusd (AVX512_VNNI
// + AVX512VL) as the integer multiply-add, plus tile kernels on 512-bit registers for the
// repacked layouts of packed.h. Compiled with -mavx512vnni -mavx512vl ...
// GCC 12 warns inside its own _mm512_cvtph_ps / _mm512_cvtepi32_ps (their "undefined"
// pass-through operand); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define HONDO_QDOT_NS qdot_avx512vnni
#define HONDO_QDOT_VNNI 1
#include "kernels/packed.h"
#include "kernels/qdot_x86.inc"

namespace hondo::qdot_avx512vnni {
namespace {

inline __m512i bcast4(const int8_t* p) {  // one 4-byte group of activations to all 16 lanes
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Activation block ab (32 values) of N activation rows against 8 weight registers (register
// c, lane r = values 4c..4c+3 of row r, as unsigned bytes): per row 8 vpdpbusd in two chains,
// exact in int32. With a constant offset (kMin false) the sum starts at -offset * sum(q_a), so
//   acc += scale * d_a * (sum(w * q_a) - offset * sum(q_a))
// is one multiply-add per block; with a minimum per row (kMin: offset = -m as floats)
//   acc += scale * d_a * sum(w * q_a) - offset * (d_a * sum(q_a)).
// High nibbles are multiplied where they lie (byte & 0xF0, i.e. 16 * nibble) rather than
// shifted down first, one vpsrad of the int32 sum instead of a shift per register; the
// sums stay exact (each product is 16 times the nibble's, |sum| < 2^20). The AVX2 kernels
// keep the shifts: their vpmaddubsw adds product pairs in int16, where 2 * 240 * 127 saturates.
//   kHigh = Nibbles::kPlain:   all 8 registers hold plain values;
//   kHigh = Nibbles::kUpper: registers 4..7 hold 16 * value (Q4_0, Q4_1: the block's upper
//                            16 values are its bytes' high nibbles), one chain each half;
enum class Nibbles { kPlain, kUpper };
// s + sum(w * q) over one block of 32 values (register c: values 4c..4c+3), in two chains.
inline __m512i dot_block(const __m512i* w, const int8_t* q, __m512i s = _mm512_setzero_si512()) {
  __m512i s1 = _mm512_setzero_si512();
  for (int c = 0; c < 8; c += 2) {
    s = _mm512_dpbusd_epi32(s, w[c], bcast4(q + 4 * c));
    s1 = _mm512_dpbusd_epi32(s1, w[c + 1], bcast4(q + 4 * c + 4));
  }
  return _mm512_add_epi32(s, s1);
}
template <int N, int kOffset, bool kMin, Nibbles kHigh = Nibbles::kPlain>
inline void tile_block(const __m512i* w, const QActRow* a, int64_t ab, __m512 scale, __m512 offset,
                       __m512* acc) {
  for (int j = 0; j < N; ++j) {
    const int8_t* q = a[j].q + 32 * ab;
    __m512i s0 = kMin ? _mm512_setzero_si512() : _mm512_set1_epi32(-kOffset * sum32(a[j], ab));
    __m512i isum;
    if constexpr (kHigh == Nibbles::kUpper) {
      __m512i s1 = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        s0 = _mm512_dpbusd_epi32(s0, w[c], bcast4(q + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, w[c + 4], bcast4(q + 4 * c + 16));
      }
      isum = _mm512_add_epi32(s0, _mm512_srai_epi32(s1, 4));
    } else {
      isum = dot_block(w, q, s0);
    }
    const __m512 sum = _mm512_cvtepi32_ps(isum);
    acc[j] = _mm512_fmadd_ps(sum, _mm512_mul_ps(scale, _mm512_set1_ps(a[j].d[ab])), acc[j]);
    if (kMin) acc[j] = _mm512_fnmadd_ps(offset, _mm512_set1_ps(a[j].ds[ab]), acc[j]);
  }
}

// Unpacking of one tile block's 512 values into 8 registers (register c, lane r = values
// 4c..4c+3 of row r, unsigned; layouts in packed.h).
inline void unpack_nibbles(const uint8_t* qs, __m512i* w) {  // 0..15
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int g = 0; g < 4; ++g) {
    const __m512i v = _mm512_loadu_si512(qs + 64 * g);
    w[g] = _mm512_and_si512(v, low4);
    w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
  }
}
// The same with the high nibbles left where they lie, as 16 * value (Nibbles::kUpper).
inline void unpack_nibbles_in_place(const uint8_t* qs, __m512i* w) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8(char(0xF0));
  for (int g = 0; g < 4; ++g) {
    const __m512i v = _mm512_loadu_si512(qs + 64 * g);
    w[g] = _mm512_and_si512(v, low4);
    w[g + 4] = _mm512_and_si512(v, high4);
  }
}
// Bit c of 64 lanes: + 16, as an OR (the values are below 16) of 16 under a zeroing mask.
// GCC folds the OR with the nibble mask before it into one vpternlogd; a masked vpaddb
// needed the mask, a copy and the add (Q5_0 tiles from DRAM: 69-74 -> 76-86 % of the probe).
inline void add_high_bits(const uint8_t* qh, __m512i* w) {
  const __m512i sixteen = _mm512_set1_epi8(16);
  for (int c = 0; c < 8; ++c) {
    uint64_t bits;
    std::memcpy(&bits, qh + 8 * c, 8);
    w[c] = _mm512_or_si512(w[c], _mm512_maskz_mov_epi8(_cvtu64_mask64(bits), sixteen));
  }
}
// The values of one block of a 32-value tile group (layouts in packed.h): kBytes of them from
// their start, unpacked.
// kAhead: how far ahead their line prefetches ask, where they take any (the set enters the
// tiles that take the page hint alone through tile_fixed<..., LineHint::kNone>; see
// prefetch_page).
// kHigh: how tile_block finds the values in the registers.
//
// Q5 values, with the most unpacking per byte of these formats, ask 8 KiB ahead: Coder-1.3B
// Q4_K_M's 12 ffn_down products in Q5_0 (93 MB, 5504 x 2048), two threads, alternated in one
// process with the probe over the same bytes, 20-30 rounds, six runs, % of the probe: 86.0,
// 83.2, 90.3, 81.2, 81.2, 79.6 at 4 KiB; 87.0, 95.8, 97.2, 87.2, 85.8, 85.9 at 6 KiB; 92.8, 97.3,
// 100.3, 89.3, 87.8, 82.1 at 8 KiB (10 KiB: 84.1, 76.1). Whole decode steps with the two ways
// swapped every 16 tokens in one process: Coder Q4_K_M +0.9, +1.0, +0.4, +2.1, 0.0, -1.2 %,
// V2-Lite Q4_K_M +1.1, +0.3 % (Q5_0 is ~11 % of their bytes). Q8 values with lines 8 or 12 KiB
// ahead: 85 and 81-82 % against 96 % with the page hint alone.
//
// Q4 values ask 8 KiB ahead too, and Q4_K 6 KiB (kKQuantLinesAhead): a trade between the
// machine's two states. The probe of `hondo bench` reads either 82-87 GB/s or 48-53 GB/s here,
// switching within seconds. At 70-78 GB/s, earlier, 6 or 8 KiB changed nothing for Q4_0 (Coder
// Q4_0's gate and down products, 93-107 % of the probe either way), and 6 KiB slowed Coder
// Q4_K_M. At 82-87 GB/s, 4 KiB is too short: 1 GiB of 4096 x 4096 tiles on two threads
// (hondo-kernel-bench, probe 78 GiB/s) read 64-67 GiB/s of Q4_0 and 56-64 of Q4_K at 4 KiB,
// 67-71 and 66-70 at 6 or 8 KiB (runs in the slow state left out). Whole decode, the two
// builds in turn (`hondo bench -p 0 -n 64 -r 2 -t 2`), mean % of the roofline (runs), in runs
// whose probes all read over 78 GB/s / all under 60:
//   Coder-1.3B Q4_0     78.9 (20) -> 81.7 (9)  /  91.9 (10) -> 89.3 (11)
//   Coder-1.3B Q4_K_M   82.2 (12) -> 84.0 (3)  /  91.8 (9) -> 91.1 (9)
//   R1-1.5B Q4_0        80.1 (2) -> 84.4 (3)   /  92.8 (6) -> 91.0 (6)
//   R1-1.5B Q4_K_M      81.3 (6) -> 83.6 (6)   /  92.0 (10) -> 89.0 (10)
//   V2-Lite Q4_K_M      80.1 (1) -> 82.3 (3)   /  90.3 (2) -> 90.7 (1)
// Decode +2 to +6 % in the fast state, 0 to -3 % in the slow one, which is presumably other
// guests on the host reading memory (not checked). A second, L2 prefetch 8 KiB ahead on top of
// the 4 KiB one lost in both states.
//
// kStepwise: Tile32 asks for the lines of a two-block Q5_0 group (704 bytes) one block's half
// at a time, 6 lines before each block, rather than all 11 before the first. In a burst the
// later prefetches wait for free miss buffers and hold up the arithmetic behind them (samples
// of the Q5_0 tile gathered on the instruction after the prefetches). Coder-1.3B Q4_K_M's Q5_0
// ffn_down products, flushed test program, 12 rounds, % of the probe: 81.0 -> 98.0 (mean).
// Whole decode, two sequences taking turns 16 tokens at a time, 20-30 rounds: Coder-1.3B
// Q4_K_M 1.009 and 1.013, V2-Lite Q4_K_M 1.017, Coder-1.3B Q5_0 1.014 and 1.010 (against the
// group at once, both orders). Q4_0 groups (9 lines) read faster asked for at once: in steps,
// Coder-1.3B Q4_0 decoded at 0.920, 0.906 and 0.955 of that.

// On AMD Zen 4 the Q4 values take the page hint alone, as Q8 values do everywhere
// (page_hint_alone in qdot.h; the set enters them through tile_fixed). A Zen 4 guest, both
// ways built alike outside the library and swapped in one process around `run_bench` (`-p 0
// -n 64`, ABBA), % of the roofline, without / with line prefetches: Coder-1.3B Q4_0 84.6 /
// 78.2 (14 rounds, faster in 14; 80-85 / 71-78 at ~53 GB/s, 92-94 / 88-89 at ~35). Earlier
// swaps of an outside build against the library's (which favour the outside build by up to
// ~8 points: docs/PERFORMANCE.md) gave R1-Distill-1.5B Q4_0 93.1 / 84.3 (10 of 10) and V2-Lite
// Q4_0 91.7 / 83.9 (6 of 6); `hondo bench` with HONDO_PAGE_HINT off and on in turn, Coder Q4_0,
// 6 pairs: 85.6-112.0 against 74.4-86.5 %. The same swap for the other formats kept their
// prefetches: Q4_K tied (R1 Q4_K_M 79.1 / 80.3; it took the page hint alone once its blocks were
// read in address order, see TileK), Q5_0 tied (Coder Q4_K_M 86.3 / 86.4), Q6_K
// lost badly (R1 Q4_K_M 56.9 / 80.2). On Zen 5 the Q4 tiles had read slower without them
// (prefetch_page in qdot_x86.inc), and still do with Q4_K read in address order (TileK): a Zen
// 5 guest, `hondo bench -p 0 -n 64` with HONDO_PAGE_HINT=0 and 1 in turn, three rounds at 67-77
// GB/s, % of the roofline: Coder-1.3B Q4_K_M 74.2, 72.8, 72.4 against 44.6, 46.2, 46.8; Q4_0
// 74.7, 71.9, 72.2 against 71.8, 67.7, 72.4. So the page hint alone stays a Zen 4 choice.
//
// How far ahead the Q4 and Q5 values ask for their lines (the measurements above).
constexpr int kBlock32LinesAhead = 8192;
struct Q4Values {  // Q4_0, Q4_1: 0..15
  static constexpr bool kStepwise = false;
  static constexpr int kAhead = kBlock32LinesAhead;
  static constexpr int kBytes = 256;
  static constexpr Nibbles kHigh = Nibbles::kUpper;
  static void unpack(const uint8_t* v, __m512i* w) { unpack_nibbles_in_place(v, w); }
};
struct Q5Values {  // Q5_0, Q5_1: 0..31
  static constexpr bool kStepwise = true;
  static constexpr int kAhead = kBlock32LinesAhead;
  static constexpr int kBytes = 320;
  static constexpr Nibbles kHigh = Nibbles::kPlain;
  static void unpack(const uint8_t* v, __m512i* w) {
    unpack_nibbles(v, w);
    add_high_bits(v + 256, w);
  }
};
struct Q8Values {  // Q8_0: values + 128, stored as such; no line prefetches (the set enters
                   // them through tile_fixed: the page hint alone, see prefetch_page)
  static constexpr bool kStepwise = false;
  static constexpr int kAhead = 0;
  static constexpr int kBytes = 512;
  static constexpr Nibbles kHigh = Nibbles::kPlain;
  static void unpack(const uint8_t* v, __m512i* w) {
    for (int c = 0; c < 8; ++c) w[c] = _mm512_loadu_si512(v + 64 * c);
  }
};

// Tiles of 32-value blocks with one f16 scale d_w per row, and either a constant offset
// (Q4_0: nibble - 8, Q5_0: value - 16, Q8_0: stored value - 128) or an f16 minimum m per row
// (Q4_1, Q5_1: d_w * value + m), times N activation rows:
//   acc += d_w * d_a * (sum(u * q_a) - constant * sum(q_a))   (the bracket exact in int32)
//   acc += d_w * d_a * sum(u * q_a) + m * (d_a * sum(q_a)),
// u the unsigned value; either is sum(weight * d_a * q_a). A tile group is a 64-byte header
// (d of two blocks, or d and m of one) and its blocks of Values::kBytes bytes each.
template <class Values, int kOffset, bool kMin>
struct Tile32 {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out);
};
template <class Values, int kOffset, bool kMin>
template <int N, LineHint kHint>
void Tile32<Values, kOffset, kMin>::run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  constexpr int kBlocks = kMin ? 1 : 2, kGroup = 64 + kBlocks * Values::kBytes;
  auto halves16 = [](const uint8_t* p) {  // 16 f16 -> 16 floats
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  };
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  // The lines ahead are asked for a group at a time, or one block's share of it before each
  // block (Values::kStepwise, see Q5Values).
  constexpr int kSteps = Values::kStepwise ? kBlocks : 1, kStep = kGroup / kSteps;
  for (int64_t b = 0; b < k / 32; t += kGroup) {
    for (int i = 0; i < kBlocks; ++i, ++b) {
      if (i < kSteps) {
        prefetch_ahead<kHint, Values::kAhead>(t + kStep * i, kStep);
      }
      const __m512 dw = halves16(t + 32 * i);
      const __m512 offset = kMin ? _mm512_sub_ps(_mm512_setzero_ps(), halves16(t + 32)) : dw;
      __m512i w[8];
      Values::unpack(t + 64 + Values::kBytes * i, w);
      tile_block<N, kOffset, kMin, Values::kHigh>(w, a, b, dw, offset, acc);
    }
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}

// The Q2_K, Q3_K, Q5_K and Q6_K tiles, the formats with the most unpacking per byte, ask for
// their lines 6 KiB ahead rather than 4 (the page hint stays 12 KiB ahead). Two threads over
// 1 GiB of tiles, both ways alternated with the probe in one process, % of its rate: Q6_K
// 1536 x 8960 89 -> 100 and 79 -> 91, 8960 x 1536 94 -> 98 and 94 -> 104, 4096 x 2048 89 -> 97
// and 82 -> 95, 32768 x 1536 99 -> 106 and 88 -> 94; Q5_K 5504 x 2048 94 -> 99 and 93 -> 98,
// 2048 x 5632 93 -> 99 and 94 -> 102; Q3_K 69 -> 77, 92 -> 95, 83 -> 95, 81 -> 86; Q2_K
// 80 -> 86, 88 -> 91, 61 -> 83, 85 -> 91 (same shapes). In models (`hondo bench -p 0 -n 64`,
// interleaved pairs): R1-Distill-1.5B Q4_K_M (Q6_K ~39 % of its decode) 77.0 -> 79.1 % of the
// roofline over 10 pairs, Coder-1.3B Q3_K_M 64.9 -> 69.9 % (4 of 4 pairs higher), Q5_K_M
// 70.6 -> 71.3 % (2 of 4), V2-Lite Q4_K_M unchanged. The 32-value formats: see Q5Values.
//
// Q4_K asks 6 KiB ahead as well since the figures under Q5Values (it had kept 4 KiB:
// at probes of 70-78 GB/s its tiles read closer to the probe with 6, yet Coder Q4_K_M decoded
// slower in 4 of 4 pairs, and 8 KiB read its gate products at 91-92 % of the probe against
// 100-102 % at 4 KiB).
constexpr int kKQuantLinesAhead = 6144;

// Q4_K tile: per super-block the 16 rows' d and dmin, then per sub-block j of 32 values the
// rows' 6-bit scales sc[j] and minimums m[j] as float vectors, its nibbles in 8 registers,
// and for each activation row
//   acc += d * sum_j sc[j] * d_a * sum(nibble * q_a) - dmin * sum_j m[j] * (d_a * sum(q_a)).
// d and dmin multiply once per super-block, not once per sub-block: the two sums over j run
// in their own accumulators (the odd sub-blocks' in a third, as their nibbles lie 4 bits up
// and d / 16 scales them). Where 512-bit operations take two passes (Zen 4) this kernel is
// bound by its vector operations, not its loads: per sub-block 16 of them unpack and multiply,
// and this form leaves ~13 others where there were ~16. One thread, 144 KB of tiles in L2,
// the two kernels in alternated runs: 18.5-19.0 against 22.2-22.5 cycles per 16 rows x 32
// values (in an hour when the same code's figures varied up to 1.5x from run to run). A form
// that took the sub-blocks in pairs (one mh load, each 64 bytes of nibbles loaded once for
// both) needed 16.4-18.4 against 17.6-20.6 but read DRAM slower in the model: Coder-1.3B Q4_K_M
// decode 90.3 -> 87.6 and 79.5 -> 76.3 % of the roofline, the kernels swapped in one process (12
// rounds each), 2048 x 2048 tiles 93.7 -> 87.8 % of the probe. This one, the same way: Coder 84.1
// -> 87.3 and 80.5 -> 81.5, R1-Distill-1.5B 86.3 -> 86.7; 2048 x 2048 88.8 -> 93.8 and 92.6
// -> 94.8, 5504 x 2048 76.1 -> 84.1. Q5_K: the same with each sub-block's fifth bits added from the
// lane masks after the nibbles.
//
// A block is read in address order: d and dmin first (they were loaded after the sub-blocks,
// so every block's reads ended with a jump 2 KiB back), its header lines asked for before the
// nibbles. So read, Q4_K tiles take the page hint alone on Zen 4 (page_hint_alone), as Q4_0
// does: without their line prefetches they had tied. Zen 4 guest, Coder-1.3B Q4_K_M decode,
// the Q4_K kernels swapped in one process (`run_bench` -p 0 -n 64, ABBA), % of the roofline,
// before / in order with the page hint alone, in the rounds with both at 50+ GB/s: 66.2 /
// 72.9, 67.6 / 70.7, 67.0 / 70.0, 68.8 / 72.1, 65.1 / 74.5, 65.9 / 74.2, and in a second run
// 68.6 / 78.8, 68.0 / 73.6, 68.6 / 72.7; R1-Distill-1.5B Q4_K_M 68.3 / 71.8, 68.2 / 72.7,
// 68.5 / 70.9 (before without line prefetches: 65.0, 68.2, 70.5). At ~35 GB/s, even (88.6 /
// 89.3 over six rounds). In order with the L1 line prefetches instead (and the header asked for
// again, which those prefetches had already done 6 KiB ahead; no longer): 66.8, 69.2, 70.0,
// 69.1 in the first run; in order without the three header prefetches (d and dmin first alone):
// 74.8, 71.4, 71.2 in the second. Q5_K shares the code (not measured on its own), and its
// fifth bits now follow the nibbles they complete (packed.h; figures under TileQ3K).
template <bool kQ5>
struct TileK {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out);
};
template <bool kQ5>
template <int N, LineHint kHint>
void TileK<kQ5>::run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  constexpr int kTileBlock = KTile::bytes(kQ5);
  constexpr int kAhead = kKQuantLinesAhead;
  const int64_t nb = k / 256;
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8(char(0xF0));
  auto bytes16 = [](const uint8_t* p) {  // 16 bytes -> 16 int32
    return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  };
  for (int64_t b = 0; b < nb; ++b, t += kTileBlock) {
    // Per activation row, over this super-block: sum_j sc[j] * d_a * isum_j for even and odd
    // sub-blocks, and sum_j m[j] * d_a * sum(q_a).
    __m512 even[N], odd[N], mins[N];
    for (int j = 0; j < N; ++j) even[j] = odd[j] = mins[j] = _mm512_setzero_ps();
    // The header first, in address order: d and dmin (line 0) loaded, and where no line
    // prefetches ran ahead (the page hint alone) lines 1-3 (scm, mh) asked for into L1, so that
    // the block is read from its start to its end (see above).
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + KTile::kD)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + KTile::kDmin)));
    if constexpr (kHint == LineHint::kNone)
      prefetch_lines<LineHint::kL1>(t + KTile::kScm, KTile::kQs - KTile::kScm);
    for (int sub = 0; sub < 8; ++sub) {
      prefetch_ahead<kHint, kAhead>(t + kTileBlock / 8 * sub, kTileBlock / 8);
      // The rows' 6-bit scale and minimum (packed.h): sc = scm & 63, m = scm >> 6 | mh's
      // nibble << 2, the nibble's two shifts and the mask 60 as one vpternlogd.
      const __m512i scm = bytes16(t + KTile::kScm + 16 * sub);
      const __m512i mh = bytes16(t + KTile::kMh + 16 * (sub / 2));
      const __m512i mh4 = sub % 2 ? _mm512_srli_epi32(mh, 2) : _mm512_slli_epi32(mh, 2);
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_and_si512(scm, _mm512_set1_epi32(63)));
      const __m512 m = _mm512_cvtepi32_ps(_mm512_ternarylogic_epi32(
          _mm512_srli_epi32(scm, 6), mh4, _mm512_set1_epi32(60), 0xF8));  // a | (b & c)
      const uint8_t* qs = t + KTile::qs(kQ5, sub / 2);
      const int64_t ab = 8 * b + sub;  // activation block
      // Q4_K's odd sub-blocks: the high nibbles where they lie (16 * nibble).
      const bool high = !kQ5 && sub % 2;
      __m512i w[8];
      for (int g = 0; g < 8; ++g) {
        const __m512i v = _mm512_loadu_si512(qs + 64 * g);
        w[g] = high ? _mm512_and_si512(v, high4)
                    : _mm512_and_si512(sub % 2 ? _mm512_srli_epi16(v, 4) : v, low4);
      }
      if (kQ5) add_high_bits(t + KTile::qh(sub), w);
      for (int j = 0; j < N; ++j) {
        const __m512 sum = _mm512_cvtepi32_ps(dot_block(w, a[j].q + 32 * ab));
        const __m512 sc_da = _mm512_mul_ps(sc, _mm512_set1_ps(a[j].d[ab]));
        if (high)
          odd[j] = _mm512_fmadd_ps(sum, sc_da, odd[j]);
        else
          even[j] = _mm512_fmadd_ps(sum, sc_da, even[j]);
        mins[j] = _mm512_fmadd_ps(m, _mm512_set1_ps(a[j].ds[ab]), mins[j]);
      }
    }
    const __m512 d16 = _mm512_mul_ps(d, _mm512_set1_ps(1.0f / 16));  // the odd sub-blocks'
    for (int j = 0; j < N; ++j) {
      acc[j] = _mm512_fmadd_ps(even[j], d, acc[j]);
      if (!kQ5) acc[j] = _mm512_fmadd_ps(odd[j], d16, acc[j]);
      acc[j] = _mm512_fnmadd_ps(mins[j], dmin, acc[j]);
    }
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}

// Blocks of 32 values whose halves of 16 carry their own int8 scales (Q3_K, Q6_K), values
// v unsigned with a constant offset: isum = sum_h sc_h * (sum(v * q_a) - offset * s_h), exact
// in int32, then acc += d * d_a * isum.
inline __m512i scales16(const uint8_t* p) {  // 16 int8 -> 16 int32
  return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
// Adds to s0 and s1 the int32 sums over each half (16 values) of one activation block q:
// registers 0..3 hold the first half, 4..7 the second; two independent chains of vpdpbusd.
inline void half_sums(const __m512i* w, const int8_t* q, __m512i& s0, __m512i& s1) {
  for (int c = 0; c < 4; ++c) {
    s0 = _mm512_dpbusd_epi32(s0, w[c], bcast4(q + 4 * c));
    s1 = _mm512_dpbusd_epi32(s1, w[c + 4], bcast4(q + 16 + 4 * c));
  }
}
// The 2-bit values of group grp (0..7) of a Q2_K/Q3_K tile block, from the 512 bytes of 2-bit
// pairs of its four groups at lo2 (4 groups share a byte: bits 2 (grp % 4), 2 (grp % 4) + 1),
// into 8 registers.
inline void unpack_pairs(const uint8_t* lo2, int grp, __m512i* w) {
  const __m512i three = _mm512_set1_epi8(3);
  const int pair = grp % 4;
  for (int c = 0; c < 8; ++c) {
    const __m512i v = _mm512_loadu_si512(lo2 + 64 * c);
    w[c] = _mm512_and_si512(pair ? _mm512_srli_epi16(v, 2 * pair) : v, three);
  }
}

template <int kOffset>
inline __m512 block_two_scales(const __m512i* w, const QActRow& a, int64_t ab, __m512i sc0,
                               __m512i sc1, __m512 d, __m512 acc) {
  __m512i s0 = _mm512_set1_epi32(-kOffset * a.s[2 * ab]);
  __m512i s1 = _mm512_set1_epi32(-kOffset * a.s[2 * ab + 1]);
  half_sums(w, a.q + 32 * ab, s0, s1);
  const __m512i isum = _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(d, _mm512_set1_ps(a.d[ab])), acc);
}

// The Q6_K tiles ask for their lines into L2 alone (prefetcht1) on every CPU, not only where
// line_prefetch_to_l2 says so (Intel): the set enters them through tile_fixed. On a Zen 4 guest, 1
// GiB of tiles on two threads, L1 and L2 alternated in one process, % of the probe: 4096 x 4096
// 104.5
// -> 105.6, 1536 x 8960 90.4 -> 94.6, 151936 x 1536 (R1's output) 89.0 -> 92.2 (L2 faster in 8 of
// 12, 10 of 12, 5 of 8 rounds). With a GFNI build of this kernel (below, not kept) the gap was
// wider: 78.3 -> 84.3, 77.0 -> 82.8, 2048 x 5632 84.6 -> 94.4; R1-Distill-1.5B Q4_K_M decode (Q6_K
// ~39 % of its bytes), the two hints swapped in one process, 28 rounds: +0.7 points of the roofline
// (higher in 17). The same test favoured L1 for Q4_K (88.9 vs 80.5), Q5_K (96.4 vs 86.7) and
// Q4_0 (94.3 vs 82.7), and L2 only slightly for Q5_0 (80.7 vs 84.4, 80.0 vs 83.8, 77.4 vs
// 78.5); those keep the CPU's choice. On a Zen 5 guest (family 1Ah) the Q6_K hints tie: a
// temporary build whose Q6_K entry was switched per process, R1-Distill-1.5B Q4_K_M decode (`hondo
// bench -p 0 -n 64`, three rounds at 70-80 GB/s), % of the roofline: L2 80.3, 81.0, 78.7; L1 78.9,
// 81.0, 80.5; the page hint alone 47.3, 46.8, 53.0. The Q6_K lines 6, 8, 10 or 12 KiB ahead
// (hondo-kernel-bench decode/Q6_K, two threads, the same switch): 6 KiB best or tied.
//
// Tried twice, not kept: GFNI for the high bit pairs (one vgf2p8affineqb moves a pair to bits
// 4-5 and clears the rest, then a bit select joins the low nibble: 2 operations a register
// instead of 3), as a third kernel set. Zen 5 (earlier): no decode gain. Zen 4: 30 -> 26
// cycles per 16 rows x 32 values from L1, 0 to +2 points of the probe from DRAM, and R1
// Q4_K_M decode 84.0 vs 83.7 % of the roofline over 12 alternated rounds.

// Q6_K tile: per group of 32 values, the 6-bit values v (0..63) in 8 registers from their low
// nibbles and high bit pairs; per half of 16 values, with the rows' int8 scales sc and the
// activation half sums s:  isum = sum_h sc_h * (sum(v * q_a) - 32 * s_h), exact in int32
// (|isum| <= 2 * 128 * 16 * 32 * 127), then acc += d * d_a * isum.
//
// The tile's value blocks lie in the order this loop first reads them (packed.h), so the
// demand reads run forward through the tile like the prefetches ahead of them. Until
// 2026-12-07 the two high-bit blocks lay after the four low-nibble blocks, and every tile's
// reads jumped 2 KiB forward and back twice. Zen 4 guest, 1 GiB of 4096 x 4096 tiles on two
// threads, both layouts alternated with the probe in one process, % of the probe, old / new:
// 74-77 / 78-89 in the five rounds of the fast state (44-52 GB/s read; new faster in 5), 90.3
// / 92.3 over 40 rounds at 33-36 GB/s; without line prefetches (the page hint alone) 30-33 /
// 49-58 in the fast state.
// R1-Distill-1.5B Q4_K_M decode (Q6_K ~39 % of its bytes), two engines in one process, one
// per layout, ABBA: 68.6 / 69.9 % of the roofline over the 13 rounds at 50+ GB/s (new faster
// in 10), even at ~34 GB/s.
struct TileQ6K {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out);
};
template <int N, LineHint kHint>
void TileQ6K::run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  using L = Q6KTile;  // offsets in the tile block
  const int64_t nb = k / 256;
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0F), high2 = _mm512_set1_epi8(0x30);
  // The high bit pairs of group grp moved to bits 4, 5 (bits 2 pair, 2 pair + 1 of qh).
  auto high_of = [&](__m512i hi, int pair) {
    hi = pair < 2 ? _mm512_slli_epi16(hi, 4 - 2 * pair) : _mm512_srli_epi16(hi, 2 * pair - 4);
    return _mm512_and_si512(hi, high2);
  };
  for (int64_t b = 0; b < nb; ++b, t += L::kBytes) {
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + L::kD)));
    // Groups in pairs: groups 2g and 2g + 1 share their low nibbles' bytes (low and high
    // nibble) and their high bits' bytes, each loaded once for both.
    for (int grp = 0; grp < 8; grp += 2) {
      // 3360 bytes in 8 steps of 420, one before each group: asked 840 bytes (13 lines) at a
      // time the prefetches held up the arithmetic (see Q5Values). Decode, two sequences
      // taking turns, 30-40 rounds: R1-Distill-1.5B Q4_K_M 1.045, 1.034; Coder-1.3B Q4_K_M
      // 0.984, 1.037, 1.015.
      prefetch_ahead<kHint, kKQuantLinesAhead>(t + L::kBytes / 8 * grp, L::kBytes / 8);
      const uint8_t* ql = t + L::ql(grp / 2);
      const uint8_t* qh = t + L::qh(grp / 4);
      const int pair = grp % 4;
      __m512i w0[8], w1[8];
      for (int c = 0; c < 8; ++c) {
        const __m512i lo = _mm512_loadu_si512(ql + 64 * c);
        const __m512i hi = _mm512_loadu_si512(qh + 64 * c);
        // (lo & 0x0F) | high bits, as one ternary-logic operation: A | (B & C).
        w0[c] = _mm512_ternarylogic_epi32(high_of(hi, pair), lo, low4, 0xF8);
        w1[c] =
            _mm512_ternarylogic_epi32(high_of(hi, pair + 1), _mm512_srli_epi16(lo, 4), low4, 0xF8);
      }
      for (int g = 0; g < 2; ++g) {
        if (g == 1)
          prefetch_ahead<kHint, kKQuantLinesAhead>(t + L::kBytes / 8 * (grp + 1), L::kBytes / 8);
        const __m512i sc0 = scales16(t + L::kSc + 32 * (grp + g));
        const __m512i sc1 = scales16(t + L::kSc + 32 * (grp + g) + 16);
        const int64_t ab = 8 * b + grp + g;  // activation block
        for (int j = 0; j < N; ++j)
          acc[j] = block_two_scales<32>(g ? w1 : w0, a[j], ab, sc0, sc1, d, acc[j]);
      }
    }
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}

// Q3_K tile: the Q6_K arithmetic with 3-bit values (offset 4 instead of 32): the low 2 bits
// of 4 blocks share a byte, the third bit comes from a 64-bit lane mask per register. Like the
// Q5_K and Q6_K tiles, the block lies in the order it is read (each half's third bits after its
// 2-bit pairs, packed.h). Zen 4 guest, 1 GiB of 4096 x 4096 tiles on two threads, both layouts
// alternated with the probe in one process (the old one a permuted copy read by the kernel with
// the old offsets), % of the probe, old / new: Q3_K 69.6 / 70.1 over the 14 rounds at 57-63 GB/s
// (new faster in 8), 94.4 / 96.6 over 26 at 31-35 (18); Q5_K 72.4 / 80.6 (14 of 14) and 94.7 /
// 99.0 (25 of 26).
struct TileQ3K {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out);
};
template <int N, LineHint kHint>
void TileQ3K::run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  using L = Q3KTile;  // offsets in the tile block
  const int64_t nb = k / 256;
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i four = _mm512_set1_epi8(4);
  for (int64_t b = 0; b < nb; ++b, t += L::kBytes) {
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + L::kD)));
    for (int grp = 0; grp < 8; ++grp) {
      prefetch_ahead<kHint, kKQuantLinesAhead>(t + L::kBytes / 8 * grp, L::kBytes / 8);
      __m512i w[8];
      unpack_pairs(t + L::q2(grp / 4), grp, w);
      for (int c = 0; c < 8; ++c) {
        uint64_t bits;
        std::memcpy(&bits, t + L::qh(grp) + 8 * c, 8);
        w[c] = _mm512_mask_add_epi8(w[c], _cvtu64_mask64(bits), w[c], four);
      }
      const __m512i sc0 = scales16(t + L::kSc + 32 * grp);
      const __m512i sc1 = scales16(t + L::kSc + 32 * grp + 16);
      const int64_t ab = 8 * b + grp;  // activation block
      for (int j = 0; j < N; ++j) acc[j] = block_two_scales<4>(w, a[j], ab, sc0, sc1, d, acc[j]);
    }
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}

// Q2_K tile: per group of 32 values, the 2-bit values (0..3) of 4 groups share a byte; per
// half of 16 values, the rows' 4-bit scales sc and minimums m:
//   acc += d_a * (d * sum_h sc_h * sum(v * q_a) - dmin * sum_h m_h * s_h),
// both sums exact in int32 (|sum| <= 2 * 15 * 16 * 3 * 127 and 2 * 15 * 16 * 127).
struct TileQ2K {
  template <int N, LineHint kHint>
  static void run(const uint8_t* t, const QActRow* a, int64_t k, float* out);
};
template <int N, LineHint kHint>
void TileQ2K::run(const uint8_t* t, const QActRow* a, int64_t k, float* out) {
  using L = Q2KTile;  // offsets in the tile block
  const int64_t nb = k / 256;
  __m512 acc[N];
  for (int j = 0; j < N; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi32(0xF);
  for (int64_t b = 0; b < nb; ++b, t += L::kBytes) {
    const __m512 d =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + L::kD)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + L::kDmin)));
    for (int grp = 0; grp < 8; ++grp) {
      prefetch_ahead<kHint, kKQuantLinesAhead>(t + L::kBytes / 8 * grp, L::kBytes / 8);
      __m512i w[8];
      unpack_pairs(t + L::qs(grp / 4), grp, w);
      const __m512i sm0 = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + L::kSc + 32 * grp)));
      const __m512i sm1 = _mm512_cvtepu8_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + L::kSc + 32 * grp + 16)));
      const __m512i sc0 = _mm512_and_si512(sm0, low4), sc1 = _mm512_and_si512(sm1, low4);
      const __m512i m0 = _mm512_srli_epi32(sm0, 4), m1 = _mm512_srli_epi32(sm1, 4);
      const int64_t ab = 8 * b + grp;  // activation block
      for (int j = 0; j < N; ++j) {
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        half_sums(w, a[j].q + 32 * ab, s0, s1);
        const __m512i isc =
            _mm512_add_epi32(_mm512_mullo_epi32(s0, sc0), _mm512_mullo_epi32(s1, sc1));
        const __m512i imin =
            _mm512_add_epi32(_mm512_mullo_epi32(m0, _mm512_set1_epi32(a[j].s[2 * ab])),
                             _mm512_mullo_epi32(m1, _mm512_set1_epi32(a[j].s[2 * ab + 1])));
        const __m512 da = _mm512_set1_ps(a[j].d[ab]);
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isc), _mm512_mul_ps(d, da), acc[j]);
        acc[j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(dmin, da), acc[j]);
      }
    }
  }
  for (int j = 0; j < N; ++j) _mm512_storeu_ps(out + kTileRows * j, acc[j]);
}

}  // namespace
}  // namespace hondo::qdot_avx512vnni

namespace hondo {
const QDotKernels& qdot_avx512vnni_kernels() {
  static const QDotKernels ks = [] {
    QDotKernels s = qdot_avx512vnni::make_set("avx512vnni");
    using namespace qdot_avx512vnni;
    auto set = [&](DType t, QTileFn f) { s.tile[uint32_t(t)] = f; };
    using Q4_0 = Tile32<Q4Values, 8, false>;
    using Q4_1 = Tile32<Q4Values, 0, true>;
    constexpr LineHint kPage = LineHint::kNone;  // the page hint alone
    set(DType::Q4_0, page_hint_alone ? tile_fixed<Q4_0, kPage> : tile_any<Q4_0>);  // Q4Values
    set(DType::Q4_1, page_hint_alone ? tile_fixed<Q4_1, kPage> : tile_any<Q4_1>);
    set(DType::Q5_0, tile_any<Tile32<Q5Values, 16, false>>);
    set(DType::Q5_1, tile_any<Tile32<Q5Values, 0, true>>);
    set(DType::Q8_0, tile_fixed<Tile32<Q8Values, 128, false>, kPage>);  // see prefetch_page
    set(DType::Q2_K, tile_any<TileQ2K>);
    set(DType::Q3_K, tile_any<TileQ3K>);
    set(DType::Q4_K, page_hint_alone ? tile_fixed<TileK<false>, kPage> : tile_any<TileK<false>>);
    set(DType::Q5_K, tile_any<TileK<true>>);
    set(DType::Q6_K, tile_fixed<TileQ6K, LineHint::kL2>);  // see TileQ6K
    return s;
  }();
  return ks;
}
}  // namespace hondo
