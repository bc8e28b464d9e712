// libFuzzer: UTF-8 handling and every tokenizer's encode (word, character, SentencePiece,
// WordPiece, USE-lite), on any text that passes the UTF-8 check the front ends make.
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "gaze/text/tokenizer.h"
#include "gaze/text/use_tokenizer.h"
#include "gaze/text/utf8.h"
#include "gaze/text/wordpiece_tokenizer.h"

namespace {
std::vector<std::unique_ptr<gaze::text::Tokenizer>> make_tokenizers() {
  namespace t = gaze::text;
  std::vector<std::unique_ptr<t::Tokenizer>> out;
  const std::vector<std::string> corpus = {"The quick brown fox jumps over the lazy dog.",
                                           "Ünïcödé text, numbers 123 and @mentions #tags!"};
  t::TokenizerOptions o;
  o.kind = t::TokenizerKind::word;
  out.push_back(t::train_tokenizer(o, corpus));
  o.kind = t::TokenizerKind::character;
  out.push_back(t::train_tokenizer(o, corpus));
  o.kind = t::TokenizerKind::sentencepiece;
  o.model = GAZE_TEST_DATA "/sentencepiece/test_model.model";
  out.push_back(t::train_tokenizer(o, corpus));
  const std::string vocab = gaze::fuzz::write_input(
      "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nquick\n##s\n##ing\nfox\n.\n,\n!\n");
  t::WordPieceOptions w;
  w.lowercase = true;
  out.push_back(t::WordPieceTokenizer::load(vocab, w));
  const std::string pieces = gaze::fuzz::write_input(
      "vocab.json",
      R"([["<unk>",0],["<s>",0],["</s>",0],["\u2581the",-1.5],["s",-2],["\u2581",-3],["e",-4],["t",-4]])");
  out.push_back(t::UseTokenizer::load(pieces, 9));
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizers = make_tokenizers();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  namespace t = gaze::text;
  const size_t bad = t::find_invalid_utf8(text);
  const std::string_view valid = text.substr(0, bad == std::string_view::npos ? text.size() : bad);
  if (t::find_invalid_utf8(valid) != std::string_view::npos) std::abort();
  (void)t::clip_utf8(valid, size / 2);
  (void)t::clip_for_tokens(valid, static_cast<int64_t>(size % 7));
  gaze::fuzz::expect_gaze_errors_only([&] {
    (void)t::decode_utf8(valid);
    (void)t::split_chars(valid);
    (void)t::to_lower(valid);
    for (const auto& tok : tokenizers) {
      const auto ids = tok->encode(valid);
      (void)tok->tokenize(valid);
      (void)tok->surfaces(valid);
      (void)tok->decode(ids);
    }
  });
  return 0;
}
