// The fixed split used for results that can be compared: example i (0-based, in file order) is
// test if i % 10 == 0, dev if i % 10 == 1, train otherwise.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/enums.h"

namespace gaze::data {

enum class Split { train, dev, test };
GAZE_ENUM_NAMES(Split, {Split::train, "train"}, {Split::dev, "dev"}, {Split::test, "test"})

inline Split split_of(size_t index) {
  return index % 10 == 0 ? Split::test : index % 10 == 1 ? Split::dev : Split::train;
}
Split parse_split(const std::string& name);  // "train" | "dev" | "test"

// The elements of `items` that fall in `which`.
template <typename T>
std::vector<T> take_split(const std::vector<T>& items, Split which) {
  std::vector<T> out;
  for (size_t i = 0; i < items.size(); ++i)
    if (split_of(i) == which) out.push_back(items[i]);
  return out;
}

}  // namespace gaze::data
