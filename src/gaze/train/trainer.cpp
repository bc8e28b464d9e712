#include "gaze/train/trainer.h"

#include "gaze/train/param_groups.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "gaze/core/autocast.h"
#include "gaze/core/clock.h"
#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/core/threads.h"
#include "gaze/data/batching.h"
#include "gaze/dist/gradient_reducer.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/files.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/ops/arith.h"
#include "gaze/optim/average.h"
#include "gaze/optim/optimizer.h"
#include "gaze/optim/schedule.h"
#include "gaze/train/interrupt.h"
#include "gaze/train/progress.h"
#include "gaze/train/run_folder.h"
#include "gaze/train/tensorboard.h"

namespace gaze::train {
namespace fs = std::filesystem;
using json = nlohmann::json;

bool higher_is_better(Metric m) {
  return m != Metric::loss && m != Metric::wer && m != Metric::per;
}

config::Fields config_fields(TrainOptions& r, const std::vector<Metric>& metrics) {
  using config::field;
  return {
      field("seed", r.seed, 0),
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
      field("save_every", r.save_every, 0)
          .describe("steps between resumable checkpoints RUN/checkpoint-STEP (0: none)"),
      field("keep_last", r.keep_last, 0)
          .describe("how many checkpoint-STEP folders to keep, the newest (0: all)"),
      field("tensorboard", r.tensorboard)
          .describe("also write metrics.jsonl's lines as TensorBoard scalars in the run folder"),
      field("threads", r.threads, 0, kMaxThreads)};
}

std::vector<int64_t> batch_share(const std::vector<int64_t>& batch, int rank, int ranks) {
  std::vector<int64_t> share;
  for (size_t i = static_cast<size_t>(rank); i < batch.size(); i += static_cast<size_t>(ranks))
    share.push_back(batch[i]);
  return share;
}

namespace {

using Clock = SteadyClock;

// The threads of each of `ranks` processes on one machine when nothing says otherwise: the cores
// this process may use (mpirun binds each rank to its own by default), at most an equal share of
// the machine's.
int threads_per_rank(int ranks) {
  const int machine = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return std::max(1, std::min(omp_get_num_procs(), machine / std::max(1, ranks)));
}

// Under data parallelism each rank draws its own dropout masks, as the examples of one batch do in
// one process, from a stream of its own at a position fixed by the step: a run is reproducible bit
// for bit and resumes exactly, with any number of ranks.
void seed_dropout_for(int64_t step, int rank) {
  Generator& g = default_generator(RngPurpose::dropout);
  g.set_state({g.seed(),
               (static_cast<uint64_t>(rank) + 1) << 32 | static_cast<uint64_t>(RngPurpose::dropout),
               static_cast<uint64_t>(step) << 40});
}

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

// Seconds of one rank's training steps, for the data-parallel summary: computing (forward,
// backward, optimizer), communicating (the gradient sums backward did not hide) and waiting for
// the other ranks (at the per-step exchange of loss and progress).
struct StepTimes {
  double compute = 0, communication = 0, waiting = 0;
  int64_t steps = 0, tokens = 0;
};

class Loop {
 public:
  Loop(TrainableTask& task, const TrainOptions& o, const RunPlace& place)
      : task_(task),
        o_(o),
        out_(place.output_dir),
        log_(place.log),
        own_comm_(place.comm ? nullptr : dist::single_process()),
        comm_(place.comm ? *place.comm : *own_comm_),
        lead_(comm_.rank() == 0) {}

  TrainResult run(const std::string& resume_dir) {
    if (lead_) {
      std::error_code ec;
      fs::create_directories(out_, ec);
      GAZE_CHECK(!ec, DataError, "{}: cannot create the run folder ({})", out_, ec.message());
    }
    if (o_.threads > 0)
      set_num_threads(static_cast<int>(o_.threads));
    else if (comm_.local_size() > 1 && !std::getenv("GAZE_NUM_THREADS"))
      set_num_threads(threads_per_rank(comm_.local_size()));
    const std::vector<int64_t> lengths = task_.train_lengths();
    GAZE_CHECK(!lengths.empty(), DataError, "no training examples");
    const data::BatchOptions bo{o_.batch_tokens, o_.batch_size, true};
    // The number of batches does not depend on the shuffle: sorted lengths fix the boundaries.
    const auto per_epoch = static_cast<int64_t>(
        data::make_batches(lengths, {bo.max_tokens, bo.max_examples, false}, nullptr).size());
    // train.max_steps, when set, decides the length of the run whatever train.epochs says (as in
    // Hugging Face's Trainer): the epochs run on until it is reached.
    total_ = o_.max_steps > 0 ? o_.max_steps : per_epoch * o_.epochs;
    epochs_ = o_.max_steps > 0 ? (o_.max_steps + per_epoch - 1) / per_epoch : o_.epochs;
    if (o_.warmup_steps > total_ && o_.schedule != optim::ScheduleKind::constant)
      std::fprintf(log_,
                   "warning: train.warmup_steps (%lld) is longer than the run (%lld steps): the "
                   "learning rate never reaches train.lr\n",
                   static_cast<long long>(o_.warmup_steps), static_cast<long long>(total_));

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
    if (comm_.size() > 1) start_data_parallel(lengths);

    if (o_.tensorboard && lead_) events_ = std::make_unique<EventWriter>(out_);
    // A checkpoint-STEP this run will write must not be found taken by something else mid-run.
    if (o_.save_every > 0 && lead_) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(out_, ec)) {
        const auto step = checkpoint_step(e.path().filename().string());
        if (step && *step > pos_.step && *step <= total_ && *step % o_.save_every == 0)
          io::check_checkpoint_target(e.path().string());
      }
    }
    Progress progress(log_, total_, epochs_, o_.log_every);
    progress_ = &progress;
    InterruptGuard guard;
    TrainResult result;
    model.train();
    bool validated_now = false;
    while (pos_.step < total_ && pos_.epoch < epochs_ && !result.early_stopped) {
      Generator gen(static_cast<uint64_t>(o_.seed), 1000 + static_cast<uint64_t>(pos_.epoch));
      const auto batches = data::make_batches(lengths, bo, &gen);
      for (; pos_.batch < static_cast<int64_t>(batches.size()) && pos_.step < total_;
           ++pos_.batch) {
        // One process stops at once; ranks agree on stopping inside the step.
        if (comm_.size() == 1 && InterruptGuard::requested()) return interrupted(progress, result);
        if (!train_step(batches[static_cast<size_t>(pos_.batch)]))
          return interrupted(progress, result);
        if (o_.save_every > 0 && pos_.step % o_.save_every == 0) {
          ++pos_.batch;  // the checkpoint resumes after this batch
          save_numbered();
          --pos_.batch;
        }
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
      if (pos_.batch >= static_cast<int64_t>(batches.size())) {
        epoch_done(pos_.epoch);
        pos_ = next_epoch(pos_);
      }
      if (o_.eval_every == 0 && !validated_now) {
        result.early_stopped = validate();
        validated_now = true;
      }
    }
    if (!validated_now) validate();
    progress.finish();
    if (comm_.size() > 1) report_data_parallel();
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

  // One optimizer step on a global batch; false when the ranks agreed to stop (interrupted).
  bool train_step(const std::vector<int64_t>& batch) {
    const auto t0 = Clock::now();
    const int ranks = comm_.size();
    opt_->zero_grad();
    const std::vector<int64_t> share = ranks > 1 ? batch_share(batch, comm_.rank(), ranks) : batch;
    if (ranks > 1) seed_dropout_for(pos_.step, comm_.rank());
    TrainableTask::BatchLoss part;
    {
      AutocastGuard autocast(o_.precision);  // the backward keeps the forward's precision
      if (!share.empty()) part = task_.loss(share, o_.label_smoothing);
    }
    double value = 0;
    int64_t tokens = part.tokens;
    if (ranks == 1) {
      value = part.mean.dtype() == DType::f64 ? part.mean.item<double>() : part.mean.item<float>();
      check_loss(value);
      part.mean.backward();
    } else {
      // Each rank's mean weighs by its divisor: together, the mean over the whole batch.
      const double mine = part.divisor > 0
                              ? (part.mean.dtype() == DType::f64 ? part.mean.item<double>()
                                                                 : part.mean.item<float>())
                              : 0.0;
      double shared[4] = {part.divisor, mine * part.divisor, static_cast<double>(part.tokens),
                          InterruptGuard::requested() ? 1.0 : 0.0};
      const auto t_wait = Clock::now();
      comm_.allreduce_sum(shared, 4);
      times_.waiting += seconds_since(t_wait);
      if (shared[3] > 0) return false;
      value = shared[1] / shared[0];
      tokens = static_cast<int64_t>(shared[2]);
      check_loss(value);
      reducer_->prepare();
      if (part.divisor > 0) mul(part.mean, part.divisor / shared[0]).backward();
      reducer_->finish();
      times_.communication += reducer_->last_wait_seconds();
    }
    // The norm before clipping, logged; without clipping nothing is scaled.
    const double grad_norm =
        optim::clip_grad_norm_(opt_->params(), o_.clip_norm > 0 ? o_.clip_norm : INFINITY);
    const double lr = opt_->lr();
    opt_->step();
    if (average_) average_->update();
    sched_->step();
    ++pos_.step;
    times_.steps += 1, times_.tokens += tokens;
    times_.compute += seconds_since(t0);
    progress_->step(pos_.step, pos_.epoch, value, lr, tokens);
    log_step(value, lr, tokens, grad_norm);
    return true;
  }

  // Every log_every steps (and at the last), a training line in metrics.jsonl: the means over the
  // steps since the previous line, the learning rate of the last, and the time since the start.
  void log_step(double loss, double lr, int64_t tokens, double grad_norm) {
    window_.loss += loss, window_.grad_norm += grad_norm, window_.tokens += tokens;
    ++window_.steps;
    epoch_.loss += loss, epoch_.tokens += tokens, ++epoch_.steps;
    if (pos_.step % o_.log_every != 0 && pos_.step != total_) return;
    const double seconds = seconds_since(window_.start), n = static_cast<double>(window_.steps);
    const json line = {{"step", pos_.step},
                       {"epoch", pos_.epoch + 1},
                       {"train_loss", window_.loss / n},
                       {"lr", lr},
                       {"grad_norm", window_.grad_norm / n},
                       {"tokens_per_second", seconds > 0 ? window_.tokens / seconds : 0.0},
                       {"elapsed", seconds_since(started_)}};
    if (lead_) std::ofstream(out_ + "/metrics.jsonl", std::ios::app) << line.dump() << "\n";
    if (events_)
      for (const char* k : {"train_loss", "lr", "grad_norm", "tokens_per_second"})
        events_->scalar(std::string("train/") + k, pos_.step, line[k].get<double>());
    window_ = Window{};
  }

  // The end of an epoch, for people: its mean loss and speed.
  void epoch_done(int64_t epoch) {
    const double seconds = seconds_since(epoch_.start), n = std::max(1.0, epoch_.steps);
    if (epoch_.steps > 0)
      progress_->message(
          fmt::format("epoch {}/{} done: {} steps, train loss {:.4f}, {:.0f} tok/s, {}", epoch + 1,
                      epochs_, static_cast<int64_t>(epoch_.steps), epoch_.loss / n,
                      seconds > 0 ? epoch_.tokens / seconds : 0.0, format_duration(seconds)));
    epoch_ = Window{};
  }

  void check_loss(double value) const {
    GAZE_CHECK(std::isfinite(value), StateError,
               "the training loss became {} at step {}; lower train.lr or set train.clip_norm",
               value, pos_.step + 1);
  }

  // Every rank must start from the same weights on the same data: rank 0's weights go to all, and
  // a rank whose data, tokenizer or model differ (another file system, another version) stops the
  // run with a message rather than training something else.
  void start_data_parallel(const std::vector<int64_t>& lengths) {
    std::string fingerprint =
        fmt::format("{} examples, {} tokens;", lengths.size(),
                    std::accumulate(lengths.begin(), lengths.end(), int64_t{0}));
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the lengths: the tokenizer shows in them
    for (const int64_t x : lengths) h = (h ^ static_cast<uint64_t>(x)) * 1099511628211ull;
    fingerprint += fmt::format(" lengths {:016x};", h);
    for (const auto& [name, t] : task_.model().named_parameters())
      fingerprint += fmt::format(" {} {}", name, t.shape_str());
    const std::vector<std::string> all = comm_.allgather(fingerprint);
    for (size_t r = 1; r < all.size(); ++r)
      GAZE_CHECK(all[r] == all[0], DataError,
                 "rank {} sees other training data or another model than rank 0 ({} there, {} on "
                 "rank 0); every rank must read the same files with the same gaze",
                 r, all[r].substr(0, 80), all[0].substr(0, 80));
    {
      NoGradGuard no_grad;
      for (auto& [name, t] : task_.model().state_dict()) {
        comm_.broadcast(t.raw_data(), static_cast<int64_t>(t.nbytes()), 0);
        t.storage()->bump_version();
      }
    }
    reducer_ = std::make_unique<dist::GradientReducer>(comm_, opt_->params());
    std::fprintf(log_,
                 "data-parallel: %d ranks (%s), %d threads each; each takes 1/%d of every batch "
                 "of train.batch_size %lld; %lld gradient buckets, %.1f MB per rank per step\n",
                 comm_.size(), comm_.name().c_str(), num_threads(), comm_.size(),
                 static_cast<long long>(o_.batch_size), static_cast<long long>(reducer_->buckets()),
                 static_cast<double>(reducer_->bytes_per_step()) / 1e6);
  }

  // Per-step times of every rank, in the log and in RUN/data_parallel.json.
  void report_data_parallel() {
    const json mine = {{"rank", comm_.rank()},
                       {"steps", times_.steps},
                       {"tokens", times_.tokens},
                       {"compute_seconds", times_.compute - times_.communication - times_.waiting},
                       {"communication_seconds", times_.communication},
                       {"waiting_seconds", times_.waiting}};
    const std::vector<std::string> all = comm_.allgather(mine.dump());
    if (!lead_) return;
    json ranks = json::array();
    for (const auto& r : all) ranks.push_back(json::parse(r));
    const double steps = std::max<double>(1.0, static_cast<double>(times_.steps));
    const json summary = {{"ranks", comm_.size()},
                          {"threads_per_rank", num_threads()},
                          {"mpi", comm_.name()},
                          {"bytes_per_rank_per_step", reducer_->bytes_per_step()},
                          {"per_rank", ranks}};
    io::write_file_atomic(out_ + "/data_parallel.json", summary.dump(2) + "\n");
    progress_->message(fmt::format(
        "data-parallel, rank 0 per step: {:.1f} ms computing, {:.1f} ms communicating, {:.1f} ms "
        "waiting for other ranks ({} steps)",
        1e3 * mine["compute_seconds"].get<double>() / steps, 1e3 * times_.communication / steps,
        1e3 * times_.waiting / steps, times_.steps));
  }

  // Validates, logs, saves best/last; returns true when early stopping should end the run.
  bool validate() {
    auto& model = task_.model();
    // Validated and saved: the average, when there is one; in float32 whatever the caller's
    // autocast.
    optim::AverageScope averaged(average_.get());
    const AutocastGuard fp32(Precision::fp32);
    model.eval();
    const auto t0 = Clock::now();
    progress_->transient(fmt::format("step {}: validating ...", pos_.step));
    // Each rank scores its share of the validation data; all merge the same parts, so all agree on
    // the best checkpoint and on early stopping.
    const std::map<std::string, double> m =
        comm_.size() == 1 ? task_.validate()
                          : task_.validate_merge(
                                comm_.allgather(task_.validate_part(comm_.rank(), comm_.size())));
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
    line["seconds"] = seconds_since(t0);
    line["elapsed"] = seconds_since(started_);
    if (lead_) std::ofstream(out_ + "/metrics.jsonl", std::ios::app) << line.dump() << "\n";
    if (events_)
      for (const auto& [k, x] : m) events_->scalar("dev/" + k, pos_.step, x);
    std::string text = fmt::format("step {} (epoch {}) validation:", pos_.step, epoch);
    for (const auto& [k, x] : m) text += fmt::format(" {} {:.4f}", k, x);
    progress_->message(text + (better ? "  (best so far, saved)" : ""));
    save(out_ + "/last", true);
    return o_.patience > 0 && pos_.bad_evals >= o_.patience;
  }

  // With a weight average, call with the average swapped in: the model's tensors are the average
  // and the training state keeps the training weights.
  void save(const std::string& dir, bool with_training) {
    if (!lead_) return;  // every rank holds the same weights and state; one writes them
    const auto t0 = Clock::now();
    write_checkpoint(dir, with_training);
    if (comm_.size() > 1 && !warned_kill_timeout_) warn_kill_timeout(seconds_since(t0));
  }

  // train.save_every: RUN/checkpoint-STEP (with the training state, resumable), then only the
  // train.keep_last newest of them stay.
  void save_numbered() {
    {
      optim::AverageScope averaged(average_.get());
      save(fmt::format("{}/checkpoint-{}", out_, pos_.step), true);
    }
    if (!lead_) return;
    progress_->message(fmt::format("step {}: saved {}/checkpoint-{}", pos_.step, out_, pos_.step));
    if (o_.keep_last > 0) prune_numbered_checkpoints(out_, o_.keep_last);
  }

  // Ctrl-C on mpirun: Open MPI sends the ranks SIGTERM after odls_base_sigkill_timeout seconds (1
  // by default) and SIGKILL as long again after it. An interrupted run saves after its current
  // step; say so when that may take longer than the ranks are given.
  void warn_kill_timeout(double save_seconds) {
    warned_kill_timeout_ = true;
    const double step = times_.steps > 0 ? times_.compute / static_cast<double>(times_.steps) : 0;
    const char* set = std::getenv("OMPI_MCA_odls_base_sigkill_timeout");
    const double given = set ? std::atof(set) : 1.0;
    const double needed = 2 * (step + save_seconds);
    if (needed <= 0.5 * given) return;
    progress_->message(fmt::format(
        "note: a step and a checkpoint take {:.1f} s here, and mpirun gives its ranks {:.0f} s "
        "after Ctrl-C before it kills them; to keep an interrupted run's checkpoint, launch with "
        "mpirun --mca odls_base_sigkill_timeout {:.0f}",
        step + save_seconds, given, std::ceil(std::max(10.0, 4 * needed))));
  }

  void write_checkpoint(const std::string& dir, bool with_training) {
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
    if (lead_) truncate_metrics(out_, pos_.step);  // the validations after this step are made again
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
  std::unique_ptr<dist::Communicator> own_comm_;  // one process, when the caller gives none
  dist::Communicator& comm_;
  bool lead_;  // rank 0: writes checkpoints, metrics and progress
  std::unique_ptr<dist::GradientReducer> reducer_;  // data-parallel runs
  StepTimes times_;
  // Sums over the steps since the last training log line, and over the epoch.
  struct Window {
    double loss = 0, grad_norm = 0, tokens = 0, steps = 0;
    Clock::time_point start = Clock::now();
  };
  Window window_, epoch_;
  Clock::time_point started_ = Clock::now();
  bool warned_kill_timeout_ = false;
  std::unique_ptr<EventWriter> events_;  // train.tensorboard
  int64_t total_ = 0, epochs_ = 0;       // the run's steps and epochs
  Position pos_;
  std::unique_ptr<optim::Optimizer> opt_;
  std::unique_ptr<optim::LRScheduler> sched_;
  std::unique_ptr<optim::ExponentialAverage> average_;  // train.ema_decay
  Progress* progress_ = nullptr;
};

}  // namespace

TrainResult run_training(TrainableTask& task, const TrainOptions& options, const RunPlace& place) {
  Loop loop(task, options, place);
  return loop.run(place.resume_dir);
}

}  // namespace gaze::train
