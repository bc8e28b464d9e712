#include "gaze/dist/communicator.h"

#include <cstdlib>
#include <cstring>

#include "gaze/core/error.h"

namespace gaze::dist {

#ifdef GAZE_WITH_MPI
std::unique_ptr<Communicator> mpi_communicator();  // mpi_communicator.cpp
#endif

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  std::string name() const override { return "single process"; }
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  std::vector<std::string> allgather(const std::string& mine) override { return {mine}; }
  void start_allreduce_sum(float*, int64_t) override {}
  void progress() override {}
  void wait_all() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

#ifndef GAZE_WITH_MPI
// The size of the run a launcher started this process in (1 when none did).
int launched_size() {
  // Open MPI, then the PMI variables of MPICH, Intel MPI and Slurm's srun.
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* v = std::getenv(var); v && *v) return std::atoi(v);
  return 1;
}
#endif

}  // namespace

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_RANK") || std::getenv("PMIX_RANK");
}

bool built_with_mpi() {
#ifdef GAZE_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> single_process() {
  return std::make_unique<SingleProcess>();
}

std::unique_ptr<Communicator> make_communicator() {
  if (!launched_by_mpi()) return single_process();
#ifdef GAZE_WITH_MPI
  return mpi_communicator();
#else
  GAZE_CHECK(launched_size() <= 1, DataError,
             "gaze runs as one of {} processes of an MPI launcher, but this gaze was built "
             "without MPI (install libopenmpi-dev and rebuild); the processes would each train "
             "alone and write the same run folder",
             launched_size());
  return single_process();
#endif
}

}  // namespace gaze::dist
