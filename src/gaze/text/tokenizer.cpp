#include "gaze/text/tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/sentencepiece_tokenizer.h"
#include "gaze/text/use_tokenizer.h"
#include "gaze/text/vocab_tokenizer.h"
#include "gaze/text/wordpiece_tokenizer.h"

namespace gaze::text {

config::Fields config_fields(TokenizerOptions& t, bool shared) {
  using config::field;
  std::vector<TokenizerKind> kinds = {TokenizerKind::sentencepiece, TokenizerKind::word,
                                      TokenizerKind::character};
  if (shared) kinds.insert(kinds.begin(), TokenizerKind::shared);
  return {field("kind", t.kind, kinds),
          field("model", t.model),
          field("model_type", t.model_type),
          field("vocab_size", t.vocab_size, 0),
          field("min_count", t.min_count, 1),
          field("character_coverage", t.character_coverage, 0.5, 1.0),
          field("lowercase", t.lowercase)};
}

std::unique_ptr<Tokenizer> train_tokenizer(const TokenizerOptions& o,
                                           const std::vector<std::string>& texts) {
  GAZE_CHECK(o.kind == TokenizerKind::sentencepiece || o.model.empty(), DataError,
             "tokenizer.model names a SentencePiece model, but tokenizer.kind is '{}'",
             enum_name(o.kind));
  switch (o.kind) {
    case TokenizerKind::sentencepiece:
      if (!o.model.empty()) return SentencePieceTokenizer::load_model_file(o.model, o.lowercase);
      return SentencePieceTokenizer::train(o, texts);
    case TokenizerKind::word:
      return VocabTokenizer::train(VocabTokenizer::Unit::word, o, texts);
    case TokenizerKind::character:
      return VocabTokenizer::train(VocabTokenizer::Unit::character, o, texts);
    case TokenizerKind::shared:
      break;
    case TokenizerKind::use_lite:
    case TokenizerKind::wordpiece:
      throw DataError(fmt::format(
          "tokenizer.kind {} comes with an imported model (gaze import); start from it with "
          "model.pretrained",
          enum_name(o.kind)));
  }
  throw StateError("train_tokenizer: kind shared names another tokenizer; resolve it first");
}

std::vector<std::string> Tokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (const int64_t id : encode(text)) out.push_back(id_to_piece(id));
  return out;
}

namespace {
// The tokenizer tokenizer.json (already parsed, as `j`) describes; its files lie in `d`.
std::unique_ptr<Tokenizer> load_described(const std::filesystem::path& d, const std::string& path,
                                          const nlohmann::json& j) {
  GAZE_CHECK(j.is_object() && j.contains("kind") && j["kind"].is_string(), DataError,
             "{}: expected an object with a \"kind\"", path);
  const auto kind = enum_from_name<TokenizerKind>(j["kind"].get<std::string>());
  GAZE_CHECK(kind && kind != TokenizerKind::shared, DataError, "{}: unknown tokenizer kind {}",
             path, j["kind"].dump());
  const bool lower = j.value("lowercase", false);
  auto file = [&](const char* key) {
    GAZE_CHECK(j.contains(key) && j[key].is_string(), DataError, "{}: missing \"{}\"", path, key);
    return io::file_in(d.string(), j[key].get<std::string>(), fmt::format("{}: \"{}\"", path, key));
  };
  if (*kind == TokenizerKind::sentencepiece)
    return SentencePieceTokenizer::load_model_file(file("model"), lower);
  if (*kind == TokenizerKind::use_lite) {
    const auto rows = j.value("id_space", int64_t{0});
    GAZE_CHECK(rows > 0 && rows <= (int64_t{1} << 24), DataError,
               "{}: \"id_space\" must be a positive id count", path);
    return UseTokenizer::load(file("vocab"), rows);
  }
  if (*kind == TokenizerKind::wordpiece) {
    text::WordPieceOptions w;
    w.lowercase = lower;
    w.strip_accents = j.value("strip_accents", -1);
    w.split_cjk = j.value("split_cjk", true);
    w.max_input_chars_per_word = j.value("max_input_chars_per_word", int64_t{100});
    return WordPieceTokenizer::load(file("vocab"), w);
  }
  return VocabTokenizer::load(
      *kind == TokenizerKind::word ? VocabTokenizer::Unit::word : VocabTokenizer::Unit::character,
      file("vocab"), lower);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const std::filesystem::path d(dir);
  const std::string path = (d / "tokenizer.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(path, io::kMaxMetadataBytes));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  try {
    return load_described(d, path, j);
  } catch (const nlohmann::json::exception& e) {  // a value of the wrong type
    throw DataError(fmt::format("{}: {}", path, e.what()));
  }
}

WordGroups word_groups(const Tokenizer& tok, const std::vector<std::string>& pieces,
                       const std::vector<bool>& framing) {
  return word_groups(tok.kind(), pieces, framing);
}

WordGroups word_groups(const std::string& kind, const std::vector<std::string>& pieces,
                       const std::vector<bool>& framing) {
  static const std::string kSpm = "\xe2\x96\x81";  // ▁
  WordGroups g;
  bool open = false;  // whether the last word may take more pieces
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::string& p = pieces[i];
    const bool fixed = i < framing.size() && framing[i];
    std::string shown = p;
    bool continues = false;
    if (kind == "wordpiece") {
      continues = p.rfind("##", 0) == 0;
      if (continues) shown = p.substr(2);
    } else if (kind == "sentencepiece" || kind == "use_lite") {
      continues = p.rfind(kSpm, 0) != 0;
      if (!continues) shown = p.substr(kSpm.size());
    } else if (kind == "char") {
      continues = p != " ";
    }
    if (continues && open && !fixed && !g.words.empty()) {
      g.words.back() += shown;
    } else {
      g.words.push_back(shown);
    }
    g.group.push_back(static_cast<int64_t>(g.words.size()) - 1);
    // A framing piece, or a char tokenizer's space, closes its word.
    open = !fixed && !(kind == "char" && p == " ");
  }
  return g;
}

}  // namespace gaze::text
