// The fault test's program (fault_test.cmake): two ranks train a small LSTM; at step 5 rank 1
// SIGKILLs itself ("kill") or throws an xgrad::Error ("throw"), while rank 0 goes on into the
// next allreduce, where it would wait forever if nothing ended the job.
#include <csignal>
#include <cstdio>
#include <string>

#include <xgrad/dist/data_parallel.hpp>
#include <xgrad/dist/dist.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

int main(int argc, char** argv) try {
  dist::Environment mpi(argc, argv);
  const std::string fault = argc > 1 ? argv[1] : "kill";
  nn::LSTM lstm(4, 16);
  dist::DataParallel ddp(lstm);
  optim::Adam adam(lstm.parameters(), {.lr = 1e-3});
  for (int step = 0;; ++step) {
    if (step == 5 && dist::rank() == 1) {
      std::fprintf(stderr, "rank 1: injecting '%s' at step 5\n", fault.c_str());
      std::fflush(stderr);
      if (fault == "kill") std::raise(SIGKILL);
      fail("injected fault at step 5");
    }
    adam.zero_grad();
    mean(lstm(randn({8, 10, 4}))).backward();
    adam.step();
  }
} catch (const std::exception& e) {
  std::fprintf(stderr, "xgrad_dist_fault: %s\n", e.what());
  return 1;
}
