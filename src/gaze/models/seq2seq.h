// The interface of gaze's encoder-decoders (TransformerSeq2Seq, RnnSeq2Seq): teacher-forced logits
// for training, a step-by-step decoder for search, and the attention of one pair for explanations.
#pragma once

#include <memory>
#include <vector>

#include "gaze/core/enums.h"
#include "gaze/models/model.h"
#include "gaze/nn/transformer.h"

namespace gaze::models {

enum class Seq2SeqArchitecture { transformer, rnn };
GAZE_ENUM_NAMES(Seq2SeqArchitecture, {Seq2SeqArchitecture::transformer, "transformer"},
                {Seq2SeqArchitecture::rnn, "rnn"})

// A trained encoder-decoder seen one target step at a time, the only view the search algorithms
// need: log-probabilities of the next token for every row, and reordering of rows. Rows come in
// groups of `rows_per_source` decoding the same source (the beams of one sentence).
class StepDecoder {
 public:
  virtual ~StepDecoder() = default;
  // Feeds each row its previous token (int64, one per row) and returns the log-probabilities of
  // the next token, [R, V] float32.
  virtual Tensor step(const std::vector<int64_t>& previous) = 0;
  // Keeps rows in the given order (new row r = old row rows[r]); rows stay within their source.
  virtual void reorder(const std::vector<int64_t>& rows) = 0;
  // Keeps only the given rows, in that order (new row r = old row rows[r]), from any source but in
  // whole groups (each run of rows_per_source new rows from one source): the searches drop the
  // rows of sources that are done, so a batch costs what its live rows cost.
  virtual void keep(const std::vector<int64_t>& rows) = 0;
  // The last step's attention over the source, [R, S] (empty when not asked for).
  virtual Tensor alignment() const = 0;
  virtual int64_t rows() const = 0;
};

struct StepOptions {
  int64_t rows_per_source = 1;
  bool use_cache = true;         // Transformer: KV cache (false: recompute every prefix; for tests)
  bool alignment = false;        // keep the attention over the source of every step
  int64_t alignment_layer = -1;  // Transformer: the decoder layer whose cross-attention (averaged
                                 // over heads) is the alignment; negative counts from the end
};

// The attention weights of one teacher-forced pass, per layer of each stack ([B, H', Tq, Tk];
// undefined for layers not chosen). An RNN has one cross-attention "layer" of one head.
struct Seq2SeqAttention {
  std::vector<Tensor> encoder, decoder, cross;
  int64_t num_heads = 1;
};

class Seq2SeqModel : public Model {
 public:
  using Model::Model;
  virtual Seq2SeqArchitecture architecture() const = 0;
  // The most tokens the decoder can generate for one source (its position table), 0 when the
  // architecture has no limit of its own (an RNN).
  virtual int64_t max_target_tokens() const { return 0; }
  // Teacher forcing: logits [B, T, tgt_vocab] for decoder inputs tgt_in [B, T] (BOS + target).
  virtual Tensor logits(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                        const Tensor& tgt_lengths) const = 0;
  // Attribution: the source token embedding rows src [B, S] looks up, [B, S, E]; and the
  // teacher-forced logits with those rows given in place of the lookup (src still gives the
  // shape; everything after the lookup is the model's).
  virtual Tensor source_lookup(const Tensor& src) const = 0;
  virtual Tensor logits_from_source_embeddings(const Tensor& src, const Tensor& src_embeddings,
                                               const Tensor& src_lengths, const Tensor& tgt_in,
                                               const Tensor& tgt_lengths) const = 0;
  // Encodes src [B, S] (lengths [B]) and returns a decoder over B * rows_per_source rows (no
  // autograd).
  std::unique_ptr<StepDecoder> start_decoding(const Tensor& src, const Tensor& src_lengths,
                                              const StepOptions& options) const;
  // The attention of the teacher-forced pass, for the layers and heads `which` chooses.
  virtual Seq2SeqAttention attention(const Tensor& src, const Tensor& src_lengths,
                                     const Tensor& tgt_in, const Tensor& tgt_lengths,
                                     const nn::AttentionCapture& which) const = 0;

 protected:
  // start_decoding's model-specific part, with the options checked.
  virtual std::unique_ptr<StepDecoder> make_decoder(const Tensor& src, const Tensor& src_lengths,
                                                    const StepOptions& options) const = 0;
};

// Row r of a batch expanded k times decodes source r / k.
std::vector<int64_t> expand_rows(int64_t batch, int64_t k);

}  // namespace gaze::models
