// What the compiler made of the streaming kernels: every kernel that reads weights (or the
// bandwidth probe's memory) as a stream still holds its software prefetches. GCC treats a
// prefetch as free of side effects: a helper that only prefetches, when not inlined early, is
// found pure and its calls are deleted, silently (the F16 row kernels lost theirs that way and
// read 38-43 GB/s from DRAM where they had read 61-64). The test disassembles the built libraries
// with objdump.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <regex>
#include <string>

#include "kernels/cpu.h"

namespace {

// member (object file) -> function -> prefetch instructions in it
using PrefetchCounts = std::map<std::string, std::map<std::string, int>>;

// Runs objdump on a static library; false when objdump cannot be run.
bool count_prefetches(const std::string& lib, PrefetchCounts& out, std::string& error) {
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
      fn = m[1], out[obj][fn] += 0;
    else if (!fn.empty() && line.find("prefetch") != std::string::npos)
      ++out[obj][fn];
  }
  if (out.empty())
    return error = cmd + " printed no functions (" + std::to_string(lines) +
                   " lines; last: " + line + ")",
           false;
  return true;
}

// Every function of `obj` whose name contains `name` has at least `min` prefetches; there
// must be at least one such function.
void expect_prefetches(const PrefetchCounts& counts, const std::string& obj,
                       const std::string& name, int min) {
  auto it = counts.find(obj);
  ASSERT_NE(it, counts.end()) << obj << " is not in the library";
  int found = 0;
  for (const auto& [fn, n] : it->second) {
    if (fn.find(name) == std::string::npos) continue;
    ++found;
    EXPECT_GE(n, min) << obj << ": " << fn << " has " << n << " prefetch instructions";
  }
  EXPECT_GT(found, 0) << obj << " has no function named like " << name;
}

// All prefetches of `obj`.
int total_of(const PrefetchCounts& counts, const std::string& obj) {
  int n = 0;
  if (auto it = counts.find(obj); it != counts.end())
    for (const auto& [fn, c] : it->second) n += c;
  return n;
}

}  // namespace

TEST(KernelBuild, StreamingKernelsKeepTheirPrefetches) {
  if (!HONDO_X86) GTEST_SKIP() << "the prefetch layout checked here is the x86 kernels'";
  const std::string bin = HONDO_BIN_DIR;
  PrefetchCounts kernels, engine;
  std::string error;
  ASSERT_TRUE(count_prefetches(bin + "/libhondo_kernels.a", kernels, error)) << error;
  ASSERT_TRUE(count_prefetches(bin + "/libhondo_engine.a", engine, error)) << error;
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
