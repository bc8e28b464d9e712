#include "gaze/explain/faithfulness_summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "gaze/core/error.h"
#include "gaze/explain/svg.h"

namespace gaze::explain {
namespace {

constexpr int kPoints = 21;

// y at x by linear interpolation of the points (xs ascending).
double at(const std::vector<double>& xs, const std::vector<double>& ys, double x) {
  if (xs.size() == 1) return ys[0];
  const auto hi = std::lower_bound(xs.begin(), xs.end(), x);
  if (hi == xs.begin()) return ys.front();
  if (hi == xs.end()) return ys.back();
  const size_t j = static_cast<size_t>(hi - xs.begin());
  const double t = (x - xs[j - 1]) / (xs[j] - xs[j - 1]);
  return ys[j - 1] + t * (ys[j] - ys[j - 1]);
}

}  // namespace

FaithfulnessSummary summarize_faithfulness(const std::vector<Explanation>& explanations) {
  FaithfulnessSummary s;
  for (int i = 0; i < kPoints; ++i) s.fraction.push_back(double(i) / (kPoints - 1));
  std::map<std::string, size_t> index;
  std::vector<int64_t> counts;
  for (const Explanation& e : explanations) {
    if (e.faithfulness.empty()) continue;
    ++s.inputs;
    // A translation's curves follow the whole translation's log-probability.
    const std::string output = e.task == "translate" ? "log p(translation)" : e.explained_output;
    if (s.inputs == 1)
      s.explained_output = output;
    else if (s.explained_output != output)
      s.explained_output = "p(predicted class)";
    for (const FaithfulnessCurve& c : e.faithfulness) {
      auto [it, fresh] = index.emplace(c.method, s.methods.size());
      if (fresh) {
        s.methods.push_back({c.method, std::vector<double>(kPoints, 0.0),
                             std::vector<double>(kPoints, 0.0), 0.0, 0.0});
        counts.push_back(0);
      }
      MethodSummary& m = s.methods[it->second];
      ++counts[it->second];
      for (int i = 0; i < kPoints; ++i) {
        m.deletion[size_t(i)] += at(c.fraction, c.deletion, s.fraction[size_t(i)]);
        m.insertion[size_t(i)] += at(c.fraction, c.insertion, s.fraction[size_t(i)]);
      }
      m.deletion_area += c.deletion_area;
      m.insertion_area += c.insertion_area;
    }
  }
  for (size_t k = 0; k < s.methods.size(); ++k) {
    const double n = double(counts[k]);
    for (double& v : s.methods[k].deletion) v /= n;
    for (double& v : s.methods[k].insertion) v /= n;
    s.methods[k].deletion_area /= n;
    s.methods[k].insertion_area /= n;
  }
  std::stable_sort(
      s.methods.begin(), s.methods.end(),
      [](const MethodSummary& a, const MethodSummary& b) { return a.score() > b.score(); });
  return s;
}

std::string summary_table(const FaithfulnessSummary& s) {
  std::string out = fmt::format(
      "faithfulness over {} inputs (output: {}; deletion area: lower is "
      "better, insertion area: higher is better)\n",
      s.inputs, s.explained_output);
  out +=
      fmt::format("{:<22} {:>10} {:>10} {:>10}\n", "method", "deletion", "insertion", "ins - del");
  for (const MethodSummary& m : s.methods)
    out += fmt::format("{:<22} {:>10.4f} {:>10.4f} {:>10.4f}\n", m.method, m.deletion_area,
                       m.insertion_area, m.score());
  if (!s.methods.empty()) out += fmt::format("most faithful: {}\n", s.methods.front().method);
  return out;
}

nlohmann::json summary_json(const FaithfulnessSummary& s) {
  nlohmann::json methods = nlohmann::json::array();
  for (const MethodSummary& m : s.methods)
    methods.push_back({{"method", m.method},
                       {"deletion", m.deletion},
                       {"insertion", m.insertion},
                       {"deletion_area", m.deletion_area},
                       {"insertion_area", m.insertion_area}});
  return {{"inputs", s.inputs},
          {"explained_output", s.explained_output},
          {"fraction", s.fraction},
          {"methods", std::move(methods)},
          {"most_faithful", s.methods.empty() ? "" : s.methods.front().method}};
}

std::string summary_svg(const FaithfulnessSummary& s, const std::string& title) {
  static const char* colours[] = {"#e67700", "#1f6feb", "#2f9e44", "#ae3ec9",
                                  "#c92a2a", "#495057", "#0c8599", "#5c940d"};
  const int W = 360, H = 240, left = 56, top = 40, gap = 70, legend = 190;
  const int width = left + 2 * W + gap + legend, height = top + H + 60;
  double lo = 1e300, hi = -1e300;
  for (const auto& m : s.methods)
    for (const auto* curve : {&m.deletion, &m.insertion})
      for (double v : *curve) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!(hi > lo)) lo -= 0.5, hi += 0.5;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n<text x=\"{}\" y=\"20\" font-size=\"15\">{}</text>\n",
      width, height, left, xml_escape(title));
  for (int panel = 0; panel < 2; ++panel) {
    const int x0 = left + panel * (W + gap);
    out += fmt::format(
        "<g><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">fraction of tokens {}</text>\n"
        "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        x0, top, W, H, x0 + W / 2, top - 6, panel == 0 ? "deletion" : "insertion", x0 + W / 2,
        top + H + 36, panel == 0 ? "removed" : "inserted", x0 - 42, top + H / 2,
        xml_escape(s.explained_output));
    for (int t = 0; t <= 4; ++t) {  // ticks
      const double fx = t / 4.0, fy = lo + (hi - lo) * t / 4.0;
      const double px = x0 + fx * W, py = top + H - (fy - lo) / (hi - lo) * H;
      out += fmt::format(
          "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.2f}</text>"
          "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.2f}</text>\n",
          px, top + H + 16, fx, x0 - 4, py + 4, fy);
    }
    for (size_t k = 0; k < s.methods.size(); ++k) {
      const auto& ys = panel == 0 ? s.methods[k].deletion : s.methods[k].insertion;
      std::string points;
      for (size_t i = 0; i < ys.size(); ++i)
        points += fmt::format("{:.1f},{:.1f} ", x0 + s.fraction[i] * W,
                              top + H - (ys[i] - lo) / (hi - lo) * H);
      out += fmt::format(
          "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n",
          colours[k % 8], s.methods[k].method == "random" ? " stroke-dasharray=\"4 3\"" : "",
          points);
    }
    out += "</g>\n";
  }
  const int lx = left + 2 * W + gap + 10;
  for (size_t k = 0; k < s.methods.size(); ++k) {
    const int y = top + 10 + static_cast<int>(k) * 20;
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text>\n",
        lx, y, lx + 20, y, colours[k % 8], lx + 26, y + 4, xml_escape(s.methods[k].method));
  }
  return out + "</svg>\n";
}

}  // namespace gaze::explain
