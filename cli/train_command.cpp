#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "gaze/core/error.h"
#include "gaze/core/version.h"
#include "gaze/dist/communicator.h"
#include "gaze/tasks/task.h"
#include "gaze/tasks/train_run.h"

namespace gaze::cli {
namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  bool dump = false, overwrite = false;
  std::string resume;
  std::string output;  // --output, --seed, --epochs, --max-steps: --set shorthands
  std::optional<int64_t> seed, epochs, max_steps;
};

// A file that swallows what is written to it: the log of ranks other than 0.
struct NullLog {
  std::FILE* f = std::fopen("/dev/null", "w");
  ~NullLog() {
    if (f) std::fclose(f);
  }
};

int run_train(const TrainArgs& a, dist::Communicator& comm) {
  const bool lead = comm.rank() == 0;
  NullLog null_log;
  std::FILE* log = lead ? stderr : null_log.f;
  GAZE_CHECK(log, StateError, "cannot open /dev/null");
  tasks::TrainRunOptions o;
  o.config = a.config, o.overrides = a.sets, o.overwrite = a.overwrite, o.resume = a.resume;
  o.log = log, o.comm = &comm;
  if (a.dump) {
    const tasks::RunConfig c = tasks::resolve_run_config(o);
    if (lead) std::cout << tasks::dump_run_config(c);
    return 0;
  }
  const tasks::TrainRunResult r = tasks::train_run(o);
  if (r.train.interrupted) return 130;
  if (lead && r.test)
    std::cout << "test set (" << r.test->examples << " examples), best checkpoint:\n"
              << r.test->text << std::flush;
  return 0;
}

}  // namespace

// Under mpirun a rank that fails ends the whole run: the others would otherwise wait forever for it
// in their next collective. The one line names the rank; MPI's own notice follows.
int run_train_on_ranks(const TrainArgs& a) {
  const std::unique_ptr<dist::Communicator> comm = dist::make_communicator();
  if (comm->size() == 1) return run_train(a, *comm);
  try {
    return run_train(a, *comm);
  } catch (const std::exception& e) {
    const bool bad_input = dynamic_cast<const Error*>(&e) && !dynamic_cast<const StateError*>(&e);
    std::fprintf(stderr, "gaze: rank %d of %d: %s: %s\n", comm->rank(), comm->size(),
                 bad_input ? "error" : "internal error", e.what());
    std::fflush(stderr);
    comm->abort(bad_input ? 2 : 1);
  }
  return 1;  // not reached: abort ends the process
}

Action add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  app.add_option("config", a->config,
                 "the run configuration (YAML); optional with --resume (RUN/config.yaml)")
      ->check(CLI::ExistingFile);
  app.add_option("--set", a->sets, "override a setting, e.g. --set train.lr=0.0005 (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--dump-config", a->dump, "print the fully resolved configuration and exit");
  app.add_option("--resume", a->resume,
                 "continue a run in its own folder (RUN or RUN/last), with its recorded settings");
  app.add_flag("--overwrite", a->overwrite,
               "start afresh in an output folder an earlier run left (its checkpoints, metrics and "
               "report are removed)");
  // The overrides people reach for most, as flags of their own (each is a --set, applied last).
  app.add_option("--output", a->output, "the run folder (same as --set output=DIR)");
  app.add_option("--seed", a->seed, "the seed (same as --set train.seed=N)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--epochs", a->epochs, "epochs to train (same as --set train.epochs=N)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-steps", a->max_steps,
                 "optimizer steps to train; takes precedence over the epochs, as in Hugging Face "
                 "(same as --set train.max_steps=N)")
      ->check(CLI::PositiveNumber);
  app.footer(
      "Examples:\n"
      "  gaze train examples/classify/sentiment.yaml\n"
      "  gaze train examples/classify/sentiment.yaml --epochs 3 --seed 7 --output runs/s7\n"
      "  gaze train examples/tag/wnut17.yaml\n"
      "  gaze train examples/translate/g2p_transformer.yaml\n"
      "  gaze train examples/translate/g2p_transformer.yaml --set model.d_model=128 --set "
      "train.epochs=5\n"
      "  gaze train examples/tag/wnut17.yaml --dump-config\n"
      "  gaze train --resume runs/sentiment                 (continue where it stopped)\n"
      "  gaze train --resume runs/sentiment --set train.epochs=20\n"
      "  mpirun -np 2 gaze train examples/classify/sentiment.yaml    (data-parallel: "
      "docs/distributed.md)\n"
      "The run folder (`output`) receives config.yaml, metrics.jsonl, best/ and last/. A new run\n"
      "refuses a non-empty folder unless --overwrite; one run at a time owns a folder.\n"
      "train.max_steps, when set, ends the run after that many steps whatever train.epochs says.");
  return [a] {
    TrainArgs b = *a;
    GAZE_CHECK(b.output.empty() || b.resume.empty(), DataError,
               "--output does not go with --resume: a resumed run continues in its own folder");
    if (!b.output.empty()) b.sets.push_back("output=" + b.output);
    if (b.seed) b.sets.push_back(fmt::format("train.seed={}", *b.seed));
    if (b.epochs) b.sets.push_back(fmt::format("train.epochs={}", *b.epochs));
    if (b.max_steps) b.sets.push_back(fmt::format("train.max_steps={}", *b.max_steps));
    return run_train_on_ranks(b);
  };
}

}  // namespace gaze::cli
