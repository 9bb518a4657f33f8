#include "xgrad/dist/dist.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <vector>

#include "xgrad/core/error.hpp"
#include "xgrad/dist/mpi_check.hpp"
#include "xgrad/optim/process_group.hpp"

namespace xgrad::dist {

void detail::check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int length = 0;
  MPI_Error_string(rc, text.data(), &length);
  fail("dist::{}: MPI failed on {}: {}", what, describe(), std::string(text.data(), static_cast<std::size_t>(length)));
}

MPI_Datatype detail::mpi_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32: return MPI_FLOAT;
    case Dtype::f64: return MPI_DOUBLE;
    case Dtype::i64: return MPI_INT64_T;
  }
  fail("dist: unknown dtype");
}

namespace {

using detail::check_mpi;
using detail::mpi_type;

/// fit()'s view of the MPI world.
class World final : public optim::ProcessGroup {
 public:
  int rank() const override { return dist::rank(); }
  int size() const override { return world_size(); }
  void sum(std::span<double> values) const override {
    if (values.empty()) return;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM,
                            MPI_COMM_WORLD),
              "all_reduce");
  }
  void barrier() const override { dist::barrier(); }
};

World g_world;
const optim::ProcessGroup* g_previous_group = nullptr;
bool g_we_initialised = false;
std::terminate_handler g_previous_terminate = nullptr;

void require(const char* op) {
  if (!initialized()) fail("dist::{}: MPI is not running (create a dist::Environment first)", op);
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return MPI_SUM;
    case ReduceOp::max: return MPI_MAX;
    case ReduceOp::min: return MPI_MIN;
  }
  fail("dist: unknown reduction");
}

/// Every rank's tensor must have the same dtype and shape: one allreduce of its signature with
/// MAX over (s, -s) finds both the largest and the smallest value of each field.
void check_same_layout(const Tensor& t, const char* op) {
  constexpr std::size_t kDims = 8;
  std::array<std::int64_t, 3 + kDims> sig{static_cast<std::int64_t>(t.dtype()), t.dim(), t.numel()};
  for (std::int64_t k = 0; k < t.dim(); ++k) {
    if (static_cast<std::size_t>(k) < kDims) sig[3 + k] = t.size(k);
    else sig[3 + kDims - 1] = sig[3 + kDims - 1] * 1000003 + t.size(k);  // higher axes: folded
  }
  std::array<std::int64_t, 2 * sig.size()> both{};
  for (std::size_t i = 0; i < sig.size(); ++i) both[i] = sig[i], both[sig.size() + i] = -sig[i];
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, both.data(), static_cast<int>(both.size()), MPI_INT64_T, MPI_MAX,
                                 MPI_COMM_WORLD),
                   op);
  for (std::size_t i = 0; i < sig.size(); ++i)
    if (both[i] != -both[sig.size() + i])
      fail("dist::{}: the ranks' tensors differ in shape or dtype (this one, on {}: {} {})", op, describe(),
           t.shape(), dtype_name(t.dtype()));
}

/// Calls fn(data, count) over t's elements in pieces that an MPI count (an int) can hold, then
/// marks t as modified.
template <class F>
void in_pieces(Tensor& t, F&& fn) {
  const auto item = static_cast<std::int64_t>(dtype_size(t.dtype()));
  constexpr std::int64_t kPiece = std::int64_t{1} << 28;  // elements
  char* base = static_cast<char*>(t.impl().storage->data()) + t.impl().offset * item;
  for (std::int64_t at = 0, n = t.numel(); at < n; at += kPiece)
    fn(base + at * item, static_cast<int>(std::min(kPiece, n - at)));
  t.bump_version();
}

/// At exit with MPI still running (exit() from anywhere, or main left by an exception that
/// Environment saw unwinding): the other ranks would wait forever, so the job ends here.
void abort_if_running() {
  if (initialized()) abort("exited while the job was running (an error on this rank?)");
}

void abort_on_terminate() {
  std::string why = "std::terminate";
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& error) {
      why = std::string("uncaught exception: ") + error.what();
    } catch (...) {
      why = "uncaught exception of unknown type";
    }
  }
  abort(why);
}

void start(int* argc, char*** argv) {
  int running = 0;
  MPI_Initialized(&running);
  if (!running) {
    int provided = 0;
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "init");
    g_we_initialised = true;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  g_previous_group = optim::set_process_group(&g_world);
  g_previous_terminate = std::set_terminate(abort_on_terminate);
  static const bool registered = [] { return std::atexit(abort_if_running) == 0; }();
  (void)registered;
}

}  // namespace

Environment::Environment(int& argc, char**& argv) : uncaught_at_start_(std::uncaught_exceptions()) {
  start(&argc, &argv);
}

Environment::Environment() : uncaught_at_start_(std::uncaught_exceptions()) { start(nullptr, nullptr); }

Environment::~Environment() {
  // Unwinding: leave MPI running, so that the exit that follows (after main's handler has
  // printed the error) ends the whole job through abort_if_running.
  if (std::uncaught_exceptions() > uncaught_at_start_) return;
  optim::set_process_group(g_previous_group);
  std::set_terminate(g_previous_terminate);
  if (g_we_initialised) {
    MPI_Finalize();
    g_we_initialised = false;
  }
}

bool initialized() {
  int started = 0, finished = 0;
  MPI_Initialized(&started);
  MPI_Finalized(&finished);
  return started && !finished;
}

int rank() {
  if (!initialized()) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  if (!initialized()) return 1;
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

namespace {
/// The ranks on this machine, split from the world once.
MPI_Comm local_comm() {
  static MPI_Comm comm = [] {
    MPI_Comm c = MPI_COMM_NULL;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &c), "local_size");
    return c;
  }();
  return comm;
}
}  // namespace

int local_size() {
  if (!initialized()) return 1;
  int n = 1;
  MPI_Comm_size(local_comm(), &n);
  return n;
}

int local_rank() {
  if (!initialized()) return 0;
  int r = 0;
  MPI_Comm_rank(local_comm(), &r);
  return r;
}

std::string describe() {
  std::array<char, 256> host{};
  ::gethostname(host.data(), host.size() - 1);
  return "rank " + std::to_string(rank()) + " of " + std::to_string(world_size()) + " on " + host.data();
}

void barrier() {
  require("barrier");
  check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

void broadcast(Tensor& t, int root) {
  require("broadcast");
  check(root >= 0 && root < world_size(), "dist::broadcast: root {} is not a rank of {}", root, world_size());
  check_same_layout(t, "broadcast");
  in_pieces(t, [&](void* data, int count) {
    check_mpi(MPI_Bcast(data, count, mpi_type(t.dtype()), root, MPI_COMM_WORLD), "broadcast");
  });
}

void all_reduce(Tensor& t, ReduceOp op) {
  require("all_reduce");
  check_same_layout(t, "all_reduce");
  in_pieces(t, [&](void* data, int count) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, count, mpi_type(t.dtype()), mpi_op(op), MPI_COMM_WORLD),
                     "all_reduce");
  });
}

double all_reduce(double value, ReduceOp op) {
  require("all_reduce");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD), "all_reduce");
  return value;
}

void abort(const std::string& why, int code) {
  std::fprintf(stderr, "xgrad::dist: %s: %s; ending the job\n", describe().c_str(), why.c_str());
  std::fflush(stderr);
  if (initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();
}

}  // namespace xgrad::dist
