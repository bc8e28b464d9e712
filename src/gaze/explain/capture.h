// Attention capture from gaze's models for one input: the weights of the chosen layers and heads,
// taken from the same forward pass that gives the outputs (which capture leaves unchanged).
#pragma once

#include <vector>

#include "gaze/explain/explanation.h"
#include "gaze/models/seq2seq.h"
#include "gaze/models/transformer_models.h"

namespace gaze::explain {

// The encoder block of a classifier or tagger for one input (a batch of one); `output` (optional)
// receives the model's output ([1, C] or [1, T, K]), `pooling` (optional) a classifier's attention
// pooling weights [T] (undefined without attention pooling).
AttentionBlock capture(const models::EncoderModel& model, const models::Inputs& one,
                       const CaptureOptions& options, Tensor* output = nullptr,
                       Tensor* pooling = nullptr);

// An encoder-decoder reading src and teacher-forced with tgt_in (BOS + the output): a Transformer's
// encoder self-attention, decoder self-attention and cross-attention; an RNN's one cross-attention
// ([1 head, tgt, src]).
std::vector<AttentionBlock> capture(const models::Seq2SeqModel& model,
                                    const std::vector<int64_t>& src,
                                    const std::vector<int64_t>& tgt_in,
                                    const CaptureOptions& options);

}  // namespace gaze::explain
