#include "gaze/explain/capture.h"

#include <numeric>

#include "gaze/autograd/grad_mode.h"
#include "gaze/core/error.h"
#include "gaze/ops/ops.h"

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
AttentionBlock block_from(const std::string& name, const std::vector<Tensor>& captured,
                          int64_t num_heads, const CaptureOptions& o, bool self) {
  AttentionBlock b;
  b.name = name;
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

template <class Model>
AttentionBlock capture_encoder(const Model& m, const std::vector<int64_t>& ids,
                               const CaptureOptions& o, Tensor* output) {
  NoGradGuard no_grad;
  nn::AttentionCapture cap = make_capture(o);
  const Tensor out = m.forward(batch_of_one(ids), length_of(ids), &cap);
  if (output) *output = out;
  return block_from("encoder", cap.self_attention, m.config.nhead, o, true);
}

}  // namespace

AttentionBlock capture(const models::TransformerClassifier& m, const std::vector<int64_t>& ids,
                       const CaptureOptions& o, Tensor* output) {
  return capture_encoder(m, ids, o, output);
}

AttentionBlock capture(const models::TransformerTagger& m, const std::vector<int64_t>& ids,
                       const CaptureOptions& o, Tensor* output) {
  return capture_encoder(m, ids, o, output);
}

std::vector<AttentionBlock> capture(const models::TransformerSeq2Seq& m,
                                    const std::vector<int64_t>& src,
                                    const std::vector<int64_t>& tgt_in, const CaptureOptions& o) {
  NoGradGuard no_grad;
  nn::AttentionCapture enc = make_capture(o), dec = make_capture(o);
  m.forward(batch_of_one(src), length_of(src), batch_of_one(tgt_in), length_of(tgt_in), &enc, &dec);
  const int64_t H = m.config.nhead;
  return {block_from("encoder", enc.self_attention, H, o, true),
          block_from("decoder", dec.self_attention, H, o, true),
          block_from("cross", dec.cross_attention, H, o, false)};
}

AttentionBlock capture(const models::RnnSeq2Seq& m, const std::vector<int64_t>& src,
                       const std::vector<int64_t>& tgt_in) {
  NoGradGuard no_grad;
  Tensor weights;  // [1, T, S]
  m.forward(batch_of_one(src), length_of(src), batch_of_one(tgt_in), &weights);
  AttentionBlock b;
  b.name = "cross";
  b.self = false;
  b.num_layers = b.num_heads = 1;
  b.layers = b.heads = {0};
  b.weights = {weights};  // [1 head, T, S]
  return b;
}

}  // namespace gaze::explain
