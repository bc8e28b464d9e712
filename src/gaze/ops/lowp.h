// Reduced-precision inference of linear layers: a weight matrix set to bf16 or int8 is multiplied
// in that precision (pre-packed once, kernels/lowp_gemm.h) whenever no gradient is recorded.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "gaze/core/precision.h"
#include "gaze/core/tensor.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/ops/fused.h"
#include "gaze/ops/linalg.h"

namespace gaze {

// Whether `w` is a non-empty 2-D float32 tensor that is its whole storage: a matrix that can carry
// a reduced precision (a view into a larger tensor cannot).
bool is_whole_matrix(const Tensor& w);

// Makes `w` (a 2-D float32 tensor that is its whole storage, e.g. a Linear's weight) a bf16 or int8
// weight: its values become, in place, those the reduced-precision product multiplies by (so every
// other use of it, such as an embedding lookup of a tied table, sees the same numbers). fp32 undoes
// the reduced-precision product (the values stay rounded).
void set_weight_precision(const Tensor& w, Precision p);
// The same from stored reduced-precision values (a quantized model folder); q's shape must be w's.
// When w's storage is deferred (Storage::deferred) and not yet made, its float values stay unmade
// and will be made from q.
void set_weight_lowp(const Tensor& w, kernels::LowpWeight q);
void set_weight_lowp(const Tensor& w, std::shared_ptr<const kernels::LowpWeight> q);
// The reduced-precision values of w's storage; null when it is float32, including when its values
// were written (an optimizer step, a load) after the conversion: writing the weights ends it.
// Writes through memory gaze does not see (a NumPy view of the weight) are not noticed: convert
// again (set_weight_precision) after changing weights that way.
std::shared_ptr<const kernels::LowpWeight> weight_lowp(const Tensor& w);

// y = act(x w^T + b) in w's reduced precision, when w (or the rows of one it is a view of) has one,
// x is float32 and nothing is recorded for autograd; nullopt otherwise (the caller runs float32).
// The arguments are those detail::check_linear accepted, with the dims it returned.
std::optional<Tensor> lowp_linear(const Tensor& x, const Tensor& w, const Tensor& b,
                                  kernels::GemmAct act, const detail::LinearDims& dims);

// linear(x, w, b) split along its last dimension into `parts` equal tensors (a self-attention's
// query, key and value from its packed in-projection), computed in one reduced-precision product
// when w has a reduced precision and nothing is recorded for autograd; nullopt otherwise.
std::optional<std::vector<Tensor>> lowp_linear_parts(const Tensor& x, const Tensor& w,
                                                     const Tensor& b, int64_t parts);

// linear(activation(linear(x, w1, b1)), w2, b2) in one call when both weights are set to the same
// reduced precision (and no gradient is wanted): the hidden layer passes between the products in
// that precision (kernels::PackedWeight::run_feed_forward). nullopt otherwise.
// residual (if defined: float32, the result's shape) is added in the second product's epilogue:
// residual + feed-forward, as a pre-norm Transformer layer's residual connection, without a pass
// of its own.
std::optional<Tensor> lowp_feed_forward(const Tensor& x, const Tensor& w1, const Tensor& b1,
                                        Activation act, const Tensor& w2, const Tensor& b2,
                                        const Tensor& residual = Tensor());

}  // namespace gaze
