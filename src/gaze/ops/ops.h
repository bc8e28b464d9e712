// All of gaze's differentiable ops in one include: arithmetic, unary math, reductions, shape ops,
// matmul/linear, softmax, layer_norm, embedding, dropout, losses and random tensors.
#pragma once

#include "gaze/core/grad_mode.h"
#include "gaze/core/tensor.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/attention.h"
#include "gaze/ops/dropout.h"
#include "gaze/ops/embedding.h"
#include "gaze/ops/fused.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/loss.h"
#include "gaze/ops/norm.h"
#include "gaze/ops/positional.h"
#include "gaze/ops/random.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/rnn.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/softmax.h"
#include "gaze/ops/unary.h"
