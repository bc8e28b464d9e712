#include "gaze/train/charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "gaze/explain/svg.h"

namespace gaze::train {
namespace {

using explain::xml_escape;

const char* kPalette[] = {"#1f6fb4", "#e07b1a", "#2a9d4b", "#c0392b", "#7b4fb0", "#7f7f7f"};

std::string colour_of(const Series& s, size_t i) {
  return s.colour.empty() ? kPalette[i % std::size(kPalette)] : s.colour;
}

// At most `max` bytes of a UTF-8 text, cut at a character boundary, with an ellipsis when cut.
std::string shorten(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max - 1;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\u2026";
}

// A short label for a tick value.
std::string tick_label(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.0e}", v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

struct Frame {
  double left = 64, right = 16, top = 34, bottom = 44;
  double w, h;
  Frame(const ChartStyle& s) : w(s.width - 64 - 16), h(s.height - 34 - 44) {}
};

std::string header(const ChartStyle& s) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"11\">"
      "<text x=\"{}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
      s.width, s.height, s.width, s.height, 8, xml_escape(s.title));
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

std::string line_chart_svg(const std::vector<Series>& series, const ChartStyle& s) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double y) { return s.log_y ? std::log10(y) : y; };
  for (const auto& se : series)
    for (const auto& [x, y] : se.points) {
      if (!std::isfinite(y) || (s.log_y && y <= 0)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, ty(y)),
      y1 = std::max(y1, ty(y));
    }
  std::string out = header(s);
  if (!std::isfinite(x0)) return out + "<text x=\"8\" y=\"60\">no data yet</text></svg>";
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const Frame f(s);
  auto px = [&](double x) { return f.left + (x - x0) / (x1 - x0) * f.w; };
  auto py = [&](double y) { return f.top + (1 - (ty(y) - y0) / (y1 - y0)) * f.h; };
  // Axes, ticks and grid.
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>", f.left,
      f.top, f.w, f.h);
  for (const double v : nice_ticks(y0, y1)) {
    const double y = f.top + (1 - (v - y0) / (y1 - y0)) * f.h;
    out += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
        f.left, f.left + f.w, y, y, f.left - 4, y + 4, tick_label(s.log_y ? std::pow(10.0, v) : v));
  }
  for (const double v : nice_ticks(x0, x1, 6)) {
    const double x = px(v);
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>", x,
                       f.top + f.h + 14, tick_label(v));
  }
  out += fmt::format(
      "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>"
      "<text transform=\"translate(12,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
      f.left + f.w / 2, s.height - 8, xml_escape(s.x_label), f.top + f.h / 2,
      xml_escape(s.y_label + (s.log_y ? " (log scale)" : "")));
  // The series, each point with its value as a tooltip, and the legend.
  double legend_x = f.left + 8;
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& se = series[i];
    const std::string c = colour_of(se, i);
    std::string pts;
    std::string dots;
    for (const auto& [x, y] : se.points) {
      if (!std::isfinite(y) || (s.log_y && y <= 0)) continue;
      pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
      dots += fmt::format(
          "<circle class=\"pt\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"><title>{} at "
          "{}: {}</title></circle>",
          px(x), py(y), c, xml_escape(se.name), tick_label(x), fmt::format("{:.5g}", y));
    }
    out += fmt::format(
        "<polyline class=\"series\" data-name=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"1.6\"{}/>",
        xml_escape(se.name), pts, c, se.dashed ? " stroke-dasharray=\"5,3\"" : "");
    if (se.points.size() <= 400) out += dots;
    out += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"2\"{}/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>",
        legend_x, legend_x + 16, f.top + 10, f.top + 10, c,
        se.dashed ? " stroke-dasharray=\"5,3\"" : "", legend_x + 20, f.top + 14,
        xml_escape(se.name));
    legend_x += 28 + 6.5 * static_cast<double>(se.name.size());
  }
  return out + "</svg>";
}

std::string bar_chart_svg(const std::vector<std::string>& categories,
                          const std::vector<Series>& series, const ChartStyle& s) {
  std::string out = header(s);
  if (categories.empty()) return out + "<text x=\"8\" y=\"60\">nothing to show</text></svg>";
  const Frame f(s);
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>", f.left,
      f.top, f.w, f.h);
  for (const double v : {0.0, 0.25, 0.5, 0.75, 1.0})
    out += fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#eee\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
        f.left, f.left + f.w, f.top + (1 - v) * f.h, f.top + (1 - v) * f.h, f.left - 4,
        f.top + (1 - v) * f.h + 4, tick_label(v));
  const double group = f.w / static_cast<double>(categories.size());
  const double bar = group * 0.8 / static_cast<double>(std::max<size_t>(1, series.size()));
  for (size_t c = 0; c < categories.size(); ++c) {
    const double gx = f.left + group * static_cast<double>(c) + group * 0.1;
    for (size_t i = 0; i < series.size(); ++i) {
      const double v = c < series[i].points.size() ? series[i].points[c].second : 0.0;
      const double h = std::clamp(v, 0.0, 1.0) * f.h;
      out += fmt::format(
          "<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
          "fill=\"{}\"><title>{} {}: {:.4f}</title></rect>",
          gx + bar * static_cast<double>(i), f.top + f.h - h, std::max(1.0, bar - 1), h,
          colour_of(series[i], i), xml_escape(categories[c]), xml_escape(series[i].name), v);
    }
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
                       gx + group * 0.4, f.top + f.h + 14, xml_escape(shorten(categories[c], 14)));
  }
  double legend_x = f.left + 8;
  for (size_t i = 0; i < series.size(); ++i) {
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>",
        legend_x, f.top + 5, colour_of(series[i], i), legend_x + 14, f.top + 14,
        xml_escape(series[i].name));
    legend_x += 24 + 6.5 * static_cast<double>(series[i].name.size());
  }
  return out + "</svg>";
}

}  // namespace gaze::train
