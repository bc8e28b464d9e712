#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/tasks/task.h"
#include "gaze/train/progress.h"

namespace gaze::cli {
namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  bool dump = false;
  std::string resume;
};

int run_train(const TrainArgs& a) {
  const tasks::RunConfig c = tasks::load_run_config(a.config, a.sets);
  if (a.dump) {
    std::cout << tasks::dump_run_config(c);
    return 0;
  }
  // The run's checkpoints go to best/ and last/: refuse before training, not after it, when
  // something else is there.
  for (const char* sub : {"best", "last"})
    io::check_checkpoint_target((fs::path(c.output) / sub).string());
  std::error_code ec;
  fs::create_directories(c.output, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot create the output folder ({})", c.output, ec.message());
  io::write_file_atomic((fs::path(c.output) / "config.yaml").string(), tasks::dump_run_config(c));
  std::string resume = a.resume;
  // A run folder resumes from its last/ (or where an interrupted save left it).
  if (!resume.empty()) {
    if (const auto found = io::find_checkpoint(resume))
      resume = *found;
    else if (const auto last = io::find_checkpoint((fs::path(resume) / "last").string()))
      resume = *last;
  }
  auto task =
      resume.empty() ? tasks::create_task(c, stderr) : tasks::resume_task(c, resume, stderr);
  const auto t0 = std::chrono::steady_clock::now();
  const train::TrainResult r = train::run_training(*task, c.train, c.output, resume, stderr);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.interrupted) {
    std::fprintf(stderr, "resume with: gaze train %s --resume %s/last\n", a.config.c_str(),
                 c.output.c_str());
    return 130;
  }
  std::fprintf(stderr, "trained %lld steps in %s; best %s %.4f at step %lld -> %s/best\n",
               static_cast<long long>(r.steps), train::format_duration(secs).c_str(),
               enum_name(c.train.metric).c_str(), r.best_metric,
               static_cast<long long>(r.best_step), c.output.c_str());
  task->load_weights((fs::path(c.output) / "best").string());
  if (const auto report = task->test_report()) {
    io::write_file_atomic((fs::path(c.output) / "test_report.json").string(), report->json + "\n");
    std::cout << "test set (" << report->examples << " examples), best checkpoint:\n"
              << report->text << std::flush;
  }
  return 0;
}

}  // namespace

Action add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  app.add_option("config", a->config, "the run configuration (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--set", a->sets, "override a setting, e.g. --set train.lr=0.0005 (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--dump-config", a->dump, "print the fully resolved configuration and exit");
  app.add_option("--resume", a->resume, "continue from a checkpoint (a run folder or its last/)");
  app.footer(
      "Examples:\n"
      "  gaze train examples/classify/sentiment.yaml\n"
      "  gaze train examples/tag/wnut17.yaml\n"
      "  gaze train examples/translate/g2p_transformer.yaml\n"
      "  gaze train run.yaml --set model.d_model=128 --set train.epochs=5\n"
      "  gaze train run.yaml --dump-config\n"
      "  gaze train run.yaml --resume runs/sentiment/last\n"
      "The run folder (`output`) receives config.yaml, metrics.jsonl, best/ and last/.");
  return [a] { return run_train(*a); };
}

}  // namespace gaze::cli
