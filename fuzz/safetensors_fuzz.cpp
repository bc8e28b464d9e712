// libFuzzer: safetensors files (headers, shapes, offsets, dtypes, metadata), read whole and for
// their metadata only.
#include "fuzz_util.h"
#include "gaze/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      gaze::fuzz::write_input("input.safetensors", {reinterpret_cast<const char*>(data), size});
  gaze::fuzz::expect_gaze_errors_only([&] { (void)gaze::io::load_safetensors(path); });
  gaze::fuzz::expect_gaze_errors_only([&] { (void)gaze::io::read_safetensors_metadata(path); });
  return 0;
}
