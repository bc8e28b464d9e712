#include <iostream>

#include "cli/commands.h"
#include "gaze/tasks/task.h"

namespace gaze::cli {
namespace {

struct EvalArgs {
  std::string model, data, report = "text";
  tasks::EvalOptions options;
  DecodeArgs decode;
};

int run_eval(const EvalArgs& a) {
  auto task = tasks::load_task(tasks::resolve_model_dir(a.model));
  tasks::EvalOptions o = a.options;
  if (const auto d = task->default_search()) o.search = a.decode.apply(*d);
  const tasks::Report r = task->evaluate_file(a.data, o);
  std::cout << (a.report == "json" ? r.json + "\n" : r.text) << std::flush;
  return 0;
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  add_model_option(app, a->model);
  app.add_option("--data", a->data,
                 "labelled data: TSV/JSONL (classification, translation pairs) or CoNLL (tagging); "
                 "translation: the source file when --target is given")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--report", a->report, "text (the reference tools' layouts) or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--format", a->options.format, "tsv, jsonl or auto (default: as in training)")
      ->check(CLI::IsMember({"tsv", "jsonl", "auto"}));
  app.add_option("--text-column", a->options.text_column,
                 "classification: the text column/field (default: as in training)");
  app.add_option("--label-column", a->options.label_column,
                 "classification: the label column/field (default: as in training)");
  app.add_option("--target", a->options.target_file,
                 "translation: the target file, aligned line by line with --data")
      ->check(CLI::ExistingFile);
  app.add_option("--unknown-tags", a->options.unknown_tags,
                 "tagging: gold tags the model was not trained on are an error (default) or "
                 "scored as wrong predictions")
      ->check(CLI::IsMember({"error", "wrong"}));
  a->decode.add_to(app);
  app.footer(
      "Reports: classification as scikit-learn's classification_report; tagging as seqeval's\n"
      "(entities) plus token accuracy; translation as sacreBLEU (BLEU, chrF) plus error rates.\n"
      "Examples:\n"
      "  gaze eval --model runs/sentiment --data data/sentiment/test.tsv\n"
      "  gaze eval --model runs/wnut17 --data data/wnut17/test.conll --report json\n"
      "  gaze eval --model runs/g2p --data data/cmudict/test.tsv --beam-size 8");
  return [a] { return run_eval(*a); };
}

}  // namespace gaze::cli
