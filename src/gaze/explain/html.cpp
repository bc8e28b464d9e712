#include "gaze/explain/html.h"

#include "gaze/explain/attribution.h"

#include <algorithm>
#include <cmath>

#include "gaze/core/error.h"
#include "gaze/explain/page_assets.h"

namespace gaze::explain {
namespace {

std::string base64(const std::vector<uint8_t>& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t b = (uint32_t{bytes[i]} << 16) |
                       (i + 1 < bytes.size() ? uint32_t{bytes[i + 1]} << 8 : 0) |
                       (i + 2 < bytes.size() ? uint32_t{bytes[i + 2]} : 0);
    out += kAlphabet[(b >> 18) & 63];
    out += kAlphabet[(b >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(b >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[b & 63] : '=';
  }
  return out;
}

// {"rows", "cols", "count", "max": [per matrix], "data": base64 of count * rows * cols bytes}: each
// matrix's values as round(255 * v / its max).
nlohmann::json quantised(const float* p, int64_t count, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  std::vector<uint8_t> bytes(static_cast<size_t>(count * n));
  std::vector<float> maxima;
  for (int64_t m = 0; m < count; ++m) {
    const float* q = p + m * n;
    const float top = std::max(*std::max_element(q, q + n), 1e-30f);
    maxima.push_back(top);
    for (int64_t i = 0; i < n; ++i)
      bytes[size_t(m * n + i)] =
          static_cast<uint8_t>(std::lround(std::clamp(q[i] / top, 0.0f, 1.0f) * 255.0f));
  }
  return {
      {"rows", rows}, {"cols", cols}, {"count", count}, {"max", maxima}, {"data", base64(bytes)}};
}

nlohmann::json quantised(const Tensor& m) {
  return quantised(m.data<float>(), 1, m.size(0), m.size(1));
}

nlohmann::json page_data(const Explanation& e) {
  nlohmann::json d = {{"task", e.task},
                      {"architecture", e.architecture},
                      {"text", e.text},
                      {"prediction", e.prediction},
                      {"tokens", e.tokens},
                      {"target_tokens", e.target_tokens},
                      {"output_tokens", e.output_tokens},
                      {"truncated", e.truncated}};
  nlohmann::json blocks = nlohmann::json::array();
  for (const auto& b : e.blocks) {
    nlohmann::json layers = nlohmann::json::array();
    for (const Tensor& w : b.weights)
      layers.push_back(quantised(w.data<float>(), w.size(0), w.size(1), w.size(2)));
    // Which token list labels the queries and the keys.
    const bool decoder_side = b.stack != Stack::encoder;
    blocks.push_back({{"name", b.name()},
                      {"layers", b.layers},
                      {"heads", b.heads},
                      {"num_layers", b.num_layers},
                      {"num_heads", b.num_heads},
                      // Decoder rows are labelled by the token each position predicts,
                      // as the alignment's rows are (its input is the previous token).
                      {"queries", decoder_side ? "output_tokens" : "tokens"},
                      {"keys", b.stack == Stack::decoder ? "target_tokens" : "tokens"},
                      {"weights", layers}});
  }
  d["blocks"] = blocks;
  if (e.rollout.defined()) d["rollout"] = quantised(e.rollout);
  if (!e.importance.empty()) {
    d["importance"] = e.importance;
    d["importance_rule"] = e.importance_rule;
  }
  if (!e.attributions.empty()) d["attribution"] = attribution_json(e, false);
  if (!e.provenance.is_null()) d["provenance"] = e.provenance;
  if (!e.word_rule.empty()) d["word_rule"] = e.word_rule;
  if (e.alignment.defined()) {
    d["alignment"] = quantised(e.alignment);
    d["hard_alignment"] = e.hard_alignment;
    d["alignment_layer"] = e.alignment_layer;
  }
  return d;
}

void replace(std::string& s, const std::string& what, const std::string& with) {
  const size_t at = s.find(what);
  GAZE_CHECK(at != std::string::npos, StateError, "explain page template lacks {}", what);
  s.replace(at, what.size(), with);
}

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string to_html(const Explanation& e) {
  // Inside <script>, "</script" or "<!--" in user text could end or confuse the element. '<' only
  // occurs inside JSON strings, where \u003c stands for the same character.
  const std::string json =
      page_data(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string data;
  data.reserve(json.size());
  for (const char c : json) {
    if (c == '<')
      data += "\\u003c";
    else
      data += c;
  }
  std::string title = e.text;
  if (title.size() > 60) {  // cut at a character boundary
    size_t cut = 57;
    while (cut > 0 && (static_cast<unsigned char>(title[cut]) & 0xC0) == 0x80) --cut;
    title = title.substr(0, cut) + "...";
  }
  // From the end of the page to its start, so user text inserted later can't shadow a
  // placeholder: each find() meets the template's own first.
  std::string page(kPageHtml);
  replace(page, "/*{{JS}}*/", kPageJs);
  replace(page, "{{DATA}}", data);
  replace(page, "/*{{CSS}}*/", kPageCss);
  replace(page, "{{TITLE}}", escape_html(title));
  return page;
}

}  // namespace gaze::explain
