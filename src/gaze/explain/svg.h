// SVG figures for papers: heatmaps of attention (and other token x token) matrices with a title,
// axis labels, a colour bar and the tokens as real Unicode text; and the XML escaping they share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gaze/core/tensor.h"

namespace gaze::explain {

// Text for XML content and attribute values (&, <, >, " and ' escaped; control characters, which
// XML 1.0 forbids, become U+FFFD).
std::string xml_escape(const std::string& text);

// The heatmaps' colour for t in [0, 1]: white to dark blue (the page's and the PNGs' scale).
std::string blue_shade(double t);

struct HeatmapStyle {
  std::string title, row_axis, col_axis;  // e.g. "query token", "key token"
  int cell = 0;                           // pixels per cell; 0: clamp(640 / max(rows, cols), 6, 28)
  double vmax = 0;                        // the colour bar's top; 0: the matrix's largest value
  std::vector<int64_t> marks{};           // per row, a column outlined in orange (-1: none)
};

// A white-to-dark-blue heatmap of matrix [rows, cols] (values from 0 to vmax), every cell with a
// tooltip (<title>) of its tokens and value.
std::string heatmap_svg(const Tensor& matrix, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const HeatmapStyle& style);

}  // namespace gaze::explain
