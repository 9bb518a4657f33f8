#pragma once
// The examples' command line, through CLI11 (Debian libcli11-dev). One place adds the flags the
// example programs share (--seed, --quick, --tiny; --plot and --plot-dir for those that draw),
// gives flags whose default depends on the run's size, and parses: --help prints every flag with
// its default and one line of text and exits 0; an unknown flag or a bad value prints CLI11's
// message and exits non-zero.
//
//   examples::Cli cli("cnn_gru_forecast", "Forecast the Mackey-Glass series with a CNN-GRU.");
//   std::int64_t epochs = 0, horizon = 10;
//   cli.add("--epochs", epochs, {40, 20, 2}, "training epochs")->check(examples::positive);
//   cli.add("--horizon", horizon, "forecast this many steps ahead")->check(examples::positive);
//   if (auto done = cli.parse(argc, argv)) return *done;   // --help, or a bad command line
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace xgrad::examples {

/// How big a run is: the full run, --quick (what `make demo` runs) or --tiny (what CI runs).
enum class Size { full, quick, tiny };

/// A flag's default for each size of run, in the order full, --quick, --tiny.
template <class T>
struct Sized {
  T full, quick, tiny;
  const T& operator[](Size size) const { return size == Size::tiny ? tiny : size == Size::quick ? quick : full; }
};

/// A number > 0 (shown as POSITIVE). A value that is not a number is left to CLI11's conversion error.
extern const CLI::Validator positive;
/// A number >= 0 (shown as NONNEGATIVE).
extern const CLI::Validator nonnegative;
/// A probability in [0, 1) (shown as PROBABILITY), e.g. a dropout rate.
extern const CLI::Validator probability;

/// Which of the shared flags a program takes.
enum class Shared {
  sizes,  ///< --seed, --quick, --tiny: the training examples
  none,   ///< only --help: programs that take no options of the run's size
};

class Cli {
 public:
  /// `name` as run, and a description shown first by --help. With Shared::sizes the program also
  /// takes --seed (default `seed`), --quick and --tiny (not both), listed after its own flags.
  Cli(const std::string& name, const std::string& description, Shared shared = Shared::sizes, std::uint64_t seed = 1);

  /// A flag whose default is the target's current value.
  template <class T>
  CLI::Option* add(const std::string& flag, T& target, const std::string& help) {
    return app_.add_option(flag, target, help)->capture_default_str();
  }
  /// A flag whose default depends on the size of the run; --help shows the full run's and names
  /// the others. Unless given, the target is set to the size's default by parse().
  template <class T>
  CLI::Option* add(const std::string& flag, T& target, Sized<T> defaults, const std::string& help) {
    target = defaults.full;
    CLI::Option* option = app_.add_option(flag, target, sized_help(help, to_text(defaults.quick), to_text(defaults.tiny)))
                              ->capture_default_str();
    resolve_.push_back([option, &target, defaults](Size size) {
      if (option->count() == 0) target = defaults[size];
    });
    return option;
  }
  /// A switch (no value): true when given.
  CLI::Option* add_switch(const std::string& flag, bool& target, const std::string& help) {
    return app_.add_flag(flag, target, help);
  }
  /// --plot (write PNG pictures through xgrad::viz) and --plot-dir DIR (default: plots/ in the
  /// build directory, beside examples/, so build/plots for `make demo`).
  void add_plot();

  /// Parses the command line. Returns the exit code when the program should stop now: 0 after
  /// --help, CLI11's (non-zero) after an unknown flag or a bad value, with its message printed.
  std::optional<int> parse(int argc, char** argv);

  /// Whether `flag` (e.g. "--layers") was given on the command line.
  bool given(const std::string& flag) const { return app_.count(flag) > 0; }

  /// With --plot: true, and the folder exists (parse() creates it).
  bool plot() const { return plot_; }
  /// Where the picture `file` (e.g. "char_lm_curves.png") goes under --plot-dir.
  std::string plot_path(const std::string& file) const { return (std::filesystem::path(plot_dir_) / file).string(); }

  CLI::App& app() { return app_; }
  Size size() const { return tiny_ ? Size::tiny : quick_ ? Size::quick : Size::full; }
  bool quick() const { return quick_; }
  bool tiny() const { return tiny_; }
  std::uint64_t seed() const { return seed_; }

 private:
  static std::string sized_help(const std::string& help, const std::string& quick, const std::string& tiny);
  template <class T>
  static std::string to_text(const T& value) {
    return CLI::detail::to_string(value);
  }

  CLI::App app_;
  std::vector<std::function<void(Size)>> resolve_;
  Shared shared_;
  std::uint64_t seed_ = 1;
  bool quick_ = false, tiny_ = false, plot_ = false;
  std::string plot_dir_;
};

}  // namespace xgrad::examples
