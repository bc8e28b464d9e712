#include "gaze/metrics/entities.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "gaze/core/error.h"

namespace gaze::metrics {
namespace {

// seqeval's split of a tag into its prefix letter and type: "B-creative-work" -> ('B',
// "creative-work"); "O" -> ('O', "_").
std::pair<char, std::string> split_tag(const std::string& tag) {
  if (tag.empty()) return {'O', "_"};
  const std::string rest = tag.substr(1);
  const size_t dash = rest.find('-');
  std::string type = dash == std::string::npos ? rest : rest.substr(dash + 1);
  if (type.empty()) type = "_";
  return {tag[0], type};
}

bool end_of_chunk(char prev, char tag, const std::string& prev_type, const std::string& type) {
  if (prev == 'E' || prev == 'S') return true;
  if ((prev == 'B' || prev == 'I') && (tag == 'B' || tag == 'S' || tag == 'O')) return true;
  return prev != 'O' && prev != '.' && prev_type != type;
}

bool start_of_chunk(char prev, char tag, const std::string& prev_type, const std::string& type) {
  if (tag == 'B' || tag == 'S') return true;
  if ((prev == 'E' || prev == 'S' || prev == 'O') && (tag == 'E' || tag == 'I')) return true;
  return tag != 'O' && tag != '.' && prev_type != type;
}

}  // namespace

bool is_entity_tagset(const std::vector<std::string>& tags) {
  for (const std::string& t : tags) {
    if (t == "O") continue;
    if (t.size() < 3 || t[1] != '-' || std::string("BIES").find(t[0]) == std::string::npos)
      return false;
  }
  return true;
}

std::vector<Entity> get_entities(const std::vector<std::string>& tags) {
  std::vector<Entity> out;
  char prev = 'O';
  std::string prev_type = "_";
  int64_t begin = 0;
  const auto n = static_cast<int64_t>(tags.size());
  for (int64_t i = 0; i <= n; ++i) {  // a final O closes an entity at the end
    const auto [tag, type] =
        i < n ? split_tag(tags[static_cast<size_t>(i)]) : std::pair<char, std::string>{'O', "_"};
    if (end_of_chunk(prev, tag, prev_type, type)) out.push_back({prev_type, begin, i - 1});
    if (start_of_chunk(prev, tag, prev_type, type)) begin = i;
    prev = tag, prev_type = type;
  }
  return out;
}

TaggingReport tagging_report(const std::vector<std::vector<std::string>>& gold,
                             const std::vector<std::vector<std::string>>& predicted,
                             bool entities) {
  GAZE_CHECK(gold.size() == predicted.size(), ValueError,
             "tagging_report: {} gold sentences but {} predicted", gold.size(), predicted.size());
  TaggingReport r;
  r.entities = entities;
  r.sentences = static_cast<int64_t>(gold.size());
  int64_t correct = 0;
  // Entities as (type, sentence, start, end): sentences are scored as one sequence, as seqeval
  // does after joining them with O.
  using Key = std::tuple<std::string, size_t, int64_t, int64_t>;
  std::set<Key> true_set, pred_set;
  for (size_t s = 0; s < gold.size(); ++s) {
    GAZE_CHECK(gold[s].size() == predicted[s].size(), ValueError,
               "tagging_report: sentence {} has {} gold tags but {} predicted", s + 1,
               gold[s].size(), predicted[s].size());
    for (size_t i = 0; i < gold[s].size(); ++i) correct += gold[s][i] == predicted[s][i];
    r.tokens += static_cast<int64_t>(gold[s].size());
    if (!entities) continue;
    for (const Entity& e : get_entities(gold[s])) true_set.insert({e.type, s, e.start, e.end});
    for (const Entity& e : get_entities(predicted[s])) pred_set.insert({e.type, s, e.start, e.end});
  }
  r.token_accuracy =
      r.tokens > 0 ? static_cast<double>(correct) / static_cast<double>(r.tokens) : 0;
  if (!entities) return r;
  std::map<std::string, std::array<int64_t, 3>> counts;  // type -> (tp, n_pred, n_true)
  for (const Key& k : true_set) counts[std::get<0>(k)][2] += 1;
  for (const Key& k : pred_set) {
    counts[std::get<0>(k)][1] += 1;
    if (true_set.count(k)) counts[std::get<0>(k)][0] += 1;
  }
  double tp_all = 0, pred_all = 0, true_all = 0;
  for (const auto& [type, c] : counts) {
    r.types.push_back(type);
    r.per_type.push_back(scores_from_counts(static_cast<double>(c[0]),
                                            static_cast<double>(c[1] - c[0]),
                                            static_cast<double>(c[2] - c[0]), c[2]));
    tp_all += static_cast<double>(c[0]), pred_all += static_cast<double>(c[1]),
        true_all += static_cast<double>(c[2]);
  }
  const auto support = static_cast<int64_t>(true_all);
  r.micro = scores_from_counts(tp_all, pred_all - tp_all, true_all - tp_all, support);
  r.macro.support = r.weighted.support = support;
  const double k = static_cast<double>(r.types.size());
  for (const ClassScores& s : r.per_type) {
    const double w = true_all > 0 ? static_cast<double>(s.support) / true_all : 0.0;
    if (k > 0) {
      r.macro.precision += s.precision / k, r.macro.recall += s.recall / k, r.macro.f1 += s.f1 / k;
    }
    r.weighted.precision += w * s.precision, r.weighted.recall += w * s.recall,
        r.weighted.f1 += w * s.f1;
  }
  return r;
}

std::string to_text(const TaggingReport& r, int digits) {
  std::string out;
  if (r.entities) {
    std::vector<ScoreRow> rows;
    for (size_t i = 0; i < r.types.size(); ++i) rows.emplace_back(r.types[i], r.per_type[i]);
    out = score_table(
              rows, {{"micro avg", r.micro}, {"macro avg", r.macro}, {"weighted avg", r.weighted}},
              digits) +
          "\n";
  }
  return out + fmt::format("token accuracy: {:.{}f} ({} tokens, {} sentences)\n", r.token_accuracy,
                           digits, r.tokens, r.sentences);
}

std::string to_json(const TaggingReport& r) {
  nlohmann::json j = {
      {"token_accuracy", r.token_accuracy}, {"tokens", r.tokens}, {"sentences", r.sentences}};
  if (r.entities) {
    nlohmann::json per = nlohmann::json::object();
    for (size_t i = 0; i < r.types.size(); ++i) per[r.types[i]] = scores_json(r.per_type[i]);
    j["per_type"] = per;
    j["micro avg"] = scores_json(r.micro);
    j["macro avg"] = scores_json(r.macro);
    j["weighted avg"] = scores_json(r.weighted);
  }
  return j.dump(2);
}

}  // namespace gaze::metrics
