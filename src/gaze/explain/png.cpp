#include "gaze/explain/png.h"

#include <stb_easy_font.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "gaze/core/error.h"
#include "gaze/text/utf8.h"

namespace gaze::explain {
namespace {

struct Image {
  int width, height;
  std::vector<uint8_t> rgb;
  void fill(int x0, int y0, int x1, int y1, std::array<uint8_t, 3> c) {
    x0 = std::max(x0, 0), y0 = std::max(y0, 0);
    x1 = std::min(x1, width), y1 = std::min(y1, height);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x)
        std::copy(c.begin(), c.end(), rgb.begin() + 3 * (static_cast<size_t>(y) * width + x));
  }
};

// Latin-1 letters without their accents (U+00C0..U+00FF), so Spanish tokens stay readable.
constexpr const char* kLatin1 = "AAAAAAACEEEEIIIIDNOOOOOxOUUUUYTsaaaaaaaceeeeiiiidnooooo/ouuuuyty";

// Labels are tokenizer pieces of validated UTF-8 text.
std::string ascii(const std::string& s) {
  std::string out;
  for (const char32_t cp : text::decode_utf8(s)) {
    if (cp < 0x80)
      out += cp >= 0x20 ? static_cast<char>(cp) : '?';
    else if (cp >= 0xC0 && cp <= 0xFF)
      out += kLatin1[cp - 0xC0];
    else if (cp == 0x2581)  // SentencePiece's word boundary
      out += '_';
    else
      out += '?';
  }
  return out;
}

// The label cut to fit `room` pixels.
std::string fit(std::string text, int room) {
  while (!text.empty() && stb_easy_font_width(text.data()) > room) text.pop_back();
  return text;
}

// Draws text at (x, y) (top-left); rotated: reading upwards, its baseline along x = x, ending at y.
void draw_text(Image& img, const std::string& label, int x, int y, bool rotated) {
  std::string text = label;
  std::vector<char> buffer(text.size() * 270 + 64);  // stb: up to ~270 bytes of quads per char
  unsigned char color[4] = {30, 30, 30, 255};
  const int quads =
      stb_easy_font_print(0, 0, text.data(), color, buffer.data(), static_cast<int>(buffer.size()));
  const auto* v = reinterpret_cast<const float*>(buffer.data());  // x, y, z, color per vertex
  for (int q = 0; q < quads; ++q) {
    const float* a = v + q * 16;          // first vertex
    const float* c = v + q * 16 + 2 * 4;  // opposite corner
    const int qx0 = static_cast<int>(a[0]), qy0 = static_cast<int>(a[1]);
    const int qx1 = static_cast<int>(c[0]), qy1 = static_cast<int>(c[1]);
    if (!rotated)
      img.fill(x + qx0, y + qy0, x + qx1, y + qy1, {30, 30, 30});
    else  // (tx, ty) -> (x + ty, y - tx)
      img.fill(x + qy0, y - qx1, x + qy1, y - qx0, {30, 30, 30});
  }
}

}  // namespace

int heatmap_cell_size(int64_t rows, int64_t cols) {
  return static_cast<int>(std::clamp<int64_t>(800 / std::max<int64_t>({rows, cols, 1}), 2, 24));
}

std::string heatmap_png(const Tensor& m, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const HeatmapStyle& style) {
  const std::vector<int64_t>& marks = style.marks;
  GAZE_CHECK(m.defined() && m.dim() == 2 && m.numel() > 0, ValueError,
             "heatmap_png: expected a non-empty matrix, got {}",
             m.defined() ? m.shape_str() : "undefined");
  const int64_t R = m.size(0), C = m.size(1);
  GAZE_CHECK(
      static_cast<int64_t>(row_labels.size()) == R && static_cast<int64_t>(col_labels.size()) == C,
      ValueError, "heatmap_png: {} row and {} column labels for a {} matrix", row_labels.size(),
      col_labels.size(), m.shape_str());
  const int cell = style.cell > 0 ? std::clamp(style.cell, 1, 64) : heatmap_cell_size(R, C);
  // Checked before allocating: a cell size and a long input must not ask for gigabytes.
  GAZE_CHECK(std::max(R, C) * cell <= 16384, ValueError,
             "heatmap_png: {} x {} cells of {} pixels exceed 16384 pixels a side; use a smaller "
             "cell size",
             R, C, cell);
  const int x0 = kLabelStrip, y0 = kTitleStrip + kLabelStrip;
  Image img{x0 + static_cast<int>(C) * cell + kBarStrip + kMargin,
            y0 + static_cast<int>(R) * cell + kMargin,
            {}};
  img.rgb.assign(static_cast<size_t>(img.width) * img.height * 3, 255);

  const float* p = m.data<float>();
  const float top = style.vmax > 0 ? static_cast<float>(style.vmax)
                                   : std::max(*std::max_element(p, p + m.numel()), 1e-12f);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) {
      const float t = std::clamp(p[i * C + j] / top, 0.0f, 1.0f);
      auto mix = [t](int lo, int hi) { return static_cast<uint8_t>(lo + (hi - lo) * t + 0.5f); };
      const int x = x0 + static_cast<int>(j) * cell, y = y0 + static_cast<int>(i) * cell;
      img.fill(x, y, x + cell, y + cell, {mix(247, 8), mix(251, 48), mix(255, 107)});
    }
  for (size_t i = 0; i < marks.size() && static_cast<int64_t>(i) < R; ++i) {
    if (marks[i] < 0 || marks[i] >= C) continue;
    const int x = x0 + static_cast<int>(marks[i]) * cell, y = y0 + static_cast<int>(i) * cell,
              w = std::max(1, cell / 6);
    const std::array<uint8_t, 3> orange{240, 120, 0};
    img.fill(x, y, x + cell, y + w, orange);
    img.fill(x, y + cell - w, x + cell, y + cell, orange);
    img.fill(x, y, x + w, y + cell, orange);
    img.fill(x + cell - w, y, x + cell, y + cell, orange);
  }

  const int step = (10 + cell - 1) / cell, room = kLabelStrip - 6;
  const int text_h = 8;  // stb_easy_font's capital height at scale 1
  for (int64_t i = 0; i < R; i += step) {
    const std::string t = fit(ascii(row_labels[size_t(i)]), room);
    const int y = y0 + static_cast<int>(i) * cell + (cell - text_h) / 2 + 1;
    draw_text(img, t, x0 - 3 - stb_easy_font_width(const_cast<char*>(t.c_str())), y, false);
  }
  for (int64_t j = 0; j < C; j += step) {
    const std::string t = fit(ascii(col_labels[size_t(j)]), room);
    const int x = x0 + static_cast<int>(j) * cell + (cell - text_h) / 2;
    draw_text(img, t, x, y0 - 3, true);
  }
  // The title, and the colour bar from 0 (bottom) to the top value.
  draw_text(img, fit(ascii(style.title), img.width - 8), 4, 6, false);
  const int bx = x0 + static_cast<int>(C) * cell + 8, bh = static_cast<int>(R) * cell;
  for (int y = 0; y < bh; ++y) {
    const float t = bh > 1 ? 1.0f - static_cast<float>(y) / static_cast<float>(bh - 1) : 1.0f;
    auto mix = [t](int lo, int hi) { return static_cast<uint8_t>(lo + (hi - lo) * t + 0.5f); };
    img.fill(bx, y0 + y, bx + 10, y0 + y + 1, {mix(247, 8), mix(251, 48), mix(255, 107)});
  }
  draw_text(img, fmt::format("{:.3g}", top), bx + 13, y0, false);
  draw_text(img, "0", bx + 13, y0 + std::max(bh - text_h, text_h + 2), false);

  std::string png;
  const int ok = stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
      },
      &png, img.width, img.height, 3, img.rgb.data(), img.width * 3);
  GAZE_CHECK(ok != 0, StateError, "heatmap_png: PNG encoding failed ({} x {})", img.width,
             img.height);
  return png;
}

}  // namespace gaze::explain
