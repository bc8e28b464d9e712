// Recurrent layers as torch.nn.LSTM / GRU / LSTMCell / GRUCell (names, gate order, state-dict keys,
// init), with variable lengths given directly: rows past their length carry their state and output
// zeros, as torch's packed sequences do (h_n is each sequence's state at its last real step).
#pragma once

#include <vector>

#include "gaze/core/enums.h"
#include "gaze/nn/module.h"

namespace gaze::nn {

struct RnnOptions {
  int64_t input_size = 0, hidden_size = 0, num_layers = 1;
  bool bias = true, batch_first = false;
  double dropout = 0.0;  // between layers, in training
  bool bidirectional = false;
};

struct RnnOutput {
  Tensor output;  // [T, B, D*H] (or [B, T, D*H] with batch_first); zeros past each length
  Tensor h_n;     // [num_layers*D, B, H]
  Tensor c_n;     // LSTM only
};

class RnnBase : public Module {
 public:
  enum class Mode { lstm, gru };
  RnnBase(Mode mode, const RnnOptions& options);
  RnnOptions options;
  Mode mode() const { return mode_; }
  // Either cell's forward: lengths int64 [B] or undefined; h0/c0: [num_layers*D, B, H] or
  // undefined (zeros); c0 is ignored by a GRU.
  RnnOutput run(const Tensor& input, const Tensor& lengths, const Tensor& h0,
                const Tensor& c0) const;

 private:
  struct Weights {
    Tensor w_ih, w_hh, b_ih, b_hh;
  };
  Mode mode_;
  std::vector<Weights> w_;  // [layer * directions + direction]
};

GAZE_ENUM_NAMES(RnnBase::Mode, {RnnBase::Mode::lstm, "lstm"}, {RnnBase::Mode::gru, "gru"})

class LSTM : public RnnBase {
 public:
  explicit LSTM(const RnnOptions& options) : RnnBase(Mode::lstm, options) {}
  RnnOutput forward(const Tensor& input, const Tensor& lengths = Tensor(),
                    const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor()) const {
    return run(input, lengths, h0, c0);
  }
};

class GRU : public RnnBase {
 public:
  explicit GRU(const RnnOptions& options) : RnnBase(Mode::gru, options) {}
  RnnOutput forward(const Tensor& input, const Tensor& lengths = Tensor(),
                    const Tensor& h0 = Tensor()) const {
    return run(input, lengths, h0, Tensor());
  }
};

// One step: input [B, I] (or [I]), state [B, H] (zeros if undefined).
class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  std::pair<Tensor, Tensor> forward(const Tensor& input, const Tensor& h = Tensor(),
                                    const Tensor& c = Tensor()) const;
  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true);
  Tensor forward(const Tensor& input, const Tensor& h = Tensor()) const;
  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace gaze::nn
