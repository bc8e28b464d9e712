// The `gaze` command line: one function per subcommand, each registering its options on a CLI11
// subcommand and returning the action to run once the arguments are parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace gaze::cli {

using Action = std::function<int()>;  // returns the exit code

Action add_train(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_predict(CLI::App& app);

// A model folder: DIR itself if it holds config.json, else DIR/best (a run folder).
std::string resolve_model_dir(const std::string& dir);

}  // namespace gaze::cli
