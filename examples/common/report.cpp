#include "common/report.hpp"

#include <cstdlib>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "xgrad/core/error.hpp"

namespace xgrad::examples {

Flags::Flags(int argc, char** argv, const std::vector<std::string>& known) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) fail("{}: unexpected argument '{}'", argv[0], arg);
    std::string name = arg.substr(2);
    if (std::find(known.begin(), known.end(), name) == known.end())
      fail("{}: unknown flag --{} (known: --{})", argv[0], name, fmt::join(known, ", --"));
    const bool has_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
    values_[name] = has_value ? argv[++i] : "";
  }
}

std::string Flags::text(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long Flags::integer(const std::string& name, long long fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') fail("--{} expects an integer, got '{}'", name, it->second);
  return v;
}

double Flags::number(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') fail("--{} expects a number, got '{}'", name, it->second);
  return v;
}

void report(const Result& r) {
  fmt::print("\n{}: {} with {}: {} = {:.4g} (baseline {:.4g}; {} is better) -> {}\n", r.example, r.task, r.model,
             r.metric, r.value, r.baseline, r.higher_is_better ? "higher" : "lower",
             r.beats_baseline() ? "beats the baseline" : "does NOT beat the baseline");
  nlohmann::json line = {{"example", r.example},   {"task", r.task},         {"model", r.model},
                         {"metric", r.metric},     {"value", r.value},       {"baseline", r.baseline},
                         {"higher_is_better", r.higher_is_better}};
  fmt::print("RESULT {}\n", line.dump());
  std::fflush(stdout);
}

}  // namespace xgrad::examples
