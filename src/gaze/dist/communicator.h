// The processes of a data-parallel run and the collective operations training needs from them:
// MPI when gaze runs under mpirun (and was built with it), a single process otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gaze::dist {

// Every collective must be called by all ranks in the same order (MPI's rule); the trainer keeps
// to it by making the same calls on every rank whatever its share of a batch holds.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The ranks on this machine (they share its cores).
  virtual int local_size() const = 0;
  // What runs the collectives, for the log: "single process", "Open MPI v4.1.4, ...".
  virtual std::string name() const = 0;

  // In place, blocking: data[i] becomes the sum over ranks.
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // In place: the root's bytes on every rank.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank's string, in rank order, on every rank.
  virtual std::vector<std::string> allgather(const std::string& mine) = 0;

  // Starts an in-place sum of floats (MPI_Iallreduce) and returns at once; the data must stay put
  // until wait_all returns. progress() lets the library move started sums along while the caller
  // computes (MPI makes progress only inside its calls).
  virtual void start_allreduce_sum(float* data, int64_t n) = 0;
  virtual void progress() = 0;
  virtual void wait_all() = 0;

  // Ends every rank of the run with `code` (MPI_Abort): the way out when one rank fails, so that
  // the others do not wait forever in a collective it will never join.
  [[noreturn]] virtual void abort(int code) = 0;
};

// True when this process was started by mpirun (or another MPI launcher) as one rank of a run.
bool launched_by_mpi();
// True when this gaze can use MPI (built with it).
bool built_with_mpi();
// Under mpirun: the MPI communicator of all ranks (MPI is initialised here and finalised when it
// is destroyed). Otherwise a single process. Under a launcher without MPI support built in, a
// DataError: N independent copies would all write the same run folder.
std::unique_ptr<Communicator> make_communicator();
// A communicator of one process (no MPI involved).
std::unique_ptr<Communicator> single_process();

}  // namespace gaze::dist
