// Locations of shared test data and built tools, fixed at configure time.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace hondo::test {

inline std::string shared(const std::string& rel) {
  return std::string(HONDO_SHARED_DIR) + "/" + rel;
}
inline std::string bin(const std::string& rel) {
  return std::string(HONDO_BIN_DIR) + "/" + rel;
}

// A whole file as bytes ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Shared test data is required: a missing file fails the test with a clear message.
#define HONDO_REQUIRE_FILE(path)             \
  ASSERT_TRUE(std::filesystem::exists(path)) \
      << "missing test data " << (path) << " (the shared/ folder must sit beside the checkout)"

}  // namespace hondo::test
