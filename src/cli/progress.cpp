#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "store/memory.h"

namespace hondo::cli {

ProgressBar::ProgressBar() : tty_(::isatty(2)) {}

static std::string clock(double s) {
  if (!(s >= 0) || s > 99 * 3600) return "--:--";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

void ProgressBar::update(const Progress& p) {
  const double speed = p.seconds > 0 ? (p.done - p.resumed_from) / p.seconds : 0;  // bytes/s
  if (p.file != current_) {
    current_ = p.file;
    std::fprintf(stderr, "pulling %s (%s)%s\n", p.file.c_str(),
                 p.total ? format_size(p.total).c_str() : "size unknown",
                 p.resumed_from ? (" resuming at " + format_size(p.resumed_from)).c_str() : "");
  }
  if (tty_) {
    const double frac = p.total ? double(p.done) / double(p.total) : 0;
    const int width = 30, fill = int(frac * width);
    std::string bar(size_t(fill), '#');
    bar.resize(width, '-');
    const double eta = speed > 0 && p.total ? (p.total - p.done) / speed : -1;
    std::fprintf(stderr, "\r  %3.0f%% [%s] %s / %s  %s/s  ETA %s   ", frac * 100, bar.c_str(),
                 format_size(p.done).c_str(), format_size(p.total).c_str(),
                 format_size(uint64_t(speed)).c_str(), clock(eta).c_str());
    if (p.finished) std::fprintf(stderr, "\n");
  } else if (p.finished) {
    std::fprintf(stderr, "  %s in %.1f s (%s/s)\n", format_size(p.done).c_str(), p.seconds,
                 format_size(uint64_t(speed)).c_str());
  }
  std::fflush(stderr);
}

}  // namespace hondo::cli
