#pragma once
// --distributed for an example: under `mpirun -np N`, every rank trains the same model on its
// share of each batch (xgrad::dist::DataParallel), and only rank 0 prints. Needs the examples
// built with xgrad::dist (MPI found); otherwise --distributed is an error that says so.
#include <memory>

#include <xgrad/xgrad.hpp>

namespace xgrad::examples {

class Distributed {
 public:
  /// DataParallel's options, as the examples' flags give them.
  struct Options {
    double bucket_mb = 4;
    bool overlap = true;  ///< false only to measure what overlapping allreduces with backward hides
  };
  /// Starts MPI when `on`: each rank gets its share of this machine's cores as threads, and
  /// ranks other than 0 print nothing on stdout from here on.
  Distributed(bool on, Options options, int& argc, char**& argv);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  bool on() const { return on_; }
  int rank() const;
  int size() const;
  /// Averages the model's gradients over the ranks at the end of every backward.
  void wrap(nn::Module& model);
  /// This rank's rows of a global batch (axis 0): rows rank, rank + size, ...; all when off.
  Tensor shard(const Tensor& batch) const;
  /// A line on how much of `train_seconds` went into waiting for allreduces after backward.
  std::string summary(double train_seconds) const;

 private:
  bool on_;
  Options options_;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xgrad::examples
