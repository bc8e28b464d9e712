// gaze._C._metrics: the task metrics (seqeval-style entities, sacreBLEU-style BLEU and chrF, error
// rates), so Python users and the parity tests see the numbers the command line prints.

#include "bindings.h"
#include "gaze/metrics/entities.h"
#include "gaze/metrics/translation.h"

namespace gaze::python {

void register_metrics(py::module_& m) {
  py::module_ mm = m.def_submodule("_metrics", "compiled metrics");
  mm.def(
      "get_entities",
      [](const std::vector<std::string>& tags) {
        std::vector<std::tuple<std::string, int64_t, int64_t>> out;
        for (const auto& e : metrics::get_entities(tags)) out.emplace_back(e.type, e.start, e.end);
        return out;
      },
      py::arg("tags"));
  mm.def("is_entity_tagset", &metrics::is_entity_tagset, py::arg("tags"));
  mm.def(
      "tagging_report_json",
      [](const std::vector<std::vector<std::string>>& gold,
         const std::vector<std::vector<std::string>>& pred,
         bool entities) { return metrics::to_json(metrics::tagging_report(gold, pred, entities)); },
      py::arg("gold"), py::arg("predicted"), py::arg("entities") = true);
  mm.def(
      "tagging_report_text",
      [](const std::vector<std::vector<std::string>>& gold,
         const std::vector<std::vector<std::string>>& pred, bool entities, int digits) {
        return metrics::to_text(metrics::tagging_report(gold, pred, entities), digits);
      },
      py::arg("gold"), py::arg("predicted"), py::arg("entities") = true, py::arg("digits") = 4);
  mm.def("tokenize_13a", [](const std::string& s) { return metrics::tokenize_13a(s); });
  mm.def(
      "corpus_bleu",
      [](const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
         const std::string& smooth) {
        const auto b = metrics::corpus_bleu(
            hyps, refs, parse_enum<metrics::BleuSmoothing>(smooth, "corpus_bleu: smooth"));
        py::dict d;
        d["score"] = b.score;
        d["precisions"] = std::vector<double>(b.precisions.begin(), b.precisions.end());
        d["counts"] = std::vector<int64_t>(b.counts.begin(), b.counts.end());
        d["totals"] = std::vector<int64_t>(b.totals.begin(), b.totals.end());
        d["bp"] = b.bp;
        d["sys_len"] = b.sys_len;
        d["ref_len"] = b.ref_len;
        return d;
      },
      py::arg("hypotheses"), py::arg("references"), py::arg("smooth") = "none");
  mm.def("corpus_chrf", &metrics::corpus_chrf, py::arg("hypotheses"), py::arg("references"));
  mm.def(
      "error_rates",
      [](const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs) {
        const auto e = metrics::error_rates(hyps, refs);
        py::dict d;
        d["wer"] = e.wer;
        d["per"] = e.per;
        d["examples"] = e.examples;
        d["reference_tokens"] = e.reference_tokens;
        return d;
      },
      py::arg("hypotheses"), py::arg("references"));
}

}  // namespace gaze::python
