// The MPI communicator (compiled only when CMake finds MPI). All MPI calls come from the thread
// that runs training; the OpenMP threads of the kernels never call MPI (MPI_THREAD_FUNNELED).
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "gaze/core/error.h"
#include "gaze/dist/communicator.h"

namespace gaze::dist {
namespace {

// MPI counts are ints: larger buffers go in pieces of this many elements.
constexpr int64_t kMaxCount = int64_t{1} << 30;

class Mpi final : public Communicator {
 public:
  Mpi() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    GAZE_CHECK(!initialized, StateError, "MPI is already initialised in this process");
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~Mpi() override {
    wait_all();
    MPI_Finalize();
  }
  Mpi(const Mpi&) = delete;
  Mpi& operator=(const Mpi&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  std::string name() const override {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, static_cast<size_t>(len));
    if (const auto cut = v.find_first_of(",\n"); cut != std::string::npos) v.resize(cut);
    return v;
  }

  void allreduce_sum(double* data, int64_t n) override {
    for (int64_t i = 0; i < n; i += kMaxCount)
      MPI_Allreduce(MPI_IN_PLACE, data + i, static_cast<int>(std::min(kMaxCount, n - i)),
                    MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (int64_t i = 0; i < bytes; i += kMaxCount)
      MPI_Bcast(p + i, static_cast<int>(std::min(kMaxCount, bytes - i)), MPI_BYTE, root,
                MPI_COMM_WORLD);
  }

  std::vector<std::string> allgather(const std::string& mine) override {
    GAZE_CHECK(mine.size() < static_cast<size_t>(INT_MAX), ValueError,
               "allgather: {} bytes from one rank is more than MPI can send at once", mine.size());
    const int n = static_cast<int>(mine.size());
    std::vector<int> counts(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[static_cast<size_t>(r)] = static_cast<int>(total);
      total += counts[static_cast<size_t>(r)];
      GAZE_CHECK(total < INT_MAX, ValueError,
                 "allgather: {} bytes from all ranks is more than MPI can send at once", total);
    }
    std::string all(static_cast<size_t>(total), '\0');
    MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE,
                   MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r)
      out.push_back(all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]),
                               static_cast<size_t>(counts[static_cast<size_t>(r)])));
    return out;
  }

  void start_allreduce_sum(float* data, int64_t n) override {
    for (int64_t i = 0; i < n; i += kMaxCount) {
      MPI_Request r;
      MPI_Iallreduce(MPI_IN_PLACE, data + i, static_cast<int>(std::min(kMaxCount, n - i)),
                     MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
      requests_.push_back(r);
    }
  }

  void progress() override {
    if (requests_.empty()) return;
    int done = 0;
    MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE);
    if (done) requests_.clear();
  }

  void wait_all() override {
    if (requests_.empty()) return;
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; should it, the process still ends
  }

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::vector<MPI_Request> requests_;
};

}  // namespace

std::unique_ptr<Communicator> mpi_communicator() {
  return std::make_unique<Mpi>();
}

}  // namespace gaze::dist
