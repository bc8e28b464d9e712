// "Did you mean ...?" for the command line: the closest of some names to a mistyped one.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace gaze::cli {

// The candidate nearest to `word` by edit distance (insertions, deletions, substitutions and
// swaps of neighbours), if it is near enough to be what was meant; "" otherwise.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

// After a failed parse: "unknown option '--epcohs' for gaze train; did you mean '--epochs'?" for
// the first option of argv the chosen command does not have; "" when every option is known.
std::string unknown_option_hint(const CLI::App& app, int argc, char** argv);

}  // namespace gaze::cli
