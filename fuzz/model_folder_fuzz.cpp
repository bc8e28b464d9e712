// libFuzzer: the JSON descriptions in a model folder - config.json (every model type), task.json's
// fields and tokenizer.json (with the files it names beside it).
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_util.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/options.h"
#include "gaze/text/tokenizer.h"

namespace {
// A folder whose tokenizer.json the input replaces; the vocabularies it may name are real ones.
std::string tokenizer_dir() {
  static const std::string dir = [] {
    const std::string d = gaze::fuzz::scratch_dir() + "/model";
    std::filesystem::create_directories(d);
    gaze::fuzz::write_input("model/vocab.txt", "<pad>\n<unk>\n<s>\n</s>\nthe\nof\n##s\n[UNK]\n");
    gaze::fuzz::write_input("model/vocab.json",
                            R"([["<unk>",0],["<s>",0],["</s>",0],["\u2581the",-1.5],["s",-2]])");
    std::filesystem::copy_file(GAZE_TEST_DATA "/sentencepiece/test_model.model",
                               d + "/tokenizer.model",
                               std::filesystem::copy_options::overwrite_existing);
    return d;
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int which = in.ConsumeIntegralInRange(0, 6);
  const std::string text = in.ConsumeRemainingBytesAsString();
  namespace m = gaze::models;
  gaze::fuzz::expect_gaze_errors_only([&] {
    switch (which) {
      case 0:
        (void)m::TransformerClassifier::parse_config(text);
        break;
      case 1:
        (void)m::TransformerTagger::parse_config(text);
        break;
      case 2:
        (void)m::SentenceEncoder::parse_config(text);
        break;
      case 3:
        (void)m::TransformerSeq2Seq::parse_config(text);
        break;
      case 4:
        (void)m::RnnSeq2Seq::parse_config(text);
        break;
      case 5: {
        gaze::tasks::DataConfig d;
        gaze::tasks::PredictOptions p;
        gaze::config::read_object(
            text,
            gaze::config::join(gaze::tasks::config_fields(d, gaze::tasks::TaskKind::tag),
                               gaze::tasks::config_fields(p)),
            "task.json", true);
        break;
      }
      default: {
        const std::string dir = tokenizer_dir();
        gaze::fuzz::write_input("model/tokenizer.json", text);
        const auto tok = gaze::text::load_tokenizer(dir);
        (void)tok->encode("the tokens of some text");
      }
    }
  });
  return 0;
}
