#pragma once
// What every example shares: command-line flags, and the result line `make demo` collects.
#include <map>
#include <string>
#include <vector>

namespace xgrad::examples {

/// --name value flags (and bare --switches). Unknown flags are an error listing the known ones.
class Flags {
 public:
  Flags(int argc, char** argv, const std::vector<std::string>& known);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string text(const std::string& name, const std::string& fallback) const;
  long long integer(const std::string& name, long long fallback) const;
  double number(const std::string& name, double fallback) const;

 private:
  std::map<std::string, std::string> values_;
};

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
