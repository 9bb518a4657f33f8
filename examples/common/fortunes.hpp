#pragma once
// The fortunes corpus (Debian's `fortunes` package): one quotation per '%'-separated record,
// one file per category under /usr/share/games/fortunes.
#include <string>
#include <vector>

namespace xgrad::examples {

inline constexpr const char* kFortunesDir = "/usr/share/games/fortunes";

struct Fortune {
  std::string text;
  std::string category;  ///< the file it came from
};

/// The records of the given category files (all plain category files when empty), in file
/// order. Throws xgrad::Error naming the directory or file when it cannot be read.
std::vector<Fortune> load_fortunes(const std::vector<std::string>& categories = {},
                                   const std::string& directory = kFortunesDir);

/// The category files present (names without .dat/.u8 companions), sorted.
std::vector<std::string> fortune_categories(const std::string& directory = kFortunesDir);

}  // namespace xgrad::examples
