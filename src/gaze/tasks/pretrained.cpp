#include "gaze/tasks/pretrained.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/io/word_vectors.h"
#include "gaze/models/word_vector_backbone.h"
#include "gaze/tasks/task.h"
#include "gaze/text/vocab_tokenizer.h"

namespace gaze::tasks {
namespace {

// The glove backbone's vocabulary: the specials, the vectors' most frequent max_vectors words and
// every other word of theirs the training data uses; with trained embeddings also the training
// words they lack (seen min_count times), which start random. Lookups are lower-cased (GloVe's
// words are), the characters keep their case.
EncoderStart glove_start(models::EncoderConfig& c, const text::TokenizerOptions& o,
                         const std::vector<std::string>& texts, std::FILE* log) {
  GAZE_CHECK(!c.word_vectors.empty(), DataError,
             "model.backbone is glove but model.word_vectors is not set: give a GloVe or "
             "word2vec text file, or wink-embeddings' JSON (data/get-glove writes "
             "data/glove/glove.6B.100d.txt)");
  GAZE_CHECK(o.min_count >= 1, DataError, "tokenizer.min_count must be >= 1, got {}", o.min_count);
  io::WordVectors v = io::read_word_vectors(c.word_vectors);
  const int64_t D = v.vectors.size(1);
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (auto& w : text::VocabTokenizer::split(text::VocabTokenizer::Unit::word, t, true))
      ++counts[std::move(w)];
  std::vector<std::string> pieces = {"<pad>", "<unk>", "<s>", "</s>"};
  std::unordered_set<std::string> taken(pieces.begin(), pieces.end());
  std::vector<int64_t> row;  // vector row of each vocabulary entry (-1: none)
  row.assign(pieces.size(), -1);
  int64_t found = 0;
  for (size_t i = 0; i < v.words.size(); ++i) {
    const std::string& w = v.words[i];
    const bool frequent = c.max_vectors == 0 || static_cast<int64_t>(i) < c.max_vectors;
    const bool used = counts.count(w) > 0;
    if ((!frequent && !used) || !taken.insert(w).second) continue;
    found += used;
    pieces.push_back(w);
    row.push_back(static_cast<int64_t>(i));
  }
  int64_t added = 0;
  if (!c.freeze_embeddings) {
    std::vector<std::pair<std::string, int64_t>> rest;
    for (const auto& [w, n] : counts)
      if (n >= o.min_count && !taken.count(w)) rest.emplace_back(w, n);
    std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (const auto& [w, n] : rest) pieces.push_back(w), row.push_back(-1), ++added;
  }
  std::fprintf(log,
               "word vectors: %s, %zu words of %lld dimensions; %lld of the %zu training words "
               "have one%s\n",
               c.word_vectors.c_str(), v.words.size(), static_cast<long long>(D),
               static_cast<long long>(found), counts.size(),
               added > 0 ? fmt::format(", {} more start random", added).c_str() : "");
  auto tok = std::make_shared<text::VocabTokenizer>(text::VocabTokenizer::Unit::word,
                                                    std::move(pieces), true);
  c.vocab_size = tok->vocab_size();
  c.pad_id = tok->pad_id();
  c.word_dim = D;
  auto table = std::make_shared<io::WordVectors>(std::move(v));
  auto init = [table, row = std::move(row), D](models::EncoderModel& m) {
    auto* b = dynamic_cast<models::WordVectorBackbone*>(m.backbone.get());
    GAZE_CHECK(b != nullptr, ValueError, "glove start: the model's backbone is not glove");
    Tensor& w = b->embedding->weight;
    GAZE_CHECK(w.size(0) == static_cast<int64_t>(row.size()) && w.size(1) == D, ValueError,
               "glove start: embedding {} does not fit {} words x {}", w.shape_str(), row.size(),
               D);
    // Words without a vector start at the vectors' own scale (torch's N(0, 1) would dwarf them).
    const float* src = table->vectors.data<float>();
    const int64_t n = table->vectors.numel();
    double sq = 0;
    for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(src[i]) * src[i];
    const auto scale =
        static_cast<float>(std::sqrt(sq / static_cast<double>(std::max<int64_t>(1, n))));
    NoGradGuard no_grad;
    float* dst = w.data<float>();
    for (size_t r = 0; r < row.size(); ++r) {
      float* out = dst + static_cast<int64_t>(r) * D;
      if (row[r] >= 0) {
        std::copy(src + row[r] * D, src + (row[r] + 1) * D, out);
      } else if (r < 4) {
        std::fill(out, out + D, 0.0f);  // specials: padding, unknown, bos, eos
      } else {
        for (int64_t k = 0; k < D; ++k) out[k] *= scale;
      }
    }
    w.storage()->bump_version();
  };
  EncoderStart s;
  s.tokenizer = std::move(tok);
  s.init = std::move(init);
  return s;
}

// A pretrained model folder's tokenizer, backbone configuration and weights (every tensor whose
// name and shape the new model shares, the head's excepted).
EncoderStart pretrained_start(models::EncoderConfig& c, std::FILE* log) {
  const std::string dir = resolve_model_dir(c.pretrained);
  std::shared_ptr<models::Model> loaded = models::load_model(dir);
  auto* from = dynamic_cast<models::EncoderModel*>(loaded.get());
  GAZE_CHECK(from != nullptr, DataError,
             "model.pretrained {}: a {} has no encoder backbone to start a classifier or tagger "
             "from",
             dir, config::model_type(loaded->config_json()));
  const models::EncoderConfig keep = c;
  c = from->encoder_config();
  c.dropout = keep.dropout, c.pretrained = keep.pretrained;
  EncoderStart s;
  s.tokenizer = text::load_tokenizer(dir);
  if (auto* enc = dynamic_cast<models::SentenceEncoder*>(from)) {
    s.pooling = enc->config.pooling;
    s.pooler = enc->config.pooler;
  }
  std::fprintf(log, "pretrained: %s (%s, %lld parameters)\n", dir.c_str(),
               config::model_type(loaded->config_json()).c_str(),
               static_cast<long long>(parameter_count(*loaded)));
  s.init = [loaded, log](models::EncoderModel& m) {
    const CopiedWeights r =
        copy_matching_weights(m, loaded->state_dict(), [](const std::string& name) {
          return name.rfind("head.", 0) == 0 || name.rfind("crf.", 0) == 0;
        });
    std::fprintf(log, "pretrained: %zu tensors copied, %zu start fresh (the head)\n",
                 r.copied.size(), r.fresh.size());
  };
  return s;
}

}  // namespace

EncoderStart start_encoder(models::EncoderConfig& c, const text::TokenizerOptions& o,
                           const std::vector<std::string>& texts, std::FILE* log) {
  if (!c.pretrained.empty()) return pretrained_start(c, log);
  if (c.backbone == models::BackboneKind::glove) return glove_start(c, o, texts, log);
  EncoderStart s;
  s.tokenizer = train_tokenizer(o, texts, log);
  c.vocab_size = s.tokenizer->vocab_size();
  c.pad_id = s.tokenizer->pad_id();
  return s;
}

}  // namespace gaze::tasks
