// Crash-safe saving: a child process saves checkpoints over and over and is killed with SIGKILL at
// random moments; after every kill the checkpoint on disk must load and be one complete version.
// Also two processes saving to the same path at once: a reader must only ever see whole versions.
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::nn;
using namespace xgrad::testing;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// Big enough that one save takes measurable time: weight [1024, 512] + bias, about 2 MB.
struct Model : Module {
  std::shared_ptr<Linear> fc;
  explicit Model(std::uint64_t seed) {
    manual_seed(seed);
    fc = register_module("fc", std::make_shared<Linear>(512, 1024));
  }
  std::string type_name() const override { return "Model"; }
};

std::vector<float> values_of(const Module& m) {
  std::vector<float> out;
  for (const auto& [name, t] : m.state_dict()) {
    const auto v = t.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

/// A child process saving checkpoints; it writes one byte to `progress` as it starts and one
/// after each save it completes.
struct Saver {
  pid_t pid;
  int progress;
  /// Returns once the child has completed `n` more saves.
  void wait_saves(int n) const {
    char byte = 0;
    for (int i = 0; i < n; ++i) REQUIRE(::read(progress, &byte, 1) == 1);
  }
};

/// Forks a child that saves `first`, `second`, `first`, ... to `path` until it is killed (or, as
/// a safety net, for at most 30 s), and returns once the child is about to start its first save
/// (forking a large test process takes longer than a save, and a loaded machine can stretch
/// both: kills are timed from the child's own progress, not from the fork). The child never
/// returns into the test runner.
Saver spawn_saver(const Module& first, const Module& second, const std::string& path) {
  int progress[2];
  REQUIRE(::pipe(progress) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(progress[0]);
    const char byte = 1;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    try {
      if (::write(progress[1], &byte, 1) != 1) ::_exit(4);
      for (int i = 0; Clock::now() < deadline; ++i) {
        (i % 2 ? second : first).save(path);
        if (::write(progress[1], &byte, 1) != 1) ::_exit(4);
      }
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(2);
  }
  ::close(progress[1]);
  const Saver saver{pid, progress[0]};
  saver.wait_saves(1);  // started
  return saver;
}

void kill_and_reap(const Saver& saver) {
  REQUIRE(::kill(saver.pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(saver.pid, &status, 0) == saver.pid);
  ::close(saver.progress);
  // killed by us, not exited on its own (an exception or the safety deadline in the child)
  CHECK(WIFSIGNALED(status));
}

/// Loads the checkpoint into a fresh model; returns 0 or 1 for which version it holds, -1 for neither.
int version_at(const std::string& path, const std::vector<float>& a, const std::vector<float>& b) {
  Model loaded(99);
  const std::string message = error_of([&] { loaded.load(path); });
  INFO(message);
  CHECK(message.empty());
  const auto v = values_of(loaded);
  return v == a ? 0 : v == b ? 1 : -1;
}

}  // namespace

TEST_CASE("crash-safe saving: SIGKILL at random points during saves never leaves a broken checkpoint") {
  TempDir dir("crash_save");
  const std::string path = (dir.path / "model.safetensors").string();
  const Model a(1), b(2);
  const auto va = values_of(a), vb = values_of(b);
  REQUIRE(va != vb);

  // How long one save takes here (fsync makes it depend on the disk): each kill comes after
  // 0, 1 or 2 completed saves of the child, at a random moment within about one more save, so
  // kills land in every phase (serialize, write, fsync, rename) and both versions get written.
  const auto start = Clock::now();
  for (int i = 0; i < 3; ++i) (i % 2 ? b : a).save(path);
  const double save_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / 3;
  REQUIRE(version_at(path, va, vb) == 0);

  std::mt19937_64 rng(20240611);
  std::uniform_real_distribution<double> delay_us(0, 1.5 * save_us);
  const int kills = 60;
  int seen[2] = {0, 0}, partial = 0;
  const auto began = Clock::now();
  for (int k = 0; k < kills; ++k) {
    const Saver child = spawn_saver(k % 2 ? b : a, k % 2 ? a : b, path);
    child.wait_saves(k % 3);
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(delay_us(rng))));
    kill_and_reap(child);
    // The checkpoint is always a complete version; a killed save only leaves its temporary file.
    INFO("kill ", k);
    const int v = version_at(path, va, vb);
    REQUIRE(v >= 0);
    ++seen[v];
    for (const auto& e : fs::directory_iterator(dir.path))
      if (e.path() != path) {
        ++partial;
        fs::remove(e.path());
      }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
  MESSAGE(kills, " kills in ", seconds, " s (one save ", save_us / 1000, " ms): the checkpoint loaded every time (", seen[0],
          " x version A, ", seen[1], " x version B); ", partial, " kills interrupted a save before its rename");
  // The kills really hit saves in progress, and saves really completed between kills.
  CHECK(partial > 0);
  CHECK(seen[0] > 0);
  CHECK(seen[1] > 0);
}

TEST_CASE("crash-safe saving: two processes saving to the same path never mix their files") {
  TempDir dir("crash_save");
  const std::string path = (dir.path / "shared.safetensors").string();
  const Model a(1), b(2);
  const auto va = values_of(a), vb = values_of(b);
  a.save(path);
  // Both writers save over and over (each its own pair of versions: A,A and B,B) while this
  // process reads the file: every read must be one writer's complete file. Reads go on until
  // 100 of them have seen both writers' files (counted, not timed: a loaded machine, or a
  // sanitizer, only makes it take longer; 60 s is the safety net).
  const Saver first = spawn_saver(a, a, path), second = spawn_saver(b, b, path);
  int seen[2] = {0, 0};
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while ((seen[0] + seen[1] < 100 || seen[0] == 0 || seen[1] == 0) && Clock::now() < deadline) {
    const int v = version_at(path, va, vb);
    REQUIRE(v >= 0);
    ++seen[v];
  }
  kill_and_reap(first);
  kill_and_reap(second);
  MESSAGE("two writers: ", seen[0] + seen[1], " reads, ", seen[0], " x A, ", seen[1], " x B, none mixed");
  CHECK(seen[0] + seen[1] >= 100);
  CHECK(seen[0] > 0);
  CHECK(seen[1] > 0);
  CHECK(version_at(path, va, vb) >= 0);
}
