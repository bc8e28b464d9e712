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
Action add_translate(CLI::App& app);
Action add_explain(CLI::App& app);
Action add_embed(CLI::App& app);
Action add_import(CLI::App& app);

// The required --model option of the commands that load a trained model (the folder is resolved
// by tasks::resolve_model_dir).
inline CLI::Option* add_model_option(
    CLI::App& app, std::string& model,
    const std::string& help = "a model folder (a run folder, or its best/ or last/)") {
  return app.add_option("--model", model, help)->required();
}

}  // namespace gaze::cli
