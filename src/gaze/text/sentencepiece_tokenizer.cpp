#include "gaze/text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/utf8.h"

namespace gaze::text {
namespace {

constexpr const char* kModelFile = "tokenizer.model";

// Feeds the training texts to the trainer without a temporary file.
class TextIterator : public sentencepiece::SentenceIterator {
 public:
  TextIterator(const std::vector<std::string>& texts, bool lowercase)
      : texts_(texts), lowercase_(lowercase) {
    load();
  }
  bool done() const override { return i_ >= texts_.size(); }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return current_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (!done()) current_ = lowercase_ ? to_lower(texts_[i_]) : texts_[i_];
  }
  const std::vector<std::string>& texts_;
  bool lowercase_;
  size_t i_ = 0;
  std::string current_;
};

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& serialized, bool lowercase)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()),
      serialized_(serialized),
      lowercase_(lowercase) {
  const auto st = sp_->LoadFromSerializedProto(serialized_);
  GAZE_CHECK(st.ok(), DataError, "not a SentencePiece model: {}", st.ToString());
  // Specials the model lacks get ids after its pieces.
  size_ = sp_->GetPieceSize();
  auto id_or_new = [&](int id) { return id >= 0 ? static_cast<int64_t>(id) : size_++; };
  unk_ = sp_->unk_id();
  pad_ = id_or_new(sp_->pad_id());
  bos_ = id_or_new(sp_->bos_id());
  eos_ = id_or_new(sp_->eos_id());
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::train(
    const TokenizerOptions& o, const std::vector<std::string>& texts) {
  GAZE_CHECK(!texts.empty(), DataError, "sentencepiece: no training text");
  GAZE_CHECK(o.vocab_size > 4, DataError, "tokenizer.vocab_size must be > 4, got {}", o.vocab_size);
  TextIterator it(texts, o.lowercase);
  std::string proto;
  const std::unordered_map<std::string, std::string> args{
      {"model_type", enum_name(o.model_type)},
      {"vocab_size", std::to_string(o.vocab_size)},
      // A small corpus may not support the requested size: take what it supports.
      {"hard_vocab_limit", "false"},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"num_threads", "1"},  // deterministic: the same text gives the same model
      {"minloglevel", "2"},
      {"max_sentence_length", "100000"}};
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  GAZE_CHECK(st.ok(), DataError, "sentencepiece training failed: {}", st.ToString());
  return std::make_unique<SentencePieceTokenizer>(proto, o.lowercase);
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load_model_file(
    const std::string& path, bool lowercase) {
  try {
    return std::make_unique<SentencePieceTokenizer>(io::read_file(path), lowercase);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", path, e.what()));
  }
}

std::string SentencePieceTokenizer::prepare(std::string_view text) const {
  return lowercase_ ? to_lower(text) : std::string(text);
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto st = sp_->Encode(prepare(text), &ids);
  GAZE_CHECK(st.ok(), DataError, "sentencepiece: {}", st.ToString());
  return {ids.begin(), ids.end()};
}

std::vector<std::string> SentencePieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  const auto st = sp_->Encode(prepare(text), &pieces);
  GAZE_CHECK(st.ok(), DataError, "sentencepiece: {}", st.ToString());
  return pieces;
}

std::string SentencePieceTokenizer::decode(std::span<const int64_t> ids) const {
  std::vector<int> keep;
  for (const int64_t id : ids)
    if (id >= 0 && id < sp_->GetPieceSize() && id != pad_ && id != bos_ && id != eos_)
      keep.push_back(static_cast<int>(id));
  std::string out;
  const auto st = sp_->Decode(keep, &out);
  GAZE_CHECK(st.ok(), DataError, "sentencepiece: {}", st.ToString());
  return out;
}

std::string SentencePieceTokenizer::id_to_piece(int64_t id) const {
  GAZE_CHECK(id >= 0 && id < size_, IndexError, "token id {} is outside [0, {})", id, size_);
  if (id < sp_->GetPieceSize()) return sp_->IdToPiece(static_cast<int>(id));
  return id == pad_ ? "<pad>" : id == bos_ ? "<s>" : "</s>";
}

void SentencePieceTokenizer::save(const std::string& dir) const {
  const std::filesystem::path d(dir);
  io::write_file_atomic((d / kModelFile).string(), serialized_);
  const nlohmann::json j = {
      {"kind", "sentencepiece"}, {"model", kModelFile}, {"lowercase", lowercase_}};
  io::write_file_atomic((d / "tokenizer.json").string(), j.dump(2) + "\n");
}

}  // namespace gaze::text
