#include <filesystem>
#include <iostream>
#include <optional>
#include <unordered_set>

#include "cli/commands.h"
#include "cli/field_flags.h"
#include "gaze/io/files.h"
#include "gaze/tasks/task.h"
#include "gaze/train/run_folder.h"

namespace gaze::cli {
namespace {
namespace fs = std::filesystem;

enum class ReportFormat { text, json };
GAZE_ENUM_NAMES(ReportFormat, {ReportFormat::text, "text"}, {ReportFormat::json, "json"})

enum class EvalSplit { dev, test };
GAZE_ENUM_NAMES(EvalSplit, {EvalSplit::dev, "dev"}, {EvalSplit::test, "test"})

struct EvalArgs {
  std::string model, data, output;
  std::optional<EvalSplit> split;
  ReportFormat report = ReportFormat::text;
  std::optional<Precision> precision;
  FieldFlags options;  // tasks::EvalOptions
};

// Rows scored that the model trained on make its scores look better than they are: say how many.
void warn_overlap(tasks::Task& task, const tasks::RunConfig& c, const tasks::Report& r) {
  std::unordered_set<std::string> seen;
  try {
    for (auto& x : task.training_inputs(c)) seen.insert(std::move(x));
  } catch (const Error&) {
    return;  // the training data moved or is gone: nothing to compare with
  }
  int64_t both = 0;
  for (const auto& p : r.predictions)
    if (p.contains("input") && p["input"].is_string() && seen.count(p["input"].get<std::string>()))
      ++both;
  if (both > 0)
    std::cerr << "gaze eval: warning: " << both << " of " << r.predictions.size()
              << " evaluated inputs are also in the run's training data (" << c.data.train
              << "); the scores overstate how the model does on new data\n";
}

int run_eval(const EvalArgs& a) {
  GAZE_CHECK(a.data.empty() != !a.split.has_value(), DataError,
             "gaze eval: give --data FILE (a labelled file) or --split dev|test (the run's own "
             "data), one of them");
  auto task = tasks::load_task(tasks::resolve_model_dir(a.model), {.precision = a.precision});
  tasks::EvalOptions o = task->eval_defaults();
  a.options.apply(tasks::config_fields(o, task->kind()), "a " + task->name() + " model");
  if (task->kind() == tasks::TaskKind::translate) check_nbest(a.options, o.search);
  std::error_code same;
  GAZE_CHECK(a.output.empty() || a.data.empty() || !fs::equivalent(a.output, a.data, same),
             DataError, "--output {} is the file being evaluated; write the predictions elsewhere",
             a.output);
  const auto run = train::run_folder_of(a.model);
  std::optional<tasks::RunConfig> config;
  if (run) config = tasks::load_run_config((fs::path(*run) / "config.yaml").string(), {});
  GAZE_CHECK(!a.split || config, DataError,
             "{}: --split needs the run folder the model was trained in (its config.yaml names "
             "the data); this model folder has none beside it",
             a.model);
  const tasks::Report r =
      a.split ? task->evaluate_split(
                    *config, *a.split == EvalSplit::test ? data::Split::test : data::Split::dev, o)
              : task->evaluate_file(a.data, o);
  if (config) warn_overlap(*task, *config, r);
  if (!a.output.empty()) {
    std::string lines;
    for (const auto& p : r.predictions)
      lines += p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    io::write_file_atomic(a.output, lines);
  }
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
      ->check(CLI::ExistingFile);
  add_enum_option(app, "--split", a->split,
                  "instead of --data: the run's own dev or test data (its data.dev/data.test "
                  "files, or its part of data.split)");
  app.add_option("--output", a->output,
                 "also write each example's prediction beside its gold answer, as JSON Lines");
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
      "  gaze eval --model runs/sentiment --split test --output predictions.jsonl\n"
      "  gaze eval --model runs/sentiment --data data/sentiment/uci_sentiment_sentences.tsv\n"
      "  gaze eval --model runs/wnut17 --data data/wnut17/test.conll --report json\n"
      "  gaze eval --model runs/g2p_rnn --data data/cmudict/test.tsv --beam-size 8");
  return [a] { return run_eval(*a); };
}

}  // namespace gaze::cli
