// Chooses the integer-dot kernel set for the CPU at run time: the one boundary between
// instruction sets. Model code only ever calls qdot_best() (through matmul).
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/qdot.h"

#if HONDO_X86
#include <cpuid.h>
#endif
#if HONDO_ARM64
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace hondo {

#if HONDO_X86
const QDotKernels& qdot_avx2_kernels();
const QDotKernels& qdot_avx512vnni_kernels();
#elif HONDO_ARM64
const QDotKernels& qdot_neon_kernels();
#endif

std::vector<const QDotKernels*> qdot_available() {
  std::vector<const QDotKernels*> sets{&qdot_reference()};
#if HONDO_X86
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (avx2) sets.push_back(&qdot_avx2_kernels());
  if (avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw"))
    sets.push_back(&qdot_avx512vnni_kernels());
#elif HONDO_ARM64
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) sets.push_back(&qdot_neon_kernels());
#endif
  return sets;
}

namespace {
// Environment variable `name` set to `on` (true) or `off` (false); unset or empty: nothing.
// Anything else is said on stderr, and nothing: it is read before main, where no exception
// can reach a caller.
std::optional<bool> env_switch(const char* name, const char* on, const char* off) {
  const char* want = std::getenv(name);
  if (!want || !*want) return std::nullopt;
  if (want == std::string(on)) return true;
  if (want == std::string(off)) return false;
  std::fprintf(stderr, "hondo: %s=%s is not %s or %s; using the CPU's default\n", name, want, off,
               on);
  return std::nullopt;
}

bool choose_line_prefetch_to_l2() {
  if (const auto l2 = env_switch("HONDO_PREFETCH", "l2", "l1")) return *l2;
#if HONDO_X86
  __builtin_cpu_init();
  return __builtin_cpu_is("intel");
#else
  return false;
#endif
}

// The CPU family of an AMD CPU (19h: Zen 3 and Zen 4, 1Ah: Zen 5); 0 for any other CPU.
unsigned amd_family() {
#if HONDO_X86
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__builtin_cpu_is("amd") || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  const unsigned base = (eax >> 8) & 0xF, extended = (eax >> 20) & 0xFF;
  return base == 0xF ? base + extended : base;
#else
  return 0;
#endif
}

bool has_avx512() {
#if HONDO_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

// AMD Zen 4: family 19h (Zen 3 and Zen 4) and AVX-512, which Zen 3 lacks.
bool choose_page_hint_alone() {
  if (const auto alone = env_switch("HONDO_PAGE_HINT", "1", "0")) return *alone;
  return amd_family() == 0x19 && has_avx512();
}

// Not on AMD Zen 3: family 19h without AVX-512.
bool choose_page_ahead() {
  if (const auto ahead = env_switch("HONDO_PAGE_AHEAD", "on", "off")) return *ahead;
  return amd_family() != 0x19 || has_avx512();
}

const QDotKernels& choose() {
  const auto sets = qdot_available();
  if (const char* want = std::getenv("HONDO_ISA"); want && *want) {
    std::string names;
    for (const QDotKernels* ks : sets) {
      if (want == std::string(ks->isa)) return *ks;
      names += names.empty() ? "" : ", ", names += ks->isa;
    }
    fail("HONDO_ISA=", want, " is not available on this CPU (available: ", names, ")");
  }
  return *sets.back();
}
}  // namespace

extern const bool line_prefetch_to_l2 = choose_line_prefetch_to_l2();
extern const bool page_hint_alone = choose_page_hint_alone();
extern const bool page_ahead = choose_page_ahead();

const QDotKernels& qdot_best() {
  static const QDotKernels& ks = choose();
  return ks;
}

void QActs::quantize(const QDotKernels& ks, const float* x, int64_t n, int64_t k,
                     ThreadPool* pool) {
  if (k % kQActBlock) fail("activation rows of ", k, " values are not a multiple of 32");
  n_ = n, k_ = k;
  if (q_.size() < size_t(n * k)) q_.resize(size_t(n * k));
  if (d_.size() < size_t(n * k / 32)) d_.resize(size_t(n * k / 32));
  if (s_.size() < size_t(n * k / 16)) s_.resize(size_t(n * k / 16));
  if (ds_.size() < size_t(n * k / 32)) ds_.resize(size_t(n * k / 32));
  auto rows = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* d = d_.data() + t * (k / 32);
      const int16_t* s = s_.data() + t * (k / 16);
      float* ds = ds_.data() + t * (k / 32);
      ks.quantize(x + t * k, k, q_.data() + t * k, d, s_.data() + t * (k / 16));
      for (int64_t b = 0; b < k / 32; ++b) ds[b] = d[b] * float(s[2 * b] + s[2 * b + 1]);
    }
  };
  if (pool && n * k >= (int64_t(1) << 16))
    pool->parallel_for(n, rows);
  else
    rows(0, n);
}

}  // namespace hondo
