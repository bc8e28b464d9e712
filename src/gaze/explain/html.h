// The explanation as one self-contained HTML page (inline CSS, JS and data; nothing fetched): head
// view, model view (layer x head heatmaps), rollout, the prediction and, for classifiers, token
// importance; for encoder-decoders the alignment.
#pragma once

#include <string>

#include "gaze/explain/explanation.h"

namespace gaze::explain {

// The page. Weights travel as 8-bit quantised base64 per layer (each matrix scaled by its own
// maximum), so a 512-token input stays a few megabytes and the page decodes only what it draws.
std::string to_html(const Explanation& e);

}  // namespace gaze::explain
