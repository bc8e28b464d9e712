#include "gaze/tasks/word_pieces.h"

#include <algorithm>

#include "gaze/core/error.h"
#include "gaze/ops/embedding.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/text/utf8.h"

namespace gaze::tasks {
namespace {

std::pair<int64_t, float> argmax(const std::vector<float>& p) {
  const auto it = std::max_element(p.begin(), p.end());
  return {it - p.begin(), *it};
}

}  // namespace

TagEncoded encode_words(const text::Tokenizer& tokenizer,
                        const std::vector<data::TaggedSentence>& sentences,
                        const std::vector<std::string>* tagset, int64_t max_length_,
                        UnknownTags unknown_tags, const std::string& source, bool with_surfaces) {
  const auto max_length = static_cast<size_t>(max_length_);
  TagEncoded enc;
  for (const auto& s : sentences) {
    // The tokenizer's frame ([CLS] ... [SEP] for BERT) around the words' pieces.
    const std::vector<int64_t> pre = tokenizer.prefix(), post = tokenizer.suffix();
    const size_t room =
        std::max(pre.size() + 1, max_length > post.size() ? max_length - post.size() : 0);
    std::vector<int64_t> ids = pre, first, tags;
    std::vector<std::string> surfaces;
    if (with_surfaces)
      for (const int64_t id : pre) surfaces.push_back(tokenizer.id_to_piece(id));
    bool cut = false;
    for (size_t w = 0; w < s.words.size(); ++w) {
      if (ids.size() >= room) {  // past the model's length: not tokenized at all
        first.push_back(-1);
        cut = true;
      } else {
        // A word is tokenized only as far as the room left can hold.
        const std::string_view word = text::clip_for_tokens(s.words[w], room - ids.size());
        std::vector<int64_t> pieces = tokenizer.encode(word);
        std::vector<std::string> written;
        if (with_surfaces) written = tokenizer.surfaces(word);
        if (pieces.empty()) pieces.push_back(tokenizer.unk_id());
        // A word whose characters the tokenizer drops still shows as itself.
        if (written.size() != pieces.size()) written.assign(pieces.size(), std::string(word));
        first.push_back(static_cast<int64_t>(ids.size()));
        const size_t left = room - ids.size();
        if (pieces.size() > left) pieces.resize(left), cut = true;
        ids.insert(ids.end(), pieces.begin(), pieces.end());
        if (with_surfaces)
          surfaces.insert(surfaces.end(), written.begin(),
                          written.begin() + static_cast<std::ptrdiff_t>(pieces.size()));
      }
      if (!tagset) {
        tags.push_back(-1);
        continue;
      }
      auto it = std::find(tagset->begin(), tagset->end(), s.tags[w]);
      if (it == tagset->end() && unknown_tags == UnknownTags::wrong) {
        tags.push_back(kUnknownTag);  // scored as a wrong prediction
        ++enc.unknown;
        continue;
      }
      GAZE_CHECK(
          it != tagset->end(), DataError,
          "{}:{}: tag '{}' is not one the model was trained on ({} tags: {}); to score "
          "such tags as errors instead, set data.unknown_tags: wrong (gaze eval: "
          "--unknown-tags wrong)",
          source, s.lines.empty() ? s.line : s.lines[w], s.tags[w], tagset->size(),
          fmt::join(tagset->begin(), tagset->begin() + std::min<size_t>(tagset->size(), 20), ", "));
      tags.push_back(it - tagset->begin());
    }
    enc.truncated += cut;
    ids.insert(ids.end(), post.begin(), post.end());
    if (with_surfaces)
      for (const int64_t id : post) surfaces.push_back(tokenizer.id_to_piece(id));
    enc.ids.push_back(std::move(ids));
    enc.surfaces.push_back(std::move(surfaces));
    enc.first.push_back(std::move(first));
    enc.tags.push_back(std::move(tags));
  }
  return enc;
}

SchemeConstraints scheme_constraints(const std::vector<std::string>& tags, TagScheme scheme) {
  const bool bioes = scheme == TagScheme::bioes;
  auto split = [](const std::string& t) -> std::pair<char, std::string> {
    if (t.size() > 2 && t[1] == '-' && std::string("BIES").find(t[0]) != std::string::npos)
      return {t[0], t.substr(2)};
    return {'O', ""};
  };
  const size_t K = tags.size();
  SchemeConstraints c{std::vector<std::vector<bool>>(K, std::vector<bool>(K, true)),
                      std::vector<bool>(K, true), std::vector<bool>(K, true)};
  for (size_t j = 0; j < K; ++j) {
    const auto [to, to_type] = split(tags[j]);
    const bool inside = to == 'I' || to == 'E';  // continues an entity of its type
    c.start[j] = !inside;
    if (bioes) c.end[j] = to == 'O' || to == 'E' || to == 'S';
    for (size_t i = 0; i < K; ++i) {
      const auto [from, from_type] = split(tags[i]);
      const bool open = from == 'B' || from == 'I';  // an entity that may go on
      c.allowed[i][j] = inside ? open && from_type == to_type : !(bioes && open);
    }
  }
  return c;
}

std::pair<Tensor, Tensor> word_emissions(const Tensor& logits,
                                         const std::vector<const std::vector<int64_t>*>& first) {
  const int64_t B = logits.size(0), T = logits.size(1), K = logits.size(2);
  int64_t W = 1;
  Tensor counts = Tensor::empty(Shape{B}, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    const auto& f = *first[static_cast<size_t>(b)];
    counts.data<int64_t>()[b] = std::count_if(f.begin(), f.end(), [](int64_t i) { return i >= 0; });
    W = std::max(W, counts.data<int64_t>()[b]);
  }
  // Row b * T + first piece of each word, as embedding indices into the [B * T, K] logits.
  Tensor rows = Tensor::zeros(Shape{B, W}, DType::i64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t w = 0; w < counts.data<int64_t>()[b]; ++w)
      rows.data<int64_t>()[b * W + w] =
          b * T + (*first[static_cast<size_t>(b)])[static_cast<size_t>(w)];
  return {embedding(rows, reshape(logits, Shape{B * T, K})), counts};
}

Tensor word_gold(const TagEncoded& enc, const std::vector<int64_t>& batch, const Tensor& words,
                 int64_t W, bool* known) {
  const auto B = static_cast<int64_t>(batch.size());
  Tensor gold = Tensor::zeros(Shape{B, W}, DType::i64);
  if (known) *known = true;
  for (int64_t b = 0; b < B; ++b) {
    const auto& tags = enc.tags[static_cast<size_t>(batch[static_cast<size_t>(b)])];
    for (int64_t w = 0; w < words.data<int64_t>()[b]; ++w) {
      const int64_t y = tags[static_cast<size_t>(w)];
      if (known && y < 0) *known = false;
      gold.data<int64_t>()[b * W + w] = std::max<int64_t>(y, 0);
    }
  }
  return gold;
}

std::vector<std::pair<int64_t, float>> word_tags(const std::vector<int64_t>& first, int64_t pieces,
                                                 const std::vector<std::vector<float>>& probs,
                                                 Aggregation aggregation, int64_t fallback) {
  std::vector<std::pair<int64_t, float>> out;
  for (size_t w = 0; w < first.size(); ++w) {
    if (first[w] < 0) {
      out.emplace_back(fallback, 0.0f);
      continue;
    }
    // The word's pieces: from its first piece to the next word's (or the end).
    int64_t end = pieces;
    for (size_t v = w + 1; v < first.size(); ++v)
      if (first[v] >= 0) {
        end = first[v];
        break;
      }
    const auto begin = static_cast<size_t>(first[w]), stop = static_cast<size_t>(end);
    switch (aggregation) {
      case Aggregation::average: {
        std::vector<float> mean(probs[begin].size(), 0.0f);
        for (auto p = begin; p < stop; ++p)
          for (size_t k = 0; k < mean.size(); ++k) mean[k] += probs[p][k];
        for (float& m : mean) m /= static_cast<float>(stop - begin);
        out.push_back(argmax(mean));
        break;
      }
      case Aggregation::max: {
        std::pair<int64_t, float> best{0, -1.0f};
        for (auto p = begin; p < stop; ++p) {
          const auto c = argmax(probs[p]);
          if (c.second > best.second) best = c;
        }
        out.push_back(best);
        break;
      }
      case Aggregation::simple:
      case Aggregation::first:  // the first piece decides, as the model was trained
        out.push_back(argmax(probs[begin]));
        break;
    }
  }
  return out;
}

}  // namespace gaze::tasks
