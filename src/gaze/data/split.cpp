#include "gaze/data/split.h"

#include "gaze/core/error.h"

namespace gaze::data {

Split parse_split(const std::string& name) {
  if (name == "train") return Split::train;
  if (name == "dev") return Split::dev;
  if (name == "test") return Split::test;
  throw DataError(fmt::format("unknown split '{}': expected train, dev or test", name));
}

}  // namespace gaze::data
