// gaze._C._tasks: trained model folders (any task) loaded for prediction and attention
// explanations, the same code paths as `gaze predict` and `gaze explain`.
#include <nlohmann/json.hpp>

#include "bindings.h"
#include "gaze/explain/html.h"
#include "gaze/imports/bert.h"
#include "gaze/imports/use_lite.h"
#include "gaze/io/checkpoint.h"
#include "gaze/tasks/model_folder.h"
#include "gaze/tasks/quantize.h"
#include "gaze/tasks/task.h"
#include "gaze/tasks/train_run.h"

namespace gaze::python {
namespace {
using namespace pybind11::literals;

py::object from_json(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

py::array stack_layers(const explain::AttentionBlock& b) {
  // [layers, heads, Tq, Tk], copied out of the per-layer tensors.
  const Tensor& w0 = b.weights.at(0);
  const int64_t L = static_cast<int64_t>(b.weights.size()), n = w0.numel();
  py::array_t<float> out({L, w0.size(0), w0.size(1), w0.size(2)});
  float* dst = out.mutable_data();
  for (int64_t l = 0; l < L; ++l) std::copy_n(b.weights[size_t(l)].data<float>(), n, dst + l * n);
  return out;
}

py::dict to_python(const explain::Explanation& e) {
  py::dict d;
  d["task"] = e.task;
  d["architecture"] = e.architecture;
  d["text"] = e.text;
  d["truncated"] = e.truncated;
  d["prediction"] = from_json(e.prediction);
  const bool seq2seq = e.seq2seq();
  py::dict layers;
  for (const auto& b : e.blocks) {
    layers[py::str(b.name())] = b.layers;
    d[py::str(seq2seq ? b.name() + "_attention" : "attention")] =
        b.weights.empty() ? py::object(py::none()) : py::object(stack_layers(b));
  }
  d["layers"] = layers;
  d["heads"] = e.blocks.empty() ? std::vector<int64_t>{} : e.blocks[0].heads;
  if (seq2seq) {
    d["encoder_tokens"] = e.tokens;
    d["decoder_tokens"] = e.target_tokens;
    d["encoder_token_ids"] = e.token_ids;
    d["decoder_token_ids"] = e.target_token_ids;
    d["output_tokens"] = e.output_tokens;
  } else {
    d["tokens"] = e.tokens;
    d["token_ids"] = e.token_ids;
  }
  if (e.rollout.defined()) d["rollout"] = to_numpy(e.rollout);
  if (!e.importance.empty())
    d["token_importance"] =
        py::array_t<float>(static_cast<py::ssize_t>(e.importance.size()), e.importance.data());
  if (!e.pooling_attention.empty())
    d["pooling_attention"] = py::array_t<float>(
        static_cast<py::ssize_t>(e.pooling_attention.size()), e.pooling_attention.data());
  if (!e.attributions.empty()) {
    d["explained_output"] = e.explained_output;
    py::dict by_method;
    for (const auto& a : e.attributions) {
      const auto T = static_cast<py::ssize_t>(a.scores.size() / size_t(a.outputs));
      by_method[py::str(a.method)] =
          a.outputs == 1
              ? py::array_t<float>(T, a.scores.data())
              : py::array_t<float>({static_cast<py::ssize_t>(a.outputs), T}, a.scores.data());
      if (a.method == "integrated_gradients")
        d["integrated_gradients"] = py::dict(
            "output"_a = a.output, "baseline_output"_a = a.baseline_output,
            "completeness_gap"_a = a.completeness_gap, "completeness_gaps"_a = a.completeness_gaps);
      if (a.method == "attention_x_gradient") {
        py::list layers;
        for (const auto& t : a.per_head) layers.append(to_numpy(t));
        d["attention_x_gradient"] = py::dict("layers"_a = a.layers, "weights"_a = layers);
      }
    }
    d["attributions"] = by_method;
  }
  if (!e.faithfulness.empty()) {
    py::dict curves;
    for (const auto& c : e.faithfulness)
      curves[py::str(c.method)] = py::dict(
          "fraction"_a = c.fraction, "deletion"_a = c.deletion, "insertion"_a = c.insertion,
          "deletion_area"_a = c.deletion_area, "insertion_area"_a = c.insertion_area);
    d["faithfulness"] = curves;
  }
  if (!e.word_rule.empty()) d["word_rule"] = e.word_rule;
  if (!e.provenance.is_null())
    d["provenance"] = py::module_::import("json").attr("loads")(
        e.provenance.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (e.alignment.defined()) {
    d["alignment"] = to_numpy(e.alignment);
    d["hard_alignment"] = py::array_t<int64_t>(static_cast<py::ssize_t>(e.hard_alignment.size()),
                                               e.hard_alignment.data());
    d["alignment_layer"] = e.alignment_layer;
  }
  return d;
}

}  // namespace

void register_tasks(py::module_& m) {
  py::module_ tm = m.def_submodule("_tasks", "trained model folders");
  // An explanation kept as computed, for its page (rendered only when asked for).
  py::class_<explain::Explanation, std::shared_ptr<explain::Explanation>>(tm, "ExplanationData")
      .def("html", [](const explain::Explanation& e) { return explain::to_html(e); });
  // Keyword options arrive as one JSON object and are read through the options' declarations
  // (tasks::config_fields), as the CLI flags are: unknown names and wrong types are errors.
  py::class_<tasks::Predictor>(tm, "Predictor")
      .def_property_readonly("task", [](const tasks::Predictor& p) { return enum_name(p.kind()); })
      .def_property_readonly("precision",
                             [](const tasks::Predictor& p) { return enum_name(p.precision()); })
      .def(
          "predict",
          [](tasks::Predictor& p, const std::vector<std::string>& texts,
             const std::string& options) {
            tasks::PredictOptions o = p.predict_defaults();
            // Only the options of the model's task: top_k on a tagger is an error, as in the CLI.
            config::read_object(options, tasks::predict_fields(o, p.kind()),
                                fmt::format("predict ({} model)", enum_name(p.kind())));
            // --nbest above a beam_size given beside it is an error; above the model's own beam
            // it widens the beam (as `gaze predict` does, without its notice).
            const nlohmann::json given = nlohmann::json::parse(options, nullptr, false);
            GAZE_CHECK(!(given.is_object() && given.contains("beam_size") &&
                         given.contains("nbest") && o.search.nbest > o.search.beam_size),
                       DataError,
                       "predict: nbest {} is more than beam_size {}: a beam search keeps at most "
                       "beam_size hypotheses",
                       o.search.nbest, o.search.beam_size);
            decode::widen_beam(o.search);
            py::list out;
            for (const auto& j : p.predict(texts, o)) out.append(from_json(j));
            return out;
          },
          py::arg("texts"), py::arg("options") = "{}")
      .def(
          "explain",
          [](tasks::Predictor& p, const std::string& text, const std::string& options) {
            tasks::ExplainOptions o = p.explain_defaults();
            config::read_object(options, tasks::config_fields(o), "explain");
            auto e = std::make_shared<explain::Explanation>(p.explain(text, o));
            return py::make_tuple(to_python(*e), e);
          },
          py::arg("text"), py::arg("options") = "{}")
      .def(
          "embed",
          [](tasks::Predictor& p, const std::vector<std::string>& texts) {
            const auto rows = p.embed(texts);
            const auto d = rows.empty() ? py::ssize_t{0} : static_cast<py::ssize_t>(rows[0].size());
            py::array_t<float> out({static_cast<py::ssize_t>(rows.size()), d});
            float* dst = out.mutable_data();
            for (const auto& r : rows) dst = std::copy(r.begin(), r.end(), dst);
            return out;
          },
          py::arg("texts"));
  tm.def(
      "load",
      [](const std::string& dir, const std::optional<std::string>& precision) {
        tasks::LoadOptions o;
        if (precision) o.precision = parse_enum<Precision>(*precision, "precision");
        return tasks::load_predictor(dir, o);
      },
      py::arg("dir"), py::arg("precision") = py::none());
  tm.def(
      "quantize",
      [](const std::string& dir, const std::string& out, const std::string& precision,
         bool overwrite) {
        tasks::QuantizeOptions o;
        o.precision = parse_enum<Precision>(precision, "precision");
        o.overwrite = overwrite;
        const tasks::QuantizeReport r = tasks::quantize_model(dir, out, o);
        using namespace pybind11::literals;
        return py::dict("matrices"_a = r.matrices, "bytes_before"_a = r.bytes_before,
                        "bytes_after"_a = r.bytes_after);
      },
      py::arg("dir"), py::arg("out"), py::arg("precision") = "int8", py::arg("overwrite") = false);
  tm.def(
      "import_use_lite",
      [](const std::string& package, const std::string& out) {
        io::check_checkpoint_target(out);
        imports::import_use_lite(package)->save(out);
      },
      py::arg("package"), py::arg("out"));
  tm.def(
      "import_bert",
      [](const std::string& folder, const std::string& out) {
        io::check_checkpoint_target(out);
        auto r = imports::import_bert(folder);
        r.predictor->save(out);
        return r.ignored;
      },
      py::arg("folder"), py::arg("out"));
  tm.def("resolve_model_dir", &tasks::resolve_model_dir, py::arg("dir"));
  tm.def(
      "save_pipeline",
      [](const std::shared_ptr<models::Model>& model,
         const std::shared_ptr<text::Tokenizer>& tokenizer, const std::string& dir,
         const std::vector<std::string>& labels,
         const std::shared_ptr<text::Tokenizer>& target_tokenizer, int64_t max_length,
         bool overwrite) {
        tasks::ModelFolderOptions o;
        o.labels = labels, o.target_tokenizer = target_tokenizer, o.max_length = max_length;
        o.overwrite = overwrite;
        tasks::save_model_folder(model, tokenizer, dir, o);
      },
      py::arg("model"), py::arg("tokenizer"), py::arg("dir"), py::arg("labels"),
      py::arg("target_tokenizer"), py::arg("max_length"), py::arg("overwrite"));
  // gaze.train: the trainer of `gaze train`, without the GIL (Ctrl-C saves a resumable checkpoint
  // as on the command line). The result as JSON text, for the Python side to turn into a dict.
  tm.def(
      "train_run",
      [](const std::string& config, const std::string& config_text,
         const std::vector<std::string>& overrides, bool overwrite, const std::string& resume,
         bool quiet) {
        tasks::TrainRunOptions o;
        o.config = config, o.config_text = config_text, o.config_source = "<dict>";
        o.overrides = overrides, o.overwrite = overwrite, o.resume = resume;
        std::FILE* null_log = quiet ? std::fopen("/dev/null", "w") : nullptr;
        o.log = quiet && null_log ? null_log : stderr;
        tasks::TrainRunResult r;
        try {
          r = tasks::train_run(o);
        } catch (...) {
          if (null_log) std::fclose(null_log);
          throw;
        }
        if (null_log) std::fclose(null_log);
        nlohmann::json j = {{"output", r.config.output},
                            {"steps", r.train.steps},
                            {"best_step", r.train.best_step},
                            {"interrupted", r.train.interrupted},
                            {"early_stopped", r.train.early_stopped},
                            {"seconds", r.seconds},
                            {"metric", enum_name(r.config.train.metric)},
                            {"test_report", r.test ? nlohmann::json::parse(r.test->json)
                                                   : nlohmann::json(nullptr)}};
        j["best_metric"] =
            r.train.best_step >= 0 ? nlohmann::json(r.train.best_metric) : nlohmann::json(nullptr);
        return j.dump();
      },
      py::arg("config"), py::arg("config_text"), py::arg("overrides"), py::arg("overwrite"),
      py::arg("resume"), py::arg("quiet"), py::call_guard<py::gil_scoped_release>());
}

}  // namespace gaze::python
