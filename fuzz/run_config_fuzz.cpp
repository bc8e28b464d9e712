// libFuzzer: YAML run configurations and --set overrides.
#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_util.h"
#include "gaze/tasks/run_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<std::string> overrides;
  const int n = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < n; ++i) overrides.push_back(in.ConsumeRandomLengthString(200));
  const std::string yaml = in.ConsumeRemainingBytesAsString();
  gaze::fuzz::expect_gaze_errors_only([&] {
    const auto c = gaze::tasks::parse_run_config(yaml, "run.yaml", overrides);
    (void)gaze::tasks::dump_run_config(c);
  });
  return 0;
}
