// Where the time of a forward pass goes, by phase (attention, feed-forward, output), for
// `hondo bench --phases`: held against the bytes each phase reads, it shows which part of a
// decoded token falls short of the memory-bandwidth roofline.
//
// Off unless a PhaseRecording is alive on the thread that runs the forward pass: a pass then
// reads one thread-local and each mark is a branch. On, each mark reads the clock once. The
// phases are wall time on that thread, fork/joins and waits for the pool's other threads
// included, so that they add up to the pass.
#pragma once
#include <array>
#include <chrono>

namespace hondo {

enum class Phase { kEmbed, kAttention, kFfn, kOutput };
inline constexpr int kPhaseCount = 4;
const char* phase_name(Phase p);  // "embed", "attention", "ffn", "output"

struct PhaseTotals {
  std::array<double, kPhaseCount> seconds{};
};

// While alive, the forward passes run on this thread add their phases' time to `totals`.
class PhaseRecording {
 public:
  explicit PhaseRecording(PhaseTotals& totals);
  ~PhaseRecording();
  PhaseRecording(const PhaseRecording&) = delete;
  PhaseRecording& operator=(const PhaseRecording&) = delete;
  static PhaseTotals* current();  // this thread's, or null

 private:
  PhaseTotals* previous_;
};

// The marks along one forward pass: end(p) adds the time since the previous mark (or since
// construction) to phase p.
class PhaseMarks {
 public:
  PhaseMarks() : totals_(PhaseRecording::current()) {
    if (totals_) last_ = Clock::now();
  }
  void end(Phase p) {
    if (!totals_) return;
    const Clock::time_point t = Clock::now();
    totals_->seconds[size_t(p)] += std::chrono::duration<double>(t - last_).count();
    last_ = t;
  }

 private:
  using Clock = std::chrono::steady_clock;
  PhaseTotals* totals_;
  Clock::time_point last_{};
};

}  // namespace hondo
