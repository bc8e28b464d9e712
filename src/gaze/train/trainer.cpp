#include "gaze/train/trainer.h"

#include "gaze/train/param_groups.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/core/threads.h"
#include "gaze/data/batching.h"
#include "gaze/io/checkpoint.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/optim/average.h"
#include "gaze/optim/optimizer.h"
#include "gaze/optim/schedule.h"
#include "gaze/train/interrupt.h"
#include "gaze/train/progress.h"
#include "gaze/train/run_folder.h"

namespace gaze::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

bool higher_is_better(Metric m) {
  return m != Metric::loss && m != Metric::wer && m != Metric::per;
}

config::Fields config_fields(TrainOptions& r, const std::vector<Metric>& metrics) {
  using config::field;
  return {field("seed", r.seed, 0),
          field("epochs", r.epochs, 1),
          field("max_steps", r.max_steps, 0),
          field("batch_tokens", r.batch_tokens, 1),
          field("batch_size", r.batch_size, 1),
          field("optimizer", r.optimizer),
          field("lr", r.lr, 0.0, 10.0),
          field("weight_decay", r.weight_decay, 0.0, 10.0),
          field("beta1", r.beta1, 0.0, 1.0),
          field("beta2", r.beta2, 0.0, 1.0),
          field("eps", r.eps, 0.0, 1.0),
          field("momentum", r.momentum, 0.0, 1.0),
          field("schedule", r.schedule),
          field("warmup_steps", r.warmup_steps, 0),
          field("min_lr_ratio", r.min_lr_ratio, 0.0, 1.0),
          field("clip_norm", r.clip_norm, 0.0, 1e9),
          field("label_smoothing", r.label_smoothing, 0.0, 1.0),
          field("class_weights", r.class_weights),
          field("init_from", r.init_from),
          field("freeze_backbone", r.freeze_backbone),
          field("freeze_layers", r.freeze_layers, 0),
          field("backbone_lr", r.backbone_lr, 0.0, 10.0),
          field("layer_lr_decay", r.layer_lr_decay, 0.0, 1.0),
          field("ema_decay", r.ema_decay, 0.0, 0.999999),
          field("precision", r.precision, {Precision::fp32, Precision::bf16}),
          field("eval_every", r.eval_every, 0),
          field("metric", r.metric, metrics),
          field("patience", r.patience, 0),
          field("log_every", r.log_every, 1),
          field("threads", r.threads, 0, kMaxThreads)};
}

namespace {

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                 std::vector<Tensor> params) {
  if (o.optimizer == OptimizerKind::sgd)
    return std::make_unique<optim::SGD>(std::move(params),
                                        optim::SgdOptions{o.lr, o.momentum, 0.0, o.weight_decay});
  const optim::AdamOptions a{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay};
  return std::make_unique<optim::Adam>(std::move(params), a, o.optimizer == OptimizerKind::adamw);
}

// Where the loop stands; saved in the checkpoint so a resumed run picks up at the same batch.
struct Position {
  int64_t epoch = 0, batch = 0, step = 0;
  double best = 0;
  int64_t best_step = -1, bad_evals = 0;
  // best is null until a first validation (JSON has no infinities).
  json to_json() const {
    return {{"epoch", epoch},         {"batch", batch},
            {"step", step},           {"best", std::isfinite(best) ? json(best) : json(nullptr)},
            {"best_step", best_step}, {"bad_evals", bad_evals}};
  }
  // The position saved in a checkpoint, checked: a hostile or damaged training.safetensors must
  // fail here with a message, not index batches out of range later. `none` is the best metric
  // before any validation (+-inf, by the metric's direction).
  static Position from(const std::string& text, double none) {
    const json j = json::parse(text);
    GAZE_CHECK(j.is_object(), DataError, "the training position must be a JSON object");
    auto count = [&](const char* key, int64_t min) {
      GAZE_CHECK(j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() >= min,
                 DataError, "the training position's \"{}\" must be an integer >= {}, got {}", key,
                 min, j.contains(key) ? j[key].dump() : "nothing");
      return j[key].get<int64_t>();
    };
    Position p;
    p.epoch = count("epoch", 0), p.batch = count("batch", 0), p.step = count("step", 0);
    p.best_step = count("best_step", -1), p.bad_evals = count("bad_evals", 0);
    GAZE_CHECK(j.contains("best") && (j["best"].is_null() || j["best"].is_number()), DataError,
               "the training position's \"best\" must be a number or null, got {}",
               j.contains("best") ? j["best"].dump() : "nothing");
    p.best = j["best"].is_null() ? none : j["best"].get<double>();
    GAZE_CHECK(std::isfinite(p.best) || p.best_step < 0, DataError,
               "the training position has a best step {} but no best value", p.best_step);
    return p;
  }
};

class Loop {
 public:
  Loop(TrainableTask& task, const TrainOptions& o, std::string out, std::FILE* log)
      : task_(task), o_(o), out_(std::move(out)), log_(log) {}

  TrainResult run(const std::string& resume_dir) {
    std::error_code ec;
    fs::create_directories(out_, ec);
    GAZE_CHECK(!ec, DataError, "{}: cannot create the run folder ({})", out_, ec.message());
    if (o_.threads > 0) set_num_threads(static_cast<int>(o_.threads));
    const std::vector<int64_t> lengths = task_.train_lengths();
    GAZE_CHECK(!lengths.empty(), DataError, "no training examples");
    const data::BatchOptions bo{o_.batch_tokens, o_.batch_size, true};
    // The number of batches does not depend on the shuffle: sorted lengths fix the boundaries.
    const auto per_epoch = static_cast<int64_t>(
        data::make_batches(lengths, {bo.max_tokens, bo.max_examples, false}, nullptr).size());
    total_ =
        o_.max_steps > 0 ? std::min(o_.max_steps, per_epoch * o_.epochs) : per_epoch * o_.epochs;

    auto& model = task_.model();
    // Frozen parameters (pretrained tables, frozen layers) are not the optimizer's.
    ParamPlan plan = plan_parameters(model.named_parameters(), o_);
    if (plan.frozen > 0 || o_.backbone_lr > 0 || o_.layer_lr_decay != 1.0)
      std::fprintf(log_,
                   "fine-tuning: %lld tensors frozen, %zu trained (backbone of %lld layers)\n",
                   static_cast<long long>(plan.frozen), plan.params.size(),
                   static_cast<long long>(plan.layers));
    if (o_.ema_decay > 0)
      average_ = std::make_unique<optim::ExponentialAverage>(plan.params, o_.ema_decay);
    opt_ = make_optimizer(o_, std::move(plan.params));
    // Without the instructions autocast leaves the products in fp32 by itself; say so once.
    if (std::string why;
        o_.precision != Precision::fp32 && !kernels::precision_supported(o_.precision, &why))
      std::fprintf(log_, "train.precision %s: %s; training in fp32\n",
                   enum_name(o_.precision).c_str(), why.c_str());
    opt_->set_lr_scales(std::move(plan.scales));
    sched_ = std::make_unique<optim::LRScheduler>(
        *opt_, optim::Schedule{o_.schedule, o_.warmup_steps, total_, o_.min_lr_ratio});
    if (!resume_dir.empty())
      resume(resume_dir);
    else
      pos_.best = higher_is_better(o_.metric) ? -INFINITY : INFINITY;

    Progress progress(log_, total_, o_.epochs, o_.log_every);
    progress_ = &progress;
    InterruptGuard guard;
    TrainResult result;
    model.train();
    bool validated_now = false;
    while (pos_.step < total_ && pos_.epoch < o_.epochs && !result.early_stopped) {
      Generator gen(static_cast<uint64_t>(o_.seed), 1000 + static_cast<uint64_t>(pos_.epoch));
      const auto batches = data::make_batches(lengths, bo, &gen);
      for (; pos_.batch < static_cast<int64_t>(batches.size()) && pos_.step < total_;
           ++pos_.batch) {
        if (InterruptGuard::requested()) return interrupted(progress, result);
        train_step(batches[static_cast<size_t>(pos_.batch)]);
        validated_now = false;
        if (o_.eval_every > 0 && pos_.step % o_.eval_every == 0) {
          ++pos_.batch;  // the checkpoint resumes after this batch
          result.early_stopped = validate();
          --pos_.batch;
          validated_now = true;
          if (result.early_stopped) break;
        }
      }
      if (result.early_stopped) break;
      if (pos_.batch >= static_cast<int64_t>(batches.size())) pos_ = next_epoch(pos_);
      if (o_.eval_every == 0 && !validated_now) {
        result.early_stopped = validate();
        validated_now = true;
      }
    }
    if (!validated_now) validate();
    progress.finish();
    result.steps = pos_.step;
    result.best_metric = pos_.best;
    result.best_step = pos_.best_step;
    if (result.early_stopped)
      std::fprintf(log_, "early stop: %s did not improve for %lld validations\n",
                   enum_name(o_.metric).c_str(), static_cast<long long>(o_.patience));
    return result;
  }

 private:
  static Position next_epoch(Position p) {
    ++p.epoch;
    p.batch = 0;
    return p;
  }

  void train_step(const std::vector<int64_t>& batch) {
    int64_t tokens = 0;
    opt_->zero_grad();
    Tensor loss;
    {
      AutocastGuard autocast(o_.precision);  // the backward keeps the forward's precision
      loss = task_.loss(batch, o_.label_smoothing, &tokens);
    }
    const double value = loss.dtype() == DType::f64 ? loss.item<double>() : loss.item<float>();
    GAZE_CHECK(std::isfinite(value), StateError,
               "the training loss became {} at step {}; lower train.lr or set train.clip_norm",
               value, pos_.step + 1);
    loss.backward();
    if (o_.clip_norm > 0) optim::clip_grad_norm_(opt_->params(), o_.clip_norm);
    const double lr = opt_->lr();
    opt_->step();
    if (average_) average_->update();
    sched_->step();
    ++pos_.step;
    progress_->step(pos_.step, pos_.epoch, value, lr, tokens);
  }

  // Validates, logs, saves best/last; returns true when early stopping should end the run.
  bool validate() {
    auto& model = task_.model();
    // Validated and saved: the average, when there is one; in float32 whatever the caller's
    // autocast.
    optim::AverageScope averaged(average_.get());
    const AutocastGuard fp32(Precision::fp32);
    model.eval();
    const auto t0 = std::chrono::steady_clock::now();
    const std::map<std::string, double> m = task_.validate();
    model.train();
    const std::string metric = enum_name(o_.metric);
    GAZE_CHECK(m.count(metric), DataError, "train.metric '{}' is not computed by this task",
               metric);
    const double v = m.at(metric);
    const bool better = higher_is_better(o_.metric) ? v > pos_.best : v < pos_.best;
    if (better) {
      pos_.best = v, pos_.best_step = pos_.step, pos_.bad_evals = 0;
      save(out_ + "/best", false);
    } else {
      ++pos_.bad_evals;
    }
    // The epoch (1-based) of the last batch trained: an epoch-end validation runs after the
    // position has moved to the next epoch's first batch.
    const int64_t epoch = pos_.batch == 0 ? pos_.epoch : pos_.epoch + 1;
    json line = {{"step", pos_.step}, {"epoch", epoch}, {"lr", opt_->lr()}, {"best", better}};
    for (const auto& [k, x] : m) line[k] = x;
    line["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ofstream(out_ + "/metrics.jsonl", std::ios::app) << line.dump() << "\n";
    std::string text = fmt::format("step {} (epoch {}) validation:", pos_.step, epoch);
    for (const auto& [k, x] : m) text += fmt::format(" {} {:.4f}", k, x);
    progress_->message(text + (better ? "  (best so far, saved)" : ""));
    save(out_ + "/last", true);
    return o_.patience > 0 && pos_.bad_evals >= o_.patience;
  }

  // With a weight average, call with the average swapped in: the model's tensors are the average
  // and the training state keeps the training weights.
  void save(const std::string& dir, bool with_training) {
    io::TrainingState st = io::capture_training_state(*opt_, sched_.get(), pos_.to_json().dump());
    if (average_) {
      st.average_tensors = average_->state_tensors();
      st.average_updates = average_->updates();
    }
    io::save_checkpoint(dir, task_.model(), task_.model().config_json(),
                        with_training ? &st : nullptr,
                        [this](const std::string& tmp) { task_.save_assets(tmp); });
  }

  void resume(const std::string& dir) {
    const io::Checkpoint ck = io::load_checkpoint(dir);
    GAZE_CHECK(ck.training.has_value(), DataError,
               "{}: this checkpoint has no training state (resume from a run's 'last' folder)",
               dir);
    io::restore_training_state(*ck.training, *opt_, sched_.get());
    try {
      restore_average(*ck.training);
    } catch (const ValueError& e) {
      throw DataError(
          fmt::format("{}: {} (the trained parameters must be those of the run that wrote "
                      "it: train.freeze_* unchanged)",
                      dir, e.what()));
    }
    try {
      pos_ =
          Position::from(ck.training->progress, higher_is_better(o_.metric) ? -INFINITY : INFINITY);
    } catch (const json::exception& e) {
      throw DataError(fmt::format("{}: the training position is unreadable ({})", dir, e.what()));
    } catch (const DataError& e) {
      throw DataError(fmt::format("{}: {}", dir, e.what()));
    }
    truncate_metrics(out_, pos_.step);  // the validations after this step are made again
    std::fprintf(log_, "resuming from %s at step %lld (epoch %lld)\n", dir.c_str(),
                 static_cast<long long>(pos_.step), static_cast<long long>(pos_.epoch + 1));
  }

  // The model holds what the checkpoint's model tensors held: the average, when the run kept one.
  void restore_average(const io::TrainingState& st) {
    if (st.average_tensors.empty()) {
      if (average_)
        std::fprintf(log_, "the checkpoint has no weight average: it starts from these weights\n");
      return;
    }
    auto params = opt_->params();
    if (average_) {
      average_->load_state(st.average_tensors, st.average_updates, /*swapped=*/true);
      average_->swap();  // the training weights back into the model, the average aside
      return;
    }
    // train.ema_decay is off now: training continues from the training weights.
    optim::ExponentialAverage training_weights(params, 0.5);
    training_weights.load_state(st.average_tensors, st.average_updates, /*swapped=*/true);
    training_weights.swap();
    std::fprintf(log_, "train.ema_decay is 0: the checkpoint's weight average is dropped\n");
  }

  TrainResult interrupted(Progress& progress, TrainResult r) {
    {
      optim::AverageScope averaged(average_.get());
      save(out_ + "/last", true);
    }
    progress.message(fmt::format("interrupted at step {}: saved a resumable checkpoint in {}/last",
                                 pos_.step, out_));
    progress.finish();
    r.interrupted = true;
    r.steps = pos_.step;
    r.best_metric = pos_.best;
    r.best_step = pos_.best_step;
    return r;
  }

  TrainableTask& task_;
  const TrainOptions& o_;
  std::string out_;
  std::FILE* log_;
  int64_t total_ = 0;
  Position pos_;
  std::unique_ptr<optim::Optimizer> opt_;
  std::unique_ptr<optim::LRScheduler> sched_;
  std::unique_ptr<optim::ExponentialAverage> average_;  // train.ema_decay
  Progress* progress_ = nullptr;
};

}  // namespace

TrainResult run_training(TrainableTask& task, const TrainOptions& options,
                         const std::string& output_dir, const std::string& resume_dir,
                         std::FILE* log) {
  Loop loop(task, options, output_dir, log);
  return loop.run(resume_dir);
}

}  // namespace gaze::train
