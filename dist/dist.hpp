#pragma once
// Several processes, one training run: the MPI world as xgrad sees it (xgrad::dist, an optional
// target built when MPI is found; the core library never depends on it). Launch with mpirun:
//   mpirun -np 4 ./train            (one machine)     mpirun --hostfile hosts -np 16 ./train
// Every rank runs the same program; dist::Environment starts MPI and ties its life to main's.
#include <cstdint>
#include <string>

#include "xgrad/core/tensor.hpp"

/// \namespace xgrad::dist
/// Data-parallel training across processes over MPI: the world (rank, size, collectives on
/// Tensors) and DataParallel. Overview: README, "Training on several processes".
namespace xgrad::dist {

/// MPI for the life of main. The constructor initialises MPI (thread level "serialized": one
/// thread calls MPI at a time), makes MPI errors throw xgrad::Error instead of aborting, and
/// installs this world as fit()'s process group (progress, CSV and checkpoints on rank 0,
/// logs reduced across ranks). The destructor finalizes MPI; when it runs because an exception
/// is unwinding main, it aborts the whole job instead (MPI_Abort), after printing the error with
/// this rank's name, so that the other ranks do not wait for this one forever. An exception
/// that escapes main (std::terminate) does the same.
///
///   int main(int argc, char** argv) try {
///     xgrad::dist::Environment mpi(argc, argv);
///     ...
///   } catch (const std::exception& e) { ... }
class Environment {
 public:
  Environment(int& argc, char**& argv);
  Environment();  ///< without the command line (MPI allows it)
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

 private:
  int uncaught_at_start_;
};

/// Whether MPI is initialised and not finalized (an Environment is alive).
bool initialized();
/// This process's rank in the world, 0 .. world_size() - 1 (0 without MPI).
int rank();
/// Processes in the world (1 without MPI).
int world_size();
/// Ranks on this machine (MPI_COMM_TYPE_SHARED), and this one's place among them: e.g. to give
/// each rank its share of the cores (set_num_threads(cores / local_size())).
int local_size();
int local_rank();
/// "rank 1 of 4 on host-a": how errors name a process.
std::string describe();
/// Waits until every rank reaches it.
void barrier();

enum class ReduceOp { sum, max, min };

/// t's values from rank `root` on every rank, in place. Shapes and dtypes must agree across
/// ranks (checked: a mismatch is an Error on every rank, not a hang or garbage).
void broadcast(Tensor& t, int root = 0);
/// Every rank's t combined element by element (sum, max or min), in place; f32, f64 or i64.
/// Shapes and dtypes are checked across ranks as in broadcast.
void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum);
/// The same for one number.
double all_reduce(double value, ReduceOp op = ReduceOp::sum);

/// Ends the whole job now: prints "xgrad::dist: <describe()>: <why>" to stderr and calls
/// MPI_Abort (or std::abort without MPI). For fatal errors in one rank.
[[noreturn]] void abort(const std::string& why, int code = 1);

}  // namespace xgrad::dist
