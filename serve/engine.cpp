#include "serve/engine.h"

#include <algorithm>

#include "gaze/core/error.h"
#include "gaze/core/threads.h"
#include "gaze/explain/html.h"
#include "gaze/explain/json_export.h"
#include "gaze/tasks/task.h"

namespace gaze::serve {
namespace {

Outcome failure(int status, std::string type, std::string message) {
  Outcome o;
  o.status = status;
  o.error_type = std::move(type);
  o.error = std::move(message);
  return o;
}

}  // namespace

std::vector<ServedModel> load_models(const std::vector<ModelSpec>& specs) {
  std::vector<ServedModel> out;
  for (const auto& s : specs)
    out.push_back({s.name, s.dir, tasks::load_predictor(tasks::resolve_model_dir(s.dir), s.load)});
  return out;
}

Engine::Engine(const Loader& load, const EngineOptions& options, Metrics& metrics)
    : options_(options), metrics_(metrics) {
  std::exception_ptr error;
  bool loaded = false;
  thread_ = std::thread([&, this] {
    bool ok = false;  // the constructor's locals are gone once `loaded` is seen
    {
      std::unique_lock lock(mu_);
      try {
        set_num_threads(options_.threads > 0 ? options_.threads : num_threads());
        models_ = load();
        queues_.resize(models_.size());
      } catch (...) {
        error = std::current_exception();
      }
      ok = !error;
      loaded = true;
    }
    cv_.notify_all();
    if (ok) loop();
  });
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return loaded; });
  lock.unlock();
  if (error) {
    thread_.join();
    std::rethrow_exception(error);
  }
}

Engine::~Engine() {
  stop();
}

int Engine::find(const std::string& name) const {
  for (size_t i = 0; i < models_.size(); ++i)
    if (models_[i].name == name) return static_cast<int>(i);
  return -1;
}

void Engine::submit(size_t m, std::shared_ptr<Job> job, Done done) {
  const auto n = static_cast<int64_t>(job->texts.size());
  {
    const std::lock_guard lock(mu_);
    if (stopping_) throw HttpError(503, "unavailable", "the server is shutting down");
    Queue& q = queues_.at(m);
    if (q.inputs + n > options_.max_queue) {
      // Jobs whose clients gave up (504) need no room: drop them before refusing anyone.
      std::erase_if(q.jobs, [&](const Pending& p) {
        if (!p.job->cancelled) return false;
        q.inputs -= std::ssize(p.job->texts);
        return true;
      });
    }
    if (q.inputs + n > options_.max_queue)
      throw HttpError(429, "overloaded",
                      fmt::format("model '{}' has {} inputs waiting (the limit is {}); retry later",
                                  models_[m].name, q.inputs, options_.max_queue));
    q.inputs += n;
    q.jobs.push_back({std::move(job), std::move(done), {}});
    metrics_.set_queue_depth(models_[m].name, q.inputs);
  }
  cv_.notify_one();
}

void Engine::flush() {
  {
    const std::lock_guard lock(mu_);
    flushing_ = true;
  }
  cv_.notify_one();
}

void Engine::stop() {
  {
    const std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

int Engine::oldest() const {
  int best = -1;
  for (size_t m = 0; m < queues_.size(); ++m) {
    if (queues_[m].jobs.empty()) continue;
    if (best < 0 || queues_[m].jobs.front().job->arrival <
                        queues_[static_cast<size_t>(best)].jobs.front().job->arrival)
      best = static_cast<int>(m);
  }
  return best;
}

int64_t Engine::compatible_inputs(size_t m) const {
  const auto& jobs = queues_[m].jobs;
  int64_t n = 0;
  for (const auto& p : jobs)
    if (p.job->batch_key == jobs.front().job->batch_key) n += std::ssize(p.job->texts);
  return n;
}

void Engine::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || oldest() >= 0; });
    const int found = oldest();
    if (found < 0) break;  // stopping, and nothing is left
    const auto m = static_cast<size_t>(found);
    // Let the batch fill until its first job has waited max_wait_ms, or it holds as many inputs
    // as the model's previous batch: the clients that were waiting then are likely the ones
    // sending now. So a lone client is answered at once, and under steady load batches stay
    // full; when the load grows, requests pile up during a batch and the next one is larger.
    // Only this thread removes jobs, so the first job stays first meanwhile.
    const auto deadline =
        queues_[m].jobs.front().job->arrival + std::chrono::milliseconds(options_.max_wait_ms);
    const int64_t enough = std::clamp<int64_t>(queues_[m].last_batch, 1, options_.max_batch_inputs);
    while (!stopping_ && !flushing_ && compatible_inputs(m) < enough && Clock::now() < deadline)
      cv_.wait_until(lock, deadline);
    std::vector<Pending> batch = take_batch(m, lock);
    if (batch.empty()) continue;
    queues_[m].last_batch = 0;
    for (const auto& b : batch) queues_[m].last_batch += std::ssize(b.job->texts);
    lock.unlock();
    run_batch(m, batch);
    lock.lock();
  }
}

std::vector<Engine::Pending> Engine::take_batch(size_t m, std::unique_lock<std::mutex>& lock) {
  Queue& q = queues_[m];
  const std::string key = q.jobs.front().job->batch_key;
  std::vector<Pending> candidates;
  int64_t inputs = 0;
  for (auto it = q.jobs.begin(); it != q.jobs.end();) {
    const auto n = std::ssize(it->job->texts);
    if (it->job->batch_key != key) {
      ++it;
      continue;
    }
    if (!candidates.empty() && inputs + n > options_.max_batch_inputs) break;
    inputs += n;
    q.inputs -= n;
    candidates.push_back(std::move(*it));
    it = q.jobs.erase(it);
  }
  metrics_.set_queue_depth(models_[m].name, q.inputs);
  lock.unlock();

  // Measured here, not on the HTTP threads: tokenizing is the model's work. A text too long for
  // the model is refused unless its request asked for truncation.
  const tasks::Predictor& p = *models_[m].predictor;
  std::vector<Pending> batch, later;
  int64_t tokens = 0;
  for (auto& c : candidates) {
    if (c.job->cancelled) continue;
    if (c.sizes.empty()) {  // a job has at least one text
      try {
        c.sizes = p.measure(c.job->texts);
      } catch (const std::exception& e) {
        finish(c, failure(422, "validation", e.what()));
        continue;
      }
    }
    int64_t t = 0;
    std::string too_long;
    for (size_t i = 0; i < c.sizes.size(); ++i) {
      t += c.sizes[i].tokens;
      if (c.sizes[i].cut && !c.job->truncation && too_long.empty())
        too_long = fmt::format(
            "input {} is longer than the {} tokens model '{}' reads; shorten it or send "
            "\"parameters\": {{\"truncation\": true}} to cut it",
            i, p.max_length(), models_[m].name);
    }
    if (!too_long.empty()) {
      finish(c, failure(422, "validation", too_long));
      continue;
    }
    if (!later.empty() || (!batch.empty() && tokens + t > options_.max_batch_tokens)) {
      later.push_back(std::move(c));
      continue;
    }
    tokens += t;
    batch.push_back(std::move(c));
  }

  lock.lock();
  // What did not fit goes back, in arrival order, for the next batch.
  for (auto& c : later) {
    const auto at =
        std::upper_bound(q.jobs.begin(), q.jobs.end(), c.job->arrival,
                         [](Clock::time_point t, const Pending& x) { return t < x.job->arrival; });
    q.inputs += std::ssize(c.job->texts);
    q.jobs.insert(at, std::move(c));
  }
  metrics_.set_queue_depth(models_[m].name, q.inputs);
  return batch;
}

void Engine::run_batch(size_t m, std::vector<Pending>& batch) {
  const ServedModel& model = models_[m];
  tasks::Predictor& p = *model.predictor;
  const Job& first = *batch.front().job;
  const auto start = Clock::now();
  std::vector<std::string> texts;
  int64_t tokens = 0;
  for (const auto& b : batch) {
    metrics_.queued(model.name, std::chrono::duration<double>(start - b.job->arrival).count());
    texts.insert(texts.end(), b.job->texts.begin(), b.job->texts.end());
    for (const auto& s : b.sizes) tokens += s.tokens;
  }
  std::vector<Outcome> outcomes(batch.size());
  try {
    if (first.endpoint == Endpoint::explain) {
      const explain::Explanation e = p.explain(first.texts.at(0), first.explain);
      outcomes[0].html = first.html;
      outcomes[0].document = first.html ? explain::to_html(e) : explain::to_json(e);
      if (e.truncated) outcomes[0].truncated = {0};
    } else {
      std::vector<nlohmann::json> all;
      if (first.endpoint == Endpoint::predict) {
        all = p.predict(texts, first.predict);
      } else {
        for (auto& v : p.embed(texts)) all.emplace_back(std::move(v));
      }
      size_t next = 0;
      for (size_t b = 0; b < batch.size(); ++b) {
        for (size_t i = 0; i < batch[b].job->texts.size(); ++i) {
          outcomes[b].outputs.push_back(std::move(all.at(next++)));
          if (batch[b].sizes.at(i).cut) outcomes[b].truncated.push_back(static_cast<int64_t>(i));
        }
      }
    }
  } catch (const std::exception& e) {
    if (batch.size() > 1) {  // find the job at fault: the others get their answers
      for (auto& b : batch) {
        std::vector<Pending> one;
        one.push_back(std::move(b));
        run_batch(m, one);
      }
      return;
    }
    const bool bad_input = dynamic_cast<const DataError*>(&e) ||
                           dynamic_cast<const ValueError*>(&e) ||
                           dynamic_cast<const IndexError*>(&e);
    finish(batch[0], bad_input
                         ? failure(422, "validation", e.what())
                         : failure(500, "internal", std::string("internal error: ") + e.what()));
    return;
  }
  metrics_.batch(model.name, std::ssize(texts), tokens, seconds_since(start));
  for (size_t b = 0; b < batch.size(); ++b) finish(batch[b], std::move(outcomes[b]));
}

void Engine::finish(Pending& p, Outcome o) {
  if (p.job->cancelled) return;
  try {
    p.done(std::move(o));
  } catch (...) {
    // The callback only hands the outcome to the network thread; nothing to recover here.
  }
}

}  // namespace gaze::serve
