// SentencePiece subword tokenizer (Debian's libsentencepiece): trains a unigram or BPE model from
// texts in memory, or loads an existing .model; ids missing from the model (pad, bos, eos) are
// appended after its pieces so every tokenizer offers the same four specials.
#pragma once

#include <memory>

#include "gaze/text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace gaze::text {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // From a serialized model proto (the bytes of a .model file).
  SentencePieceTokenizer(const std::string& serialized_model, bool lowercase);
  ~SentencePieceTokenizer() override;
  static std::unique_ptr<SentencePieceTokenizer> train(const TokenizerOptions& options,
                                                       const std::vector<std::string>& texts);
  static std::unique_ptr<SentencePieceTokenizer> load_model_file(const std::string& path,
                                                                 bool lowercase);

  std::string kind() const override { return "sentencepiece"; }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<std::string> tokenize(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return size_; }
  void save(const std::string& dir) const override;

 private:
  std::string prepare(std::string_view text) const;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string serialized_;
  bool lowercase_;
  int64_t size_ = 0;
};

}  // namespace gaze::text
