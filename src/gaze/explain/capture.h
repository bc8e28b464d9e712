// Attention capture from gaze's models for one input: the weights of the chosen layers and heads,
// taken from the same forward pass that gives the outputs (which capture leaves unchanged).
#pragma once

#include <vector>

#include "gaze/explain/explanation.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"

namespace gaze::explain {

// The encoder block of a classifier or tagger for token ids `ids`; `output` (optional) receives the
// model's output for the batch of one ([1, C] or [1, T, K]).
AttentionBlock capture(const models::TransformerClassifier& model, const std::vector<int64_t>& ids,
                       const CaptureOptions& options, Tensor* output = nullptr);
AttentionBlock capture(const models::TransformerTagger& model, const std::vector<int64_t>& ids,
                       const CaptureOptions& options, Tensor* output = nullptr);

// Encoder self-attention, decoder self-attention and cross-attention of a Transformer
// encoder-decoder reading src and teacher-forced with tgt_in (BOS + the output).
std::vector<AttentionBlock> capture(const models::TransformerSeq2Seq& model,
                                    const std::vector<int64_t>& src,
                                    const std::vector<int64_t>& tgt_in,
                                    const CaptureOptions& options);

// The RNN decoder's attention over the source at each step of tgt_in: a "cross" block of one layer
// and one head, [1, tgt, src].
AttentionBlock capture(const models::RnnSeq2Seq& model, const std::vector<int64_t>& src,
                       const std::vector<int64_t>& tgt_in);

}  // namespace gaze::explain
