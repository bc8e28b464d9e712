// index.html for the explanations of several inputs: each input with its prediction and a link to
// its page, and two of them side by side to compare. Self-contained, like the pages it links.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gaze::explain {

struct IndexEntry {
  std::string folder;         // the sub-folder of its page, e.g. "0003"
  std::string text;           // the input
  nlohmann::json prediction;  // as gaze predict prints it
};

std::string index_html(const std::vector<IndexEntry>& entries, const nlohmann::json& provenance);

}  // namespace gaze::explain
