#include "gaze/tasks/classify.h"

#include <cmath>
#include <set>

#include "gaze/core/error.h"
#include "gaze/core/rng.h"
#include "gaze/data/split.h"
#include "gaze/ops/loss.h"
#include "gaze/tasks/pretrained.h"

namespace gaze::tasks {
namespace {

Report report_of(const metrics::ClassificationReport& r) {
  return Report{metrics::to_text(r), metrics::to_json(r), r.total};
}

}  // namespace

struct ClassifySplits {
  std::vector<data::LabeledText> train, dev, test;
  std::string dev_source, test_source;  // file names for messages
};

namespace {

// data.label_names: each label the data writes becomes its name (labels without one stay as
// written, and names given already are kept: a file scored later may use either).
void name_labels(std::vector<data::LabeledText>& examples, const DataConfig& d) {
  if (d.label_names.empty()) return;
  for (auto& e : examples)
    if (const auto it = d.label_names.find(e.label); it != d.label_names.end())
      e.label = it->second;
}

ClassifySplits read_splits(const DataConfig& d, std::FILE* log) {
  const data::ClassificationFormat format{d.format, d.text_column, d.label_column};
  ClassifySplits s;
  if (d.split == DataSplit::modulo10) {
    const auto all = data::read_classification(d.train, format);
    s.train = data::take_split(all, data::Split::train);
    s.dev = data::take_split(all, data::Split::dev);
    s.test = data::take_split(all, data::Split::test);
  } else {
    s.train = data::read_classification(d.train, format);
    if (!d.dev.empty()) s.dev = data::read_classification(d.dev, format);
    if (!d.test.empty()) s.test = data::read_classification(d.test, format);
  }
  // Every named label must be one the training data has, and a name may be no other label of the
  // data (that would merge two classes) nor another label's name.
  std::set<std::string> raw, names;
  for (const auto& e : s.train) raw.insert(e.label);
  for (const auto& [label, name] : d.label_names) {
    GAZE_CHECK(raw.count(label), DataError,
               "{}: data.label_names names label '{}', which the training data does not have "
               "(its labels: {})",
               d.train, label, fmt::join(raw, ", "));
    GAZE_CHECK(name == label || !raw.count(name), DataError,
               "{}: data.label_names names label '{}' as '{}', which is another label of the data",
               d.train, label, name);
    GAZE_CHECK(!name.empty() && name.find_first_of("\n\r\t") == std::string::npos, DataError,
               "data.label_names: the name of '{}' must be a non-empty single line", label);
    GAZE_CHECK(names.insert(name).second, DataError, "data.label_names: two labels are named '{}'",
               name);
  }
  for (auto* split : {&s.train, &s.dev, &s.test}) name_labels(*split, d);
  s.dev_source = d.dev.empty() ? d.train : d.dev;
  s.test_source = d.test.empty() ? d.train : d.test;
  GAZE_CHECK(!s.dev.empty(), DataError, "{}: no validation examples", s.dev_source);
  std::fprintf(log, "data: %zu train, %zu dev, %zu test examples\n", s.train.size(), s.dev.size(),
               s.test.size());
  return s;
}

}  // namespace

void ClassifyTask::use_data(const RunConfig& c, ClassifySplits&& s, std::FILE* log) {
  p_->set_data(c.data, c.train.batch_tokens);
  test_ = std::move(s.test);
  test_source_ = s.test_source;
  train_enc_ = p_->encode(s.train, c.data.train, true);
  dev_enc_ = p_->encode(s.dev, s.dev_source, true);
  std::vector<int64_t> counts(p_->labels().size(), 0);
  for (const int64_t k : train_enc_.labels) ++counts[static_cast<size_t>(k)];
  class_weight_ = class_weights(counts, c.train.class_weights);
  if (train_enc_.truncated + dev_enc_.truncated > 0)
    std::fprintf(log, "warning: %lld texts longer than data.max_length (%lld tokens) were cut\n",
                 static_cast<long long>(train_enc_.truncated + dev_enc_.truncated),
                 static_cast<long long>(c.data.max_length));
}

std::unique_ptr<ClassifyTask> ClassifyTask::create(const RunConfig& c, std::FILE* log) {
  ClassifySplits s = read_splits(c.data, log);
  // The labels and the tokenizer come from the training examples alone.
  std::set<std::string> set;
  std::vector<std::string> texts;
  for (const auto& e : s.train) set.insert(e.label), texts.push_back(e.text);
  const std::vector<std::string> labels(set.begin(), set.end());
  GAZE_CHECK(labels.size() >= 2, DataError,
             "{}: the training data has only one label ('{}'); classification needs at least two",
             c.data.train, labels.empty() ? "" : labels[0]);
  models::ClassifierConfig mc = c.classifier;
  EncoderStart start = start_encoder(mc, c.tokenizer, texts, log);
  std::shared_ptr<text::Tokenizer> tok = start.tokenizer;
  std::fprintf(log, "tokenizer: %s, %lld ids; labels: %zu (%s)\n", tok->kind().c_str(),
               static_cast<long long>(tok->vocab_size()), labels.size(),
               fmt::format("{}", fmt::join(labels, ", ")).c_str());
  mc.num_classes = static_cast<int64_t>(labels.size());
  if (start.pooling) mc.pooling = *start.pooling;
  if (start.pooler) mc.pooler = *start.pooler;
  manual_seed(static_cast<uint64_t>(c.train.seed));
  auto model = std::make_shared<models::TransformerClassifier>(mc);
  start.init(*model);
  std::fprintf(log, "model: TransformerClassifier, %lld parameters\n",
               static_cast<long long>(parameter_count(*model)));
  std::unique_ptr<ClassifyTask> t(new ClassifyTask(std::make_unique<ClassifyPredictor>(
      tok, labels, std::move(model), c.data, c.train.batch_tokens)));
  t->use_data(c, std::move(s), log);
  return t;
}

std::unique_ptr<ClassifyTask> ClassifyTask::load(const std::string& dir) {
  return std::unique_ptr<ClassifyTask>(new ClassifyTask(ClassifyPredictor::load(dir)));
}

std::unique_ptr<ClassifyTask> ClassifyTask::resume(const RunConfig& c, const std::string& dir,
                                                   std::FILE* log) {
  std::unique_ptr<ClassifyTask> t = load(dir);
  t->use_data(c, read_splits(c.data, log), log);
  t->model().train();
  return t;
}

std::vector<int64_t> ClassifyTask::train_lengths() const {
  std::vector<int64_t> out;
  for (const auto& ids : train_enc_.ids) out.push_back(static_cast<int64_t>(ids.size()));
  return out;
}

ClassifyTask::BatchLoss ClassifyTask::loss(const std::vector<int64_t>& batch,
                                           double label_smoothing) {
  const models::Inputs in = p_->batch(train_enc_, batch);
  const Tensor& lengths = in.lengths;
  Tensor target = Tensor::empty(Shape{static_cast<int64_t>(batch.size())}, DType::i64);
  BatchLoss out;
  for (size_t b = 0; b < batch.size(); ++b) {
    target.data<int64_t>()[b] = train_enc_.labels[static_cast<size_t>(batch[b])];
    out.tokens += lengths.data<int64_t>()[b];
  }
  CrossEntropyOptions o;
  o.label_smoothing = label_smoothing;
  o.weight = class_weight_;
  out.mean = cross_entropy(p_->model().forward(in), target, o);
  out.divisor = cross_entropy_divisor(target, o);
  return out;
}

ClassifyTask::Scored ClassifyTask::score(const Encoded& enc) {
  Scored s;
  const auto probs = p_->probabilities(enc);
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& p = probs[i];
    s.predicted.push_back(std::max_element(p.begin(), p.end()) - p.begin());
    s.nll.push_back(
        -std::log(std::max(1e-30, static_cast<double>(p[static_cast<size_t>(enc.labels[i])]))));
  }
  return s;
}

metrics::ClassificationReport ClassifyTask::evaluate(const Encoded& enc, double* mean_loss) {
  const Scored s = score(enc);
  double nll = 0;
  for (const double x : s.nll) nll += x;
  if (mean_loss) *mean_loss = s.nll.empty() ? 0.0 : nll / static_cast<double>(s.nll.size());
  return metrics::classification_report(enc.labels, s.predicted, p_->labels());
}

std::string ClassifyTask::validate_part(int64_t part, int64_t parts) {
  Encoded sub;
  for (size_t i = static_cast<size_t>(part); i < dev_enc_.ids.size();
       i += static_cast<size_t>(parts)) {
    sub.ids.push_back(dev_enc_.ids[i]);
    if (!dev_enc_.surfaces.empty()) sub.surfaces.push_back(dev_enc_.surfaces[i]);
    sub.labels.push_back(dev_enc_.labels[i]);
  }
  const Scored s = score(sub);
  return nlohmann::json{{"predicted", s.predicted}, {"nll", s.nll}}.dump();
}

std::map<std::string, double> ClassifyTask::validate_merge(const std::vector<std::string>& parts) {
  Scored all;
  all.predicted.resize(dev_enc_.labels.size());
  all.nll.resize(dev_enc_.labels.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    const nlohmann::json j = nlohmann::json::parse(parts[p]);
    const auto predicted = j.at("predicted").get<std::vector<int64_t>>();
    const auto nll = j.at("nll").get<std::vector<double>>();
    for (size_t k = 0; k < predicted.size(); ++k) {
      const size_t i = p + k * parts.size();
      GAZE_CHECK(i < all.predicted.size() && nll.size() == predicted.size(), StateError,
                 "validation part {} of {} does not fit the validation data", p, parts.size());
      all.predicted[i] = predicted[k], all.nll[i] = nll[k];
    }
  }
  double nll = 0;  // summed in example order, whatever the number of parts
  for (const double x : all.nll) nll += x;
  const auto r = metrics::classification_report(dev_enc_.labels, all.predicted, p_->labels());
  const double loss = all.nll.empty() ? 0.0 : nll / static_cast<double>(all.nll.size());
  return {{"accuracy", r.accuracy}, {"macro_f1", r.macro.f1}, {"loss", loss}};
}

Report ClassifyTask::report_with_predictions(const std::vector<data::LabeledText>& examples,
                                             const std::string& source) {
  const Encoded enc = p_->encode(examples, source, true);
  const auto probs = p_->probabilities(enc);
  const auto& labels = p_->labels();
  std::vector<int64_t> predicted;
  std::vector<nlohmann::json> rows;
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& p = probs[i];
    const auto k = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    const auto gold = static_cast<size_t>(enc.labels[i]);
    predicted.push_back(static_cast<int64_t>(k));
    rows.push_back({{"input", examples[i].text},
                    {"gold", labels[gold]},
                    {"predicted", labels[k]},
                    {"confidence", p[k]},
                    {"gold_probability", p[gold]}});
  }
  Report r = report_of(metrics::classification_report(enc.labels, predicted, labels));
  r.predictions = std::move(rows);
  return r;
}

std::optional<Report> ClassifyTask::test_report() {
  if (test_.empty()) return std::nullopt;
  return report_with_predictions(test_, test_source_);
}

EvalOptions ClassifyTask::eval_defaults() const {
  EvalOptions o;
  o.data = p_->data();
  return o;
}

Report ClassifyTask::evaluate_file(const std::string& path, const EvalOptions& o) {
  auto examples =
      data::read_classification(path, {o.data.format, o.data.text_column, o.data.label_column});
  name_labels(examples, o.data);
  return report_with_predictions(examples, path);
}

Report ClassifyTask::evaluate_split(const RunConfig& c, data::Split split,
                                    const EvalOptions& options) {
  if (c.data.split != DataSplit::modulo10) return Task::evaluate_split(c, split, options);
  GAZE_CHECK(split != data::Split::train, DataError, "gaze eval --split takes dev or test");
  auto examples =
      data::take_split(data::read_classification(
                           c.data.train, {c.data.format, c.data.text_column, c.data.label_column}),
                       split);
  name_labels(examples, c.data);
  return report_with_predictions(examples,
                                 fmt::format("{} ({} rows of data.split)", c.data.train,
                                             split == data::Split::test ? "test" : "dev"));
}

std::vector<std::string> ClassifyTask::training_inputs(const RunConfig& c) {
  auto all = data::read_classification(c.data.train,
                                       {c.data.format, c.data.text_column, c.data.label_column});
  if (c.data.split == DataSplit::modulo10) all = data::take_split(all, data::Split::train);
  std::vector<std::string> out;
  for (const auto& e : all) out.push_back(e.text);
  return out;
}

}  // namespace gaze::tasks
