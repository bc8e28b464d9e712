#include "gaze/nn/rnn.h"

#include <cmath>

#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/nn/init.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/dropout.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/rnn.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {
namespace {

// torch's reset_parameters for every recurrent weight and bias: U(-1/sqrt(H), 1/sqrt(H)).
Tensor rnn_param(Module& m, const std::string& name, const Shape& shape, int64_t hidden) {
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden));
  Tensor p = m.register_parameter(name, init::uniform_(Tensor::empty(shape), -k, k));
  if (shape.ndim() == 2) m.mark_matmul_weight(p);  // weight_ih, weight_hh: multiplied by x, h
  return p;
}

// Per-step validity masks from lengths (empty when every row is full length).
std::vector<Tensor> step_masks(const Tensor& lengths, int64_t T, int64_t B) {
  if (!lengths.defined()) return {};
  GAZE_CHECK(lengths.dtype() == DType::i64 && lengths.shape() == Shape{B}, ValueError,
             "RNN: lengths must be int64 [B] = [{}], got {} {}", B, dtype_name(lengths.dtype()),
             lengths.shape_str());
  const int64_t* len = lengths.data<int64_t>();
  bool full = true;
  for (int64_t b = 0; b < B; ++b) {
    GAZE_CHECK(len[b] >= 0 && len[b] <= T, IndexError,
               "RNN: lengths[{}] = {} is outside [0, {}] (the sequence length)", b, len[b], T);
    full &= len[b] == T;
  }
  if (full) return {};
  std::vector<Tensor> masks;
  for (int64_t t = 0; t < T; ++t) {
    Tensor m = Tensor::empty(Shape{B}, DType::b8);
    for (int64_t b = 0; b < B; ++b) m.data<bool>()[b] = t < len[b];
    masks.push_back(m);
  }
  return masks;
}

Tensor stack0(const std::vector<Tensor>& xs) {
  std::vector<Tensor> u;
  u.reserve(xs.size());
  for (const Tensor& x : xs) u.push_back(unsqueeze(x, 0));
  return cat(u, 0);
}

}  // namespace

RnnBase::RnnBase(Mode mode, const RnnOptions& o)
    : Module(mode == Mode::lstm ? "LSTM" : "GRU"), options(o), mode_(mode) {
  GAZE_CHECK(o.input_size > 0 && o.hidden_size > 0 && o.num_layers > 0, ValueError,
             "{}: input_size, hidden_size and num_layers must be positive, got {}, {}, {}",
             type_name(), o.input_size, o.hidden_size, o.num_layers);
  GAZE_CHECK(o.dropout >= 0 && o.dropout <= 1, ValueError, "{}: dropout must be in [0, 1], got {}",
             type_name(), o.dropout);
  const int64_t G = mode == Mode::lstm ? 4 : 3, H = o.hidden_size, D = o.bidirectional ? 2 : 1;
  for (int64_t l = 0; l < o.num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = std::to_string(l) + (d ? "_reverse" : "");
      const int64_t in = l == 0 ? o.input_size : H * D;
      Weights w;
      w.w_ih = rnn_param(*this, "weight_ih_l" + sfx, Shape{G * H, in}, H);
      w.w_hh = rnn_param(*this, "weight_hh_l" + sfx, Shape{G * H, H}, H);
      if (o.bias) {
        w.b_ih = rnn_param(*this, "bias_ih_l" + sfx, Shape{G * H}, H);
        w.b_hh = rnn_param(*this, "bias_hh_l" + sfx, Shape{G * H}, H);
      }
      w_.push_back(w);
    }
}

RnnOutput RnnBase::run(const Tensor& input, const Tensor& lengths, const Tensor& h0,
                       const Tensor& c0) const {
  // Recurrent products stay float32 under autocast: a step's product is small, and a bf16 copy of
  // the weight per step would pile up for the backward.
  const AutocastGuard fp32(Precision::fp32);
  const RnnOptions& o = options;
  GAZE_CHECK(input.defined() && input.dim() == 3 && input.size(2) == o.input_size, ValueError,
             "{}: input must be [{}, input_size={}], got {}", type_name(),
             o.batch_first ? "B, T" : "T, B", o.input_size,
             input.defined() ? input.shape_str() : "undefined");
  const Tensor x0 = o.batch_first ? transpose(input, 0, 1) : input;  // time-major from here on
  const int64_t T = x0.size(0), B = x0.size(1), H = o.hidden_size, D = o.bidirectional ? 2 : 1;
  const bool lstm = mode_ == Mode::lstm;
  const Shape state_shape{o.num_layers * D, B, H};
  for (const auto& [s, name] : {std::pair{&h0, "h0"}, std::pair{&c0, "c0"}})
    GAZE_CHECK(!s->defined() || s->shape() == state_shape, ValueError, "{}: {} must be {}, got {}",
               type_name(), name, state_shape.str(), s->shape_str());
  const std::vector<Tensor> valid = step_masks(lengths, T, B);
  Tensor keep;  // [T, B, 1] float: zeroes outputs past each length
  if (!valid.empty()) {
    keep = Tensor::empty(Shape{T, B, 1}, input.dtype());
    dispatch_floating(input.dtype(), "RNN", [&]<typename Tv>() {
      for (int64_t t = 0; t < T; ++t)
        for (int64_t b = 0; b < B; ++b)
          keep.data<Tv>()[t * B + b] = valid[t].data<bool>()[b] ? Tv(1) : Tv(0);
    });
  }

  Tensor x = x0;
  std::vector<Tensor> hn, cn;
  for (int64_t l = 0; l < o.num_layers; ++l) {
    std::vector<Tensor> dir_out;
    for (int64_t d = 0; d < D; ++d) {
      const Weights& w = w_[l * D + d];
      // One GEMM projects every step's input; split hands each step its slice (one node, one concat
      // back).
      const std::vector<Tensor> xg =
          T > 0 ? split(linear(x, w.w_ih, w.b_ih), 1, 0) : std::vector<Tensor>{};
      Tensor h =
          h0.defined() ? select(h0, 0, l * D + d) : Tensor::zeros(Shape{B, H}, input.dtype());
      Tensor c = lstm ? (c0.defined() ? select(c0, 0, l * D + d)
                                      : Tensor::zeros(Shape{B, H}, input.dtype()))
                      : Tensor();
      std::vector<Tensor> outs(T);
      for (int64_t s = 0; s < T; ++s) {
        const int64_t t = d == 0 ? s : T - 1 - s;
        const Tensor xt = reshape(xg[t], Shape{B, xg[t].size(2)});
        const Tensor hg = linear(h, w.w_hh, w.b_hh);
        const Tensor v = valid.empty() ? Tensor() : valid[t];
        if (lstm) {
          LstmState st = lstm_cell(xt, hg, h, c, v);
          h = st.h, c = st.c;
        } else {
          h = gru_cell(xt, hg, h, v);
        }
        outs[t] = h;
      }
      Tensor y = T > 0 ? stack0(outs) : Tensor::zeros(Shape{0, B, H}, input.dtype());
      if (keep.defined()) y = mul(y, keep);
      dir_out.push_back(y);
      hn.push_back(h);
      if (lstm) cn.push_back(c);
    }
    x = D == 2 ? cat(dir_out, 2) : dir_out[0];
    if (l + 1 < o.num_layers && o.dropout > 0) x = dropout(x, o.dropout, is_training());
  }
  RnnOutput out;
  out.output = o.batch_first ? transpose(x, 0, 1) : x;
  out.h_n = stack0(hn);
  if (lstm) out.c_n = stack0(cn);
  return out;
}

// --- cells
// --------------------------------------------------------------------------------------------

namespace {
Tensor as_batch(const Tensor& input, int64_t in, const char* who) {
  GAZE_CHECK(input.defined() && (input.dim() == 1 || input.dim() == 2) && input.size(-1) == in,
             ValueError, "{}: input must be [B, {}] or [{}], got {}", who, in, in,
             input.defined() ? input.shape_str() : "undefined");
  return input.dim() == 1 ? unsqueeze(input, 0) : input;
}
}  // namespace

LSTMCell::LSTMCell(int64_t in, int64_t hid, bool bias)
    : Module("LSTMCell"), input_size(in), hidden_size(hid) {
  GAZE_CHECK(in > 0 && hid > 0, ValueError, "LSTMCell: sizes must be positive, got {}, {}", in,
             hid);
  weight_ih = rnn_param(*this, "weight_ih", Shape{4 * hid, in}, hid);
  weight_hh = rnn_param(*this, "weight_hh", Shape{4 * hid, hid}, hid);
  if (bias) {
    bias_ih = rnn_param(*this, "bias_ih", Shape{4 * hid}, hid);
    bias_hh = rnn_param(*this, "bias_hh", Shape{4 * hid}, hid);
  }
}

std::pair<Tensor, Tensor> LSTMCell::forward(const Tensor& input, const Tensor& h,
                                            const Tensor& c) const {
  const AutocastGuard fp32(Precision::fp32);  // as RnnBase::run
  const Tensor x = as_batch(input, input_size, "LSTMCell");
  const Shape s{x.size(0), hidden_size};
  const Tensor hp =
      h.defined() ? (h.dim() == 1 ? unsqueeze(h, 0) : h) : Tensor::zeros(s, x.dtype());
  const Tensor cp =
      c.defined() ? (c.dim() == 1 ? unsqueeze(c, 0) : c) : Tensor::zeros(s, x.dtype());
  LstmState st = lstm_cell(linear(x, weight_ih, bias_ih), linear(hp, weight_hh, bias_hh), hp, cp);
  if (input.dim() == 1) return {squeeze(st.h, 0), squeeze(st.c, 0)};
  return {st.h, st.c};
}

GRUCell::GRUCell(int64_t in, int64_t hid, bool bias)
    : Module("GRUCell"), input_size(in), hidden_size(hid) {
  GAZE_CHECK(in > 0 && hid > 0, ValueError, "GRUCell: sizes must be positive, got {}, {}", in, hid);
  weight_ih = rnn_param(*this, "weight_ih", Shape{3 * hid, in}, hid);
  weight_hh = rnn_param(*this, "weight_hh", Shape{3 * hid, hid}, hid);
  if (bias) {
    bias_ih = rnn_param(*this, "bias_ih", Shape{3 * hid}, hid);
    bias_hh = rnn_param(*this, "bias_hh", Shape{3 * hid}, hid);
  }
}

Tensor GRUCell::forward(const Tensor& input, const Tensor& h) const {
  const AutocastGuard fp32(Precision::fp32);  // as RnnBase::run
  const Tensor x = as_batch(input, input_size, "GRUCell");
  const Tensor hp = h.defined() ? (h.dim() == 1 ? unsqueeze(h, 0) : h)
                                : Tensor::zeros(Shape{x.size(0), hidden_size}, x.dtype());
  const Tensor out = gru_cell(linear(x, weight_ih, bias_ih), linear(hp, weight_hh, bias_hh), hp);
  return input.dim() == 1 ? squeeze(out, 0) : out;
}

}  // namespace gaze::nn
