#include "core/phase_clock.h"

namespace hondo {

namespace {
thread_local PhaseTotals* recording = nullptr;  // this thread's
}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kEmbed:
      return "embed";
    case Phase::kAttention:
      return "attention";
    case Phase::kFfn:
      return "ffn";
    case Phase::kOutput:
      return "output";
  }
  return "?";
}

PhaseRecording::PhaseRecording(PhaseTotals& totals) : previous_(recording) {
  recording = &totals;
}
PhaseRecording::~PhaseRecording() {
  recording = previous_;
}
PhaseTotals* PhaseRecording::current() {
  return recording;
}

}  // namespace hondo
