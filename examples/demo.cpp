// `make demo`: runs the flagship examples one after another with --quick, shows their progress,
// and ends with one table of what each measured against its baseline.
//   demo [--only name,name] [--tiny] [--plot [--plot-dir DIR]]   (--help: every flag and its default)
// With --plot (as `make demo` runs it) the examples that draw write their pictures (PNG) into
// --plot-dir, build/plots by default, and the demo lists them at the end.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/cli.hpp"

namespace {

const std::vector<std::string> kExamples{"char_lm", "fortune_topics", "vanishing_gradients", "cnn_gru_forecast",
                                         "seq2seq_attention", "custom_cell", "ntm_copy"};
/// The examples that draw pictures with --plot.
const std::vector<std::string> kPlotting{"char_lm", "cnn_gru_forecast", "seq2seq_attention", "ntm_copy"};

struct Outcome {
  std::string name;
  nlohmann::json result;  // null when the example printed none
  int status = 0;
  double seconds = 0;
};

/// Runs one example, echoing its output, and keeps its RESULT line and the pictures it wrote.
Outcome run(const std::filesystem::path& dir, const std::string& name, const std::string& mode,
            std::vector<std::string>& pictures) {
  Outcome outcome{name, nullptr};
  const std::string command = (dir / name).string() + " " + mode + " 2>&1";
  fmt::print("\n=== {} {} ===\n", name, mode);
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) {
    outcome.status = -1;
    return outcome;
  }
  char buffer[4096];
  std::string line;
  while (std::fgets(buffer, sizeof buffer, pipe)) {
    std::fputs(buffer, stdout);
    std::fflush(stdout);
    line += buffer;
    if (line.back() != '\n') continue;
    if (line.rfind("RESULT ", 0) == 0) outcome.result = nlohmann::json::parse(line.substr(7), nullptr, false);
    if (line.rfind("picture: ", 0) == 0) pictures.push_back(line.substr(9, line.size() - 10));
    line.clear();
  }
  outcome.status = pclose(pipe);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return outcome;
}

}  // namespace

int main(int argc, char** argv) try {
  xgrad::examples::Cli cli("demo",
                           "make demo: runs the flagship examples one after another with --quick and ends with one table "
                           "of what each measured against its baseline.",
                           xgrad::examples::Shared::none);
  std::vector<std::string> names = kExamples;
  bool tiny = false;
  cli.add("--only", names, "the examples to run (comma-separated)")
      ->delimiter(',')
      ->check(CLI::IsMember(kExamples))
      ->default_str("all");
  cli.add_switch("--tiny", tiny, "run them with --tiny instead of --quick (seconds, not minutes)");
  cli.add_plot();  // passed on to the examples that draw
  if (auto done = cli.parse(argc, argv)) return *done;
  const auto dir = std::filesystem::canonical("/proc/self/exe").parent_path();
  std::vector<Outcome> outcomes;
  std::vector<std::string> pictures;
  for (const auto& name : names) {
    std::string mode = tiny ? "--tiny" : "--quick";
    const bool draws = std::find(kPlotting.begin(), kPlotting.end(), name) != kPlotting.end();
    if (cli.plot() && draws) mode += " --plot --plot-dir '" + cli.plot_path("") + "'";
    outcomes.push_back(run(dir, name, mode, pictures));
  }

  fmt::print("\n{:<20} {:<28} {:<26} {:>10} {:>10} {:>9} {:>7}\n", "example", "task", "model", "metric", "baseline",
             "seconds", "beats");
  fmt::print("{}\n", std::string(116, '-'));
  bool all = true;
  for (const auto& o : outcomes) {
    if (o.result.is_null()) {
      fmt::print("{:<20} (no result; exit status {})\n", o.name, o.status);
      all = false;
      continue;
    }
    const auto& r = o.result;
    const double value = r["value"], baseline = r["baseline"];
    const bool higher = r["higher_is_better"];
    const bool beats = higher ? value > baseline : value < baseline;
    all = all && beats && o.status == 0;
    fmt::print("{:<20} {:<28} {:<26} {:>10.4g} {:>10.4g} {:>9.1f} {:>7}\n", o.name, r["task"].get<std::string>(),
               r["model"].get<std::string>(), value, baseline, o.seconds, beats ? "yes" : "NO");
    fmt::print("{:<20} {:<28} {:<26} {:>21}\n", "", "", "", fmt::format("({}, {} is better)", r["metric"].get<std::string>(),
                                                                       higher ? "higher" : "lower"));
  }
  if (!pictures.empty()) {
    fmt::print("\n{} pictures in {}:\n", pictures.size(), cli.plot_path(""));
    for (const auto& p : pictures) fmt::print("  {}\n", std::filesystem::path(p).filename().string());
  }
  return all ? 0 : 1;
} catch (const std::exception& e) {
  fmt::print(stderr, "demo: {}\n", e.what());
  return 2;
}
