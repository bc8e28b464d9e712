#include "gaze/tasks/task.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/ranges.h>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/nn/module.h"
#include "gaze/nn/precision.h"
#include "gaze/tasks/classify.h"
#include "gaze/tasks/embed_predictor.h"
#include "gaze/tasks/tag.h"
#include "gaze/tasks/translate.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kTaskFile = "task.json";

TaskKind task_of(const json& j, const std::string& path) {
  const std::string name = j.is_object() && j.contains("task") && j["task"].is_string()
                               ? j["task"].get<std::string>()
                           : j.is_object() && j.contains("task") ? j["task"].dump()
                                                                 : "";
  const auto kind = enum_from_name<TaskKind>(name);
  GAZE_CHECK(kind.has_value(), DataError, "{}: unknown task '{}' (expected {})", path, name,
             fmt::join(enum_name_list<TaskKind>(), ", "));
  return *kind;
}
}  // namespace

json read_json_file(const std::string& path) {
  try {
    return json::parse(io::read_file(path, io::kMaxMetadataBytes));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
}

std::vector<std::string> read_names(const std::string& dir, const std::string& file,
                                    const std::string& what) {
  const json list = read_json_file((fs::path(dir) / file).string());
  GAZE_CHECK(list.is_array() && list.size() >= 2, DataError, "{}/{}: expected a list of {}", dir,
             file, what);
  std::vector<std::string> names;
  for (const auto& x : list) {
    GAZE_CHECK(x.is_string(), DataError, "{}/{}: {} must be strings", dir, file, what);
    names.push_back(x.get<std::string>());
  }
  return names;
}

void write_json_file(const std::string& path, const json& value) {
  io::write_file_atomic(path, value.dump(2) + "\n");
}

void read_task_file(const std::string& dir, TaskKind task, const config::Fields& fields) {
  const std::string path = (fs::path(dir) / kTaskFile).string();
  json j = read_json_file(path);
  const TaskKind found = task_of(j, path);
  GAZE_CHECK(found == task, DataError, "{}: this model folder is for task '{}', not {}", dir,
             enum_name(found), enum_name(task));
  j.erase("task");
  config::read_object(j.dump(), fields, path);
}

void write_task_file(const std::string& dir, TaskKind task, const config::Fields& fields) {
  json j = {{"task", enum_name(task)}};
  j.update(json::parse(config::write_object(fields)));
  write_json_file((fs::path(dir) / kTaskFile).string(), j);
}

Report Task::evaluate_split(const RunConfig& c, data::Split split, const EvalOptions& options) {
  GAZE_CHECK(split != data::Split::train, DataError, "gaze eval --split takes dev or test");
  const bool test = split == data::Split::test;
  const std::string& file = test ? c.data.test : c.data.dev;
  GAZE_CHECK(!file.empty(), DataError,
             "the run has no data.{} file to evaluate on (its config.yaml names none)",
             test ? "test" : "dev");
  EvalOptions o = options;
  o.target = test ? c.data.test_target : c.data.dev_target;
  return evaluate_file(file, o);
}

void Task::load_weights(const std::string& dir) {
  const io::Checkpoint ck = io::load_checkpoint(dir);
  model().load_state_dict(ck.model);
}

CopiedWeights copy_matching_weights(nn::Module& model, const NamedTensors& source,
                                    const std::function<bool(const std::string&)>& skip) {
  CopiedWeights r;
  NoGradGuard no_grad;
  for (auto& [name, param] : model.state_dict()) {
    const Tensor from = skip && skip(name) ? Tensor() : find(source, name);
    if (from.defined() && from.shape() == param.shape() && from.dtype() == param.dtype()) {
      param.copy_(from);
      r.copied.push_back(name);
      r.values += param.numel();
    } else {
      r.fresh.push_back(from.defined() ? fmt::format("{} ({} there, {} here)", name,
                                                     from.shape_str(), param.shape_str())
                                       : name);
    }
  }
  return r;
}

void Task::init_from(const std::string& dir, std::FILE* log) {
  const std::string folder = resolve_model_dir(dir);
  const CopiedWeights r = copy_matching_weights(model(), io::load_checkpoint(folder).model);
  GAZE_CHECK(!r.copied.empty(), DataError,
             "train.init_from {}: no weight of that model has a name and shape of this one's",
             folder);
  std::fprintf(log, "init_from %s: %zu tensors (%lld values) copied; kept fresh: %s\n",
               folder.c_str(), r.copied.size(), static_cast<long long>(r.values),
               r.fresh.empty() ? "none" : fmt::format("{}", fmt::join(r.fresh, ", ")).c_str());
}

Tensor class_weights(const std::vector<int64_t>& counts, train::ClassWeights mode) {
  if (mode == train::ClassWeights::none) return Tensor();
  double total = 0;
  for (const int64_t n : counts) total += static_cast<double>(n);
  const auto k = static_cast<double>(counts.size());
  Tensor w = Tensor::empty(Shape{static_cast<int64_t>(counts.size())}, DType::f32);
  for (size_t i = 0; i < counts.size(); ++i) {
    const double balanced = counts[i] > 0 ? total / (k * static_cast<double>(counts[i])) : 0.0;
    w.data<float>()[i] =
        static_cast<float>(mode == train::ClassWeights::sqrt ? std::sqrt(balanced) : balanced);
  }
  return w;
}

std::unique_ptr<text::Tokenizer> train_tokenizer(const text::TokenizerOptions& o,
                                                 const std::vector<std::string>& texts,
                                                 std::FILE* log) {
  // Only SentencePiece without a given model trains for long; word and char vocabularies count.
  const bool slow = o.kind == text::TokenizerKind::sentencepiece && o.model.empty();
  const auto t0 = std::chrono::steady_clock::now();
  if (slow) {
    std::fprintf(log, "tokenizer: training sentencepiece (%lld pieces) on %zu texts ...",
                 static_cast<long long>(o.vocab_size), texts.size());
    std::fflush(log);
  }
  auto tok = text::train_tokenizer(o, texts);
  if (slow)
    std::fprintf(log, " done in %.1f s\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return tok;
}

int64_t parameter_count(nn::Module& model) {
  int64_t n = 0;
  for (const Tensor& p : model.parameters()) n += p.numel();
  return n;
}

std::string resolve_model_dir(const std::string& dir) {
  std::error_code ec;  // a path the system refuses (too long) is a missing folder, not a crash
  if (fs::exists(fs::path(dir) / "config.json", ec)) return dir;
  // A checkpoint interrupted mid-swap is found where it survived (see io::find_checkpoint).
  for (const fs::path& d : {fs::path(dir), fs::path(dir) / "best"})
    if (const auto found = io::find_checkpoint(d.string());
        found && fs::exists(fs::path(*found) / "config.json"))
      return *found;
  throw DataError(fmt::format(
      "{}: not a model folder (no config.json here or in {}/best); pass a run's output folder or "
      "its best/ or last/",
      dir, dir));
}

std::unique_ptr<Task> create_task(const RunConfig& c, std::FILE* log) {
  std::unique_ptr<Task> t;
  switch (c.task) {
    case TaskKind::classify:
      t = ClassifyTask::create(c, log);
      break;
    case TaskKind::tag:
      t = TagTask::create(c, log);
      break;
    case TaskKind::translate:
      t = TranslateTask::create(c, log);
      break;
    case TaskKind::embed:
      throw DataError(
          "task embed is not trained (fine-tune a sentence encoder with task: classify "
          "or tag and model.pretrained)");
  }
  if (!c.train.init_from.empty()) t->init_from(c.train.init_from, log);
  return t;
}

void apply_precision(Predictor& predictor, const LoadOptions& options) {
  const Precision want = options.precision.value_or(predictor.precision());
  std::string notice;
  const Precision use = nn::usable_precision(want, &notice);
  if (!notice.empty() && options.notice) std::fprintf(options.notice, "gaze: %s\n", notice.c_str());
  nn::set_precision(predictor.module(), use);
}

std::unique_ptr<Task> load_task(const std::string& dir, const LoadOptions& options) {
  const std::string path = (fs::path(dir) / kTaskFile).string();
  auto with_precision = [&](std::unique_ptr<Task> t) {
    apply_precision(t->predictor(), options);
    return t;
  };
  switch (task_of(read_json_file(path), path)) {
    case TaskKind::classify:
      return with_precision(ClassifyTask::load(dir));
    case TaskKind::tag:
      return with_precision(TagTask::load(dir));
    case TaskKind::translate:
      return with_precision(TranslateTask::load(dir));
    case TaskKind::embed:
      throw DataError(fmt::format(
          "{}: a sentence encoder has no labels to train or evaluate on; it predicts, explains and "
          "embeds (gaze predict / explain / embed)",
          dir));
  }
  throw StateError("load_task: unhandled task");
}

std::unique_ptr<Predictor> load_predictor(const std::string& dir, const LoadOptions& options) {
  const std::string path = (fs::path(dir) / kTaskFile).string();
  std::unique_ptr<Predictor> p;
  switch (task_of(read_json_file(path), path)) {
    case TaskKind::classify:
      p = ClassifyPredictor::load(dir);
      break;
    case TaskKind::tag:
      p = TagPredictor::load(dir);
      break;
    case TaskKind::translate:
      p = TranslatePredictor::load(dir);
      break;
    case TaskKind::embed:
      p = EmbedPredictor::load(dir);
      break;
  }
  if (p) {
    p->model_dir = dir;
    apply_precision(*p, options);
    return p;
  }
  throw StateError("load_predictor: unhandled task");
}

std::unique_ptr<Task> resume_task(const RunConfig& c, const std::string& dir, std::FILE* log) {
  switch (c.task) {
    case TaskKind::classify:
      return ClassifyTask::resume(c, dir, log);
    case TaskKind::tag:
      return TagTask::resume(c, dir, log);
    case TaskKind::translate:
      return TranslateTask::resume(c, dir, log);
    case TaskKind::embed:
      break;
  }
  throw StateError("resume_task: unhandled task");
}

}  // namespace gaze::tasks
