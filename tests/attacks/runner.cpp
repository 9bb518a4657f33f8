// Runs the adversarial suite (attacks.hpp): each row in a forked child with a timeout and a
// memory limit, then one line per row that is not clean and a table of counts per category and
// class. Exit status 0 only when every row is clean.
//   xgrad_attacks [--only SUBSTRING] [--list] [--timeout SECONDS] [--memory-mib MIB] [--verbose]
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <typeinfo>

#include <fmt/core.h>

#include "attacks.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define XGRAD_ATTACKS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XGRAD_ATTACKS_SANITIZED 1
#endif
#endif

namespace xgrad::attacks {

std::vector<Attack>& registry() {
  static std::vector<Attack> rows;
  return rows;
}

Register::Register(const char* category, std::vector<Row> rows) {
  for (auto& row : rows) registry().push_back({category, row.name, std::move(row.run)});
}

void expect_error(const std::function<void()>& f, const std::string& pattern) {
  try {
    f();
  } catch (const Error& e) {
    if (!std::regex_search(e.what(), std::regex(pattern)))
      throw Wrong{fmt::format("the error \"{}\" does not match /{}/", e.what(), pattern)};
    return;
  }
  throw Wrong{fmt::format("no error (expected one matching /{}/)", pattern)};
}

namespace {
bool g_forked_from_threads = false;
}

void forked_from_threads() { g_forked_from_threads = true; }

void skip_under_sanitizers(const std::string& why) {
#ifdef XGRAD_ATTACKS_SANITIZED
  throw Skipped{why};
#else
  (void)why;
#endif
}

void expect(bool ok, const std::string& what) {
  if (!ok) throw Wrong{"expected " + what};
}

void expect_values(const Tensor& t, const std::vector<double>& values, double tolerance) {
  expect(t.defined(), "a defined tensor");
  const std::vector<double> got = t.to(f64).to_vector<double>();
  if (got.size() != values.size())
    throw Wrong{fmt::format("{} values, expected {} (shape {})", got.size(), values.size(), t.shape())};
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool same = std::isnan(values[i]) ? std::isnan(got[i])
                                            : got[i] == values[i] || std::abs(got[i] - values[i]) <= tolerance;
    if (!same) throw Wrong{fmt::format("value {} is {}, expected {} (tolerance {})", i, got[i], values[i], tolerance)};
  }
}

}  // namespace xgrad::attacks

/// LeakSanitizer asks this before its exit-time check (unused without sanitizers).
extern "C" int __lsan_is_turned_off() { return xgrad::attacks::g_forked_from_threads ? 1 : 0; }

namespace {

using namespace xgrad::attacks;

// Child exit statuses (anything else, or a signal, is a crash: ASan and LSan exit with 1 and 23).
constexpr int kClean = 0, kWrong = 70, kEscape = 71, kSkipped = 72;

enum class Outcome { clean, wrong, escape, crash, hang, memory, skipped };
constexpr int kOutcomes = 7;
const char* const kOutcomeNames[kOutcomes] = {"clean", "wrong", "escape", "crash", "hang", "memory", "skipped"};

struct Options {
  std::string only;
  bool list = false, verbose = false;
#ifdef XGRAD_ATTACKS_SANITIZED
  double timeout_s = 120;
#else
  double timeout_s = 30;
#endif
  long memory_mib = 3072;
};

/// The child: run the row, report through `report_fd`, exit normally (so that static
/// destructors, LeakSanitizer and the exit attacks see a real exit).
[[noreturn]] void run_child(const Attack& attack, int report_fd, const Options& options) {
#ifndef XGRAD_ATTACKS_SANITIZED
  // A hard cap on the address space, so that a runaway allocation fails instead of paging the
  // machine (ASan reserves terabytes of shadow, so the sanitized build relies on the RSS watch).
  const rlim_t cap = static_cast<rlim_t>(options.memory_mib + 1024) << 20;
  rlimit limit{cap, cap};
  setrlimit(RLIMIT_AS, &limit);
#else
  (void)options;
#endif
  auto report = [&](const std::string& message) {
    if (::write(report_fd, message.data(), message.size()) < 0) {}
  };
  int status = kClean;
  try {
    attack.run();
  } catch (const Wrong& w) {
    report(w.what);
    status = kWrong;
  } catch (const Skipped& s) {
    report(s.why);
    status = kSkipped;
  } catch (const xgrad::Error& e) {
    report(std::string("an xgrad::Error escaped the row: ") + e.what());
    status = kWrong;
  } catch (const std::exception& e) {
    report(fmt::format("{}: {}", typeid(e).name(), e.what()));
    status = kEscape;
  } catch (...) {
    report("an exception of unknown type");
    status = kEscape;
  }
  ::close(report_fd);
  std::exit(status);
}

long resident_mib(pid_t pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

struct Result {
  Outcome outcome;
  std::string detail;
  double seconds;
};

Result run_one(const Attack& attack, const Options& options) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) {
    std::perror("pipe");
    std::exit(2);
  }
  std::fflush(nullptr);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    run_child(attack, pipe_fds[1], options);
  }
  ::close(pipe_fds[1]);
  ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  std::string detail;
  auto drain = [&] {
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) detail.append(buffer, n);
  };
  int status = 0;
  std::optional<Outcome> killed;
  for (int polls = 0;; ++polls) {
    drain();
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!killed && elapsed > options.timeout_s) killed = Outcome::hang;
    if (!killed && polls % 8 == 0 && resident_mib(pid) > options.memory_mib) killed = Outcome::memory;
    if (killed) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(polls < 100 ? 200 : 5000));
  }
  drain();
  ::close(pipe_fds[0]);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (killed) {
    return {*killed, *killed == Outcome::hang ? fmt::format("killed after {:.0f} s", options.timeout_s)
                                              : fmt::format("killed above {} MiB resident", options.memory_mib),
            seconds};
  }
  if (WIFSIGNALED(status)) return {Outcome::crash, fmt::format("signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status))), seconds};
  const int code = WEXITSTATUS(status);
  if (code == kClean) return {Outcome::clean, detail, seconds};
  if (code == kWrong) return {Outcome::wrong, detail, seconds};
  if (code == kEscape) return {Outcome::escape, detail, seconds};
  if (code == kSkipped) return {Outcome::skipped, detail, seconds};
  return {Outcome::crash, fmt::format("exit status {} (a sanitizer report or an abort; run the row alone with --only)", code), seconds};
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "xgrad_attacks: {} needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--only") o.only = value();
    else if (flag == "--list") o.list = true;
    else if (flag == "--verbose") o.verbose = true;
    else if (flag == "--timeout") o.timeout_s = std::stod(value());
    else if (flag == "--memory-mib") o.memory_mib = std::stol(value());
    else {
      fmt::print(stderr, "usage: xgrad_attacks [--only SUBSTRING] [--list] [--timeout S] [--memory-mib MIB] [--verbose]\n");
      std::exit(flag == "--help" ? 0 : 2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  std::map<std::string, std::array<int, kOutcomes>> counts;  // category -> per outcome
  std::array<int, kOutcomes> total{};
  int run = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const Attack& attack : registry()) {
    const std::string label = fmt::format("{}: {}", attack.category, attack.name);
    if (!options.only.empty() && label.find(options.only) == std::string::npos) continue;
    if (options.list) {
      fmt::print("{}\n", label);
      continue;
    }
    const Result r = run_one(attack, options);
    ++run;
    ++counts[attack.category][static_cast<int>(r.outcome)];
    ++total[static_cast<int>(r.outcome)];
    if (r.outcome != Outcome::clean)
      fmt::print("{:7} {}\n        {}\n", kOutcomeNames[static_cast<int>(r.outcome)], label, r.detail);
    else if (options.verbose)
      fmt::print("clean   {} ({:.2f} s)\n", label, r.seconds);
  }
  if (options.list) return 0;
  fmt::print("\n{:<16}{:>7}", "category", "attacks");
  for (const char* name : kOutcomeNames) fmt::print("{:>8}", name);
  fmt::print("\n");
  auto row = [](const std::string& name, const std::array<int, kOutcomes>& c) {
    int n = 0;
    for (int v : c) n += v;
    fmt::print("{:<16}{:>7}", name, n);
    for (int v : c) fmt::print("{:>8}", v);
    fmt::print("\n");
  };
  for (const auto& [category, c] : counts) row(category, c);
  row("all", total);
  fmt::print("{} attacks in {:.1f} s\n", run,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const int skipped = total[static_cast<int>(Outcome::skipped)];
  return run > 0 && total[0] + skipped == run ? 0 : 1;
}
