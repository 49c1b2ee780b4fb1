// Errors inside hondo are exceptions of type hondo::Error carrying a complete, user-facing
// message ("what was expected, what was found"). Front ends catch them at the boundary.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace hondo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Concatenates any streamable values into one string: cat("tensor ", name, " has ", n, " dims").
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace hondo
