// gaze explain: the attention a model pays on an input, written as a self-contained HTML page, PNG
// heatmaps and JSON (bertviz's data contract) into an output folder.
#include <unistd.h>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/field_flags.h"
#include "gaze/core/error.h"
#include "gaze/data/text_file.h"
#include "gaze/explain/aggregate.h"
#include "gaze/explain/attribution.h"
#include "gaze/explain/faithfulness_summary.h"
#include "gaze/explain/head_stats.h"
#include "gaze/explain/html.h"
#include "gaze/explain/index_page.h"
#include "gaze/explain/json_export.h"
#include "gaze/explain/png.h"
#include "gaze/explain/svg.h"
#include "gaze/io/files.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/tasks/task.h"
#include "gaze/text/utf8.h"
#include "gaze/train/run_folder.h"

namespace gaze::cli {
namespace {

namespace fs = std::filesystem;

enum class OutputFormat { html, png, json, svg };
GAZE_ENUM_NAMES(OutputFormat, {OutputFormat::html, "html"}, {OutputFormat::png, "png"},
                {OutputFormat::json, "json"}, {OutputFormat::svg, "svg"})

struct ExplainArgs {
  std::string model, input, text, file, out, data;
  // given on the command line (even if empty)
  bool has_input = false, has_text = false, has_file = false, has_data = false;
  int cell_size = 0;  // PNG/SVG pixels per matrix cell (0: by the matrix's size)
  int64_t limit = 100;
  std::vector<OutputFormat> formats = {OutputFormat::html, OutputFormat::png, OutputFormat::json};
  std::optional<Precision> precision;
  FieldFlags options;  // tasks::ExplainOptions
};

// Writes files atomically and remembers their paths, to print them at the end.
struct Writer {
  std::vector<std::string> written;
  void operator()(const fs::path& path, const std::string& bytes) {
    io::write_file_atomic(path.string(), bytes);
    written.push_back(path.string());
  }
};

bool wants(const ExplainArgs& a, OutputFormat format) {
  return std::find(a.formats.begin(), a.formats.end(), format) != a.formats.end();
}

// The heatmaps as PNG or SVG files (the same names): rollout, alignment, each captured layer's
// head mean and, with per_head, each head.
void write_heatmaps(Writer& write, const explain::Explanation& e, const fs::path& dir,
                    bool per_head, OutputFormat format, int cell_size) {
  const bool svg = format == OutputFormat::svg;
  const std::string ext = svg ? ".svg" : ".png";
  auto heatmap = [&](const Tensor& m, const std::vector<std::string>& rows,
                     const std::vector<std::string>& cols, explain::HeatmapStyle style) {
    style.cell = cell_size;
    if (svg) return explain::heatmap_svg(m, rows, cols, style);
    return explain::heatmap_png(m, rows, cols, style);
  };
  if (e.rollout.defined())
    write(dir / ("rollout" + ext), heatmap(e.rollout, e.tokens, e.tokens,
                                           {.title = "Attention rollout (Abnar & Zuidema 2020)",
                                            .row_axis = "position (its final representation)",
                                            .col_axis = "input token"}));
  if (e.alignment.defined())
    write(dir / ("alignment" + ext),
          heatmap(e.alignment, e.output_tokens, e.tokens,
                  {.title = fmt::format("Alignment: cross-attention of decoder layer {}, mean over "
                                        "heads; argmax outlined",
                                        e.alignment_layer),
                   .row_axis = "output token (the token predicted)",
                   .col_axis = "source token",
                   .marks = e.hard_alignment}));
  for (const auto& b : e.blocks) {
    if (!e.block(explain::Stack::encoder)) break;  // an RNN: its one map is the alignment
    const bool encoder = b.stack == explain::Stack::encoder;
    // Decoder rows by the token each position predicts, as the alignment's (and the page's).
    const auto& rows = encoder ? e.tokens : e.output_tokens;
    const auto& cols = b.stack == explain::Stack::decoder ? e.target_tokens : e.tokens;
    const std::string row_axis = encoder ? "query token" : "output token (the token predicted)";
    for (size_t l = 0; l < b.layers.size(); ++l) {
      const std::string stem = fmt::format("{}-layer{}", b.name(), b.layers[l]);
      write(dir / (stem + ext),
            heatmap(explain::mean_heads(b.weights[l]), rows, cols,
                    {.title = fmt::format("{} attention, layer {}, mean over heads", b.name(),
                                          b.layers[l]),
                     .row_axis = row_axis,
                     .col_axis = "key token"}));
      if (!per_head) continue;
      for (size_t h = 0; h < b.heads.size(); ++h)
        write(dir / fmt::format("{}-head{}{}", stem, b.heads[h], ext),
              heatmap(gaze::select(b.weights[l], 0, static_cast<int64_t>(h)), rows, cols,
                      {.title = fmt::format("{} attention, layer {}, head {}", b.name(),
                                            b.layers[l], b.heads[h]),
                       .row_axis = row_axis,
                       .col_axis = "key token"}));
    }
  }
  if (svg && !e.faithfulness.empty())
    write(dir / "faithfulness.svg",
          explain::summary_svg(explain::summarize_faithfulness({e}),
                               "Faithfulness of each explanation on this input"));
}

void write_explanation(Writer& write, const ExplainArgs& a, const explain::Explanation& e,
                       const fs::path& dir, bool per_head) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot create the output folder: {}", dir.string(), ec.message());
  if (wants(a, OutputFormat::html)) write(dir / "explanation.html", explain::to_html(e));
  if (wants(a, OutputFormat::json)) {
    write(dir / "attention.json", explain::to_json(e));
    if (!e.attributions.empty())
      write(dir / "attribution.json", explain::attribution_json(e, true).dump() + "\n");
  }
  for (const OutputFormat f : {OutputFormat::png, OutputFormat::svg})
    if (wants(a, f)) write_heatmaps(write, e, dir, per_head, f, a.cell_size);
}

// --data: over the first --limit inputs of a file, what each encoder head does (every model with
// encoder attention) and, for classifiers, every attribution method's faithfulness: tables on
// stdout, head_statistics.{json,svg} and faithfulness.{json,svg} in --out.
int run_dataset(const ExplainArgs& a, tasks::Predictor& p, tasks::ExplainOptions o) {
  GAZE_CHECK(a.limit >= 1, DataError, "gaze explain: --limit must be >= 1, got {}", a.limit);
  // Classifiers and translators get every method's faithfulness (a translation's curves follow
  // the log-probability of the translation found).
  const bool curves =
      p.kind() == tasks::TaskKind::classify || p.kind() == tasks::TaskKind::translate;
  if (curves) o.method = explain::Method::all, o.faithfulness = true;
  std::vector<std::string> inputs = p.read_inputs(a.data);
  std::erase_if(inputs, [](const std::string& t) { return text::is_blank_text(t); });
  GAZE_CHECK(!inputs.empty(), DataError, "{}: no inputs to explain", a.data);
  if (static_cast<int64_t>(inputs.size()) > a.limit) inputs.resize(static_cast<size_t>(a.limit));
  std::vector<explain::Explanation> all;
  explain::HeadStatisticsAccumulator heads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    explain::Explanation e = p.explain(inputs[i], o);
    heads.add(e);
    e.blocks.clear();  // only the curves are kept: a data set's attention would not fit
    e.rollout = Tensor();
    for (auto& at : e.attributions) at.per_head.clear();
    all.push_back(std::move(e));
    if (isatty(2))
      std::cerr << fmt::format("\rgaze explain: {}/{} inputs", i + 1, inputs.size()) << std::flush;
  }
  if (isatty(2)) std::cerr << "\n";
  std::error_code ec;
  fs::create_directories(a.out, ec);
  GAZE_CHECK(!ec, DataError, "{}: cannot create the output folder: {}", a.out, ec.message());
  Writer write;
  const std::string about =
      fmt::format("{} over {} inputs of {}", fs::path(a.model).filename().string(), inputs.size(),
                  fs::path(a.data).filename().string());
  const explain::HeadStatistics stats = heads.result();
  if (stats.inputs > 0) {
    nlohmann::json j = explain::head_statistics_json(stats);
    j["provenance"] = all.front().provenance;
    j["data"] = fs::absolute(a.data).string();
    write(fs::path(a.out) / "head_statistics.json", j.dump(1) + "\n");
    write(fs::path(a.out) / "head_statistics.svg",
          explain::head_statistics_svg(stats, "What each encoder head does: " + about));
    std::cout << explain::head_statistics_table(stats);
  } else {
    std::cerr << "gaze explain: note: this model has no encoder attention; no head statistics\n";
  }
  if (curves) {
    const explain::FaithfulnessSummary s = explain::summarize_faithfulness(all);
    nlohmann::json j = explain::summary_json(s);
    j["provenance"] = all.front().provenance;
    j["data"] = fs::absolute(a.data).string();
    write(fs::path(a.out) / "faithfulness.json", j.dump(1) + "\n");
    write(fs::path(a.out) / "faithfulness.svg", explain::summary_svg(s, "Faithfulness: " + about));
    std::cout << explain::summary_table(s);
  }
  for (const auto& path : write.written) std::cout << path << "\n";
  return 0;
}

// A single word with a folder separator or a data file's extension: most likely a mistyped path.
bool looks_like_path(const std::string& s) {
  if (s.empty() || s.find_first_of(" \t\n") != std::string::npos) return false;
  if (s.find('/') != std::string::npos) return true;
  for (const char* ext : {".txt", ".tsv", ".csv", ".jsonl", ".json", ".conll"})
    if (s.size() > std::strlen(ext) && s.ends_with(ext)) return true;
  return false;
}

// Where explanations go without --out: RUN/explain for a run folder (or a checkpoint inside one),
// MODEL/explain for a model folder of its own.
std::string default_out(const std::string& model) {
  const auto run = train::run_folder_of(model);
  return (fs::path(run ? *run : model) / "explain").string();
}

int run_explain(ExplainArgs a) {
  if (a.out.empty()) a.out = default_out(a.model);
  auto predictor =
      tasks::load_predictor(tasks::resolve_model_dir(a.model), {.precision = a.precision});
  tasks::Predictor& p = *predictor;
  tasks::ExplainOptions o = p.explain_defaults();
  a.options.apply(tasks::config_fields(o), "gaze explain");
  GAZE_CHECK(a.has_data + a.has_input + a.has_text + a.has_file == 1, DataError,
             "gaze explain: give one of --text (a text), --file (a file of texts, or - for "
             "stdin), --input (either) or --data (a file to study the model over)");
  if (a.has_data) return run_dataset(a, p, o);
  // --input names a file if one exists at that path; otherwise it is the text itself.
  std::vector<std::string> inputs;
  std::error_code ec;  // a long text is no file name: the non-throwing form
  const std::string& source = a.has_file ? a.file : a.input;
  if (a.has_text) {
    inputs = {a.text};
  } else if (source == "-") {
    int64_t number = 0;
    LineReader reader;
    for (std::string line; reader.next(line);) {
      ++number;
      const size_t bad = text::find_invalid_utf8(line);
      GAZE_CHECK(bad == std::string::npos, DataError, "stdin:{}: invalid UTF-8 at byte {}", number,
                 bad + 1);
      inputs.push_back(std::move(line));
    }
  } else if (a.has_file || fs::is_regular_file(a.input, ec)) {
    inputs = p.read_inputs(source);  // a missing --file is a DataError naming it
  } else {
    if (looks_like_path(a.input))
      std::cerr << "gaze explain: warning: there is no file '" << a.input
                << "'; explaining it as text (--text TEXT and --file PATH say which is meant)\n";
    inputs = {a.input};
  }
  GAZE_CHECK(!inputs.empty(), DataError, "{}: no input lines to explain", source);
  Writer write;
  std::vector<explain::IndexEntry> entries;
  nlohmann::json provenance;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs.size() > 1 && text::is_blank_text(inputs[i])) {  // numbering stays the line number
      std::cerr << "gaze explain: warning: input " << i + 1 << " is blank; nothing to explain\n";
      continue;
    }
    const fs::path dir =
        inputs.size() == 1 ? fs::path(a.out) : fs::path(a.out) / fmt::format("{:04d}", i + 1);
    const explain::Explanation e = p.explain(inputs[i], o);
    if (e.truncated)
      std::cerr << "gaze explain: warning: input " << i + 1
                << " was cut to the model's maximum length (" << e.tokens.size()
                << " tokens); the explanation covers what the model read\n";
    const bool attention = std::any_of(e.blocks.begin(), e.blocks.end(),
                                       [](const auto& b) { return !b.weights.empty(); });
    if (!attention && i == 0)
      std::cerr << (e.pooling_attention.empty()
                        ? "gaze explain: note: this model has no attention layers (a BiLSTM "
                          "encoder); the page shows its input and prediction only\n"
                        : "gaze explain: note: this model's only attention is its pooling (a "
                          "BiLSTM encoder); the page shows it as the token importance\n");
    write_explanation(write, a, e, dir, !o.heads.empty());
    entries.push_back({dir.filename().string(), e.text, e.prediction});
    if (provenance.is_null()) provenance = e.provenance;
  }
  // Several inputs: an index of their pages, two of them side by side.
  if (inputs.size() > 1 && !entries.empty() && wants(a, OutputFormat::html))
    write(fs::path(a.out) / "index.html", explain::index_html(entries, provenance));
  for (const auto& path : write.written) std::cout << path << "\n";
  return 0;
}

}  // namespace

Action add_explain(CLI::App& app) {
  auto a = std::make_shared<ExplainArgs>();
  add_model_option(app, a->model);
  add_precision_option(app, a->precision);
  CLI::Option* text = app.add_option("--text", a->text, "the text to explain");
  CLI::Option* file = app.add_option(
      "--file", a->file,
      "a file of texts to explain (one per line, or the text column of a TSV/JSONL file), or - "
      "for the lines of stdin");
  CLI::Option* input =
      app.add_option("--input", a->input,
                     "a file of inputs if one exists at that path, else the text itself (- for "
                     "stdin); --text and --file say which");
  CLI::Option* data =
      app.add_option("--data", a->data,
                     "a file of inputs (as --input's) to study the model over: what each encoder "
                     "head does (head_statistics.json, .svg) and, for classifiers and translators, "
                     "each attribution method's faithfulness (faithfulness.json, .svg)");
  app.add_option("--limit", a->limit, "--data: how many of its inputs (default 100)");
  app.add_option("--out", a->out,
                 "output folder (created; default RUN/explain beside the model); several inputs "
                 "get one sub-folder each: 0001, 0002, ...");
  tasks::ExplainOptions proto;
  a->options.add(app, tasks::config_fields(proto));
  app.add_option("--cell-size", a->cell_size,
                 "PNG and SVG pixels per matrix cell, 1 to 64 (default: 800 / the longer side, "
                 "2 to 24, for PNGs; 640 / it, 6 to 28, for SVGs): larger for print")
      ->check(CLI::Range(1, 64));
  add_enum_option(app, "--format", a->formats,
                  "what to write: html, png, json, svg (default: html, png, json)");

  app.footer(
      "Writes into the output folder:\n"
      "  explanation.html  one self-contained page: head view, model view (layer x head),\n"
      "                    rollout, prediction, token importance or alignment\n"
      "  attention.json    raw weights and tokens (bertviz's head_view/model_view contract)\n"
      "  attribution.json  with --method: each method's token scores (and faithfulness curves)\n"
      "  *.png             heatmaps with token labels: rollout.png, alignment.png,\n"
      "                    BLOCK-layerL.png (mean over heads), BLOCK-layerL-headH.png (--heads)\n"
      "  *.svg             with --format svg: the same heatmaps for papers (title, axis labels,\n"
      "                    colour bar, Unicode tokens) and faithfulness.svg (with --method all)\n"
      "  index.html        several inputs: each with its prediction and page, two side by side\n"
      "and prints the paths written. With --data: faithfulness.json and faithfulness.svg.\n"
      "Examples:\n"
      "  gaze explain --model runs/sentiment --text 'Not bad at all.'     (-> "
      "runs/sentiment/explain)\n"
      "  gaze explain --model runs/wnut17 --file examples/tag/demo_sentences.txt --out explain/ "
      "--layers -1\n"
      "  gaze explain --model runs/g2p_rnn --input 'attention' --out explain/ --format png\n"
      "  gaze explain --model runs/sentiment --input 'Not bad at all.' --out explain/ --method "
      "all\n"
      "  gaze explain --model runs/sentiment --data data/sentiment/uci_sentiment_sentences.tsv "
      "--limit 50 --out "
      "faithful/");
  return [a, input, text, file, data] {
    a->has_input = input->count() > 0;
    a->has_text = text->count() > 0;
    a->has_file = file->count() > 0;
    a->has_data = data->count() > 0;
    return run_explain(*a);
  };
}

}  // namespace gaze::cli
