#include "gaze/tasks/task.h"

#include <cmath>
#include <filesystem>

#include <fmt/ranges.h>

#include "gaze/autograd/grad_mode.h"
#include "gaze/core/error.h"
#include "gaze/data/text_file.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/nn/module.h"
#include "gaze/tasks/classify.h"
#include "gaze/tasks/tag.h"
#include "gaze/tasks/translate.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kTaskFile = "task.json";
}

json read_json_file(const std::string& path) {
  try {
    return json::parse(io::read_file(path));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
}

json read_task_file(const std::string& dir, const std::string& task) {
  const json j = read_json_file((fs::path(dir) / kTaskFile).string());
  GAZE_CHECK(j.is_object() && j.value("task", "") == task, DataError,
             "{}: this model folder is for task '{}', not {}", dir,
             j.is_object() ? j.value("task", "?") : "?", task);
  return j;
}

void write_task_file(const std::string& dir, const json& task) {
  io::write_file_atomic((fs::path(dir) / kTaskFile).string(), task.dump(2) + "\n");
}

std::vector<std::string> Task::read_inputs(const std::string& path) const {
  const data::TextFile f(path);
  std::vector<std::string> out;
  for (const auto& l : f.lines())
    if (!data::is_blank(l.text)) out.emplace_back(l.text);
  return out;
}

void Task::load_weights(const std::string& dir) {
  const io::Checkpoint ck = io::load_checkpoint(dir);
  model().load_state_dict(ck.model);
}

void Task::init_from(const std::string& dir, std::FILE* log) {
  const std::string folder = resolve_model_dir(dir);
  const io::Checkpoint ck = io::load_checkpoint(folder);
  std::vector<std::string> copied, fresh;
  int64_t values = 0;
  NoGradGuard no_grad;
  for (auto& [name, param] : model().state_dict()) {
    const Tensor from = nn::find(ck.model, name);
    if (from.defined() && from.shape() == param.shape() && from.dtype() == param.dtype()) {
      param.copy_(from);
      copied.push_back(name);
      values += param.numel();
    } else {
      fresh.push_back(from.defined() ? fmt::format("{} ({} there, {} here)", name, from.shape_str(),
                                                   param.shape_str())
                                     : name);
    }
  }
  GAZE_CHECK(!copied.empty(), DataError,
             "train.init_from {}: no weight of that model has a name and shape of this one's",
             folder);
  std::fprintf(log, "init_from %s: %zu tensors (%lld values) copied; kept fresh: %s\n",
               folder.c_str(), copied.size(), static_cast<long long>(values),
               fresh.empty() ? "none" : fmt::format("{}", fmt::join(fresh, ", ")).c_str());
}

Tensor class_weights(const std::vector<int64_t>& counts, const std::string& mode) {
  if (mode == "none") return Tensor();
  GAZE_CHECK(mode == "sqrt" || mode == "balanced", DataError,
             "train.class_weights must be none, sqrt or balanced, got '{}'", mode);
  double total = 0;
  for (const int64_t n : counts) total += static_cast<double>(n);
  const auto k = static_cast<double>(counts.size());
  Tensor w = Tensor::empty(Shape{static_cast<int64_t>(counts.size())}, DType::f32);
  for (size_t i = 0; i < counts.size(); ++i) {
    const double balanced = counts[i] > 0 ? total / (k * static_cast<double>(counts[i])) : 0.0;
    w.data<float>()[i] = static_cast<float>(mode == "sqrt" ? std::sqrt(balanced) : balanced);
  }
  return w;
}

std::pair<Tensor, Tensor> pad_batch(const std::vector<const std::vector<int64_t>*>& seqs,
                                    int64_t pad_id) {
  int64_t T = 1;
  for (const auto* s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s->size()));
  const auto B = static_cast<int64_t>(seqs.size());
  Tensor tokens = Tensor::full(Shape{B, T}, static_cast<double>(pad_id), DType::i64);
  Tensor lengths = Tensor::empty(Shape{B}, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    const auto& ids = *seqs[static_cast<size_t>(b)];
    std::copy(ids.begin(), ids.end(), tokens.data<int64_t>() + b * T);
    lengths.data<int64_t>()[b] = static_cast<int64_t>(ids.size());
  }
  return {tokens, lengths};
}

std::string resolve_model_dir(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "config.json")) return dir;
  if (fs::exists(fs::path(dir) / "best" / "config.json")) return (fs::path(dir) / "best").string();
  throw DataError(fmt::format(
      "{}: not a model folder (no config.json here or in {}/best); pass a run's output folder or "
      "its best/ or last/",
      dir, dir));
}

std::unique_ptr<Task> create_task(const RunConfig& c, std::FILE* log) {
  std::unique_ptr<Task> t;
  if (c.task == "tag")
    t = TagTask::create(c, log);
  else if (c.task == "translate")
    t = TranslateTask::create(c, log);
  else
    t = ClassifyTask::create(c, log);
  if (!c.train.init_from.empty()) t->init_from(c.train.init_from, log);
  return t;
}

std::unique_ptr<Task> load_task(const std::string& dir) {
  const json j = read_json_file((fs::path(dir) / kTaskFile).string());
  const std::string task = j.is_object() ? j.value("task", "") : "";
  if (task == "tag") return TagTask::load(dir);
  if (task == "translate") return TranslateTask::load(dir);
  if (task == "classify") return ClassifyTask::load(dir);
  throw DataError(fmt::format("{}/{}: unknown task '{}' (expected classify, tag or translate)", dir,
                              kTaskFile, task));
}

std::unique_ptr<Task> resume_task(const RunConfig& c, const std::string& dir, std::FILE* log) {
  if (c.task == "tag") return TagTask::resume(c, dir, log);
  if (c.task == "translate") return TranslateTask::resume(c, dir, log);
  return ClassifyTask::resume(c, dir, log);
}

}  // namespace gaze::tasks
