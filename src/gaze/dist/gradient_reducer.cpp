#include "gaze/dist/gradient_reducer.h"

#include <chrono>
#include <cstring>

#include "gaze/core/error.h"

namespace gaze::dist {

GradientReducer::GradientReducer(Communicator& comm, std::vector<Tensor> params,
                                 int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  bucket_of_.resize(params_.size());
  staged_.assign(params_.size(), 0);
  Bucket cur;
  int64_t size = 0;
  auto close = [&] {
    if (cur.params.empty()) return;
    cur.data.assign(static_cast<size_t>(size) + cur.params.size(), 0.0f);
    bytes_ += static_cast<int64_t>(cur.data.size() * sizeof(float));
    buckets_.push_back(std::move(cur));
    cur = Bucket();
    size = 0;
  };
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    GAZE_CHECK(p.dtype() == DType::f32 && p.is_leaf() && p.requires_grad(), ValueError,
               "data-parallel training reduces float32 parameters; got {} {}",
               dtype_name(p.dtype()), p.shape_str());
    const int64_t bytes = p.numel() * static_cast<int64_t>(sizeof(float));
    if (!cur.params.empty() && size * static_cast<int64_t>(sizeof(float)) + bytes > bucket_bytes)
      close();
    bucket_of_[k] = buckets_.size();
    cur.params.push_back(k);
    cur.offsets.push_back(size);
    size += p.numel();
  }
  close();
  for (size_t k = 0; k < params_.size(); ++k)
    params_[k].set_post_accumulate_grad_hook([this, k](const Tensor&) { on_ready(k); });
}

GradientReducer::~GradientReducer() {
  comm_.wait_all();  // no sum may land in a bucket that is gone
  for (Tensor& p : params_) p.set_post_accumulate_grad_hook({});
}

void GradientReducer::prepare() {
  staged_.assign(params_.size(), 0);
  for (Bucket& b : buckets_) b.waiting = b.params.size();
  started_ = 0;
}

void GradientReducer::stage(size_t k, bool has_grad) {
  Bucket& b = buckets_[bucket_of_[k]];
  size_t j = 0;
  while (b.params[j] != k) ++j;
  float* dst = b.data.data() + b.offsets[static_cast<size_t>(j)];
  const Tensor g = params_[k].grad();
  const auto n = static_cast<size_t>(params_[k].numel());
  if (has_grad && g.defined()) {
    std::memcpy(dst, g.data<float>(), n * sizeof(float));
  } else {
    std::memset(dst, 0, n * sizeof(float));
    has_grad = false;
  }
  b.data[b.data.size() - b.params.size() + j] = has_grad ? 1.0f : 0.0f;
  staged_[k] = 1;
  --b.waiting;
}

void GradientReducer::on_ready(size_t k) {
  if (staged_[k]) return;  // a second backward in one step: its sum arrives in finish()
  stage(k, true);
  start_in_order();
  comm_.progress();
}

void GradientReducer::start_in_order() {
  // Every rank starts the buckets in the same order (MPI's rule for collectives), so a bucket
  // complete early waits for those before it.
  while (started_ < buckets_.size() && buckets_[started_].waiting == 0) {
    Bucket& b = buckets_[started_++];
    comm_.start_allreduce_sum(b.data.data(), static_cast<int64_t>(b.data.size()));
  }
}

void GradientReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t k = 0; k < params_.size(); ++k)
    if (!staged_[k]) stage(k, params_[k].grad().defined());
  start_in_order();
  comm_.wait_all();
  wait_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const Bucket& b : buckets_) {
    for (size_t j = 0; j < b.params.size(); ++j) {
      Tensor& p = params_[b.params[j]];
      if (b.data[b.data.size() - b.params.size() + j] == 0.0f) {
        p.zero_grad();  // no rank had a gradient for it
        continue;
      }
      Tensor g = p.grad();
      if (!g.defined()) {
        g = Tensor::empty(p.shape(), DType::f32);
        p.set_grad(g);
      }
      std::memcpy(g.data<float>(), b.data.data() + b.offsets[j],
                  static_cast<size_t>(p.numel()) * sizeof(float));
      g.storage()->bump_version();
    }
  }
}

}  // namespace gaze::dist
