// The explain page's template, style and script (src/gaze/explain/page/*), embedded at build time
// so the page is written without reading any file.
#pragma once

namespace gaze::explain {

extern const char* const kPageHtml;
extern const char* const kPageCss;
extern const char* const kPageJs;

}  // namespace gaze::explain
