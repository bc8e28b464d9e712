// libFuzzer: the training and evaluation data readers - classification TSV, CSV and JSON Lines,
// plain texts, CoNLL and parallel text.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_util.h"
#include "gaze/data/classification.h"
#include "gaze/data/conll.h"
#include "gaze/data/parallel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int which = in.ConsumeIntegralInRange(0, 7);
  const std::string bytes = in.ConsumeRemainingBytesAsString();
  namespace d = gaze::data;
  gaze::fuzz::expect_gaze_errors_only([&] {
    switch (which) {
      case 0:
        (void)d::read_classification(gaze::fuzz::write_input("in.tsv", bytes), {});
        break;
      case 1:
        (void)d::read_classification(gaze::fuzz::write_input("in.jsonl", bytes), {});
        break;
      case 2:
        (void)d::read_texts(gaze::fuzz::write_input("in.txt", bytes), {});
        break;
      case 3:
        (void)d::read_conll(gaze::fuzz::write_input("in.conll", bytes), {}, true);
        break;
      case 4: {
        d::ParallelFormat f;
        (void)d::read_parallel(gaze::fuzz::write_input("pairs.tsv", bytes), f);
        break;
      }
      case 5:
        (void)d::read_classification(gaze::fuzz::write_input("in.csv", bytes), {});
        break;
      case 6:
        (void)d::read_texts(gaze::fuzz::write_input("in.csv", bytes), {});
        break;
      default:
        for (const auto& w : d::split_words(bytes)) (void)w;
    }
  });
  return 0;
}
