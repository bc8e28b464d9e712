#include "gaze/explain/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "gaze/core/error.h"

namespace gaze::explain {
std::string blue_shade(double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto mix = [t](int lo, int hi) { return static_cast<int>(std::lround(lo + (hi - lo) * t)); };
  return fmt::format("rgb({},{},{})", mix(247, 8), mix(251, 48), mix(255, 107));
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
          out += "\xef\xbf\xbd";
        else
          out += c;
    }
  }
  return out;
}

std::string heatmap_svg(const Tensor& m, const std::vector<std::string>& rows,
                        const std::vector<std::string>& cols, const HeatmapStyle& style) {
  GAZE_CHECK(m.defined() && m.dim() == 2 && m.dtype() == DType::f32, ValueError,
             "heatmap_svg: expected an f32 matrix, got {}", m.defined() ? m.shape_str() : "none");
  const int64_t R = m.size(0), C = m.size(1);
  GAZE_CHECK(static_cast<int64_t>(rows.size()) == R && static_cast<int64_t>(cols.size()) == C,
             ValueError, "heatmap_svg: {} row and {} column labels for a [{}, {}] matrix",
             rows.size(), cols.size(), R, C);
  const float* v = m.data<float>();
  double vmax = style.vmax;
  if (vmax <= 0)
    for (int64_t i = 0; i < R * C; ++i) vmax = std::max(vmax, double(v[i]));
  if (vmax <= 0) vmax = 1;
  const int cell =
      style.cell > 0
          ? style.cell
          : static_cast<int>(std::clamp<int64_t>(640 / std::max<int64_t>({R, C, 1}), 6, 28));
  const int font = std::clamp(cell - 2, 6, 12);
  // Room for the labels: about 0.6 em per character, at most 24 characters shown.
  size_t longest = 1;
  for (const auto* labels : {&rows, &cols})
    for (const auto& l : *labels) longest = std::max(longest, std::min<size_t>(l.size(), 24));
  const int strip = static_cast<int>(20 + longest * font * 0.62);
  const int x0 = strip + 24, y0 = 40 + strip, w = static_cast<int>(C) * cell,
            h = static_cast<int>(R) * cell;
  const int width = x0 + w + 90, height = y0 + h + 20;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"{}\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\">{}</text>\n",
      width, height, font, xml_escape(style.title));
  auto label = [](const std::string& s) {
    // At most 24 characters (counted as UTF-8 lead bytes), so a hostile token cannot blow up the
    // figure; the full token stays in the cells' tooltips.
    size_t chars = 0, i = 0;
    for (; i < s.size(); ++i)
      if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && ++chars > 24) break;
    return xml_escape(s.substr(0, i)) + (i < s.size() ? "\xe2\x80\xa6" : "");
  };
  for (int64_t i = 0; i < R; ++i) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", x0 - 4,
                       y0 + i * cell + cell / 2 + font / 3, label(rows[size_t(i)]));
    for (int64_t j = 0; j < C; ++j) {
      const double x = v[i * C + j];
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} \xe2\x86\x92 "
          "{}: {:.4g}</title></rect>",
          x0 + j * cell, y0 + i * cell, cell, cell, blue_shade(x / vmax),
          xml_escape(rows[size_t(i)]), xml_escape(cols[size_t(j)]), x);
    }
    out += "\n";
  }
  for (int64_t j = 0; j < C; ++j)
    out += fmt::format("<text transform=\"translate({},{}) rotate(-90)\">{}</text>\n",
                       x0 + j * cell + cell / 2 + font / 3, y0 - 4, label(cols[size_t(j)]));
  for (size_t i = 0; i < style.marks.size() && int64_t(i) < R; ++i)
    if (style.marks[i] >= 0 && style.marks[i] < C)
      out += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#e67700\" "
          "stroke-width=\"2\"/>\n",
          x0 + style.marks[i] * cell + 1, y0 + int64_t(i) * cell + 1, cell - 2, cell - 2);
  out += fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n"
      "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" "
      "font-size=\"12\">{}</text>\n",
      x0 + w / 2, 34, xml_escape(style.col_axis), 16, y0 + h / 2, xml_escape(style.row_axis));
  // The colour bar.
  const int bx = x0 + w + 16, bh = std::max(h, 60);
  for (int k = 0; k < 32; ++k)
    out += fmt::format("<rect x=\"{}\" y=\"{:.2f}\" width=\"14\" height=\"{:.2f}\" fill=\"{}\"/>",
                       bx, y0 + bh - (k + 1) * bh / 32.0, bh / 32.0 + 0.5, blue_shade(k / 31.0));
  out += fmt::format(
      "\n<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>"
      "<text x=\"{}\" y=\"{}\" font-size=\"11\">{:.3g}</text><text x=\"{}\" y=\"{}\" "
      "font-size=\"11\">0</text>\n",
      bx, y0, bh, bx + 18, y0 + 10, vmax, bx + 18, y0 + bh);
  return out + "</svg>\n";
}

}  // namespace gaze::explain
