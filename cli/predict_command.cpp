#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gaze/core/error.h"
#include "gaze/tasks/classify.h"
#include "gaze/text/utf8.h"

namespace gaze::cli {
namespace {

struct PredictArgs {
  std::string model, input = "-";
  int64_t top_k = 0;
};

// Hugging Face's text-classification pipeline shape: {"label", "score"}, or a list of the top k.
void write(const std::vector<tasks::Prediction>& preds, int64_t top_k) {
  for (const auto& p : preds) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [label, score] : p.top) j.push_back({{"label", label}, {"score", score}});
    std::cout << (top_k > 0 ? j : j[0]).dump() << "\n";
  }
  std::cout << std::flush;
}

int run_predict(const PredictArgs& a) {
  auto task = tasks::ClassifyTask::load(resolve_model_dir(a.model));
  const int64_t k = a.top_k > 0 ? a.top_k : 1;
  if (a.input != "-") {
    std::vector<std::string> texts;
    for (auto& e : data::read_texts(a.input, task->format())) texts.push_back(std::move(e.text));
    write(task->predict(texts, k), a.top_k);
    return 0;
  }
  // stdin: one text per line, answered in chunks so a long stream is not held in memory.
  std::vector<std::string> chunk;
  int64_t number = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t bad = text::find_invalid_utf8(line);
    GAZE_CHECK(bad == std::string::npos, DataError, "stdin:{}: invalid UTF-8 at byte {}", number,
               bad + 1);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    chunk.push_back(std::move(line));
    if (chunk.size() == 256) {
      write(task->predict(chunk, k), a.top_k);
      chunk.clear();
    }
  }
  if (!chunk.empty()) write(task->predict(chunk, k), a.top_k);
  return 0;
}

}  // namespace

Action add_predict(CLI::App& app) {
  auto a = std::make_shared<PredictArgs>();
  app.add_option("--model", a->model, "a model folder (a run folder, or its best/ or last/)")
      ->required();
  app.add_option("--input", a->input,
                 "texts: a file (one per line, or TSV/JSONL with the text column) or - for stdin");
  app.add_option("--top-k", a->top_k, "print the K most likely labels as a list")
      ->check(CLI::PositiveNumber);
  app.footer(
      "Output: one JSON object per input line, {\"label\": ..., \"score\": ...}, or with --top-k "
      "a\n"
      "list of them, best first (the shape of Hugging Face's text-classification pipeline).\n"
      "Examples:\n"
      "  echo 'Best purchase ever.' | gaze predict --model runs/sentiment\n"
      "  gaze predict --model runs/austen --input paragraphs.txt --top-k 3");
  return [a] { return run_predict(*a); };
}

}  // namespace gaze::cli
