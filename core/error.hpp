#pragma once
// The one exception type of xgrad: every user mistake throws it, with a message that
// names the op and the shapes (or the file and the byte offset).
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace xgrad {

/// The one exception type of xgrad: every user mistake throws it, with a message that names
/// the op and the shapes (or the file and the byte offset).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// Throws xgrad::Error with a fmt-formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws xgrad::Error when `condition` is false.
template <class... Args>
void check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) fail(format, std::forward<Args>(args)...);
}

}  // namespace xgrad
