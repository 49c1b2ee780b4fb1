// What the compiler made of the kernels. Every kernel that reads weights (or the bandwidth
// probe's memory) as a stream still holds its software prefetches: GCC treats a prefetch as
// free of side effects, and a helper that only prefetches, when not inlined early, is found
// pure and its calls are deleted, silently (the F16 row kernels lost theirs that way and read
// 38-43 GB/s from DRAM where they had read 61-64). And the elementwise loops of each
// instruction set compute on that set's vector registers (GCC once left the AVX2 exp and SiLU
// scalar). The test disassembles the built libraries with objdump.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <regex>
#include <string>

#include "kernels/cpu.h"

namespace {

// What one function holds: its prefetch instructions, and those with hint T0 (into L1)
// and T1 (into L2 alone); and its instructions on 256-bit (ymm) and 512-bit (zmm) registers.
struct Instructions {
  int prefetches = 0, t0 = 0, t1 = 0;
  int ymm = 0, zmm = 0;
};
// member (object file) -> function -> its counts
using InstructionCounts = std::map<std::string, std::map<std::string, Instructions>>;

// Runs objdump on a static library; false when objdump cannot be run.
bool count_instructions(const std::string& lib, InstructionCounts& out, std::string& error) {
  const std::string cmd = "objdump -d --no-show-raw-insn -C '" + lib + "' 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return error = "cannot run: " + cmd, false;
  const std::regex member(R"(^(\S+\.o):\s+file format)"), function(R"(^[0-9a-f]+ <(.*)>:$)");
  std::string obj, fn, line;
  char buf[4096];
  int lines = 0;
  while (fgets(buf, sizeof buf, p.get())) {
    line = buf;
    if (!line.empty() && line.back() == '\n') line.pop_back();
    ++lines;
    std::smatch m;
    if (std::regex_search(line, m, member))
      obj = m[1], fn.clear();
    else if (std::regex_match(line, m, function))
      fn = m[1], out[obj][fn] = {};
    else if (!fn.empty()) {
      Instructions& f = out[obj][fn];
      f.ymm += line.find("%ymm") != std::string::npos;
      f.zmm += line.find("%zmm") != std::string::npos;
      if (line.find("prefetch") == std::string::npos) continue;
      ++f.prefetches;
      f.t0 += line.find("prefetcht0") != std::string::npos;
      f.t1 += line.find("prefetcht1") != std::string::npos;
    }
  }
  if (out.empty())
    return error = cmd + " printed no functions (" + std::to_string(lines) +
                   " lines; last: " + line + ")",
           false;
  return true;
}

// Every function of `obj` whose name contains `name` has at least `min` prefetches, or one
// (its page hint) if it is instantiated without line prefetches (LineHint::kNone); there must
// be at least one such function.
void expect_prefetches(const InstructionCounts& counts, const std::string& obj,
                       const std::string& name, int min) {
  auto it = counts.find(obj);
  ASSERT_NE(it, counts.end()) << obj << " is not in the library";
  int found = 0;
  for (const auto& [fn, f] : it->second) {
    if (fn.find(name) == std::string::npos) continue;
    const int n = f.prefetches;
    const bool page_only = fn.find("(hondo::LineHint)2>") != std::string::npos;
    ++found;
    EXPECT_GE(n, page_only ? 1 : min)
        << obj << ": " << fn << " has " << n << " prefetch instructions";
  }
  EXPECT_GT(found, 0) << obj << " has no function named like " << name;
}

// All prefetches of `obj`.
int total_of(const InstructionCounts& counts, const std::string& obj) {
  int n = 0;
  if (auto it = counts.find(obj); it != counts.end())
    for (const auto& [fn, f] : it->second) n += f.prefetches;
  return n;
}

}  // namespace

TEST(KernelBuild, StreamingKernelsKeepTheirPrefetches) {
  if (!HONDO_X86) GTEST_SKIP() << "the prefetch layout checked here is the x86 kernels'";
  const std::string bin = HONDO_BIN_DIR;
  InstructionCounts kernels, engine;
  std::string error;
  ASSERT_TRUE(count_instructions(bin + "/libhondo_kernels.a", kernels, error)) << error;
  ASSERT_TRUE(count_instructions(bin + "/libhondo_engine.a", engine, error)) << error;
  // F16/BF16 weight rows in decode: each 64 or 32 values, the lines ahead and the page hint.
  expect_prefetches(kernels, "vec_dot.cpp.o", "rows_dot_avx512_t<", 2);
  expect_prefetches(kernels, "vec_dot.cpp.o", "rows_dot_avx2_t<", 2);
  // Every repacked-tile kernel (Q8_0 tiles take the page hint alone).
  expect_prefetches(kernels, "qdot_avx512.cpp.o", "::run<", 1);
  expect_prefetches(kernels, "qdot_avx2.cpp.o", "::run<", 1);
  // The latent / KV cache rows of decode attention.
  expect_prefetches(kernels, "head_rows.cpp.o", "Avx512::dots<", 1);
  expect_prefetches(kernels, "head_rows.cpp.o", "Avx512::sums<", 1);
  // The bandwidth probe reads as the kernels do, so it must prefetch too.
  EXPECT_GE(total_of(engine, "bench.cpp.o"), 2) << "the bandwidth probe";
}

// The kernels that prefetch lines are instantiated once per cache hint (LineHint, kernels/
// qdot.h), the choice made once per call: each instantiation holds that hint's line prefetches
// alone. A test of the hint inside the loop made GCC compute every prefetch address into a
// register before the branch, and the Q4_0 tiles read ~10 points of the probe slower.
TEST(KernelBuild, LinePrefetchHintIsFixedPerKernel) {
  if (!HONDO_X86) GTEST_SKIP() << "the prefetch layout checked here is the x86 kernels'";
  InstructionCounts kernels;
  std::string error;
  ASSERT_TRUE(
      count_instructions(std::string(HONDO_BIN_DIR) + "/libhondo_kernels.a", kernels, error))
      << error;
  for (const std::string obj : {"qdot_avx512.cpp.o", "qdot_avx2.cpp.o", "vec_dot.cpp.o"}) {
    ASSERT_NE(kernels.find(obj), kernels.end()) << obj << " is not in the library";
    int l1 = 0, l2 = 0;  // instantiations with line prefetches of their hint
    for (const auto& [fn, f] : kernels[obj]) {
      if (fn.find("(hondo::LineHint)0>") != std::string::npos) {
        EXPECT_EQ(f.t1, 0) << obj << ": " << fn << " (hint L1) has prefetcht1";
        l1 += f.t0 > 0;
      } else if (fn.find("(hondo::LineHint)1>") != std::string::npos) {
        EXPECT_EQ(f.t0, 0) << obj << ": " << fn << " (hint L2) has prefetcht0";
        l2 += f.t1 > 0;
      } else if (fn.find("(hondo::LineHint)2>") != std::string::npos) {
        // LineHint::kNone: the page hint alone (prefetcht2), no line prefetches ahead; the
        // Q4_K/Q5_K tiles ask for the three header lines of the block they start (TileK).
        // (tile_fixed, the entry that picks a kernel's N, carries the hint but reads nothing.)
        const bool entry = fn.find("tile_fixed<") != std::string::npos;
        const int header = !entry && fn.find("TileK<") != std::string::npos ? 3 : 0;
        EXPECT_EQ(f.t1, 0) << obj << ": " << fn << " (no line hint) prefetches lines into L2";
        EXPECT_EQ(f.t0, header) << obj << ": " << fn << " (no line hint) prefetches lines";
        if (!entry) {
          EXPECT_GT(f.prefetches, 0) << obj << ": " << fn << " (no line hint) lost its page hint";
        }
      }
    }
    EXPECT_GT(l1, 0) << obj << " has no kernel prefetching lines into L1";
    EXPECT_GT(l2, 0) << obj << " has no kernel prefetching lines into L2";
  }
}

// exp (softmax) and SiLU (SwiGLU) per instruction set: the AVX2 loops on ymm registers, the
// AVX-512 ones on zmm. Written on GCC vectors since the scalar loop GCC left unvectorized for
// AVX2 cost V2-Lite's decode 25 us per layer in SiLU alone (now 5).
TEST(KernelBuild, VectorMathLoopsUseTheirVectorRegisters) {
  if (!HONDO_X86) GTEST_SKIP() << "the registers checked here are x86's";
  InstructionCounts kernels;
  std::string error;
  ASSERT_TRUE(
      count_instructions(std::string(HONDO_BIN_DIR) + "/libhondo_kernels.a", kernels, error))
      << error;
  ASSERT_NE(kernels.find("vec_math.cpp.o"), kernels.end())
      << "vec_math.cpp.o is not in the library";
  int checked = 0;
  for (const auto& [fn, f] : kernels["vec_math.cpp.o"]) {
    for (const std::string loop : {"exp_", "silu_mul_"}) {
      if (fn.find("::" + loop + "avx2(") != std::string::npos) {
        EXPECT_GE(f.ymm, 10) << fn << " has " << f.ymm << " instructions on ymm registers";
        ++checked;
      }
      if (fn.find("::" + loop + "avx512(") != std::string::npos) {
        EXPECT_GE(f.zmm, 10) << fn << " has " << f.zmm << " instructions on zmm registers";
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 4) << "exp and silu_mul, AVX2 and AVX-512";
}
