#include "gaze/data/split.h"

#include "gaze/core/error.h"

namespace gaze::data {

Split parse_split(const std::string& name) {
  const auto s = enum_from_name<Split>(name);
  GAZE_CHECK(s.has_value(), DataError, "unknown split '{}': expected train, dev or test", name);
  return *s;
}

}  // namespace gaze::data
