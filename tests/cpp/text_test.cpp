// Tokenizers and UTF-8: SentencePiece against spm_encode's reference output, vocabularies built
// from counts, save/load round trips, and the UTF-8 edge cases that data files bring.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/text/sentencepiece_tokenizer.h"
#include "gaze/text/tokenizer.h"
#include "gaze/text/utf8.h"
#include "gaze/text/vocab_tokenizer.h"

namespace gaze::text {
namespace {

namespace fs = std::filesystem;
const fs::path kData = GAZE_TEST_DATA;  // tests/data

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("gaze_text_test_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(Utf8, FindsInvalidSequences) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xe9!"), 3u);             // Latin-1 byte
  EXPECT_EQ(find_invalid_utf8("ab\xc0\xaf"), 2u);           // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80"), 0u);         // a surrogate
  EXPECT_EQ(find_invalid_utf8("x\xf4\x90\x80\x80"), 1u);    // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("truncated \xe2\x82"), 10u);  // cut in the middle
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);                 // stray continuation byte
}

TEST(Utf8, ClipsOnCharacterBoundariesAndBoundsTokenizing) {
  using namespace gaze::text;
  const std::string s = "a\u00e9\u65e5b";  // 1 + 2 + 3 + 1 bytes
  EXPECT_EQ(clip_utf8(s, 2), "a");         // never half of the 2-byte e-acute
  EXPECT_EQ(clip_utf8(s, 3), "a\u00e9");
  EXPECT_EQ(clip_utf8(s, 5), "a\u00e9");  // nor part of the 3-byte character
  EXPECT_EQ(clip_utf8(s, 100), s);
  bool cut = false;
  const std::string small(100, 'x');
  EXPECT_EQ(clip_for_tokens(small, 1, &cut), small);
  EXPECT_FALSE(cut);
  std::string words;
  while (words.size() < 100000) words += "word ";
  const std::string_view head = clip_for_tokens(words, 10, &cut);
  EXPECT_TRUE(cut);
  EXPECT_LE(head.size(), 10u * 64 + 1024);
  EXPECT_GE(head.size(), 10u * 64);
  EXPECT_EQ(head.back(), 'd');  // cut after a space: whole words
}

TEST(Utf8, LowerCaseAndSplitting) {
  EXPECT_EQ(to_lower("\xc3\x89"
                     "COLE \xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91 Straße"),
            "\xc3\xa9"
            "cole \xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1 straße");
  EXPECT_EQ(split_chars("a\xc3\xa9\xe2\x82\xac"),
            (std::vector<std::string>{"a", "\xc3\xa9", "\xe2\x82\xac"}));
  using U = VocabTokenizer::Unit;
  EXPECT_EQ(VocabTokenizer::split(U::word, "Don't stop\xe2\x80\x94now!  3.5x", true),
            (std::vector<std::string>{"don", "'", "t", "stop", "\xe2\x80\x94", "now", "!", "3", ".",
                                      "5x"}));
  EXPECT_EQ(VocabTokenizer::split(U::character, " ab  c\t", false),
            (std::vector<std::string>{"a", "b", " ", "c"}));
}

TEST(VocabTokenizer, CountsMinCountMaxSizeAndRoundTrips) {
  TokenizerOptions o;
  o.kind = TokenizerKind::word;
  o.min_count = 2;
  const std::vector<std::string> texts = {"the cat sat", "the dog sat", "The end"};
  auto t = train_tokenizer(o, texts);
  // Specials first, then by count (the: 2 with case kept -> "the" 2, "sat" 2), ties in byte order.
  EXPECT_EQ(t->vocab_size(), 6);
  EXPECT_EQ(t->id_to_piece(4), "sat");
  EXPECT_EQ(t->id_to_piece(5), "the");
  EXPECT_EQ(t->encode("the cat sat"), (std::vector<int64_t>{5, t->unk_id(), 4}));
  o.lowercase = true;
  o.min_count = 1;
  o.vocab_size = 6;  // the four specials and the two most frequent words
  t = train_tokenizer(o, texts);
  EXPECT_EQ(t->tokenize("The cat"), (std::vector<std::string>{"the", "<unk>"}));
  EXPECT_EQ(t->decode(std::vector<int64_t>{0, 4, 5, 3}), "the sat");  // the (3) before sat (2)
  const fs::path dir = temp_dir("vocab");
  t->save(dir.string());
  auto back = load_tokenizer(dir.string());
  EXPECT_EQ(back->kind(), "word");
  EXPECT_EQ(back->encode("THE SAT dog"), t->encode("THE SAT dog"));
  o.kind = TokenizerKind::character;
  o.vocab_size = 0;
  auto c = train_tokenizer(o, {"ab ba"});
  EXPECT_EQ(c->tokenize("abc a"), (std::vector<std::string>{"a", "b", "<unk>", " ", "a"}));
  EXPECT_EQ(c->decode(c->encode("ab ba")), "ab ba");
}

TEST(SentencePiece, MatchesSpmEncodeOnItsTestModel) {
  const fs::path model = kData / "sentencepiece/test_model.model";
  ASSERT_TRUE(fs::exists(model)) << model;
  auto t = SentencePieceTokenizer::load_model_file(model.string(), false);
  std::ifstream in(kData / "sentencepiece/reference_encodings.json");
  const auto ref = nlohmann::json::parse(in);
  for (const auto& item : ref["items"]) {
    const std::string text = item["text"];
    EXPECT_EQ(t->tokenize(text), item["pieces"].get<std::vector<std::string>>()) << text;
    EXPECT_EQ(t->encode(text), item["ids"].get<std::vector<int64_t>>()) << text;
  }
  // The model has no pad id: gaze appends one after the pieces.
  EXPECT_EQ(t->vocab_size(), 1001);
  EXPECT_EQ(t->pad_id(), 1000);
  EXPECT_EQ(t->decode(t->encode("Hello world!")), "Hello world!");
}

TEST(SentencePiece, TrainsFromTextsDeterministicallyAndSavesItself) {
  const fs::path text = kData / "sentencepiece/botchan.txt";
  ASSERT_TRUE(fs::exists(text)) << text;
  std::ifstream in(text);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  TokenizerOptions o;
  o.vocab_size = 500;
  o.model_type = PieceModel::bpe;
  auto a = train_tokenizer(o, lines), b = train_tokenizer(o, lines);
  EXPECT_EQ(a->vocab_size(), 500);
  EXPECT_EQ(a->pad_id(), 0);
  EXPECT_EQ(a->unk_id(), 1);
  EXPECT_EQ(a->bos_id(), 2);
  EXPECT_EQ(a->eos_id(), 3);
  const std::string s = "I am a cat, as yet without a name.";
  EXPECT_EQ(a->encode(s), b->encode(s));
  EXPECT_EQ(a->decode(a->encode(s)), s);
  const fs::path dir = temp_dir("spm");
  a->save(dir.string());
  EXPECT_EQ(load_tokenizer(dir.string())->encode(s), a->encode(s));
  // A requested size the text cannot support is a soft limit, not a failure.
  o.vocab_size = 100000;
  EXPECT_LT(train_tokenizer(o, {"tiny text", "very tiny"})->vocab_size(), 100000);
}

TEST(Tokenizer, BadFilesAndOptionsAreReported) {
  const fs::path dir = temp_dir("bad");
  EXPECT_THROW(load_tokenizer(dir.string()), DataError);
  std::ofstream(dir / "tokenizer.json") << "{\"kind\": \"word\", \"vocab\": \"vocab.txt\"}";
  std::ofstream(dir / "vocab.txt") << "<pad>\n<unk>\n<s>\n</s>\nx\nx\n";
  try {
    load_tokenizer(dir.string());
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'x' appears twice"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "tokenizer.model") << "not a model";
  std::ofstream(dir / "tokenizer.json", std::ios::trunc)
      << "{\"kind\": \"sentencepiece\", \"model\": \"tokenizer.model\"}";
  EXPECT_THROW(load_tokenizer(dir.string()), DataError);
  TokenizerOptions o;
  const auto fields = config_fields(o);
  EXPECT_THROW(fields[0].read("\"bytes\"", "test"), DataError);  // kind: not a tokenizer
  o.kind = TokenizerKind::word;
  o.model = "x.model";
  EXPECT_THROW(train_tokenizer(o, {"x"}), DataError);  // a .model with a word tokenizer
}

}  // namespace
}  // namespace gaze::text
