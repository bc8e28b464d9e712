// The serving pieces without the network: request bodies, the batching engine (with a predictor
// that records its batches) and the metrics exposition.
#include <gtest/gtest.h>

#include <future>
#include <mutex>

#include "serve/engine.h"
#include "serve/metrics.h"
#include "serve/request.h"

namespace gaze::serve {
namespace {

using json = nlohmann::json;

// Answers {"text", "top_k"} per input; a text's token count is its length in bytes; "boom" throws
// a DataError. Records the texts of every batch it runs.
class RecordingPredictor : public tasks::Predictor {
 public:
  tasks::TaskKind kind() const override { return tasks::TaskKind::classify; }
  const text::Tokenizer* explain_tokenizer(bool) const override { return nullptr; }
  explain::Explanation explain_input(const std::string&, const tasks::ExplainOptions&) override {
    throw DataError("no explanations here");
  }
  tasks::InputSize input_size(const std::string& t) const override {
    return {std::min<int64_t>(std::ssize(t), max_length()), std::ssize(t) > max_length()};
  }
  int64_t max_length() const override { return 16; }
  nn::Module& module() override { return module_; }
  const nn::Module& module() const override { return module_; }
  std::vector<std::vector<std::string>> batches() {
    const std::lock_guard lock(mu_);
    return batches_;
  }

 protected:
  std::vector<json> predict_texts(const std::vector<std::string>& texts,
                                  const tasks::PredictOptions& o) override {
    {
      const std::lock_guard lock(mu_);
      batches_.push_back(texts);
    }
    std::vector<json> out;
    for (const auto& t : texts) {
      if (t == "boom") throw DataError("boom is not a text");
      out.push_back({{"text", t}, {"top_k", o.top_k}});
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<std::string>> batches_;
  nn::Module module_{"None"};
};

struct Fixture {
  explicit Fixture(EngineOptions o = {}) : metrics({"m"}) {
    engine = std::make_unique<Engine>(
        [this] {
          std::vector<ServedModel> models(1);
          models[0].name = "m";
          auto p = std::make_unique<RecordingPredictor>();
          predictor = p.get();
          models[0].predictor = std::move(p);
          return models;
        },
        o, metrics);
  }
  // Queues a predict request; its outcome arrives on the returned future.
  std::future<Outcome> submit(const std::string& body) {
    auto r = parse_request(body, Endpoint::predict, *predictor, 100, false);
    auto promise = std::make_shared<std::promise<Outcome>>();
    auto f = promise->get_future();
    engine->submit(0, r.job, [promise](Outcome o) { promise->set_value(std::move(o)); });
    return f;
  }
  Metrics metrics;
  RecordingPredictor* predictor = nullptr;
  std::unique_ptr<Engine> engine;
};

TEST(ServeRequest, ParsesInputsAndTheTasksParameters) {
  RecordingPredictor p;
  auto r = parse_request(R"({"inputs": "a"})", Endpoint::predict, p, 4, false);
  EXPECT_TRUE(r.single);
  EXPECT_EQ(r.job->texts, std::vector<std::string>{"a"});
  r = parse_request(R"({"inputs": ["a", "b"], "parameters": {"top_k": 2, "truncation": true}})",
                    Endpoint::predict, p, 4, false);
  EXPECT_FALSE(r.single);
  EXPECT_EQ(r.job->predict.top_k, 2);
  EXPECT_TRUE(r.job->truncation);
  const auto other = parse_request(R"({"inputs": ["c"], "parameters": {"top_k": 2}})",
                                   Endpoint::predict, p, 4, false);
  EXPECT_EQ(r.job->batch_key, other.job->batch_key);  // same options: may share a batch
  const auto plain = parse_request(R"({"inputs": ["c"]})", Endpoint::predict, p, 4, false);
  EXPECT_NE(r.job->batch_key, plain.job->batch_key);
}

TEST(ServeRequest, BadBodiesAreHttpErrors) {
  RecordingPredictor p;
  auto status = [&](const std::string& body) {
    try {
      parse_request(body, Endpoint::predict, p, 2, false);
    } catch (const HttpError& e) {
      return e.status;
    }
    return 200;
  };
  EXPECT_EQ(status("{"), 400);
  EXPECT_EQ(status(R"({"inputs": ["a", "b", "c"]})"), 422);  // more than max_inputs
  EXPECT_EQ(status(R"({"inputs": "a", "parameters": {"beam_size": 3}})"), 400);
  EXPECT_EQ(status(R"({"inputs": "a", "parameters": {"top_k": -1}})"), 400);
  EXPECT_EQ(status(R"({"input": "a"})"), 400);
  EXPECT_EQ(status(std::string(100, '[') + std::string(100, ']')), 400);
  std::string many = R"({"inputs": "a", "parameters": {"x": [)";
  for (int i = 0; i < 2000; ++i) many += "0,";
  EXPECT_EQ(status(many + "0]}}"), 422);  // values counted before any tree is built
  EXPECT_EQ(status(R"({"inputs": ["a"]})"), 200);
}

TEST(ServeEngine, BatchesCompatibleRequestsAndAnswersEachItsOwn) {
  EngineOptions o;
  o.max_wait_ms = 2000;  // long enough for all five to arrive before the batch closes
  Fixture f(o);
  // A batch waits for as many inputs as the previous one had: six, after this request.
  EXPECT_EQ(f.submit(R"({"inputs": ["1", "2", "3", "4", "5", "6"]})").get().outputs.size(), 6u);
  std::vector<std::future<Outcome>> out;
  out.push_back(f.submit(R"({"inputs": ["a", "bb"]})"));
  out.push_back(f.submit(R"({"inputs": "ccc", "parameters": {"top_k": 2}})"));
  out.push_back(f.submit(R"({"inputs": ["dddd"]})"));
  out.push_back(f.submit(R"({"inputs": ["x", "boom"]})"));
  out.push_back(f.submit(R"({"inputs": ["e"]})"));
  std::vector<Outcome> got;
  for (auto& x : out) got.push_back(x.get());
  EXPECT_EQ(got[0].outputs,
            (std::vector<json>{{{"text", "a"}, {"top_k", 0}}, {{"text", "bb"}, {"top_k", 0}}}));
  EXPECT_EQ(got[1].outputs, (std::vector<json>{{{"text", "ccc"}, {"top_k", 2}}}));
  EXPECT_EQ(got[2].outputs[0]["text"], "dddd");
  EXPECT_EQ(got[3].status, 422);  // the failing request alone fails ...
  EXPECT_NE(got[3].error.find("boom"), std::string::npos);
  EXPECT_EQ(got[4].status, 200);  // ... the others of its batch are answered
  EXPECT_EQ(got[4].outputs[0]["text"], "e");
  const auto batches = f.predictor->batches();
  ASSERT_GE(batches.size(), 3u);
  // The batch took every top_k=0 request in arrival order, not the top_k=2 one.
  EXPECT_EQ(batches[1], (std::vector<std::string>{"a", "bb", "dddd", "x", "boom", "e"}));
}

TEST(ServeEngine, TooLongInputsAreRefusedUnlessTruncationIsAsked) {
  Fixture f;
  const std::string long_text(40, 'z');
  Outcome refused = f.submit(R"({"inputs": ["ok", ")" + long_text + R"("]})").get();
  EXPECT_EQ(refused.status, 422);
  EXPECT_NE(refused.error.find("input 1 is longer than the 16 tokens"), std::string::npos);
  Outcome cut = f.submit(R"({"inputs": ["ok", ")" + long_text +
                         R"("], "parameters": )"
                         R"({"truncation": true}})")
                    .get();
  EXPECT_EQ(cut.status, 200);
  EXPECT_EQ(cut.truncated, std::vector<int64_t>{1});
}

TEST(ServeEngine, ALoneRequestDoesNotWait) {
  EngineOptions o;
  o.max_wait_ms = 60000;
  Fixture f(o);
  const auto start = Clock::now();
  EXPECT_EQ(f.submit(R"({"inputs": "a"})").get().status, 200);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));  // not the full minute
}

TEST(ServeEngine, TokenAndInputBudgetsSplitBatches) {
  EngineOptions o;
  o.max_wait_ms = 2000;
  o.max_batch_tokens = 10;  // "aaaa" is 4 tokens: two fit, the third waits
  Fixture f(o);
  f.submit(R"({"inputs": ["1", "2", "3"]})").get();  // the next batch waits for three inputs
  auto a = f.submit(R"({"inputs": "aaaa"})");
  auto b = f.submit(R"({"inputs": "bbbb"})");
  auto c = f.submit(R"({"inputs": "cccc"})");
  a.get(), b.get(), c.get();
  EXPECT_EQ(f.predictor->batches(),
            (std::vector<std::vector<std::string>>{{"1", "2", "3"}, {"aaaa", "bbbb"}, {"cccc"}}));
}

TEST(ServeEngine, FullQueueAndStoppingRefuse) {
  EngineOptions o;
  o.max_wait_ms = 2000;
  o.max_batch_inputs = 1000;
  o.max_queue = 3;
  Fixture f(o);
  f.submit(R"({"inputs": ["1", "2", "3"]})").get();  // the next batch waits for three inputs
  auto first = f.submit(R"({"inputs": ["a", "b"]})");
  try {
    f.submit(R"({"inputs": ["c", "d"]})");
    FAIL() << "four inputs fit a queue of three";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status, 429);
  }
  f.engine->stop();  // runs what is queued at once, then refuses
  EXPECT_EQ(first.get().outputs.size(), 2u);
  try {
    f.submit(R"({"inputs": "e"})");
    FAIL() << "accepted after stop";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status, 503);
  }
}

TEST(ServeMetrics, PrometheusTextWithCumulativeBuckets) {
  Metrics m({"m"});
  m.request("m", "predict", 200, 0.003, 2);
  m.request("m", "predict", 200, 0.2, 1);
  m.request("", "healthz", 200, 0.0001, 0);
  m.batch("m", 3, 40, 0.01);
  const std::string t = m.text();
  EXPECT_NE(t.find("gaze_requests_total{model=\"m\",endpoint=\"predict\",status=\"200\"} 2\n"),
            std::string::npos);
  EXPECT_NE(t.find("gaze_request_duration_seconds_bucket{model=\"m\",endpoint=\"predict\",le=\"0."
                   "005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("gaze_request_duration_seconds_bucket{model=\"m\",endpoint=\"predict\",le=\"0."
                   "25\"} 2\n"),
            std::string::npos);
  EXPECT_NE(t.find("gaze_request_duration_seconds_count{model=\"m\",endpoint=\"predict\"} 2\n"),
            std::string::npos);
  EXPECT_NE(t.find("gaze_inputs_total{model=\"m\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("gaze_tokens_total{model=\"m\"} 40\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE gaze_batch_inputs histogram\n"), std::string::npos);
}

}  // namespace
}  // namespace gaze::serve
