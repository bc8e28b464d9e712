#include "gaze/tasks/translate_report.h"

#include <map>

namespace gaze::tasks {
using json = nlohmann::json;

namespace {

// Unique sources in order of first appearance, with the indices of their pairs.
std::vector<std::pair<std::string, std::vector<size_t>>> group_sources(
    const std::vector<data::SentencePair>& pairs) {
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto [it, fresh] = index.emplace(pairs[i].source, groups.size());
    if (fresh) groups.push_back({pairs[i].source, {}});
    groups[it->second].second.push_back(i);
  }
  return groups;
}

}  // namespace

TranslationScores score_translations(TranslatePredictor& p,
                                     const std::vector<data::SentencePair>& pairs,
                                     const decode::SearchOptions& o) {
  std::vector<std::string> sources;
  std::vector<std::vector<std::string>> refs;
  for (const auto& [src, idx] : group_sources(pairs)) {
    sources.push_back(src);
    std::vector<std::string> r;
    for (const size_t i : idx) r.push_back(pairs[i].target);
    refs.push_back(std::move(r));
  }
  std::vector<std::string> hyps;
  for (const auto& h : p.translate(sources, o))
    hyps.push_back(h.empty() ? std::string() : p.detokenize(h[0].tokens));
  TranslationScores s;
  s.bleu = metrics::corpus_bleu(hyps, refs);
  s.chrf = metrics::corpus_chrf(hyps, refs);
  s.errors = metrics::error_rates(hyps, refs);
  s.sources = static_cast<int64_t>(sources.size());
  s.pairs = static_cast<int64_t>(pairs.size());
  return s;
}

Report translation_report(const TranslationScores& s, const decode::SearchOptions& search) {
  const bool beam = search.method == decode::SearchMethod::beam;
  const std::string text = fmt::format(
      "{}\nchrF2 = {:.2f}\nWER = {:.2f} (outputs equal to no reference, of {} sources)\nPER = "
      "{:.2f} (token edit distance / {} reference tokens)\n{} pairs, {} distinct sources; "
      "decoding: {}{}\n",
      metrics::to_string(s.bleu), s.chrf, s.errors.wer, s.errors.examples, s.errors.per,
      s.errors.reference_tokens, s.pairs, s.sources, enum_name(search.method),
      beam ? fmt::format(" (beam {}, length penalty {})", search.beam_size, search.length_penalty)
           : "");
  decode::SearchOptions copy = search;
  const json j = {{"bleu", s.bleu.score},
                  {"bleu_precisions", s.bleu.precisions},
                  {"bleu_bp", s.bleu.bp},
                  {"sys_len", s.bleu.sys_len},
                  {"ref_len", s.bleu.ref_len},
                  {"chrf", s.chrf},
                  {"wer", s.errors.wer},
                  {"per", s.errors.per},
                  {"pairs", s.pairs},
                  {"sources", s.sources},
                  {"decode", json::parse(config::write_object(decode::config_fields(copy)))}};
  return Report{text, j.dump(2), s.pairs};
}

}  // namespace gaze::tasks
