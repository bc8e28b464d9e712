// Sums the parameters' gradients over the ranks of a data-parallel run while backward is still
// running, as torch's DistributedDataParallel: buckets of about 25 MB, each started (non-blocking)
// as soon as the gradients it holds are final.
#pragma once

#include <cstdint>
#include <vector>

#include "gaze/core/tensor.h"
#include "gaze/dist/communicator.h"

namespace gaze::dist {

inline constexpr int64_t kBucketBytes = int64_t{25} << 20;

class GradientReducer {
 public:
  // `params` (float32 leaves) in the model's order; buckets are filled from the last parameter
  // back, the order in which backward finishes them. Registers a post-accumulate hook on each.
  GradientReducer(Communicator& comm, std::vector<Tensor> params,
                  int64_t bucket_bytes = kBucketBytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before each backward.
  void prepare();
  // After backward, or in its place when this rank had nothing to learn from: starts the buckets
  // still waiting (a parameter this rank gave no gradient counts as zeros), waits for all of them
  // and leaves each parameter's .grad the sum over ranks. A parameter no rank gave a gradient keeps
  // none, as in one process over the whole batch.
  void finish();

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Bytes of one rank's contribution per step (gradients and their flags).
  int64_t bytes_per_step() const { return bytes_; }
  // Seconds finish() spent waiting for the sums after backward: the communication the backward did
  // not hide.
  double last_wait_seconds() const { return wait_seconds_; }

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;  // of each parameter's gradient in data
    std::vector<float> data;       // gradients, then one "has a gradient" flag per parameter
    size_t waiting = 0;            // parameters not final yet in this backward
  };
  void on_ready(size_t param);
  void stage(size_t param, bool has_grad);
  void start_in_order();

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<char> staged_;       // per parameter, this step
  size_t started_ = 0;             // buckets started this step (always a prefix)
  int64_t bytes_ = 0;
  double wait_seconds_ = 0;
};

}  // namespace gaze::dist
