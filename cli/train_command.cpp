#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "gaze/core/error.h"
#include "gaze/core/version.h"
#include "gaze/dist/communicator.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/tasks/task.h"
#include "gaze/train/progress.h"
#include "gaze/train/run_folder.h"

namespace gaze::cli {
namespace fs = std::filesystem;

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> sets;
  bool dump = false, overwrite = false;
  std::string resume;
  std::string output;  // --output, --seed, --epochs, --max-steps: --set shorthands
  std::optional<int64_t> seed, epochs, max_steps;
};

// A resumed run continues its record: settings that shape the model, its data or its tokenizer
// cannot change (the checkpoint was made with them); training and decoding settings can (more
// epochs, another learning rate), and config.yaml then records the new values.
const std::vector<std::string> kResumeMayChange = {"train.", "decode.", "output"};

// The run folder `--resume` names: RUN itself, or RUN when given RUN/last (or another checkpoint
// inside RUN).
std::string run_folder_of(const std::string& resume) {
  std::error_code ec;
  const fs::path p = fs::path(resume).lexically_normal();
  if (fs::exists(p / "config.yaml", ec)) return p.string();
  if (fs::exists(p.parent_path() / "config.yaml", ec)) return p.parent_path().string();
  throw DataError(fmt::format(
      "{}: not a run folder (no config.yaml here or in its parent); --resume takes the output "
      "folder of an earlier gaze train",
      resume));
}

struct Plan {
  tasks::RunConfig config;
  std::string checkpoint;  // resume from here; empty for a fresh run
};

// Settings the checkpoint itself records (config.json: the model, task.json: the data,
// tokenizer.json) that the configuration of the resumed run contradicts: RUN/config.yaml is a text
// file a user may edit, the checkpoint is what training continues from.
std::vector<std::string> checkpoint_disagreements(const std::string& checkpoint,
                                                  const std::map<std::string, std::string>& flat) {
  using json = nlohmann::json;
  std::vector<std::string> out;
  auto compare = [&](const char* file, const std::string& section) {
    const json j = json::parse(io::read_file(checkpoint + "/" + file, io::kMaxMetadataBytes),
                               nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return;
    for (const auto& [key, value] : j.items()) {
      // File names inside the folder are not settings.
      if (key == "model" || key == "vocab" || key == "id_space") continue;
      const auto it = flat.find(section + "." + key);
      if (it == flat.end()) continue;
      const json mine = json::parse(it->second, nullptr, false);
      if (mine != value)
        out.push_back(fmt::format("{}.{}: {} in {}/{} -> {}", section, key, value.dump(),
                                  checkpoint, file, it->second));
    }
  };
  // A fine-tuned pretrained model takes its architecture from the pretrained folder, not from the
  // model section's defaults.
  const auto pretrained = flat.find("model.pretrained");
  if (pretrained == flat.end() || pretrained->second == "\"\"") compare("config.json", "model");
  compare("task.json", "data");
  compare("tokenizer.json", "tokenizer");
  return out;
}

Plan plan_resume(const TrainArgs& a) {
  const std::string run = run_folder_of(a.resume);
  const std::string recorded_path = (fs::path(run) / "config.yaml").string();
  const tasks::RunConfig recorded = tasks::load_run_config(recorded_path, {});
  Plan plan{a.config.empty() ? tasks::load_run_config(recorded_path, a.sets)
                             : tasks::load_run_config(a.config, a.sets),
            ""};
  const auto changed = train::changed_settings(tasks::flat_settings(recorded),
                                               tasks::flat_settings(plan.config), kResumeMayChange);
  GAZE_CHECK(changed.empty(), DataError,
             "{}: resuming cannot change settings the checkpoint was made with ({}); only train.* "
             "and decode.* may change. Start a new run instead (train.init_from: {}/best keeps "
             "the weights)",
             recorded_path, fmt::join(changed, "; "), run);
  plan.config.output = run;  // a resumed run writes where it was
  for (const std::string& c : {a.resume, (fs::path(run) / "last").string()})
    if (const auto found = io::find_checkpoint(c); found && io::has_training_state(*found)) {
      plan.checkpoint = *found;
      break;
    }
  GAZE_CHECK(!plan.checkpoint.empty(), DataError,
             "{}: no resumable checkpoint (a last/ folder with training state) in this run", run);
  const auto disagree =
      checkpoint_disagreements(plan.checkpoint, tasks::flat_settings(plan.config));
  GAZE_CHECK(disagree.empty(), DataError,
             "{}: the configuration disagrees with the checkpoint it would resume ({}); was "
             "config.yaml edited? Start a new run instead (train.init_from: {}/best keeps the "
             "weights)",
             run, fmt::join(disagree, "; "), run);
  return plan;
}

int train_and_report(const Plan& plan, dist::Communicator& comm, std::FILE* log,
                     const std::function<void()>& on_ready = {});

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
  GAZE_CHECK(!a.config.empty() || !a.resume.empty(), DataError,
             "gaze train needs a run configuration (or --resume RUN)");
  GAZE_CHECK(!(a.overwrite && !a.resume.empty()), DataError,
             "--overwrite starts a run afresh and --resume continues one: pass only one of them");
  Plan plan =
      a.resume.empty() ? Plan{tasks::load_run_config(a.config, a.sets), ""} : plan_resume(a);
  const tasks::RunConfig& c = plan.config;
  if (a.dump) {
    if (lead) std::cout << tasks::dump_run_config(c);
    return 0;
  }
  if (!lead) return train_and_report(plan, comm, log);
  if (plan.checkpoint.empty())
    GAZE_CHECK(a.overwrite || !train::run_folder_in_use(c.output), DataError,
               "{}: the output folder is not empty (an earlier run?); continue that run with `gaze "
               "train --resume {}`, start afresh there with --overwrite, or set another output",
               c.output, c.output);
  std::error_code ec;
  const bool created = !fs::exists(c.output, ec);
  fs::create_directories(c.output, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot create the output folder ({})", c.output, ec.message());
  // A start that fails before the record is written leaves no half-made run folder behind.
  struct Cleanup {
    std::string dir;
    bool armed;
    ~Cleanup() {
      std::error_code e;
      if (armed) fs::remove_all(dir, e);
    }
  } cleanup{c.output, false};
  const train::RunLock lock(c.output);
  cleanup.armed = created;  // only the run that holds the lock may remove the folder
  // The run's checkpoints go to best/ and last/: refuse before training, not after it, when
  // something else is there.
  for (const char* sub : {"best", "last"})
    io::check_checkpoint_target((fs::path(c.output) / sub).string());
  // Only now, with the data and the model known to be good, does the earlier run go, and is the
  // record written.
  auto on_ready = [&] {
    if (a.overwrite) train::clear_run_folder(c.output);
    io::write_file_atomic((fs::path(c.output) / "config.yaml").string(),
                          fmt::format("# gaze {}\n{}", version_line(), tasks::dump_run_config(c)));
    cleanup.armed = false;
  };
  return train_and_report(plan, comm, log, on_ready);
}

// Every rank builds the task and trains; rank 0 (`on_ready` set) also keeps the record and
// reports on the test data.
int train_and_report(const Plan& plan, dist::Communicator& comm, std::FILE* log,
                     const std::function<void()>& on_ready) {
  const tasks::RunConfig& c = plan.config;
  auto task = plan.checkpoint.empty() ? tasks::create_task(c, log)
                                      : tasks::resume_task(c, plan.checkpoint, log);
  if (on_ready) on_ready();
  const auto t0 = std::chrono::steady_clock::now();
  const train::TrainResult r =
      train::run_training(*task, c.train, {c.output, plan.checkpoint, log, &comm});
  if (comm.rank() != 0) return r.interrupted ? 130 : 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.interrupted) {
    std::fprintf(stderr, "resume with: gaze train --resume %s\n", c.output.c_str());
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
      "  gaze train run.yaml --set model.d_model=128 --set train.epochs=5\n"
      "  gaze train run.yaml --dump-config\n"
      "  gaze train --resume runs/sentiment                 (continue where it stopped)\n"
      "  gaze train --resume runs/sentiment --set train.epochs=20\n"
      "  mpirun -np 2 gaze train run.yaml                 (data-parallel: docs/distributed.md)\n"
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
