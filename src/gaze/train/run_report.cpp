#include "gaze/train/run_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gaze/core/error.h"
#include "gaze/core/version.h"
#include "gaze/explain/svg.h"
#include "gaze/io/files.h"
#include "gaze/train/charts.h"

namespace gaze::train {
namespace fs = std::filesystem;
using json = nlohmann::json;
using explain::xml_escape;

namespace {

constexpr size_t kExamples = 10;     // rows of each example table
constexpr int64_t kMaxClasses = 60;  // more classes than this are left to test_report.json

std::string read_or_empty(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return "";
  return io::read_file(p.string(), io::kMaxMetadataBytes);
}

// The JSON objects of a JSON Lines file; unreadable lines (a write a crash cut short) are skipped.
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

double number(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

// A value of config.yaml's top level or a section ("train.metric"), as written, unquoted.
std::string config_value(const std::string& yaml, const std::string& section,
                         const std::string& key) {
  std::istringstream in(yaml);
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const bool nested = line[0] == ' ';
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    k.erase(0, k.find_first_not_of(' '));
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (!nested) current = v.empty() ? k : "";
    if ((section.empty() && !nested && k == key) || (nested && current == section && k == key))
      return v;
  }
  return "";
}

std::string curves(const std::vector<json>& lines, const std::string& metric) {
  Series train_loss{"train loss", {}, "", false}, dev_loss{"dev loss", {}, "", true};
  Series lr{"learning rate", {}, "", false}, grad{"gradient norm", {}, "", false};
  std::map<std::string, Series> dev;  // every validation metric but the loss
  for (const json& j : lines) {
    const double step = number(j, "step");
    if (j.contains("train_loss")) {
      train_loss.points.emplace_back(step, number(j, "train_loss"));
      lr.points.emplace_back(step, number(j, "lr"));
      grad.points.emplace_back(step, number(j, "grad_norm"));
      continue;
    }
    dev_loss.points.emplace_back(step, number(j, "loss"));
    for (const auto& [k, v] : j.items())
      if (v.is_number() && k != "loss" && k != "step" && k != "epoch" && k != "lr" &&
          k != "seconds" && k != "elapsed")
        dev[k].name = "dev " + k, dev[k].points.emplace_back(step, v.get<double>());
  }
  // The validations alone have the learning rate when training lines are missing (older runs).
  if (lr.points.empty())
    for (const json& j : lines)
      if (!j.contains("train_loss")) lr.points.emplace_back(number(j, "step"), number(j, "lr"));
  std::vector<Series> metrics;
  if (dev.count(metric)) metrics.push_back(dev[metric]);
  for (auto& [k, s] : dev)
    if (k != metric) metrics.push_back(s);
  std::string out = "<div class=\"charts\">";
  out += line_chart_svg({train_loss, dev_loss}, {"Loss", "step", "loss", true});
  out += line_chart_svg(metrics, {"Validation metrics", "step", "value"});
  out += line_chart_svg({lr}, {"Learning rate", "step", "lr"});
  out += line_chart_svg({grad}, {"Gradient norm (before clipping)", "step", "L2 norm", true});
  return out + "</div>";
}

// Classification: the confusion matrix (rows: gold, normalised) and per-class bars.
std::string classification_section(const json& r) {
  if (!r.contains("confusion_matrix") || !r.contains("labels")) return "";
  const auto labels = r["labels"].get<std::vector<std::string>>();
  const auto cm = r["confusion_matrix"].get<std::vector<std::vector<int64_t>>>();
  const auto n = static_cast<int64_t>(labels.size());
  if (n > kMaxClasses)
    return fmt::format(
        "<h2>Test set</h2><p>{} classes: too many to draw here; the confusion matrix and the "
        "per-class scores are in test_report.json.</p>",
        n);
  Tensor m = Tensor::zeros(Shape{n, n});
  for (int64_t g = 0; g < n && g < static_cast<int64_t>(cm.size()); ++g) {
    int64_t total = 0;
    for (const int64_t x : cm[static_cast<size_t>(g)]) total += x;
    for (int64_t p = 0; p < n && p < static_cast<int64_t>(cm[static_cast<size_t>(g)].size()); ++p)
      m.data<float>()[g * n + p] =
          total ? static_cast<float>(cm[static_cast<size_t>(g)][static_cast<size_t>(p)]) /
                      static_cast<float>(total)
                : 0.0f;
  }
  std::string out =
      "<h2>Test set: confusion and per-class scores</h2><div class=\"charts\"><div "
      "id=\"confusion\">";
  // Large cells for a few classes, small ones for many.
  const int cell = static_cast<int>(std::clamp<int64_t>(360 / std::max<int64_t>(1, n), 10, 64));
  out += explain::heatmap_svg(m, labels, labels,
                              {"Confusion (rows sum to 1)", "gold", "predicted", cell, 1.0});
  out += "<table class=\"counts\"><tr><th>gold \\ predicted</th>";
  for (const auto& l : labels) out += "<th>" + xml_escape(l) + "</th>";
  out += "</tr>";
  for (size_t g = 0; g < cm.size() && g < labels.size(); ++g) {
    out += "<tr><th>" + xml_escape(labels[g]) + "</th>";
    for (const int64_t x : cm[g]) out += fmt::format("<td>{}</td>", x);
    out += "</tr>";
  }
  out += "</table></div>";
  std::vector<Series> bars = {{"precision", {}, ""}, {"recall", {}, ""}, {"F1", {}, ""}};
  if (r.contains("per_class") && r["per_class"].is_object()) {
    for (const auto& l : labels) {
      const json& c = r["per_class"].value(l, json::object());
      bars[0].points.emplace_back(0, number(c, "precision"));
      bars[1].points.emplace_back(0, number(c, "recall"));
      bars[2].points.emplace_back(0, number(c, "f1-score"));
    }
  } else {
    for (const auto& l : labels) {
      const json& c = r.value(l, json::object());
      bars[0].points.emplace_back(0, number(c, "precision"));
      bars[1].points.emplace_back(0, number(c, "recall"));
      bars[2].points.emplace_back(0, number(c, "f1-score"));
    }
  }
  out += "<div id=\"per-class\">" + bar_chart_svg(labels, bars, {"Per class", "", "score"}) +
         "</div></div>";
  return out;
}

// Tagging: per entity type (the entity-level report's rows besides its averages).
std::string entity_section(const json& r) {
  std::vector<std::string> types;
  std::vector<Series> bars = {{"precision", {}, ""}, {"recall", {}, ""}, {"F1", {}, ""}};
  const json& rows = r.contains("per_type") && r["per_type"].is_object() ? r["per_type"] : r;
  for (const auto& [k, v] : rows.items()) {
    if (!v.is_object() || !v.contains("f1-score") || k.find(" avg") != std::string::npos) continue;
    types.push_back(k);
    bars[0].points.emplace_back(0, number(v, "precision"));
    bars[1].points.emplace_back(0, number(v, "recall"));
    bars[2].points.emplace_back(0, number(v, "f1-score"));
  }
  if (types.empty()) return "";
  return "<h2>Test set: per entity type</h2><div id=\"per-class\">" +
         bar_chart_svg(types, bars, {"Per entity type (seqeval)", "", "score"}) + "</div>";
}

std::string cell(const json& v) {
  if (v.is_string()) return xml_escape(v.get<std::string>());
  if (v.is_number_float()) return fmt::format("{:.4f}", v.get<double>());
  if (v.is_array()) {
    std::string s;
    for (const auto& x : v)
      s += (s.empty() ? "" : " ") + (x.is_string() ? x.get<std::string>() : x.dump());
    return xml_escape(s);
  }
  return xml_escape(v.dump());
}

std::string table(const std::string& id, const std::vector<json>& rows,
                  const std::vector<std::pair<std::string, std::string>> columns) {
  std::string out = "<table id=\"" + id + "\"><tr>";
  for (const auto& [key, name] : columns) out += "<th>" + xml_escape(name) + "</th>";
  out += "</tr>";
  for (const json& r : rows) {
    out += "<tr>";
    for (const auto& [key, name] : columns)
      out += "<td>" + (r.contains(key) ? cell(r[key]) : std::string()) + "</td>";
    out += "</tr>";
  }
  return out + "</table>";
}

// The examples the model got most wrong (most confident errors; most tag errors; lowest chrF)
// and those that took longest to predict on their own.
std::string examples_section(std::vector<json> preds) {
  if (preds.empty()) return "";
  std::string out = "<h2>Test examples</h2>";
  std::vector<json> confused;
  std::vector<std::pair<std::string, std::string>> columns;
  if (!preds.empty() && preds[0].contains("confidence")) {  // classification
    for (const json& p : preds)
      if (p.value("gold", "") != p.value("predicted", "")) confused.push_back(p);
    std::sort(confused.begin(), confused.end(), [](const json& a, const json& b) {
      return number(a, "confidence") > number(b, "confidence");
    });
    columns = {{"input", "text"},
               {"gold", "gold"},
               {"predicted", "predicted"},
               {"confidence", "confidence"},
               {"gold_probability", "p(gold)"}};
    out += "<h3>Most confused: wrong, and most sure of it</h3>";
  } else if (preds[0].contains("errors")) {  // tagging
    for (const json& p : preds)
      if (number(p, "errors") > 0) confused.push_back(p);
    std::sort(confused.begin(), confused.end(), [](const json& a, const json& b) {
      return number(a, "errors") > number(b, "errors");
    });
    columns = {{"input", "words"},
               {"gold", "gold tags"},
               {"predicted", "predicted tags"},
               {"errors", "wrong tags"}};
    out += "<h3>Most confused: the sentences with the most wrong tags</h3>";
  } else {  // translation
    confused = preds;
    std::sort(confused.begin(), confused.end(),
              [](const json& a, const json& b) { return number(a, "chrf") < number(b, "chrf"); });
    columns = {{"input", "source"},
               {"references", "reference(s)"},
               {"predicted", "translation"},
               {"chrf", "chrF"}};
    out += "<h3>Most confused: the lowest sentence chrF</h3>";
  }
  if (confused.size() > kExamples) confused.resize(kExamples);
  out +=
      confused.empty() ? "<p>No errors on the test set.</p>" : table("confused", confused, columns);
  std::vector<json> timed;
  for (const json& p : preds)
    if (p.contains("ms")) timed.push_back(p);
  std::sort(timed.begin(), timed.end(),
            [](const json& a, const json& b) { return number(a, "ms") > number(b, "ms"); });
  if (timed.size() > kExamples) timed.resize(kExamples);
  if (!timed.empty())
    out += fmt::format(
               "<h3>Slowest: milliseconds to predict alone (the first {} test examples "
               "timed)</h3>",
               std::count_if(preds.begin(), preds.end(),
                             [](const json& p) { return p.contains("ms"); })) +
           table("slowest", timed, {{"input", "input"}, {"ms", "ms"}, {"predicted", "prediction"}});
  return out;
}

const char* kStyle =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}"
    "h1{font-size:20px}h2{font-size:16px;margin-top:28px}h3{font-size:14px}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #ddd;background:#fff}"
    "table{border-collapse:collapse;font-size:12px;margin:6px 0}"
    "td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}"
    "td{max-width:480px}#summary td:first-child{color:#555}.counts td{text-align:right}";

}  // namespace

std::string run_report_html(const std::string& run_dir) {
  const fs::path run(run_dir);
  const std::string config = read_or_empty(run / "config.yaml");
  GAZE_CHECK(!config.empty(), DataError, "{}: not a run folder (no config.yaml)", run_dir);
  std::vector<json> lines;  // lines without an integer step (damaged, or not gaze's) are skipped
  for (json& j : json_lines(read_or_empty(run / "metrics.jsonl")))
    if (j.contains("step") && j["step"].is_number_integer()) lines.push_back(std::move(j));
  const std::string task = config_value(config, "", "task");
  std::string metric = config_value(config, "train", "metric");
  const std::string test_text = read_or_empty(run / "test_report.json");
  const json test = test_text.empty() ? json() : json::parse(test_text, nullptr, false);
  const std::vector<json> preds = json_lines(read_or_empty(run / "test_predictions.jsonl"));

  // The summary: the last training line, the best validation, the test's headline numbers.
  const json* best = nullptr;
  int64_t steps = 0;
  for (const json& j : lines) {
    steps = std::max<int64_t>(steps, j["step"].get<int64_t>());
    if (j.contains("best") && j["best"].is_boolean() && j["best"].get<bool>()) best = &j;
  }
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &utc);
  std::vector<std::pair<std::string, std::string>> summary = {
      {"run folder", fs::absolute(run).lexically_normal().string()},
      {"task", task},
      {"steps trained", std::to_string(steps)},
      {"validation metric", metric},
      {"best", best ? fmt::format("{:.4f} at step {}", number(*best, metric.c_str()),
                                  best->value("step", int64_t{0}))
                    : "no validation yet"}};
  if (test.is_object())
    for (const char* k : {"accuracy", "bleu", "chrf"})
      if (test.contains(k) && test[k].is_number())
        summary.emplace_back(fmt::format("test {}", k),
                             fmt::format("{:.4f}", test[k].get<double>()));
  if (task == "tag" && test.is_object() && test.contains("micro avg") &&
      test["micro avg"].is_object())
    summary.emplace_back("test entity F1 (micro)",
                         fmt::format("{:.4f}", number(test["micro avg"], "f1-score")));
  const std::string written_by = config.rfind("# gaze ", 0) == 0
                                     ? config.substr(7, config.find('\n') - 7)
                                     : std::string("unknown");
  summary.emplace_back("trained with gaze", written_by);
  summary.emplace_back("report made by gaze", version_line());
  summary.emplace_back("report made at", date);

  std::string out =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>gaze run "
      "report: " +
      xml_escape(run.filename().string()) + "</title><style>" + kStyle +
      "</style></head><body data-ready=\"1\"><h1>Run report: " +
      xml_escape(fs::absolute(run).lexically_normal().filename().string()) +
      "</h1><table id=\"summary\">";
  for (const auto& [k, v] : summary)
    out += "<tr><td>" + xml_escape(k) + "</td><td>" + xml_escape(v) + "</td></tr>";
  out += "</table><h2>Learning curves</h2>" + curves(lines, metric);
  // The test files are read as far as they make sense: a damaged one costs its section, not the
  // page.
  auto section = [&](const char* file, const std::function<std::string()>& make) {
    try {
      out += make();
    } catch (const json::exception& e) {
      out += fmt::format("<p>{}: not as gaze writes it ({}); its section is left out.</p>", file,
                         xml_escape(e.what()));
    }
  };
  if (test.is_object()) {
    if (task == "classify")
      section("test_report.json", [&] { return classification_section(test); });
    if (task == "tag") section("test_report.json", [&] { return entity_section(test); });
  }
  section("test_predictions.jsonl", [&] { return examples_section(preds); });
  out += "<h2>Configuration</h2><pre>" + xml_escape(config) + "</pre></body></html>\n";
  return out;
}

std::string write_run_report(const std::string& run_dir, const std::string& out) {
  const std::string path = out.empty() ? (fs::path(run_dir) / "report.html").string() : out;
  io::write_file_atomic(path, run_report_html(run_dir));
  return path;
}

}  // namespace gaze::train
