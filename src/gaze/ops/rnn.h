// Recurrent cells as differentiable ops (PyTorch's LSTM and GRU equations), with a per-row validity
// mask so that sequences past their length carry their state (packed-sequence semantics).
#pragma once

#include "gaze/core/tensor.h"

namespace gaze {

struct LstmState {
  Tensor h, c;
};

// x_gates = x W_ih^T + b_ih and h_gates = h_prev W_hh^T + b_hh, both [B, 4H] (gates i, f, g, o);
// valid: bool [B] or undefined (all valid). Rows with valid false return (h_prev, c_prev).
LstmState lstm_cell(const Tensor& x_gates, const Tensor& h_gates, const Tensor& h_prev,
                    const Tensor& c_prev, const Tensor& valid = Tensor());

// x_gates, h_gates [B, 3H] (gates r, z, n); returns h.
Tensor gru_cell(const Tensor& x_gates, const Tensor& h_gates, const Tensor& h_prev,
                const Tensor& valid = Tensor());

}  // namespace gaze
