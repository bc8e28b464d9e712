// SVG charts for the run report: line charts of learning curves and grouped bars of per-class
// scores, self-contained (no script), every point or bar with a tooltip (<title>).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gaze::train {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), x increasing
  std::string colour{};                           // CSS colour; empty: by position
  bool dashed = false;
};

struct ChartStyle {
  std::string title, x_label, y_label;
  bool log_y = false;  // for losses and learning rates spanning decades (values must be > 0)
  int width = 560, height = 300;
};

// A line chart of the series on shared axes (x and y ranges from all their points), with a legend.
// An empty chart (no points) says so instead of drawing axes.
std::string line_chart_svg(const std::vector<Series>& series, const ChartStyle& style);

// Grouped vertical bars: for each category one bar per series (values in [0, 1], e.g. precision,
// recall and F1 per class).
std::string bar_chart_svg(const std::vector<std::string>& categories,
                          const std::vector<Series>& series, const ChartStyle& style);

// "Nice" tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart), about `count` of
// them.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

}  // namespace gaze::train
