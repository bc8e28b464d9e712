#include "gaze/explain/head_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "gaze/core/error.h"
#include "gaze/explain/aggregate.h"
#include "gaze/explain/svg.h"
#include "gaze/text/utf8.h"

namespace gaze::explain {

bool is_punctuation_piece(const std::string& piece) {
  std::string p = piece;
  for (const std::string marker : {"##", "\xe2\x96\x81", "\xc4\xa0"})  // ##, ▁, Ġ
    if (p.rfind(marker, 0) == 0) p = p.substr(marker.size());
  if (p.empty() || text::find_invalid_utf8(p) != std::string::npos) return false;
  const std::vector<char32_t> cps = text::decode_utf8(p);
  return std::all_of(cps.begin(), cps.end(), [](char32_t c) { return text::is_punct(c); });
}

void HeadStatisticsAccumulator::add(const Explanation& e) {
  const AttentionBlock* b = e.block(Stack::encoder);
  if (!b || b->weights.empty()) return;
  const auto S = head_statistic_names().size();
  const int64_t H = b->weights[0].size(0), T = b->weights[0].size(1);
  if (sums_.inputs == 0) {
    sums_.layers = b->layers, sums_.num_heads = H;
    const size_t cells = b->layers.size() * static_cast<size_t>(H);
    sums_.values.assign(S, std::vector<double>(cells, 0.0));
    counts_.assign(S, std::vector<double>(cells, 0.0));
  }
  GAZE_CHECK(b->layers == sums_.layers && H == sums_.num_heads, ValueError,
             "head statistics: every input must capture the same layers and heads");
  // Rollout importance as the mean of its rows (every position's view), scaled so uniform is 1.
  std::vector<double> importance(static_cast<size_t>(T), 1.0);
  if (e.rollout.defined()) {
    const std::vector<float> r = token_importance(e.rollout, models::Pooling::mean);
    for (int64_t k = 0; k < T; ++k) importance[size_t(k)] = double(r[size_t(k)]) * double(T);
  }
  std::vector<bool> punct, framing;
  for (int64_t k = 0; k < T; ++k) {
    punct.push_back(is_punctuation_piece(e.tokens[size_t(k)]));
    framing.push_back(size_t(k) < e.framing.size() && e.framing[size_t(k)]);
  }
  for (size_t l = 0; l < b->weights.size(); ++l)
    for (int64_t h = 0; h < H; ++h) {
      const size_t cell = l * static_cast<size_t>(H) + static_cast<size_t>(h);
      const float* a = b->weights[l].data<float>() + h * T * T;
      for (int64_t q = 0; q < T; ++q) {
        const float* row = a + q * T;
        double entropy = 0, on_framing = 0, on_punct = 0, on_important = 0;
        for (int64_t k = 0; k < T; ++k) {
          const double w = row[k];
          if (w > 0) entropy -= w * std::log(w);
          if (framing[size_t(k)]) on_framing += w;
          if (punct[size_t(k)]) on_punct += w;
          on_important += w * importance[size_t(k)];
        }
        auto put = [&](size_t stat, double v) {
          sums_.values[stat][cell] += v;
          counts_[stat][cell] += 1;
        };
        put(0, entropy), put(1, on_framing), put(2, on_punct);
        if (q > 0) put(3, row[q - 1]);
        if (q + 1 < T) put(4, row[q + 1]);
        put(5, row[q]), put(6, on_important);
      }
    }
  ++sums_.inputs;
}

HeadStatistics HeadStatisticsAccumulator::result() const {
  HeadStatistics s = sums_;
  for (size_t i = 0; i < s.values.size(); ++i)
    for (size_t c = 0; c < s.values[i].size(); ++c)
      s.values[i][c] = counts_[i][c] > 0 ? s.values[i][c] / counts_[i][c] : 0.0;
  return s;
}

std::string head_statistics_table(const HeadStatistics& s) {
  const auto& names = head_statistic_names();
  std::string out = fmt::format("encoder heads over {} inputs (means over queries)\n{:<10}",
                                s.inputs, "layer.head");
  for (const auto& n : names) out += fmt::format(" {:>11}", n);
  out += "\n";
  for (size_t l = 0; l < s.layers.size(); ++l)
    for (int64_t h = 0; h < s.num_heads; ++h) {
      out += fmt::format("{:<10}", fmt::format("{}.{}", s.layers[l], h));
      for (size_t i = 0; i < names.size(); ++i)
        out += fmt::format(" {:>11.4f}", s.values[i][l * size_t(s.num_heads) + size_t(h)]);
      out += "\n";
    }
  return out;
}

nlohmann::json head_statistics_json(const HeadStatistics& s) {
  nlohmann::json stats = nlohmann::json::object();
  const int64_t H = s.num_heads;
  for (size_t i = 0; i < s.values.size(); ++i) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t l = 0; l < s.layers.size(); ++l)
      rows.push_back(
          std::vector<double>(s.values[i].begin() + static_cast<std::ptrdiff_t>(l * H),
                              s.values[i].begin() + static_cast<std::ptrdiff_t>((l + 1) * H)));
    stats[head_statistic_names()[i]] = std::move(rows);
  }
  return {{"inputs", s.inputs},
          {"layers", s.layers},
          {"num_heads", s.num_heads},
          {"statistics", std::move(stats)}};
}

std::string head_statistics_svg(const HeadStatistics& s, const std::string& title) {
  const int64_t L = static_cast<int64_t>(s.layers.size()), H = s.num_heads;
  const int cell =
      static_cast<int>(std::clamp<int64_t>(240 / std::max<int64_t>({L, H, 1}), 14, 44));
  const int pw = static_cast<int>(H) * cell, ph = static_cast<int>(L) * cell;
  const int margin = 50, bar = 12, panel_w = margin + pw + 60, panel_h = 40 + ph + 50;
  const int per_row = 4, n = static_cast<int>(s.values.size());
  const int width = per_row * panel_w + 20, height = 40 + ((n + per_row - 1) / per_row) * panel_h;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n<text x=\"10\" y=\"22\" font-size=\"15\">{}</text>\n",
      width, height, xml_escape(title));
  for (int i = 0; i < n; ++i) {
    const auto& v = s.values[size_t(i)];
    const double lo = v.empty() ? 0 : *std::min_element(v.begin(), v.end());
    const double hi = v.empty() ? 1 : *std::max_element(v.begin(), v.end());
    const double span = hi > lo ? hi - lo : 1.0;
    const int x0 = 10 + (i % per_row) * panel_w + margin, y0 = 40 + (i / per_row) * panel_h + 24;
    out += fmt::format("<g><text x=\"{}\" y=\"{}\" font-size=\"13\">{}</text>\n", x0, y0 - 8,
                       head_statistic_names()[size_t(i)]);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        const double val = v[size_t(l * H + h)], t = (val - lo) / span;
        out += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>layer {} head "
            "{}: {:.4f}</title></rect>",
            x0 + h * cell, y0 + l * cell, cell, cell, blue_shade(t), s.layers[size_t(l)], h, val);
        if (cell >= 28)
          out += fmt::format(
              "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\" fill=\"{}\">{:.2f}"
              "</text>",
              x0 + h * cell + cell / 2, y0 + l * cell + cell / 2 + 3, t > 0.55 ? "white" : "black",
              val);
        out += "\n";
      }
    for (int64_t l = 0; l < L; ++l)
      out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">L{}</text>", x0 - 4,
                         y0 + l * cell + cell / 2 + 4, s.layers[size_t(l)]);
    for (int64_t h = 0; h < H; ++h)
      out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">H{}</text>",
                         x0 + h * cell + cell / 2, y0 + ph + 14, h);
    // The colour bar: the panel's own range.
    const int bx = x0 + pw + 10;
    for (int k = 0; k < 20; ++k)
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{:.2f}\" fill=\"{}\"/>", bx,
                         y0 + ph - (k + 1) * ph / 20.0, bar, ph / 20.0 + 0.5, blue_shade(k / 19.0));
    out += fmt::format(
        "\n<text x=\"{}\" y=\"{}\">{:.3g}</text><text x=\"{}\" y=\"{}\">{:.3g}</text></g>\n",
        bx + bar + 3, y0 + 8, hi, bx + bar + 3, y0 + ph, lo);
  }
  return out + "</svg>\n";
}

}  // namespace gaze::explain
