#include "gaze/explain/json_export.h"

#include "gaze/explain/attribution.h"

#include <fmt/format.h>

namespace gaze::explain {
namespace {

// Numbers are written by hand: a 512-token model holds millions of them, and fmt's shortest form
// of a float is both exact and about half as long as a double's.
void write_matrix(std::string& out, const float* p, int64_t rows, int64_t cols) {
  out += '[';
  for (int64_t i = 0; i < rows; ++i) {
    out += i ? ",[" : "[";
    for (int64_t j = 0; j < cols; ++j) {
      if (j) out += ',';
      fmt::format_to(std::back_inserter(out), "{}", p[i * cols + j]);
    }
    out += ']';
  }
  out += ']';
}

// [layer][head][query][key] of a block.
void write_block(std::string& out, const AttentionBlock& b) {
  out += '[';
  for (size_t l = 0; l < b.weights.size(); ++l) {
    if (l) out += ',';
    const Tensor& w = b.weights[l];
    const int64_t H = w.size(0), Tq = w.size(1), Tk = w.size(2);
    out += '[';
    for (int64_t h = 0; h < H; ++h) {
      if (h) out += ',';
      write_matrix(out, w.data<float>() + h * Tq * Tk, Tq, Tk);
    }
    out += ']';
  }
  out += ']';
}

void key(std::string& out, const char* name) {
  out += out.size() > 1 ? ",\n\"" : "\"";
  out += name;
  out += "\":";
}

}  // namespace

std::string to_json(const Explanation& e) {
  std::string out = "{";
  const nlohmann::json head = {{"format", "gaze-explain/1"},     {"task", e.task},
                               {"architecture", e.architecture}, {"text", e.text},
                               {"truncated", e.truncated},       {"prediction", e.prediction}};
  for (const auto& [k, v] : head.items()) {
    key(out, k.c_str());
    out += v.dump();
  }
  nlohmann::json layers = nlohmann::json::object();
  for (const auto& b : e.blocks) layers[b.name()] = b.layers;
  key(out, "layers");
  out += layers.dump();
  key(out, "heads");
  out += nlohmann::json(e.blocks.empty() ? std::vector<int64_t>{} : e.blocks[0].heads).dump();
  const bool seq2seq = e.seq2seq();
  if (seq2seq) {
    key(out, "encoder_tokens");
    out += nlohmann::json(e.tokens).dump();
    key(out, "decoder_tokens");
    out += nlohmann::json(e.target_tokens).dump();
    key(out, "output_tokens");
    out += nlohmann::json(e.output_tokens).dump();
  } else {
    key(out, "tokens");
    out += nlohmann::json(e.tokens).dump();
  }
  for (const auto& b : e.blocks) {
    key(out, seq2seq ? (b.name() + "_attention").c_str() : "attention");
    write_block(out, b);
  }
  if (e.rollout.defined()) {
    key(out, "rollout");
    write_matrix(out, e.rollout.data<float>(), e.rollout.size(0), e.rollout.size(1));
  }
  for (const auto& [name, values] : {std::pair{"token_importance", &e.importance},
                                     std::pair{"pooling_attention", &e.pooling_attention}}) {
    if (values->empty()) continue;
    key(out, name);
    out += '[';
    for (size_t i = 0; i < values->size(); ++i)
      fmt::format_to(std::back_inserter(out), "{}{}", i ? "," : "", (*values)[i]);
    out += ']';
  }
  if (e.alignment.defined()) {
    key(out, "alignment_layer");
    out += std::to_string(e.alignment_layer);
    key(out, "alignment");
    write_matrix(out, e.alignment.data<float>(), e.alignment.size(0), e.alignment.size(1));
    key(out, "hard_alignment");
    out += nlohmann::json(e.hard_alignment).dump();
  }
  if (!e.attributions.empty()) {  // the scores and curves (attribution.json adds the matrices)
    key(out, "attribution");
    out +=
        attribution_json(e, false).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (!e.word_rule.empty()) {
    key(out, "word_rule");
    out += nlohmann::json(e.word_rule).dump();
  }
  if (!e.provenance.is_null()) {
    key(out, "provenance");
    out += e.provenance.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out += "}\n";
  return out;
}

}  // namespace gaze::explain
