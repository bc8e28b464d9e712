#include "gaze/explain/capture.h"

#include <numeric>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::explain {
namespace {

Tensor batch_of_one(const std::vector<int64_t>& ids) {
  GAZE_CHECK(!ids.empty(), ValueError, "explain: the input has no tokens");
  return Tensor::from_vector(ids, Shape{1, static_cast<int64_t>(ids.size())});
}
Tensor length_of(const std::vector<int64_t>& ids) {
  return Tensor::full(Shape{1}, static_cast<double>(ids.size()), DType::i64);
}

nn::AttentionCapture make_capture(const CaptureOptions& o) {
  nn::AttentionCapture c;
  c.layers = o.layers;
  c.heads = o.heads;
  return c;
}

// A block from one stack's captured tensors ([1, H', Tq, Tk] per layer, undefined if skipped).
AttentionBlock block_from(Stack stack, const std::vector<Tensor>& captured, int64_t num_heads,
                          const CaptureOptions& o, bool self) {
  AttentionBlock b;
  b.stack = stack;
  b.self = self;
  b.num_layers = static_cast<int64_t>(captured.size());
  b.num_heads = num_heads;
  b.heads = o.heads;
  if (b.heads.empty()) {
    b.heads.resize(static_cast<size_t>(num_heads));
    std::iota(b.heads.begin(), b.heads.end(), 0);
  }
  for (size_t l = 0; l < captured.size(); ++l) {
    if (!captured[l].defined()) continue;
    b.layers.push_back(static_cast<int64_t>(l));
    b.weights.push_back(squeeze(captured[l], 0));
  }
  return b;
}

}  // namespace

AttentionBlock capture(const models::EncoderModel& m, const models::Inputs& one,
                       const CaptureOptions& o, Tensor* output, Tensor* pooling) {
  NoGradGuard no_grad;
  GAZE_CHECK(one.tokens.defined() && one.tokens.dim() == 2 && one.tokens.size(0) == 1 &&
                 one.tokens.size(1) > 0,
             ValueError, "explain: expected one input with at least one token");
  nn::AttentionCapture cap = make_capture(o);
  const Tensor out = m.forward(one, &cap);
  if (output) *output = out;
  if (pooling) *pooling = cap.pooling.defined() ? squeeze(cap.pooling, 0) : Tensor();
  return block_from(Stack::encoder, cap.self_attention, m.backbone->num_heads(), o, true);
}

std::vector<AttentionBlock> capture(const models::Seq2SeqModel& m, const std::vector<int64_t>& src,
                                    const std::vector<int64_t>& tgt_in, const CaptureOptions& o) {
  NoGradGuard no_grad;
  const models::Seq2SeqAttention a = m.attention(
      batch_of_one(src), length_of(src), batch_of_one(tgt_in), length_of(tgt_in), make_capture(o));
  std::vector<AttentionBlock> out;
  if (!a.encoder.empty())
    out.push_back(block_from(Stack::encoder, a.encoder, a.num_heads, o, true));
  if (!a.decoder.empty())
    out.push_back(block_from(Stack::decoder, a.decoder, a.num_heads, o, true));
  out.push_back(block_from(Stack::cross, a.cross, a.num_heads, o, false));
  return out;
}

}  // namespace gaze::explain
