#include "common/report.hpp"

#include <cstdio>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace xgrad::examples {

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
