#pragma once
// Shared by the tests and the attack rows: run a function in a forked child with a deadline.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace xgrad::testing {

/// Forks; the child calls `first` (when given), then runs `child` and exits with its result
/// through std::exit (static destructors and all; 98 if it threw). Returns the child's wait
/// status, or -1 when it had not finished after `seconds` (it is killed then).
template <class F>
int run_in_child(F child, double seconds, void (*first)() = nullptr) {
  std::fflush(nullptr);  // or the child flushes the parent's buffered output a second time
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (first) first();
    int code = 99;
    try {
      code = child();
    } catch (...) {
      code = 98;
    }
    std::exit(code);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return status;
}

}  // namespace xgrad::testing
