// Locations of shared test data and built tools, fixed at configure time.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace hondo::test {

inline std::string shared(const std::string& rel) {
  return std::string(HONDO_SHARED_DIR) + "/" + rel;
}
inline std::string bin(const std::string& rel) {
  return std::string(HONDO_BIN_DIR) + "/" + rel;
}

// Shared test data is required: a missing file fails the test with a clear message.
#define HONDO_REQUIRE_FILE(path)             \
  ASSERT_TRUE(std::filesystem::exists(path)) \
      << "missing test data " << (path) << " (the shared/ folder must sit beside the checkout)"

}  // namespace hondo::test
