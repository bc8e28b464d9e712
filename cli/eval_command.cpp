#include <iostream>

#include "cli/commands.h"
#include "gaze/metrics/classification.h"
#include "gaze/tasks/classify.h"

namespace gaze::cli {
namespace {

struct EvalArgs {
  std::string model, data, report = "text", format, text_column, label_column;
};

int run_eval(const EvalArgs& a) {
  auto task = tasks::ClassifyTask::load(resolve_model_dir(a.model));
  data::ClassificationFormat f = task->format();
  if (!a.format.empty()) f.format = a.format;
  if (!a.text_column.empty()) f.text_column = a.text_column;
  if (!a.label_column.empty()) f.label_column = a.label_column;
  const auto examples = data::read_classification(a.data, f);
  const auto r = task->evaluate(examples, a.data);
  std::cout << (a.report == "json" ? metrics::to_json(r) + "\n" : metrics::to_text(r))
            << std::flush;
  return 0;
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  app.add_option("--model", a->model, "a model folder (a run folder, or its best/ or last/)")
      ->required();
  app.add_option("--data", a->data, "a labelled file (TSV with a header row, or JSON Lines)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--report", a->report, "text (scikit-learn's layout) or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--format", a->format, "tsv, jsonl or auto (default: as in training)")
      ->check(CLI::IsMember({"tsv", "jsonl", "auto"}));
  app.add_option("--text-column", a->text_column,
                 "the text column/field (default: as in training)");
  app.add_option("--label-column", a->label_column,
                 "the label column/field (default: as in training)");
  app.footer(
      "Examples:\n"
      "  gaze eval --model runs/sentiment --data data/sentiment/test.tsv\n"
      "  gaze eval --model runs/sentiment/best --data dev.jsonl --report json");
  return [a] { return run_eval(*a); };
}

}  // namespace gaze::cli
