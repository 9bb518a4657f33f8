#pragma once
// Shared by the tests and the attack rows: threads that start together, and a forked child
// with a deadline.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <exception>
#include <thread>
#include <vector>

namespace xgrad::testing {

/// Runs body(t) on `count` threads that start together and joins them; rethrows the first failure.
template <class F>
void on_threads(int count, F body) {
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(count));
  std::atomic<int> ready{0};
  for (int t = 0; t < count; ++t)
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < count) std::this_thread::yield();  // start together
      try {
        body(t);
      } catch (...) {
        errors[static_cast<std::size_t>(t)] = std::current_exception();
      }
    });
  for (auto& th : threads) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

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
