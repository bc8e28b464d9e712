#include "gaze/tasks/translate_report.h"

#include <map>
#include <set>

#include "gaze/core/version.h"

namespace gaze::tasks {
using json = nlohmann::json;

DistinctSources distinct_sources(const std::vector<data::SentencePair>& pairs) {
  DistinctSources d;
  std::map<std::string, size_t> index;
  for (const auto& pair : pairs) {
    auto [it, fresh] = index.emplace(pair.source, d.sources.size());
    if (fresh) d.sources.push_back(pair.source), d.references.emplace_back();
    d.references[it->second].push_back(pair.target);
  }
  d.pairs = static_cast<int64_t>(pairs.size());
  return d;
}

std::vector<std::string> best_translations(TranslatePredictor& p,
                                           const std::vector<std::string>& sources,
                                           const decode::SearchOptions& o) {
  std::vector<std::string> hyps;
  for (const auto& h : p.translate(sources, o))
    hyps.push_back(h.empty() ? std::string() : p.detokenize(h[0].tokens));
  return hyps;
}

TranslationScores score_hypotheses(const std::vector<std::string>& hyps, const DistinctSources& d) {
  TranslationScores s;
  s.bleu = metrics::corpus_bleu(hyps, d.references);
  s.chrf = metrics::corpus_chrf(hyps, d.references);
  s.errors = metrics::error_rates(hyps, d.references);
  s.sources = static_cast<int64_t>(d.sources.size());
  s.pairs = d.pairs;
  std::set<size_t> counts;
  for (const auto& r : d.references) counts.insert(r.size());
  s.nrefs = counts.size() == 1 ? std::to_string(*counts.begin()) : "var";
  return s;
}

TranslationScores score_translations(TranslatePredictor& p,
                                     const std::vector<data::SentencePair>& pairs,
                                     const decode::SearchOptions& o) {
  const DistinctSources d = distinct_sources(pairs);
  return score_hypotheses(best_translations(p, d.sources, o), d);
}

Report translation_report(const TranslationScores& s, const decode::SearchOptions& search,
                          bool g2p) {
  const bool beam = search.method == decode::SearchMethod::beam;
  // sacreBLEU's signatures, with gaze's version in sacreBLEU's place: gaze computes the same
  // statistics (tests/python/test_task_metrics.py holds it to sacreBLEU's numbers).
  const std::string version = "gaze-" + std::string(gaze::version());
  const std::string bleu_sig =
      fmt::format("nrefs:{}|case:mixed|eff:no|tok:13a|smooth:none|version:{}", s.nrefs, version);
  const std::string chrf_sig =
      fmt::format("nrefs:{}|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{}", s.nrefs, version);
  const std::string text = fmt::format(
      "{}\n  signature: {}\nchrF2 = {:.2f}\n  signature: {}\n{} = {:.2f} (outputs equal to no "
      "reference, of {} sources)\nPER = {:.2f} (token edit distance / {} reference tokens)\n{} "
      "pairs, {} distinct sources; decoding: {}{}\n",
      metrics::to_string(s.bleu), bleu_sig, s.chrf, chrf_sig,
      g2p ? "WER" : "exact-match error rate", s.errors.wer, s.errors.examples, s.errors.per,
      s.errors.reference_tokens, s.pairs, s.sources, enum_name(search.method),
      beam ? fmt::format(" (beam {}, length penalty {})", search.beam_size, search.length_penalty)
           : "");
  decode::SearchOptions copy = search;
  const json j = {{"bleu", s.bleu.score},
                  {"bleu_precisions", s.bleu.precisions},
                  {"bleu_bp", s.bleu.bp},
                  {"sys_len", s.bleu.sys_len},
                  {"ref_len", s.bleu.ref_len},
                  {"bleu_signature", bleu_sig},
                  {"chrf", s.chrf},
                  {"chrf_signature", chrf_sig},
                  {"wer", s.errors.wer},
                  {"per", s.errors.per},
                  {"pairs", s.pairs},
                  {"sources", s.sources},
                  {"decode", json::parse(config::write_object(decode::config_fields(copy)))}};
  return Report{text, j.dump(2), s.pairs};
}

}  // namespace gaze::tasks
