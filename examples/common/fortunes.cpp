#include "common/fortunes.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "xgrad/core/error.hpp"

namespace xgrad::examples {

namespace fs = std::filesystem;

std::vector<std::string> fortune_categories(const std::string& directory) {
  std::error_code error;
  if (!fs::is_directory(directory, error))
    fail("fortunes: {} is missing; install the Debian package 'fortunes' (make deps does)", directory);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (!entry.is_regular_file() || entry.path().has_extension()) continue;
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<Fortune> load_fortunes(const std::vector<std::string>& categories, const std::string& directory) {
  std::vector<std::string> names = categories.empty() ? fortune_categories(directory) : categories;
  std::vector<Fortune> out;
  for (const auto& name : names) {
    const fs::path path = fs::path(directory) / name;
    std::ifstream in(path);
    if (!in) fail("fortunes: cannot read {}", path.string());
    std::string line, record;
    auto flush = [&] {
      while (!record.empty() && (record.back() == '\n' || record.back() == ' ')) record.pop_back();
      if (!record.empty()) out.push_back({record, name});
      record.clear();
    };
    while (std::getline(in, line)) {
      if (line == "%") flush();
      else record += line + "\n";
    }
    flush();
  }
  return out;
}

}  // namespace xgrad::examples
