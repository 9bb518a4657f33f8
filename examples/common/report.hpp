#pragma once
// The result line every example prints and `make demo` collects (the command line: common/cli.hpp).
#include <string>

namespace xgrad::examples {

/// One measured outcome of an example against its baseline.
struct Result {
  std::string example, task, model, metric;
  double value = 0, baseline = 0;
  bool higher_is_better = false;
  bool beats_baseline() const { return higher_is_better ? value > baseline : value < baseline; }
};

/// Prints the result for people, and as one `RESULT {json}` line for `make demo`'s table.
void report(const Result& result);

}  // namespace xgrad::examples
