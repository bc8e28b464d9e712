// The backward engine: walks the recorded graph from a tensor back to the leaves, running each node
// once all gradients for its outputs have arrived, and accumulates into the leaves' .grad.
#pragma once

#include "gaze/core/tensor.h"

namespace gaze::autograd {

// See Tensor::backward.
void backward(const Tensor& root, const Tensor& grad_output, bool retain_graph);

// dst += src elementwise (same shape and floating dtype); used to sum gradients.
void accumulate_into(Tensor& dst, const Tensor& src);

}  // namespace gaze::autograd
