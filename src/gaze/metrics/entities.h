// Sequence-tagging metrics as seqeval computes them by default: entities read from B-/I-/E-/S-
// tags the way conlleval reads them, scored only when type and both boundaries match; plus token
// accuracy, the metric of tagsets without entities (part of speech).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gaze/metrics/classification.h"

namespace gaze::metrics {

struct Entity {
  std::string type;
  int64_t start = 0, end = 0;  // first and last token, inclusive
  bool operator==(const Entity&) const = default;
};

// Whether every tag is O or a prefix B-, I-, E- or S- followed by a type (an entity tagset).
bool is_entity_tagset(const std::vector<std::string>& tags);
// The entities of one tag sequence (seqeval's get_entities): an I- or E- after O or after another
// type opens an entity, as conlleval does; a change of type closes one.
std::vector<Entity> get_entities(const std::vector<std::string>& tags);

struct TaggingReport {
  bool entities = false;               // whether the entity table applies
  std::vector<std::string> types;      // entity types, sorted
  std::vector<ClassScores> per_type;   // in the order of types
  ClassScores micro, macro, weighted;  // over entities
  double token_accuracy = 0;
  int64_t tokens = 0, sentences = 0;
};

// gold and predicted: one tag sequence per sentence, of equal lengths. entities: score entities
// (seqeval) besides token accuracy.
TaggingReport tagging_report(const std::vector<std::vector<std::string>>& gold,
                             const std::vector<std::vector<std::string>>& predicted, bool entities);
// seqeval's classification_report layout (micro, macro and weighted averages), then the token
// accuracy; only the token accuracy for a tagset without entities.
std::string to_text(const TaggingReport& r, int digits = 4);
// {"per_type": {type: {...}}, "micro avg", "macro avg", "weighted avg", "token_accuracy",
//  "tokens", "sentences"}.
std::string to_json(const TaggingReport& r);

}  // namespace gaze::metrics
