// PNG heatmaps of attention matrices with token labels (stb_image_write), for reports and papers.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/tensor.h"
#include "gaze/explain/svg.h"

namespace gaze::explain {

// The layout of heatmap_png, so callers and tests can predict the image size: each matrix cell is
// a square of `cell` pixels, cell = clamp(800 / max(rows, cols), 2, 24) (integer division) unless
// the style sets it; a title strip of kTitleStrip pixels on top; row labels fill a strip of
// kLabelStrip pixels on the left, column labels (rotated) a strip of the same height under the
// title; the colour bar takes kBarStrip pixels right of the matrix; a margin of kMargin pixels
// closes the right and bottom. Width = kLabelStrip + cols * cell + kBarStrip + kMargin, height =
// kTitleStrip + kLabelStrip + rows * cell + kMargin. When cells are small, only every
// ceil(10 / cell)-th token is labelled.
inline constexpr int kLabelStrip = 100, kMargin = 8, kTitleStrip = 20, kBarStrip = 64;
int heatmap_cell_size(int64_t rows, int64_t cols);

// An RGB PNG (the file's bytes) of matrix [rows, cols]: white for 0 to dark blue for the matrix's
// largest value (the colour bar says which), the style's title on top and its marks (one column
// per row, -1 for none) outlined in orange, e.g. a hard alignment. Labels and title (valid
// UTF-8) are drawn in ASCII (Latin-1 letters lose their accents, others become ?); the SVG
// (svg.h) has the real text.
std::string heatmap_png(const Tensor& matrix, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const HeatmapStyle& style = {});

}  // namespace gaze::explain
