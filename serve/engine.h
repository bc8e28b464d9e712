// Dynamic batching: requests for a model wait in its queue; one inference thread forms batches of
// compatible requests (same endpoint and options) up to a token and input budget, or until the
// first one has waited max_wait_ms (or the batch is as large as the previous one: under light load
// nobody waits for requests that are not coming), runs them through the model's predictor on
// gaze's one OpenMP pool, and hands each request exactly the outputs of its own inputs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gaze/core/clock.h"
#include "gaze/tasks/predictor.h"
#include "gaze/tasks/task.h"
#include "serve/metrics.h"

namespace gaze::serve {

using Clock = SteadyClock;

enum class Endpoint { predict, embed, explain };
GAZE_ENUM_NAMES(Endpoint, {Endpoint::predict, "predict"}, {Endpoint::embed, "embed"},
                {Endpoint::explain, "explain"})

// A failure to report to the client: its HTTP status, a type ("validation", "overloaded", ...) and
// a message a user can act on.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status(status), type(std::move(type)) {}
  int status;
  std::string type;
};

// One request's work for a model.
struct Job {
  Endpoint endpoint = Endpoint::predict;
  std::vector<std::string> texts;
  tasks::PredictOptions predict;
  tasks::ExplainOptions explain;
  bool html = false;        // explain: the page rather than the JSON
  bool truncation = false;  // cut texts longer than the model reads rather than refuse them
  std::string batch_key;    // jobs share a batch only when their keys are equal
  std::string model;        // its name, for logs
  Clock::time_point arrival = Clock::now();
  std::atomic<bool> cancelled{false};  // its client is no longer waiting: skip it
};

// What a job produced: the outputs of its texts in order (predict, embed), or one document
// (explain: JSON text or HTML); or an error.
struct Outcome {
  int status = 200;
  std::string error, error_type;
  std::vector<nlohmann::json> outputs;
  std::string document;
  bool html = false;
  std::vector<int64_t> truncated;  // indices of the texts cut to the model's maximum length
};
using Done = std::function<void(Outcome)>;

struct EngineOptions {
  int threads = 0;  // the OpenMP pool of the inference thread (0: gaze::num_threads())
  int64_t max_batch_tokens = 8192;
  int64_t max_batch_inputs = 128;
  int64_t max_wait_ms = 5;
  int64_t max_queue = 1024;  // inputs waiting per model
};

struct ModelSpec {
  std::string name, dir;
  tasks::LoadOptions load;  // the precision to run it in
};
struct ServedModel {
  std::string name, dir;
  std::unique_ptr<tasks::Predictor> predictor;
};

// The model folders of `specs`, loaded (a DataError names the folder that fails).
std::vector<ServedModel> load_models(const std::vector<ModelSpec>& specs);

class Engine {
 public:
  // Calls `load` on the inference thread, so that the models are loaded on the thread (and its
  // OpenMP pool) that runs them; throws what `load` throws.
  using Loader = std::function<std::vector<ServedModel>()>;
  Engine(const Loader& load, const EngineOptions& options, Metrics& metrics);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The index of the model called `name`, or -1.
  int find(const std::string& name) const;
  const std::vector<ServedModel>& models() const { return models_; }

  // Queues a job for model `m`; `done` is later called exactly once, on the inference thread,
  // unless the job was cancelled before its batch started. HttpError 429 when the model's queue
  // is full, 503 once stopping.
  void submit(size_t m, std::shared_ptr<Job> job, Done done);
  // From now on batches close as soon as they are formed (the server is draining: nobody waits
  // for more requests); jobs are still accepted.
  void flush();
  // Runs every queued job, then ends the inference thread. Idempotent.
  void stop();

 private:
  struct Pending {
    std::shared_ptr<Job> job;
    Done done;
    std::vector<tasks::InputSize> sizes;  // measured on the inference thread (empty: not yet)
  };
  struct Queue {
    std::deque<Pending> jobs;  // by arrival
    int64_t inputs = 0;
    int64_t last_batch = 1;  // inputs of the model's previous batch
  };

  void loop();
  // The model whose oldest job is the oldest of all (-1 if every queue is empty).
  int oldest() const;
  // Inputs queued for model m that could join a batch with its first job.
  int64_t compatible_inputs(size_t m) const;
  std::vector<Pending> take_batch(size_t m, std::unique_lock<std::mutex>& lock);
  void run_batch(size_t m, std::vector<Pending>& batch);
  void finish(Pending& p, Outcome o);

  std::vector<ServedModel> models_;
  EngineOptions options_;
  Metrics& metrics_;
  std::vector<Queue> queues_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false, flushing_ = false;
  std::thread thread_;
};

}  // namespace gaze::serve
