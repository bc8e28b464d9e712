#include "gaze/io/checkpoint.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/io/safetensors.h"
#include "gaze/nn/module.h"

namespace gaze::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kModel = "model.safetensors";
constexpr const char* kTraining = "training.safetensors";
constexpr const char* kConfig = "config.json";
constexpr const char* kFormat = "gaze-checkpoint-1";

json rng_json(const Generator::State& s) {
  return {{"seed", s.seed}, {"stream", s.stream}, {"offset", s.offset}};
}

Generator::State rng_from(const json& j, const std::string& where) {
  try {
    return {j.at("seed").get<uint64_t>(), j.at("stream").get<uint64_t>(),
            j.at("offset").get<uint64_t>()};
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: invalid generator state ({})", where, e.what()));
  }
}

// Test hook: GAZE_FAULT_INJECT=checkpoint_save kills the process half-way through a save, so tests
// can check that the previous checkpoint survives a crash.
void maybe_crash() {
  const char* f = std::getenv("GAZE_FAULT_INJECT");
  if (f && std::string(f) == "checkpoint_save") std::raise(SIGKILL);
}

}  // namespace

TrainingState capture_training_state(const optim::Optimizer& opt, const optim::LRScheduler* sched,
                                     const std::string& progress) {
  TrainingState s;
  s.optimizer = opt.name();
  s.optimizer_steps = opt.steps();
  s.lr = opt.lr();
  s.optimizer_tensors = opt.state_tensors();
  s.scheduler_step = sched ? sched->last_step() : 0;
  s.rng_init = default_generator(RngPurpose::init).state();
  s.rng_dropout = default_generator(RngPurpose::dropout).state();
  s.rng_data = default_generator(RngPurpose::data).state();
  s.progress = progress;
  return s;
}

void restore_training_state(const TrainingState& s, optim::Optimizer& opt,
                            optim::LRScheduler* sched) {
  GAZE_CHECK(s.optimizer == opt.name(), DataError, "checkpoint holds {} state but the run uses {}",
             s.optimizer, opt.name());
  opt.load_state(s.optimizer_tensors, s.optimizer_steps);
  if (sched) sched->set_last_step(s.scheduler_step);
  opt.set_lr(s.lr);
  default_generator(RngPurpose::init).set_state(s.rng_init);
  default_generator(RngPurpose::dropout).set_state(s.rng_dropout);
  default_generator(RngPurpose::data).set_state(s.rng_data);
}

void save_checkpoint(const std::string& dir_in, const nn::Module& model,
                     const std::string& config_json, const TrainingState* training,
                     const std::function<void(const std::string&)>& write_extra) {
  const fs::path dir = fs::path(dir_in).lexically_normal();
  GAZE_CHECK(!dir.empty() && dir.filename() != "" && dir.filename() != ".", ValueError,
             "save_checkpoint: '{}' is not a usable directory name", dir_in);
  json cfg;
  try {
    cfg = json::parse(config_json);
  } catch (const json::exception& e) {
    throw ValueError(
        fmt::format("save_checkpoint: the model config is not valid JSON ({})", e.what()));
  }
  const fs::path tmp = dir.string() + ".tmp", old = dir.string() + ".old";
  std::error_code ec;
  fs::remove_all(tmp, ec);  // a stale one from an interrupted save
  fs::create_directories(tmp, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot create ({})", tmp.string(), ec.message());

  write_file_atomic((tmp / kConfig).string(), cfg.dump(2) + "\n");
  save_safetensors((tmp / kModel).string(), model.state_dict(), {{"format", kFormat}});
  maybe_crash();
  if (training) {
    const json meta = {{"optimizer", training->optimizer},
                       {"optimizer_steps", training->optimizer_steps},
                       {"lr", training->lr},
                       {"scheduler_step", training->scheduler_step},
                       {"rng",
                        {{"init", rng_json(training->rng_init)},
                         {"dropout", rng_json(training->rng_dropout)},
                         {"data", rng_json(training->rng_data)}}},
                       {"progress", json::parse(training->progress)}};
    save_safetensors((tmp / kTraining).string(), training->optimizer_tensors,
                     {{"format", kFormat}, {"training", meta.dump()}});
  }
  if (write_extra) write_extra(tmp.string());
  // Swap: the old checkpoint stays complete (as `dir` or `dir.old`) until the new one is in place.
  fs::remove_all(old, ec);
  if (fs::exists(dir)) {
    fs::rename(dir, old, ec);
    GAZE_CHECK(!ec, DataError, "{}: cannot replace the previous checkpoint ({})", dir.string(),
               ec.message());
  }
  fs::rename(tmp, dir, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot move the new checkpoint in place ({})", dir.string(),
             ec.message());
  fs::remove_all(old, ec);
}

Checkpoint load_checkpoint(const std::string& dir_in) {
  fs::path dir = fs::path(dir_in).lexically_normal();
  // A crash between the two renames of a save leaves only `dir.old`: that is the last good
  // checkpoint.
  if (!fs::exists(dir / kModel) && fs::exists(fs::path(dir.string() + ".old") / kModel))
    dir = dir.string() + ".old";
  GAZE_CHECK(fs::is_directory(dir), DataError, "{}: no such checkpoint directory", dir_in);
  GAZE_CHECK(fs::exists(dir / kModel), DataError, "{}: missing {} (not a gaze checkpoint?)", dir_in,
             kModel);
  Checkpoint ck;
  if (fs::exists(dir / kConfig)) {
    ck.config_json = read_file((dir / kConfig).string());
    try {
      (void)json::parse(ck.config_json);
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}: not valid JSON ({})", (dir / kConfig).string(), e.what()));
    }
  }
  ck.model = load_safetensors((dir / kModel).string()).tensors;
  if (fs::exists(dir / kTraining)) {
    const std::string path = (dir / kTraining).string();
    SafetensorsFile f = load_safetensors(path);
    auto it = f.metadata.find("training");
    GAZE_CHECK(it != f.metadata.end(), DataError, "{}: no \"training\" metadata", path);
    TrainingState s;
    try {
      const json m = json::parse(it->second);
      s.optimizer = m.at("optimizer").get<std::string>();
      s.optimizer_steps = m.at("optimizer_steps").get<int64_t>();
      s.lr = m.at("lr").get<double>();
      s.scheduler_step = m.at("scheduler_step").get<int64_t>();
      s.rng_init = rng_from(m.at("rng").at("init"), path);
      s.rng_dropout = rng_from(m.at("rng").at("dropout"), path);
      s.rng_data = rng_from(m.at("rng").at("data"), path);
      s.progress = m.at("progress").dump();
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}: invalid training metadata ({})", path, e.what()));
    }
    s.optimizer_tensors = std::move(f.tensors);
    ck.training = std::move(s);
  }
  return ck;
}

}  // namespace gaze::io
