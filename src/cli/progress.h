// A download progress bar on stderr: percentage, bytes, speed and time left, redrawn in place
// on a terminal; on a pipe or file only a start and an end line.
#pragma once
#include <string>

#include "store/hub.h"

namespace hondo::cli {

class ProgressBar {
 public:
  ProgressBar();
  void update(const Progress& p);

 private:
  bool tty_;
  std::string current_;  // file being shown
};

}  // namespace hondo::cli
