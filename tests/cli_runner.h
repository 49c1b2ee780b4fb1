// Runs the hondo binary as a user would, capturing exit status, stdout and stderr.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_paths.h"

namespace hondo::test {

struct CliResult {
  int status;
  std::string out, err;
};

// `env` holds "NAME=value" assignments placed before the command; `shell` is a shell command
// run first in the same shell (e.g. "ulimit -d 65536"). By default the binary sees an empty
// config folder and a private hub cache, never the user's.
inline CliResult run(const std::string& args, const std::string& input = "",
                     const std::string& env = "", const std::string& shell = "") {
  const std::string dir = bin("test-models");
  std::filesystem::create_directories(dir);
  // ctest runs tests in parallel processes: scratch files are per process and call.
  static int calls = 0;
  const std::string stem = dir + "/cli-" + std::to_string(getpid()) + "-" + std::to_string(calls++);
  const std::string o = stem + ".out", e = stem + ".err", i = stem + ".in";
  std::ofstream(i) << input;
  const std::string isolated =
      "HONDO_CONFIG_DIR=" + dir + "/no-config HF_HOME=" + dir + "/no-hf-home HF_HUB_OFFLINE=1 ";
  const std::string cmd = (shell.empty() ? "" : shell + " && ") + isolated + env + " " +
                          bin("hondo") + " " + args + " <" + i + " >" + o + " 2>" + e;
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(o), read_file(e)};
}

inline void expect_one_line_error(const CliResult& r, const std::string& needle) {
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err.rfind("hondo: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

}  // namespace hondo::test
