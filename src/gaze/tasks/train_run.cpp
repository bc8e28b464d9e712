#include "gaze/tasks/train_run.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include <fmt/ranges.h>

#include "gaze/core/error.h"
#include "gaze/core/version.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/train/progress.h"
#include "gaze/train/run_folder.h"
#include "gaze/train/run_report.h"

namespace gaze::tasks {
namespace fs = std::filesystem;

namespace {

RunConfig load_config(const TrainRunOptions& a) {
  GAZE_CHECK(a.config.empty() || a.config_text.empty(), ValueError,
             "train_run: give a configuration file or its text, not both");
  return a.config_text.empty() ? load_run_config(a.config, a.overrides)
                               : parse_run_config(a.config_text, a.config_source, a.overrides);
}

// A resumed run continues its record: settings that shape the model, its data or its tokenizer
// cannot change (the checkpoint was made with them); training and decoding settings can (more
// epochs, another learning rate), and config.yaml then records the new values.
const std::vector<std::string> kResumeMayChange = {"train.", "decode.", "output"};

// The run folder `--resume` names: RUN itself, or RUN when given RUN/last (or another checkpoint
// inside RUN).
std::string resumed_run(const std::string& resume) {
  if (auto run = train::run_folder_of(resume)) return *run;
  throw DataError(fmt::format(
      "{}: not a run folder (no config.yaml here or in its parent); --resume takes the output "
      "folder of an earlier gaze train",
      resume));
}

struct Plan {
  RunConfig config;
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

Plan plan_resume(const TrainRunOptions& a) {
  const std::string run = resumed_run(a.resume);
  const std::string recorded_path = (fs::path(run) / "config.yaml").string();
  const RunConfig recorded = load_run_config(recorded_path, {});
  Plan plan{a.config.empty() && a.config_text.empty() ? load_run_config(recorded_path, a.overrides)
                                                      : load_config(a),
            ""};
  const auto changed = train::changed_settings(flat_settings(recorded), flat_settings(plan.config),
                                               kResumeMayChange);
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
  const auto disagree = checkpoint_disagreements(plan.checkpoint, flat_settings(plan.config));
  GAZE_CHECK(disagree.empty(), DataError,
             "{}: the configuration disagrees with the checkpoint it would resume ({}); was "
             "config.yaml edited? Start a new run instead (train.init_from: {}/best keeps the "
             "weights)",
             run, fmt::join(disagree, "; "), run);
  return plan;
}

Plan make_plan(const TrainRunOptions& a) {
  GAZE_CHECK(!a.config.empty() || !a.config_text.empty() || !a.resume.empty(), DataError,
             "gaze train needs a run configuration (or --resume RUN)");
  GAZE_CHECK(!(a.overwrite && !a.resume.empty()), DataError,
             "--overwrite starts a run afresh and --resume continues one: pass only one of them");
  return a.resume.empty() ? Plan{load_config(a), ""} : plan_resume(a);
}

// RUN/test_predictions.jsonl: each test example with its prediction, the first kTimed of them
// also with the milliseconds the model takes on it alone (the run report's slowest examples).
constexpr size_t kTimed = 50;
void write_predictions(Task& task, const Report& report, const std::string& run) {
  std::string lines;
  Predictor& p = task.predictor();
  const PredictOptions defaults = p.predict_defaults();
  for (size_t i = 0; i < report.predictions.size(); ++i) {
    nlohmann::json line = report.predictions[i];
    if (i < kTimed && line.contains("input") && line["input"].is_string()) {
      const auto t0 = std::chrono::steady_clock::now();
      p.predict({line["input"].get<std::string>()}, defaults);
      line["ms"] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    lines += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  io::write_file_atomic((fs::path(run) / "test_predictions.jsonl").string(), lines);
}

// Every rank builds the task and trains; rank 0 (`on_ready` set) also keeps the record and
// scores the test data.
TrainRunResult train_and_score(const Plan& plan, dist::Communicator& comm, std::FILE* log,
                               const std::function<void()>& on_ready = {}) {
  TrainRunResult out{plan.config, {}, 0, std::nullopt};
  const RunConfig& c = plan.config;
  auto task = plan.checkpoint.empty() ? create_task(c, log) : resume_task(c, plan.checkpoint, log);
  if (on_ready) on_ready();
  const auto t0 = std::chrono::steady_clock::now();
  out.train = train::run_training(*task, c.train, {c.output, plan.checkpoint, log, &comm});
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (comm.rank() != 0) return out;
  const train::TrainResult& r = out.train;
  if (r.interrupted) {
    train::write_run_report(c.output);  // the curves so far
    std::fprintf(log, "resume with: gaze train --resume %s\n", c.output.c_str());
    return out;
  }
  std::fprintf(log, "trained %lld steps in %s; best %s %.4f at step %lld -> %s/best\n",
               static_cast<long long>(r.steps), train::format_duration(out.seconds).c_str(),
               enum_name(c.train.metric).c_str(), r.best_metric,
               static_cast<long long>(r.best_step), c.output.c_str());
  task->load_weights((fs::path(c.output) / "best").string());
  out.test = task->test_report();
  if (out.test) {
    io::write_file_atomic((fs::path(c.output) / "test_report.json").string(),
                          out.test->json + "\n");
    write_predictions(*task, *out.test, c.output);
  }
  std::fprintf(log, "run report: %s\n", train::write_run_report(c.output).c_str());
  return out;
}

}  // namespace

RunConfig resolve_run_config(const TrainRunOptions& a) {
  return make_plan(a).config;
}

TrainRunResult train_run(const TrainRunOptions& a) {
  const std::unique_ptr<dist::Communicator> alone = a.comm ? nullptr : dist::single_process();
  dist::Communicator& comm = a.comm ? *a.comm : *alone;
  const Plan plan = make_plan(a);
  const RunConfig& c = plan.config;
  if (comm.rank() != 0) return train_and_score(plan, comm, a.log);
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
                          fmt::format("# gaze {}\n{}", version_line(), dump_run_config(c)));
    cleanup.armed = false;
  };
  return train_and_score(plan, comm, a.log, on_ready);
}

}  // namespace gaze::tasks
