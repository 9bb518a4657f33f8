#include "common/cli.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace xgrad::examples {

namespace {

/// A validator of numbers against `accept`; text that is no number passes, so that CLI11's own
/// conversion reports it ("Could not convert: --lr = abc").
CLI::Validator numbers(const std::string& name, const std::string& expected, bool (*accept)(double)) {
  return CLI::Validator(
      [expected, accept](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || accept(value)) return {};
        return "expects " + expected + ", got " + text;
      },
      name);
}

/// `text` broken into lines of at most `width` characters, at spaces.
std::string wrap(const std::string& text, std::size_t width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

}  // namespace

const CLI::Validator positive = numbers("POSITIVE", "a number > 0", [](double v) { return v > 0; });
const CLI::Validator nonnegative = numbers("NONNEGATIVE", "a number >= 0", [](double v) { return v >= 0; });
const CLI::Validator probability =
    numbers("PROBABILITY", "a probability in [0, 1)", [](double v) { return v >= 0 && v < 1; });

Cli::Cli(const std::string& name, const std::string& description, Shared shared, std::uint64_t seed)
    : app_(wrap(description, 100), name), shared_(shared), seed_(seed) {
  app_.get_formatter()->column_width(34);
}

void Cli::add_plot() {
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::canonical("/proc/self/exe", error);
  plot_dir_ = error ? std::string("plots") : (exe.parent_path().parent_path() / "plots").string();
  add_switch("--plot", plot_, "write pictures (PNG) into --plot-dir");
  add("--plot-dir", plot_dir_, "the folder for --plot's pictures (created when missing)");
}

std::string Cli::sized_help(const std::string& help, const std::string& quick, const std::string& tiny) {
  return help + " (--quick " + quick + ", --tiny " + tiny + ")";
}

std::optional<int> Cli::parse(int argc, char** argv) {
  if (shared_ == Shared::sizes) {  // after the program's own flags, so that --help lists those first
    add("--seed", seed_, "seed of every random number (same seed, same run)");
    add_switch("--quick", quick_, "a shorter run (what make demo runs)");
    add_switch("--tiny", tiny_, "a tiny run that only shows it works (what make test runs)");
  }
  try {
    app_.parse(argc, argv);
    if (quick_ && tiny_) throw CLI::ExcludesError("--quick", "--tiny");
#if !XGRAD_EXAMPLES_HAVE_VIZ
    if (plot_)
      throw CLI::ValidationError("--plot", "this build has no pictures: xgrad::viz needs MathGL (Debian libmgl-dev) "
                                           "and -DXGRAD_BUILD_VIZ=ON");
#endif
    if (plot_) std::filesystem::create_directories(plot_dir_);
  } catch (const CLI::ParseError& e) {
    std::fflush(stdout);
    return app_.exit(e);  // --help: the help on stdout, 0; otherwise the message on stderr, non-zero
  } catch (const std::filesystem::filesystem_error& e) {
    std::fprintf(stderr, "--plot-dir: %s\n", e.what());
    return 2;
  }
  for (const auto& resolve : resolve_) resolve(size());
  return std::nullopt;
}

}  // namespace xgrad::examples
