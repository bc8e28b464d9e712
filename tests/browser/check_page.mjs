// Opens a `gaze explain` page in Debian's headless Chromium (Playwright drives it; no browser is
// downloaded) and prints what the tests check, as JSON on stdout:
//   node check_page.mjs PAGE.html SCREENSHOT.png
// A fresh profile every run; every request other than the page itself is recorded and aborted, so
// a page that reaches for the network fails its test instead of hanging.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [page_path, screenshot] = process.argv.slice(2);
if (!page_path || !screenshot) {
  console.error("usage: node check_page.mjs PAGE.html SCREENSHOT.png");
  process.exit(2);
}
const url = pathToFileURL(resolve(page_path)).href;
const profile = mkdtempSync(join(tmpdir(), "gaze-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.GAZE_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1200, height: 900 },
});
const result = { console_errors: [], page_errors: [], requests: [] };
try {
  await context.route("**/*", (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    result.requests.push(u);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => { if (m.type() === "error") result.console_errors.push(m.text()); });
  page.on("pageerror", (e) => result.page_errors.push(String(e)));
  // The longest main-thread task while the page draws: a frozen page shows up here.
  await page.addInitScript(() => {
    window.__longest = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longest = Math.max(window.__longest, e.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  const start = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 60000 });
  result.ready_ms = Date.now() - start;
  result.longest_task_ms = await page.evaluate(() => window.__longest);

  Object.assign(result, await page.evaluate(() => ({
    blocks: [...document.querySelectorAll("#block option")].map((o) => o.textContent),
    layer_options: document.querySelectorAll("#layer option").length,
    head_swatches: document.querySelectorAll(".hv-head").length,
    model_view_cells: document.querySelectorAll(".mv-cell").length,
    model_view_layers: new Set([...document.querySelectorAll(".mv-cell")].map((c) => c.dataset.layer)).size,
    model_view_heads: new Set([...document.querySelectorAll(".mv-cell")].map((c) => c.dataset.head)).size,
    drawn_cells: [...document.querySelectorAll(".mv-cell")].filter((c) => c.width > 0).length,
    mean_cells: [...document.querySelectorAll(".mv-mean")].filter((c) => c.width > 0).length,
    query_tokens: document.querySelectorAll('.hv-token[data-side="q"]').length,
    key_tokens: document.querySelectorAll('.hv-token[data-side="k"]').length,
    pagers: document.querySelectorAll("#pagers button").length,
    importance_tokens: document.querySelectorAll(".imp-token").length,
    attribution_tokens: [...document.querySelectorAll(".attr-token")].map((t) => t.textContent),
    attribution_methods: [...document.querySelectorAll("#attr-method option")].map((o) => o.value),
    attribution_legend: document.querySelectorAll("#attr-legend canvas").length,
    provenance: Object.fromEntries([...document.querySelectorAll("#provenance tr")]
      .map((r) => [r.children[0].textContent, r.children[1].textContent])),
    faithfulness_rows: [...document.querySelectorAll("#faithfulness tr")].slice(1)
      .map((r) => r.firstChild.textContent),
    rollout_shown: !document.getElementById("rollout-section")?.hidden,
    alignment_shown: !document.getElementById("alignment-section")?.hidden,
    prediction_text: document.getElementById("prediction")?.textContent,
    title: document.title,
    // index.html of several inputs
    index_rows: [...document.querySelectorAll("#inputs tr")].slice(1).map((r) => r.children[1].textContent),
    index_links: [...document.querySelectorAll("#inputs a")].map((a) => a.getAttribute("href")),
    compare_frames: [...document.querySelectorAll("#compare iframe")].map((f) => f.getAttribute("src")),
    // report.html of a run
    report_charts: [...document.querySelectorAll("svg.chart")].map((c) => c.querySelector("text")?.textContent),
    report_series: [...document.querySelectorAll("polyline.series")].map((p) => p.dataset.name),
    report_points: document.querySelectorAll("circle.pt").length,
    report_bars: document.querySelectorAll("rect.bar").length,
    report_confused_rows: document.querySelectorAll("#confused tr").length - 1,
    report_slowest_rows: document.querySelectorAll("#slowest tr").length - 1,
    report_summary: Object.fromEntries([...document.querySelectorAll("#summary tr")]
      .map((r) => [r.children[0].textContent, r.children[1].textContent])),
  })));

  // Hovering a query token focuses its lines: the drawing must change, and come back on leaving.
  const lines = () => page.evaluate(() => document.getElementById("hv-canvas").toDataURL());
  if (result.query_tokens > 1) {
    const before = await lines();
    await page.hover('.hv-token[data-side="q"] >> nth=1');
    const focused = await lines();
    await page.mouse.move(1, 1);
    const after = await lines();
    result.hover_changes_drawing = focused !== before;
    result.leave_restores_drawing = after === before;
    result.focused_tokens = await page.evaluate(() => {
      document.querySelector('.hv-token[data-side="q"]')?.dispatchEvent(new Event("mouseenter"));
      return document.querySelectorAll(".hv-token.focus").length;
    });
  }
  // Clicking a model-view cell shows that head alone.
  if (result.model_view_cells > 1) {
    await page.click(".mv-cell >> nth=-1");
    result.visible_heads_after_click = await page.evaluate(
      () => document.querySelectorAll(".hv-head").length - document.querySelectorAll(".hv-head.off").length);
  }
  // One colour scale for every thumbnail: the pictures change (unless all share one maximum).
  result.legends = await page.evaluate(() => document.querySelectorAll(".legend canvas").length);
  if (result.model_view_cells > 1) {
    const thumbs = () => page.evaluate(() => [...document.querySelectorAll(".mv-cell, .mv-mean")]
      .map((c) => c.toDataURL()).join());
    const before = await thumbs();
    await page.evaluate(() => { document.body.dataset.ready = "0"; });
    await page.click("#shared-scale");
    await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 60000 });
    result.shared_scale_changes = (await thumbs()) !== before;
    result.shared_legend = await page.evaluate(() => document.getElementById("mv-legend").textContent);
    // Hovering a thumbnail names its tokens.
    await page.hover(".mv-cell >> nth=0");
    result.thumb_tip = await page.evaluate(() => document.getElementById("tooltip").textContent);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  result.screenshot_bytes = statSync(screenshot).size;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
