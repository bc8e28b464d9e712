// libFuzzer: the body of a `gaze serve` request (JSON, inputs, parameters) for every task and
// endpoint, as the router parses it before anything is queued. The byte before the body picks the
// task and endpoint. An HttpError (a 4xx answer) is the expected way to fail.
#include <array>
#include <memory>

#include "fuzz_util.h"
#include "gaze/nn/module.h"
#include "serve/request.h"

namespace {

// Only what parse_request asks of a model: its task and default options.
class StubPredictor : public gaze::tasks::Predictor {
 public:
  explicit StubPredictor(gaze::tasks::TaskKind kind) : kind_(kind) {}
  gaze::tasks::TaskKind kind() const override { return kind_; }
  gaze::tasks::InputSize input_size(const std::string&) const override { return {}; }
  int64_t max_length() const override { return 8; }
  gaze::nn::Module& module() override { return *module_; }
  const gaze::nn::Module& module() const override { return *module_; }

 protected:
  gaze::explain::Explanation explain_input(const std::string&,
                                           const gaze::tasks::ExplainOptions&) override {
    return {};
  }
  const gaze::text::Tokenizer* explain_tokenizer(bool) const override { return nullptr; }
  std::vector<nlohmann::json> predict_texts(const std::vector<std::string>&,
                                            const gaze::tasks::PredictOptions&) override {
    return {};
  }

 private:
  gaze::tasks::TaskKind kind_;
  std::shared_ptr<gaze::nn::Module> module_ = std::make_shared<gaze::nn::Module>("Stub");
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gaze;
  static const std::array<StubPredictor, 4> predictors = {
      StubPredictor(tasks::TaskKind::classify), StubPredictor(tasks::TaskKind::tag),
      StubPredictor(tasks::TaskKind::translate), StubPredictor(tasks::TaskKind::embed)};
  if (size == 0) return 0;
  const auto& p = predictors[data[0] % 4];
  const auto endpoint = static_cast<serve::Endpoint>((data[0] / 4) % 3);
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const auto r = serve::parse_request(body, endpoint, p, 16, data[0] & 0x80);
    if (r.job->texts.empty() || r.job->texts.size() > 16) std::abort();  // checked, always
  } catch (const serve::HttpError& e) {
    if (e.status < 400 || e.status > 499) std::abort();
  }
  return 0;
}
