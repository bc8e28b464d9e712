#include "gaze/text/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/sentencepiece_tokenizer.h"
#include "gaze/text/vocab_tokenizer.h"

namespace gaze::text {

std::unique_ptr<Tokenizer> train_tokenizer(const TokenizerOptions& o,
                                           const std::vector<std::string>& texts) {
  if (o.kind == "sentencepiece") {
    if (!o.model.empty()) return SentencePieceTokenizer::load_model_file(o.model, o.lowercase);
    return SentencePieceTokenizer::train(o, texts);
  }
  GAZE_CHECK(o.model.empty(), DataError,
             "tokenizer.model names a SentencePiece model, but tokenizer.kind is '{}'", o.kind);
  if (o.kind == "word")
    return VocabTokenizer::train(VocabTokenizer::Unit::word, o, texts);
  if (o.kind == "char")
    return VocabTokenizer::train(VocabTokenizer::Unit::character, o, texts);
  throw DataError(fmt::format("tokenizer.kind must be sentencepiece, word or char, got '{}'", o.kind));
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const std::filesystem::path d(dir);
  const std::string path = (d / "tokenizer.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  GAZE_CHECK(j.is_object() && j.contains("kind") && j["kind"].is_string(), DataError,
             "{}: expected an object with a \"kind\"", path);
  const std::string kind = j["kind"];
  const bool lower = j.value("lowercase", false);
  auto file = [&](const char* key) {
    GAZE_CHECK(j.contains(key) && j[key].is_string(), DataError, "{}: missing \"{}\"", path, key);
    return (d / j[key].get<std::string>()).string();
  };
  if (kind == "sentencepiece") return SentencePieceTokenizer::load_model_file(file("model"), lower);
  if (kind == "word")
    return VocabTokenizer::load(VocabTokenizer::Unit::word, file("vocab"), lower);
  if (kind == "char")
    return VocabTokenizer::load(VocabTokenizer::Unit::character, file("vocab"), lower);
  throw DataError(fmt::format("{}: unknown tokenizer kind '{}'", path, kind));
}

}  // namespace gaze::text
