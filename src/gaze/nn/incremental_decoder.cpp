#include "gaze/nn/incremental_decoder.h"

#include <algorithm>
#include <cstring>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/nn/precision.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/attention.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/lowp.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {
namespace {

// The rows [start, start + E) of a packed in-projection ([3E, E] weight, [3E] bias).
std::pair<Tensor, Tensor> projection(const MultiheadAttention& mha, int64_t part) {
  const int64_t E = mha.embed_dim;
  const Tensor w = mha.in_proj_weight.defined() ? narrow(mha.in_proj_weight, 0, part * E, E)
                                                : (part == 0   ? mha.q_proj_weight
                                                   : part == 1 ? mha.k_proj_weight
                                                               : mha.v_proj_weight);
  const Tensor b = mha.in_proj_bias.defined() ? narrow(mha.in_proj_bias, 0, part * E, E) : Tensor();
  return {w, b};
}

Tensor project(const MultiheadAttention& mha, const Tensor& x, int64_t part) {
  const auto [w, b] = projection(mha, part);
  return linear(x, w, b);
}

// [B, T, E] -> [B, T, H, D]
Tensor heads(const Tensor& x, int64_t H) {
  return reshape(x, Shape{x.size(0), x.size(1), H, x.size(2) / H});
}

}  // namespace

Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  const Tensor& c = x;  // gaze tensors are contiguous
  Shape shape = c.shape();
  const int64_t n = c.size(0);
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out = Tensor::empty(shape, c.dtype());
  const size_t row = n > 0 ? c.nbytes() / static_cast<size_t>(n) : 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    GAZE_CHECK(rows[r] >= 0 && rows[r] < n, IndexError, "gather_rows: row {} out of range [0, {})",
               rows[r], n);
    std::memcpy(static_cast<char*>(out.raw_data()) + r * row,
                static_cast<const char*>(c.raw_data()) + static_cast<size_t>(rows[r]) * row, row);
  }
  return out;
}

IncrementalDecoder::IncrementalDecoder(const TransformerDecoder& decoder, const Tensor& memory,
                                       const Tensor& memory_lengths, int64_t rows_per_memory)
    : decoder_(decoder), k_(rows_per_memory), memory_lengths_(memory_lengths) {
  NoGradGuard no_grad;
  GAZE_CHECK(!decoder.layers.empty() && decoder.layers[0]->options.batch_first, ValueError,
             "IncrementalDecoder: the decoder must be batch-first");
  GAZE_CHECK(memory.dim() == 3, ValueError, "IncrementalDecoder: memory must be [B, S, E], got {}",
             memory.shape_str());
  GAZE_CHECK(rows_per_memory >= 1, ValueError,
             "IncrementalDecoder: rows_per_memory must be at least 1, got {}", rows_per_memory);
  const auto& first = *decoder.layers[0]->self_attn;
  B_ = memory.size(0) * k_, H_ = first.num_heads, D_ = first.head_dim;
  // A bf16 or int8 model keeps its caches in bf16: reading them is most of a decoding step's
  // attention, which waits on memory (translating the bench's 200 verses in int8: 24 % of the run).
  const bool bf16 = precision_of(decoder) != Precision::fp32 && D_ % 2 == 0;
  for (const auto& layer : decoder.layers) {
    caches_.emplace_back(B_, H_, D_, D_, 64, DType::f32, bf16);
    cross_k_.push_back(heads(project(*layer->multihead_attn, memory, 1), H_));
    cross_v_.push_back(heads(project(*layer->multihead_attn, memory, 2), H_));
  }
  memory_of_.resize(static_cast<size_t>(memory.size(0)));
  for (size_t g = 0; g < memory_of_.size(); ++g) memory_of_[g] = static_cast<int64_t>(g);
}

IncrementalDecoder::Source IncrementalDecoder::source(size_t l, bool need_weights) {
  if (!memories_moved_) return {cross_k_[l], cross_v_[l], Tensor()};
  SdpaOptions probe;
  probe.need_weights = need_weights;
  if (kv_rows_allowed(probe, k_)) {
    if (!cross_rows_.defined()) {
      const int64_t S = cross_k_[l].size(1), n = std::ssize(memory_of_);
      cross_rows_ = Tensor::empty(Shape{S, n}, DType::i64);
      int64_t* r = cross_rows_.data<int64_t>();
      for (int64_t j = 0; j < S; ++j) std::copy(memory_of_.begin(), memory_of_.end(), r + j * n);
    }
    return {cross_k_[l], cross_v_[l], cross_rows_};
  }
  // More queries per memory than kv_rows serves, or attention weights asked for: a copy of the
  // memories in the batch, made once per layer until the next reorder.
  if (gathered_k_.empty()) gathered_k_.resize(cross_k_.size()), gathered_v_.resize(cross_v_.size());
  if (!gathered_k_[l].defined()) {
    gathered_k_[l] = gather_rows(cross_k_[l], memory_of_);
    gathered_v_[l] = gather_rows(cross_v_[l], memory_of_);
  }
  return {gathered_k_[l], gathered_v_[l], Tensor()};
}

Tensor IncrementalDecoder::step(const Tensor& x_in, AttentionCapture* capture) {
  NoGradGuard no_grad;
  GAZE_CHECK(x_in.dim() == 3 && x_in.size(0) == B_ && x_in.size(1) == 1, ValueError,
             "IncrementalDecoder.step: expected [B={}, 1, E], got {}", B_, x_in.shape_str());
  if (capture) capture->cross_attention.clear();
  const auto n = static_cast<int64_t>(decoder_.layers.size());
  Tensor x = x_in;
  const int64_t E = H_ * D_;
  for (size_t l = 0; l < decoder_.layers.size(); ++l) {
    const TransformerDecoderLayer& layer = *decoder_.layers[l];
    const bool pre = layer.options.norm_first;
    const bool want = capture && capture->wants(static_cast<int64_t>(l), n);
    auto self_block = [&](const Tensor& h) {
      const MultiheadAttention& m = *layer.self_attn;
      // bf16 or int8: the three projections as one product.
      std::optional<std::vector<Tensor>> qkv;
      if (m.in_proj_weight.defined())
        qkv = lowp_linear_parts(h, m.in_proj_weight, m.in_proj_bias, 3);
      caches_[l].append(heads(qkv ? (*qkv)[1] : project(m, h, 1), H_),
                        heads(qkv ? (*qkv)[2] : project(m, h, 2), H_), HeadsLayout::bthd);
      SdpaOptions so;
      if (layer.options.attention_window >= 0) so.window = layer.options.attention_window;
      const Tensor a =
          caches_[l].attend(heads(qkv ? (*qkv)[0] : project(m, h, 0), H_), HeadsLayout::bthd, so);
      return m.out_proj->forward(reshape(a, Shape{B_, 1, E}));
    };
    auto cross_block = [&](const Tensor& h) {
      const MultiheadAttention& m = *layer.multihead_attn;
      SdpaOptions o;
      o.layout = HeadsLayout::bthd;
      o.key_lengths = memory_lengths_;
      o.need_weights = want;
      if (want) o.weight_heads = capture->heads;
      // The k_ rows of one memory are its k_ queries: [B, 1, E] is [B / k_, k_, H, D] as it lies.
      const Tensor q = reshape(project(m, h, 0), Shape{B_ / k_, k_, H_, D_});
      const Source src = source(l, want);
      o.kv_rows = src.rows;
      const SdpaResult r = scaled_dot_product_attention(q, src.k, src.v, o);
      if (capture) {
        Tensor w = r.weights;  // [B / k_, H', k_, S] -> [B, H', 1, S]
        if (w.defined() && k_ > 1)
          w = reshape(permute(w, {0, 2, 1, 3}), Shape{B_, w.size(1), 1, w.size(3)});
        capture->cross_attention.push_back(w);
      }
      return m.out_proj->forward(reshape(r.output, Shape{B_, 1, E}));
    };
    if (pre) {
      x = add(x, self_block(layer.norm1->forward(x)));
      x = add(x, cross_block(layer.norm2->forward(x)));
      x = layer.feed_forward(layer.norm3->forward(x), x);
    } else {
      x = layer.norm1->forward(add(x, self_block(x)));
      x = layer.norm2->forward(add(x, cross_block(x)));
      x = layer.norm3->forward(add(x, layer.feed_forward(x)));
    }
  }
  return decoder_.norm ? decoder_.norm->forward(x) : x;
}

void IncrementalDecoder::reorder(const std::vector<int64_t>& rows, bool same_memory) {
  same_memory = same_memory && std::ssize(rows) == B_;
  // The memory each run of k_ new rows reads, checked before anything moves.
  std::vector<int64_t> memories;
  if (!same_memory) {
    GAZE_CHECK(std::ssize(rows) % k_ == 0, ValueError,
               "IncrementalDecoder.reorder: {} rows do not make whole groups of {} rows per memory",
               rows.size(), k_);
    for (size_t g = 0; g < rows.size(); g += static_cast<size_t>(k_)) {
      const int64_t mem = rows[g] / k_;
      for (size_t i = g; i < g + static_cast<size_t>(k_); ++i)
        GAZE_CHECK(rows[i] >= 0 && rows[i] < B_ && rows[i] / k_ == mem, ValueError,
                   "IncrementalDecoder.reorder: new rows {}..{} must all come from the {} rows of "
                   "one memory; row {} does not",
                   g, g + static_cast<size_t>(k_) - 1, k_, rows[i]);
      memories.push_back(mem);
    }
  }
  for (auto& c : caches_) c.reorder(rows);
  B_ = std::ssize(rows);
  if (same_memory) return;
  // The sources' keys and values stay where they are (a copy of every layer's, each time a source
  // finished, was 2 % of int8 decoding): only the table of which memory is where changes.
  std::vector<int64_t> now;
  for (const int64_t g : memories) now.push_back(memory_of_[static_cast<size_t>(g)]);
  memory_of_ = std::move(now);
  memories_moved_ = true;
  cross_rows_ = Tensor();
  gathered_k_.clear(), gathered_v_.clear();
  memory_lengths_ = gather_rows(memory_lengths_, memories);
}

}  // namespace gaze::nn
