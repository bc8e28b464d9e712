#include <iostream>

#include "cli/commands.h"
#include "cli/field_flags.h"
#include "gaze/tasks/task.h"

namespace gaze::cli {
namespace {

enum class ReportFormat { text, json };
GAZE_ENUM_NAMES(ReportFormat, {ReportFormat::text, "text"}, {ReportFormat::json, "json"})

struct EvalArgs {
  std::string model, data;
  ReportFormat report = ReportFormat::text;
  std::optional<Precision> precision;
  FieldFlags options;  // tasks::EvalOptions
};

int run_eval(const EvalArgs& a) {
  auto task = tasks::load_task(tasks::resolve_model_dir(a.model), {.precision = a.precision});
  tasks::EvalOptions o = task->eval_defaults();
  a.options.apply(tasks::config_fields(o, task->kind()), "a " + task->name() + " model");
  if (task->kind() == tasks::TaskKind::translate) check_nbest(a.options, o.search);
  const tasks::Report r = task->evaluate_file(a.data, o);
  std::cout << (a.report == ReportFormat::json ? r.json + "\n" : r.text) << std::flush;
  return 0;
}

}  // namespace

Action add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  add_model_option(app, a->model);
  add_precision_option(app, a->precision);
  app.add_option("--data", a->data,
                 "labelled data: TSV/JSONL (classification, translation pairs) or CoNLL (tagging); "
                 "translation: the source file when --target is given")
      ->required()
      ->check(CLI::ExistingFile);
  add_enum_option(app, "--report", a->report, "text (the reference tools' layouts) or json");
  // Each task's keys (default: as in training); a key of another task's is an error.
  tasks::EvalOptions proto;
  a->options.add(app, decode::config_fields(proto.search), "translation: ");
  for (const auto task :
       {tasks::TaskKind::classify, tasks::TaskKind::tag, tasks::TaskKind::translate})
    a->options.add(app, tasks::config_fields(proto, task));
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
