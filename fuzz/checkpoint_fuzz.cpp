// libFuzzer: checkpoint folders - config.json, model.safetensors and training.safetensors (whose
// metadata holds the optimizer, schedule, random and position state), split from one input.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_util.h"
#include "gaze/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string dir = gaze::fuzz::scratch_dir() + "/checkpoint";
  std::filesystem::create_directories(dir);
  gaze::fuzz::write_input("checkpoint/config.json", in.ConsumeRandomLengthString(4096));
  gaze::fuzz::write_input("checkpoint/model.safetensors", in.ConsumeRandomLengthString(1 << 16));
  const bool training = in.ConsumeBool();
  const std::string rest = in.ConsumeRemainingBytesAsString();
  if (training)
    gaze::fuzz::write_input("checkpoint/training.safetensors", rest);
  else
    std::filesystem::remove(dir + "/training.safetensors");
  gaze::fuzz::expect_gaze_errors_only([&] {
    const gaze::io::Checkpoint ck = gaze::io::load_checkpoint(dir);
    // Quantized matrices make their float values when read (Storage::deferred): read them all.
    for (const auto& [name, t] : ck.model)
      if (t.nbytes() > 0) (void)*static_cast<const volatile unsigned char*>(t.raw_data());
  });
  return 0;
}
