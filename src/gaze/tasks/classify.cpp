#include "gaze/tasks/classify.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "gaze/autograd/grad_mode.h"
#include "gaze/core/error.h"
#include "gaze/core/rng.h"
#include "gaze/data/batching.h"
#include "gaze/data/split.h"
#include "gaze/io/files.h"
#include "gaze/ops/ops.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kLabelsFile = "labels.json";
}  // namespace

void ClassifyTask::read_data(const RunConfig& c, std::FILE* log) {
  const auto& d = c.data;
  format_ = {d.format, d.text_column, d.label_column};
  if (d.split == "modulo10") {
    const auto all = data::read_classification(d.train, format_);
    train_ = data::take_split(all, data::Split::train);
    dev_ = data::take_split(all, data::Split::dev);
    test_ = data::take_split(all, data::Split::test);
  } else {
    train_ = data::read_classification(d.train, format_);
    if (!d.dev.empty()) dev_ = data::read_classification(d.dev, format_);
    if (!d.test.empty()) test_ = data::read_classification(d.test, format_);
  }
  dev_source_ = d.dev.empty() ? d.train : d.dev;
  test_source_ = d.test.empty() ? d.train : d.test;
  GAZE_CHECK(!dev_.empty(), DataError, "{}: no validation examples", dev_source_);
  std::fprintf(log, "data: %zu train, %zu dev, %zu test examples\n", train_.size(), dev_.size(),
               test_.size());
}

std::unique_ptr<ClassifyTask> ClassifyTask::create(const RunConfig& c, std::FILE* log) {
  std::unique_ptr<ClassifyTask> t(new ClassifyTask());
  t->max_length_ = c.data.max_length;
  t->batch_tokens_ = c.train.batch_tokens;
  t->read_data(c, log);
  std::set<std::string> labels;
  for (const auto& e : t->train_) labels.insert(e.label);
  t->labels_.assign(labels.begin(), labels.end());
  GAZE_CHECK(t->labels_.size() >= 2, DataError,
             "{}: the training data has only one label ('{}'); classification needs at least two",
             c.data.train, t->labels_.empty() ? "" : t->labels_[0]);
  std::vector<std::string> texts;
  for (const auto& e : t->train_) texts.push_back(e.text);
  t->tokenizer_ = text::train_tokenizer(c.tokenizer, texts);
  std::fprintf(log, "tokenizer: %s, %lld ids; labels: %zu (%s)\n", t->tokenizer_->kind().c_str(),
               static_cast<long long>(t->tokenizer_->vocab_size()), t->labels_.size(),
               fmt::format("{}", fmt::join(t->labels_, ", ")).c_str());
  models::ClassifierConfig mc = c.classifier;
  mc.vocab_size = t->tokenizer_->vocab_size();
  mc.num_classes = static_cast<int64_t>(t->labels_.size());
  mc.pad_id = t->tokenizer_->pad_id();
  manual_seed(static_cast<uint64_t>(c.train.seed));
  t->model_ = std::make_shared<models::TransformerClassifier>(mc);
  int64_t params = 0;
  for (const Tensor& p : t->model_->parameters()) params += p.numel();
  std::fprintf(log, "model: TransformerClassifier, %lld parameters\n",
               static_cast<long long>(params));
  t->encode_data(c);
  if (t->train_enc_.truncated + t->dev_enc_.truncated > 0)
    std::fprintf(log, "warning: %lld texts longer than data.max_length (%lld tokens) were cut\n",
                 static_cast<long long>(t->train_enc_.truncated + t->dev_enc_.truncated),
                 static_cast<long long>(t->max_length_));
  return t;
}

std::unique_ptr<ClassifyTask> ClassifyTask::load(const std::string& dir) {
  std::unique_ptr<ClassifyTask> t(new ClassifyTask());
  const json task = read_task_file(dir, "classify");
  t->format_ = {task.value("format", "auto"), task.value("text_column", "text"),
                task.value("label_column", "label")};
  t->max_length_ = task.value("max_length", 256);
  t->batch_tokens_ = task.value("batch_tokens", 4096);
  const json labels = read_json_file((fs::path(dir) / kLabelsFile).string());
  GAZE_CHECK(labels.is_array() && labels.size() >= 2, DataError, "{}/{}: expected a list of labels",
             dir, kLabelsFile);
  for (const auto& l : labels) t->labels_.push_back(l.get<std::string>());
  t->tokenizer_ = text::load_tokenizer(dir);
  t->model_ = std::dynamic_pointer_cast<models::TransformerClassifier>(models::load_model(dir));
  GAZE_CHECK(t->model_, DataError, "{}: the model is not a TransformerClassifier", dir);
  GAZE_CHECK(t->model_->config.num_classes == static_cast<int64_t>(t->labels_.size()), DataError,
             "{}: the model has {} classes but labels.json lists {}", dir,
             t->model_->config.num_classes, t->labels_.size());
  t->model_->eval();
  return t;
}

std::unique_ptr<ClassifyTask> ClassifyTask::resume(const RunConfig& c, const std::string& dir,
                                                   std::FILE* log) {
  std::unique_ptr<ClassifyTask> t = load(dir);
  t->max_length_ = c.data.max_length;
  t->batch_tokens_ = c.train.batch_tokens;
  t->read_data(c, log);
  t->encode_data(c);
  t->model_->train();
  return t;
}

Encoded ClassifyTask::encode(const std::vector<data::LabeledText>& ex, const std::string& source,
                             bool labelled) const {
  Encoded enc;
  for (const auto& e : ex) {
    std::vector<int64_t> ids = tokenizer_->encode(e.text);
    if (ids.empty()) ids.push_back(tokenizer_->unk_id());  // e.g. only characters it drops
    if (static_cast<int64_t>(ids.size()) > max_length_) {
      ids.resize(static_cast<size_t>(max_length_));
      ++enc.truncated;
    }
    enc.ids.push_back(std::move(ids));
    if (!labelled) {
      enc.labels.push_back(-1);
      continue;
    }
    auto it = std::find(labels_.begin(), labels_.end(), e.label);
    GAZE_CHECK(it != labels_.end(), DataError,
               "{}:{}: label '{}' is not one the model was trained on ({})", source, e.line,
               e.label, fmt::join(labels_, ", "));
    enc.labels.push_back(it - labels_.begin());
  }
  return enc;
}

std::pair<Tensor, Tensor> ClassifyTask::batch_tensors(const Encoded& enc,
                                                      const std::vector<int64_t>& batch) const {
  std::vector<const std::vector<int64_t>*> seqs;
  for (const int64_t i : batch) seqs.push_back(&enc.ids[static_cast<size_t>(i)]);
  return pad_batch(seqs, tokenizer_->pad_id());
}

void ClassifyTask::encode_data(const RunConfig& c) {
  train_enc_ = encode(train_, c.data.train, true);
  dev_enc_ = encode(dev_, dev_source_, true);
  std::vector<int64_t> counts(labels_.size(), 0);
  for (const int64_t k : train_enc_.labels) ++counts[static_cast<size_t>(k)];
  class_weight_ = class_weights(counts, c.train.class_weights);
}

std::vector<int64_t> ClassifyTask::train_lengths() const {
  std::vector<int64_t> out;
  for (const auto& ids : train_enc_.ids) out.push_back(static_cast<int64_t>(ids.size()));
  return out;
}

Tensor ClassifyTask::loss(const std::vector<int64_t>& batch, double label_smoothing,
                          int64_t* tokens) {
  const auto [ids, lengths] = batch_tensors(train_enc_, batch);
  Tensor target = Tensor::empty(Shape{static_cast<int64_t>(batch.size())}, DType::i64);
  *tokens = 0;
  for (size_t b = 0; b < batch.size(); ++b) {
    target.data<int64_t>()[b] = train_enc_.labels[static_cast<size_t>(batch[b])];
    *tokens += lengths.data<int64_t>()[b];
  }
  CrossEntropyOptions o;
  o.label_smoothing = label_smoothing;
  o.weight = class_weight_;
  return cross_entropy(model_->forward(ids, lengths), target, o);
}

std::vector<std::vector<float>> ClassifyTask::probabilities(const Encoded& enc) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& ids : enc.ids) lengths.push_back(static_cast<int64_t>(ids.size()));
  const auto batches = data::make_batches(lengths, {batch_tokens_, 0, false}, nullptr);
  const auto C = static_cast<int64_t>(labels_.size());
  std::vector<std::vector<float>> out(enc.ids.size());
  for (const auto& batch : batches) {
    const auto [ids, lens] = batch_tensors(enc, batch);
    const Tensor p = softmax(model_->forward(ids, lens), -1);
    for (size_t b = 0; b < batch.size(); ++b) {
      const float* row = p.data<float>() + static_cast<int64_t>(b) * C;
      out[static_cast<size_t>(batch[b])].assign(row, row + C);
    }
  }
  return out;
}

metrics::ClassificationReport ClassifyTask::evaluate(const std::vector<data::LabeledText>& ex,
                                                     const std::string& source, double* mean_loss) {
  return evaluate(encode(ex, source, true), mean_loss);
}

metrics::ClassificationReport ClassifyTask::evaluate(const Encoded& enc, double* mean_loss) {
  const auto probs = probabilities(enc);
  std::vector<int64_t> predicted;
  double nll = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& p = probs[i];
    predicted.push_back(std::max_element(p.begin(), p.end()) - p.begin());
    nll -= std::log(std::max(1e-30, static_cast<double>(p[static_cast<size_t>(enc.labels[i])])));
  }
  if (mean_loss) *mean_loss = probs.empty() ? 0.0 : nll / static_cast<double>(probs.size());
  return metrics::classification_report(enc.labels, predicted, labels_);
}

std::map<std::string, double> ClassifyTask::validate() {
  double loss = 0;
  const auto r = evaluate(dev_enc_, &loss);  // encoded once, at start-up
  return {{"accuracy", r.accuracy}, {"macro_f1", r.macro.f1}, {"loss", loss}};
}

std::vector<Prediction> ClassifyTask::predict_labels(const std::vector<std::string>& texts,
                                                     int64_t top_k) {
  std::vector<data::LabeledText> ex;
  for (const auto& t : texts) ex.push_back({t, "", 0});
  const auto probs = probabilities(encode(ex, "input", false));
  const auto k =
      static_cast<size_t>(std::clamp<int64_t>(top_k, 1, static_cast<int64_t>(labels_.size())));
  std::vector<Prediction> out;
  for (const auto& p : probs) {
    std::vector<size_t> order(p.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    Prediction pr;
    for (size_t i = 0; i < k; ++i) pr.top.emplace_back(labels_[order[i]], p[order[i]]);
    out.push_back(std::move(pr));
  }
  return out;
}

void ClassifyTask::save_assets(const std::string& dir) const {
  tokenizer_->save(dir);
  io::write_file_atomic((fs::path(dir) / kLabelsFile).string(), json(labels_).dump(2) + "\n");
  const json task = {{"task", "classify"},
                     {"format", format_.format},
                     {"text_column", format_.text_column},
                     {"label_column", format_.label_column},
                     {"max_length", max_length_},
                     {"batch_tokens", batch_tokens_}};
  write_task_file(dir, task);
}

std::optional<Report> ClassifyTask::test_report() {
  if (test_.empty()) return std::nullopt;
  const auto r = evaluate(test_, test_source_);
  return Report{metrics::to_text(r), metrics::to_json(r), r.total};
}

Report ClassifyTask::evaluate_file(const std::string& path, const EvalOptions& o) {
  data::ClassificationFormat f = format_;
  if (!o.format.empty()) f.format = o.format;
  if (!o.text_column.empty()) f.text_column = o.text_column;
  if (!o.label_column.empty()) f.label_column = o.label_column;
  const auto r = evaluate(data::read_classification(path, f), path);
  return Report{metrics::to_text(r), metrics::to_json(r), r.total};
}

std::vector<std::string> ClassifyTask::read_inputs(const std::string& path) const {
  std::vector<std::string> texts;
  for (auto& e : data::read_texts(path, format_)) texts.push_back(std::move(e.text));
  return texts;
}

std::vector<json> ClassifyTask::predict(const std::vector<std::string>& texts,
                                        const PredictOptions& o) {
  std::vector<json> out;
  for (const auto& p : predict_labels(texts, o.top_k > 0 ? o.top_k : 1)) {
    json j = json::array();
    for (const auto& [label, score] : p.top) j.push_back({{"label", label}, {"score", score}});
    out.push_back(o.top_k > 0 ? j : j[0]);
  }
  return out;
}

}  // namespace gaze::tasks
