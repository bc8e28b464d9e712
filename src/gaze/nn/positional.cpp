#include "gaze/nn/positional.h"

#include "gaze/core/error.h"
#include "gaze/nn/init.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/attention.h"
#include "gaze/ops/positional.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

namespace {
// A [T, E] table shaped to broadcast over the batch of x.
Tensor along_batch(const Tensor& table, bool batch_first) {
  return batch_first ? unsqueeze(table, 0) : unsqueeze(table, 1);
}

void check_input(const Tensor& x, int64_t dim, const char* who) {
  GAZE_CHECK(x.defined() && x.dim() == 3 && x.size(2) == dim, ValueError,
             "{}: expected input [B, T, {}] or [T, B, {}], got {}", who, dim, dim,
             x.defined() ? x.shape_str() : "undefined");
}
}  // namespace

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(int64_t d, bool bf, int64_t max_len,
                                                           bool timing)
    : Module("SinusoidalPositionalEncoding"), d_model(d), batch_first(bf), timing_signal(timing) {
  GAZE_CHECK(d > 0 && max_len >= 0, ValueError,
             "SinusoidalPositionalEncoding: need d_model > 0 and max_len >= 0, got {}, {}", d,
             max_len);
  cache_ = table(max_len, 0, DType::f32);
}

Tensor SinusoidalPositionalEncoding::table(int64_t n, int64_t offset, DType dtype) const {
  if (cache_.defined() && dtype == cache_.dtype() && offset >= 0 && offset + n <= cache_.size(0))
    return slice(cache_, 0, offset, offset + n);
  return timing_signal ? gaze::timing_signal(n, d_model, offset, dtype)
                       : sinusoidal_positions(n, d_model, offset, dtype);
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x, int64_t offset) const {
  check_input(x, d_model, "SinusoidalPositionalEncoding");
  const int64_t T = x.size(batch_first ? 1 : 0);
  return add(x, along_batch(table(T, offset, x.dtype()), batch_first));
}

LearnedPositionalEmbedding::LearnedPositionalEmbedding(int64_t n, int64_t d, bool bf)
    : Module("LearnedPositionalEmbedding"), num_positions(n), dim(d), batch_first(bf) {
  GAZE_CHECK(n > 0 && d > 0, ValueError,
             "LearnedPositionalEmbedding: sizes must be positive, got {}, {}", n, d);
  weight = register_parameter(
      "weight", init::normal_(Tensor::empty(Shape{n, d}), 0.0, 1.0));  // as nn.Embedding
}

Tensor LearnedPositionalEmbedding::forward(const Tensor& x, int64_t offset) const {
  check_input(x, dim, "LearnedPositionalEmbedding");
  const int64_t T = x.size(batch_first ? 1 : 0);
  GAZE_CHECK(offset >= 0 && offset + T <= num_positions, IndexError,
             "LearnedPositionalEmbedding: positions {}..{} exceed the {} learned positions (the "
             "model was built for "
             "inputs of at most {} tokens)",
             offset, offset + T - 1, num_positions, num_positions);
  return add(x, along_batch(narrow(weight, 0, offset, T), batch_first));
}

RotaryEmbedding::RotaryEmbedding(int64_t rotary_dim, double base, bool interleaved)
    : Module("RotaryEmbedding") {
  GAZE_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, ValueError,
             "RotaryEmbedding: rotary_dim must be even, got {}", rotary_dim);
  options.rotary_dim = rotary_dim;
  options.base = base;
  options.interleaved = interleaved;
}

Tensor RotaryEmbedding::forward(const Tensor& x, int64_t offset, HeadsLayout layout) const {
  RotaryOptions o = options;
  o.offset = offset;
  o.layout = layout;
  return rotary_embedding(x, o);
}

}  // namespace gaze::nn
