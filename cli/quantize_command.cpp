#include <cstdio>

#include "cli/commands.h"
#include "cli/field_flags.h"
#include "gaze/tasks/quantize.h"

namespace gaze::cli {
namespace {

struct QuantizeArgs {
  std::string model, out;
  tasks::QuantizeOptions options;
};

int run_quantize(const QuantizeArgs& a) {
  const tasks::QuantizeReport r = tasks::quantize_model(a.model, a.out, a.options);
  std::printf("wrote %s: %lld matrices in %s, model.safetensors %.1f MB (was %.1f MB)\n",
              a.out.c_str(), static_cast<long long>(r.matrices),
              enum_name(a.options.precision).c_str(), static_cast<double>(r.bytes_after) / 1e6,
              static_cast<double>(r.bytes_before) / 1e6);
  return 0;
}

}  // namespace

Action add_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  app.add_option("model", a->model, "the model folder (a run folder, or its best/ or last/)")
      ->required();
  app.add_option("--out", a->out, "the new model folder")->required();
  add_enum_option(app, "--precision", a->options.precision,
                  "int8 (default: symmetric per output channel) or bf16");
  app.add_flag("--overwrite", a->options.overwrite, "replace a gaze model folder at --out");
  app.footer(
      "Writes a smaller model folder whose matrices are stored and multiplied in int8 or bf16\n"
      "(embeddings and norms stay float32). predict, eval, translate, explain, serve and\n"
      "gaze.load run it in that precision; --precision on those commands overrides it.\n"
      "Example:\n  gaze quantize runs/sentiment --out runs/sentiment-int8\n"
      "  echo 'Great phone.' | gaze predict --model runs/sentiment-int8");
  return [a] { return run_quantize(*a); };
}

}  // namespace gaze::cli
