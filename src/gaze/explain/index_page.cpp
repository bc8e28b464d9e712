#include "gaze/explain/index_page.h"

#include <string_view>

namespace gaze::explain {
namespace {

// The page: data as JSON in a script element (every '<' written as \u003c, so no text can close
// it), the DOM built with textContent only.
constexpr std::string_view kIndex = R"page(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gaze explain: index</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 0 16px 40px;
       color: #222; }
h1 { font-size: 22px; margin: 16px 0 4px; }
h2 { font-size: 17px; margin: 24px 0 6px; border-bottom: 1px solid #ddd; }
.note { color: #555; }
#inputs td, #inputs th { padding: 2px 12px 2px 0; text-align: left; vertical-align: top; }
#inputs td.text { max-width: 640px; white-space: pre-wrap; overflow-wrap: anywhere; }
#compare { display: flex; gap: 8px; }
#compare iframe { flex: 1; height: 900px; border: 1px solid #ccc; }
.controls { margin: 6px 0; display: flex; gap: 12px; }
</style>
</head>
<body>
<h1>gaze explain</h1>
<p class="note" id="meta"></p>
<h2>Inputs</h2>
<table id="inputs"></table>
<h2>Compare</h2>
<div class="controls"><label>Left <select id="left"></select></label>
  <label>Right <select id="right"></select></label></div>
<div id="compare"><iframe id="left-frame" title="left"></iframe><iframe id="right-frame" title="right"></iframe></div>
<script type="application/json" id="gaze-index">{{DATA}}</script>
<script>
(() => {
  const D = JSON.parse(document.getElementById("gaze-index").textContent);
  const $ = (id) => document.getElementById(id);
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; };
  const P = D.provenance || {};
  $("meta").textContent = D.entries.length + " inputs · model " + (P.model || "?") + " (" +
    (P.checkpoint || "?") + (P.step === null || P.step === undefined ? "" : ", step " + P.step) +
    ") · gaze " + (P.gaze_version || "?") + " (" + (P.gaze_commit || "?") + ") · " + (P.date || "");
  const summary = (p) => {
    if (p === null || p === undefined) return "";
    const top = Array.isArray(p) ? p[0] : p;
    if (top && top.label !== undefined) return top.label + (top.score !== undefined ? " (" + Number(top.score).toFixed(3) + ")" : "");
    if (top && top.translation_text !== undefined) return top.translation_text;
    if (top && top.tags !== undefined) return top.tags.join(" ");
    return JSON.stringify(p);
  };
  const table = $("inputs");
  const head = el("tr");
  ["#", "input", "prediction", ""].forEach((h) => head.appendChild(el("th", h)));
  table.appendChild(head);
  D.entries.forEach((e, i) => {
    const tr = el("tr");
    tr.appendChild(el("td", e.folder));
    const text = el("td", e.text.length > 400 ? e.text.slice(0, 400) + "…" : e.text);
    text.className = "text";
    tr.appendChild(text);
    tr.appendChild(el("td", summary(e.prediction)));
    const link = el("a", "page");
    link.setAttribute("href", encodeURI(e.folder) + "/explanation.html");
    const td = el("td");
    td.appendChild(link);
    tr.appendChild(td);
    table.appendChild(tr);
    for (const side of ["left", "right"]) {
      const o = el("option", e.folder + ": " + e.text.slice(0, 60));
      o.value = String(i);
      $(side).appendChild(o);
    }
  });
  const show = (side) => {
    const e = D.entries[Number($(side).value)];
    if (e) $(side + "-frame").setAttribute("src", encodeURI(e.folder) + "/explanation.html");
  };
  $("left").value = "0";
  $("right").value = String(Math.min(1, D.entries.length - 1));
  for (const side of ["left", "right"]) {
    $(side).addEventListener("change", () => show(side));
    show(side);
  }
  document.body.dataset.ready = "1";
})();
</script>
</body>
</html>
)page";

}  // namespace

std::string index_html(const std::vector<IndexEntry>& entries, const nlohmann::json& provenance) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : entries)
    list.push_back({{"folder", e.folder}, {"text", e.text}, {"prediction", e.prediction}});
  const std::string json = nlohmann::json{{"entries", list}, {"provenance", provenance}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string data;
  for (const char c : json) data += c == '<' ? std::string("\\u003c") : std::string(1, c);
  std::string page(kIndex);
  const std::string mark = "{{DATA}}";
  page.replace(page.find(mark), mark.size(), data);
  return page;
}

}  // namespace gaze::explain
