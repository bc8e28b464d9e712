#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/field_flags.h"
#include "gaze/core/clock.h"
#include "gaze/core/error.h"
#include "gaze/data/conll.h"
#include "gaze/data/text_file.h"
#include "gaze/tasks/task.h"
#include "gaze/text/utf8.h"

namespace gaze::cli {

void check_nbest(const FieldFlags& flags, decode::SearchOptions& s) {
  if (!flags.given("nbest") || s.nbest <= s.beam_size) return;
  GAZE_CHECK(!flags.given("beam_size"), DataError,
             "--nbest {} is more than --beam-size {}: a beam search keeps at most beam-size "
             "hypotheses; raise --beam-size or lower --nbest",
             s.nbest, s.beam_size);
  std::fprintf(stderr, "gaze: --nbest %lld widens the model's beam from %lld to %lld\n",
               static_cast<long long>(s.nbest), static_cast<long long>(s.beam_size),
               static_cast<long long>(s.nbest));
  decode::widen_beam(s);
}

namespace {

struct PredictArgs {
  std::string model, input = "-";
  std::optional<Precision> precision;
  FieldFlags options;  // tasks::PredictOptions
};

void write(const std::vector<nlohmann::json>& out) {
  for (const auto& j : out) std::cout << j.dump() << "\n";
  check_stdout();
}

// Lines of stdin (each cut to kMaxLineBytes), checked as UTF-8, blank ones included, handed over in
// chunks so a long stream is not held in memory. A chunk ends at chunk_size lines or as soon as no
// further line is at hand: piped input goes to the model in batches of chunk_size, while a line
// typed at a terminal (or sent by a program waiting for its answer) is answered at once.
void for_each_chunk(size_t chunk_size, const std::function<void(std::vector<std::string>&)>& f) {
  std::vector<std::string> chunk;
  int64_t number = 0;
  LineReader reader;
  for (std::string line; reader.next(line);) {
    ++number;
    const size_t bad = text::find_invalid_utf8(line);
    if (bad != std::string::npos) {
      if (!chunk.empty()) f(chunk);  // the lines before it are answered before the error stops us
      throw DataError(fmt::format("stdin:{}: invalid UTF-8 at byte {}", number, bad + 1));
    }
    chunk.push_back(std::move(line));
    if (chunk.size() == chunk_size || !reader.ready()) {
      f(chunk);
      chunk.clear();
    }
  }
  if (!chunk.empty()) f(chunk);
}

int run_predict(const PredictArgs& a) {
  auto predictor =
      tasks::load_predictor(tasks::resolve_model_dir(a.model), {.precision = a.precision});
  tasks::Predictor& p = *predictor;
  tasks::PredictOptions o = p.predict_defaults();
  a.options.apply(tasks::predict_fields(o, p.kind()),
                  fmt::format("a {} model ({})", enum_name(p.kind()), a.model));
  check_nbest(a.options, o.search);
  if (a.input != "-") {
    write(p.predict(p.read_inputs(a.input), o));
    return 0;
  }
  for_each_chunk(256, [&](std::vector<std::string>& lines) { write(p.predict(lines, o)); });
  return 0;
}

struct EmbedArgs {
  std::string model, input = "-";
  std::optional<Precision> precision;
};

// {"embedding": [...]} per input, in input order.
int run_embed(const EmbedArgs& a) {
  auto predictor =
      tasks::load_predictor(tasks::resolve_model_dir(a.model), {.precision = a.precision});
  tasks::Predictor& p = *predictor;
  auto emit = [&](const std::vector<std::string>& texts) {
    std::vector<nlohmann::json> out;
    for (auto& v : p.embed(texts)) out.push_back({{"embedding", std::move(v)}});
    write(out);
  };
  if (a.input != "-") {
    emit(p.read_inputs(a.input));
    return 0;
  }
  for_each_chunk(256, [&](std::vector<std::string>& lines) { emit(lines); });
  return 0;
}

struct TranslateArgs {
  std::string model;
  std::optional<Precision> precision;
  FieldFlags options;  // decode::SearchOptions
  bool scores = false;
  bool log_throughput = false;
};

// Plain text in, plain text out, in batches of the lines at hand: piped input is translated in
// batches, a line typed interactively as soon as it arrives. With --nbest N > 1, Marian's n-best
// format: "ID ||| hypothesis ||| score", N lines per input (ID counts inputs from 0).
int run_translate(const TranslateArgs& a) {
  const auto start = SteadyClock::now();
  auto predictor =
      tasks::load_predictor(tasks::resolve_model_dir(a.model), {.precision = a.precision});
  const double load_s = seconds_since(start);
  tasks::Predictor& p = *predictor;
  GAZE_CHECK(p.kind() == tasks::TaskKind::translate, DataError,
             "{}: gaze translate needs a translation model; this one is for task '{}' (use gaze "
             "predict)",
             a.model, enum_name(p.kind()));
  tasks::PredictOptions o = p.predict_defaults();
  a.options.apply(decode::config_fields(o.search), "gaze translate");
  check_nbest(a.options, o.search);
  const bool nbest = o.search.nbest > 1;
  o.scores = a.scores;
  int64_t id = 0, words = 0;
  double translate_s = 0;  // in predict() only: not waiting for input, not loading
  for_each_chunk(256, [&](std::vector<std::string>& lines) {
    const auto t0 = SteadyClock::now();
    const std::vector<nlohmann::json> out = p.predict(lines, o);
    translate_s += seconds_since(t0);
    for (const auto& j : out) {
      if (a.log_throughput)  // words of the best hypothesis, split as the tagger splits its input
        words += std::ssize(data::split_words(j["translation_text"].get_ref<const std::string&>()));
      if (!nbest) {
        std::cout << j["translation_text"].get<std::string>();
        if (a.scores)
          std::cout << " ||| " << (j.contains("score") ? j["score"].get<double>() : 0.0);
        std::cout << "\n";
      } else if (j.contains("nbest")) {
        for (const auto& h : j["nbest"])
          std::cout << id << " ||| " << h["translation_text"].get<std::string>() << " ||| "
                    << h["score"].get<double>() << "\n";
      } else {  // a blank line: one empty hypothesis
        std::cout << id << " |||  ||| 0\n";
      }
      ++id;
    }
    check_stdout();
  });
  if (a.log_throughput)  // CTranslate2's --log_throughput, with the loading apart
    std::fprintf(stderr,
                 "gaze: translated %lld line%s into %lld words in %.3f s (%.0f words/s); loading "
                 "the model took %.3f s\n",
                 static_cast<long long>(id), id == 1 ? "" : "s", static_cast<long long>(words),
                 translate_s, translate_s > 0 ? static_cast<double>(words) / translate_s : 0.0,
                 load_s);
  return 0;
}

}  // namespace

Action add_predict(CLI::App& app) {
  auto a = std::make_shared<PredictArgs>();
  add_model_option(app, a->model);
  add_precision_option(app, a->precision);
  app.add_option("--input", a->input,
                 "inputs: a file (one per line, or TSV/JSONL with the text column) or - for stdin");
  tasks::PredictOptions proto;
  a->options.add(app, decode::config_fields(proto.search), "translation: ");
  a->options.add(app, tasks::config_fields(proto));
  app.footer(
      "Output: one JSON object per input line, shaped like Hugging Face pipeline results:\n"
      "  classification  {\"label\", \"score\"} (with --top-k a list of them, best first)\n"
      "  tagging         {\"words\", \"tags\", \"scores\", \"entities\": [{\"entity_group\", "
      "\"score\",\n"
      "                  \"word\", \"start\", \"end\"}]} (entities for BIO/BIOES tagsets)\n"
      "  translation     {\"translation_text\"} (+ \"score\", \"nbest\", \"alignment\" on "
      "request)\n"
      "  sentence encoder {\"embedding\": [...]} (as gaze embed)\n"
      "Examples:\n"
      "  echo 'Best purchase ever.' | gaze predict --model runs/sentiment\n"
      "  gaze predict --model runs/austen --input examples/classify/demo_sentences.txt --top-k 3\n"
      "  echo 'Jane Austen lived in Bath' | gaze predict --model runs/wnut17\n"
      "  echo 'hello' | gaze predict --model runs/g2p_rnn --nbest 3 --alignment");
  return [a] { return run_predict(*a); };
}

Action add_embed(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  add_model_option(app, a->model,
                   "a sentence encoder (gaze import) or a classifier (its pooled features)");
  add_precision_option(app, a->precision);
  app.add_option("--input", a->input,
                 "texts: a file (one per line, or TSV/JSONL with the text column) or - for stdin");
  app.footer(
      "Output: one JSON object {\"embedding\": [...]} per input line, in order. A sentence "
      "encoder\ngives its sentence embeddings (USE-lite: 512 values of unit length); a classifier "
      "the\npooled features its head reads.\nExample:\n  echo 'The fox jumped.' | gaze embed "
      "--model models/use-lite");
  return [a] { return run_embed(*a); };
}

Action add_translate(CLI::App& app) {
  auto a = std::make_shared<TranslateArgs>();
  add_model_option(app, a->model, "a translation model folder (a run folder or its best/)");
  add_precision_option(app, a->precision);
  decode::SearchOptions proto;
  a->options.add(app, decode::config_fields(proto));
  app.add_flag("--scores", a->scores,
               "write 'translation ||| score' (score: log p / length^penalty)");
  app.add_flag("--log-throughput", a->log_throughput,
               "at the end, write to stderr the lines and words translated (best hypotheses), "
               "the time spent translating, words/s, and the time loading the model took");
  app.footer(
      "Reads sentences from stdin, one per line, and writes one translation per line: piped\n"
      "input is translated in batches, a line typed interactively as soon as it arrives.\n"
      "With --nbest N (N > 1) it writes Marian's n-best format, N lines per input:\n"
      "  ID ||| hypothesis ||| score      (ID: the input's number, from 0)\n"
      "Examples:\n  echo 'In the beginning was the Word.' | gaze translate --model "
      "runs/bible_en_es\n  gaze translate --model runs/g2p_rnn --nbest 3 < "
      "examples/translate/g2p_words.txt");
  return [a] { return run_translate(*a); };
}

}  // namespace gaze::cli
