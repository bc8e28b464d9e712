"use strict";
// gaze explain: draws the captured attention from the JSON in #gaze-data. Weights arrive as 8-bit
// quantised base64 matrices (value = byte / 255 * max); a matrix is decoded only when drawn, lines
// are drawn a page of tokens at a time and thumbnails a few per frame, so long inputs never freeze
// the page. Sets document.body.dataset.ready = "1" when everything is drawn.
(function () {
  const D = JSON.parse(document.getElementById("gaze-data").textContent);
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#3182bd"];
  const PAGE = 64;        // tokens per side in the head view
  const ROW = 20;         // px per token row (matches .hv-token)
  const THUMB = 96;       // model-view thumbnail size (px)
  const MIN_LINE = 0.01;  // lighter lines are not drawn
  const $ = (id) => document.getElementById(id);
  const blocks = D.blocks || [];
  const state = { block: 0, layer: 0, hidden: new Set(), focus: null, qPage: 0, kPage: 0 };

  function el(tag, props, text) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The bytes of quantised matrix set q (cached), and matrix m of it as a view.
  function bytes(q) {
    if (!q._bytes) {
      const s = atob(q.data);
      const b = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
      q._bytes = b;
    }
    return q._bytes;
  }
  function matrix(q, m) {
    const n = q.rows * q.cols;
    return { rows: q.rows, cols: q.cols, max: q.max[m], v: bytes(q).subarray(m * n, (m + 1) * n) };
  }
  const value = (mat, i, j) => (mat.v[i * mat.cols + j] / 255) * mat.max;

  // 0..1 -> white to dark blue.
  function shade(t) {
    const mix = (lo, hi) => Math.round(lo + (hi - lo) * t);
    return [mix(247, 8), mix(251, 48), mix(255, 107)];
  }

  // --- tooltip ------------------------------------------------------------------------------------
  const tip = $("tooltip");
  function showTip(ev, text) {
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = ev.clientX + 12 + "px";
    tip.style.top = ev.clientY + 12 + "px";
  }
  const hideTip = () => { tip.hidden = true; };

  // --- header and prediction ----------------------------------------------------------------------
  function renderPrediction() {
    $("meta").textContent = D.task + " · " + D.architecture +
      (blocks.length ? " · " + blocks.map((b) => `${b.name} ${count(b.num_layers, "layer")} × ` +
        count(b.num_heads, "head")).join(", ") : "");
    const box = $("prediction");
    box.appendChild(el("p", {}, D.text));
    if (D.truncated) {
      box.appendChild(el("p", { className: "note" },
        "The input was cut to the model's maximum length: the model read only the tokens below."));
    }
    const p = D.prediction;
    if (D.task === "classify") {
      const top = Array.isArray(p) ? p : [p];
      const t = el("table", { className: "top" });
      // The first row is the prediction; the class attributions explain is marked too.
      const explained = D.attribution ? D.attribution.explained_output : "";
      top.forEach((r, i) => {
        const tr = el("tr", { className: i === 0 ? "predicted" : "" });
        tr.appendChild(el("td", {}, r.label));
        tr.appendChild(el("td", { className: "score" }, Number(r.score).toFixed(4)));
        const notes = [];
        if (i === 0) notes.push("predicted");
        if (explained === "p(" + r.label + ")") notes.push("explained below");
        tr.appendChild(el("td", { className: "score" }, notes.join(", ")));
        t.appendChild(tr);
      });
      box.appendChild(t);
    } else if (D.task === "tag") {
      const line = el("p");
      (p.words || []).forEach((w, i) => {
        const s = el("span", { className: "word" }, w);
        const tag = p.tags[i];
        if (tag && tag !== "O") {
          const t = el("span", { className: "tag" }, tag);
          t.style.background = COLORS[hash(tag.replace(/^[BIES]-/, "")) % COLORS.length];
          s.appendChild(t);
        }
        line.appendChild(s);
      });
      box.appendChild(line);
    } else if (D.task === "translate") {
      box.appendChild(el("p", {}, "→ " + (p.translation_text || "")));
    }
  }
  const count = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;
  function hash(s) {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return h;
  }

  // --- token importance (classification) ----------------------------------------------------------
  function renderImportance() {
    if (!D.importance) return;
    $("importance-section").hidden = false;
    if (D.importance_rule) $("importance-rule").textContent = D.importance_rule;
    const box = $("importance");
    // Shaded from the least to the most important token (nearly uniform shares stay readable).
    const top = Math.max(...D.importance), low = Math.min(...D.importance);
    const span = Math.max(top - low, 1e-12);
    D.tokens.forEach((tok, i) => {
      const v = D.importance[i];
      const s = el("span", { className: "imp-token" }, tok);
      const [r, g, b] = shade(0.8 * (v - low) / span);
      s.style.background = `rgb(${r},${g},${b})`;
      if ((v - low) / span > 0.6) s.style.color = "#fff";
      const bar = el("span", { className: "imp-bar" });
      bar.style.width = Math.round(100 * v / top) + "%";
      s.appendChild(bar);
      s.addEventListener("mousemove", (ev) => showTip(ev, tok + ": " + v.toFixed(4)));
      s.addEventListener("mouseleave", hideTip);
      box.appendChild(s);
    });
  }

  // --- provenance: which model, checkpoint, code and options made this page ----------------------
  function renderProvenance() {
    if (D.word_rule) {
      $("word-rule").hidden = false;
      $("word-rule").textContent = "Words: " + D.word_rule + ".";
    }
    const P = D.provenance;
    if (!P) return;
    $("provenance-box").hidden = false;
    const table = $("provenance");
    const row = (k, v) => {
      const tr = el("tr");
      tr.append(el("td", {}, k), el("td", {}, v));
      table.appendChild(tr);
    };
    row("model", P.model);
    row("checkpoint", P.checkpoint + (P.step === null || P.step === undefined ? "" : ", step " + P.step));
    row("precision", P.precision);
    row("gaze", P.gaze_version + " (" + P.gaze_commit + ")");
    row("date", P.date);
    row("options", JSON.stringify(P.options));
  }

  // --- attribution (classification, --method) ---------------------------------------------------
  // Signed scores: blue (negative) through white to orange (positive).
  function diverging(t) {
    const a = Math.min(1, Math.abs(t));
    const to = t < 0 ? [33, 102, 172] : [230, 119, 0];
    return to.map((c) => Math.round(255 + (c - 255) * a));
  }
  // A colour bar into `box`: colour(t) for t from 0 to 1, labelled lo and hi at its ends.
  function colourBar(box, colour, lo, hi) {
    box.textContent = "";
    const c = el("canvas", { width: 160, height: 10 });
    const g = c.getContext("2d");
    for (let x = 0; x < 160; x++) {
      const [r, gg, b] = colour(x / 159);
      g.fillStyle = `rgb(${r},${gg},${b})`;
      g.fillRect(x, 0, 1, 10);
    }
    box.append(el("span", {}, String(lo)), c, el("span", {}, String(hi)));
  }
  function renderAttribution() {
    const A = D.attribution;
    if (!A) return;
    $("attribution-section").hidden = false;
    $("attr-output").textContent = A.explained_output;
    const sel = $("attr-method");
    const names = Object.keys(A.methods);
    names.forEach((m) => sel.appendChild(el("option", { value: m }, m)));
    const preferred = ["integrated_gradients", "gradient_x_input", "attention_x_gradient"];
    sel.value = preferred.find((m) => names.includes(m)) || names[0];
    const draw = () => {
      const m = A.methods[sel.value];
      // A translation has one row per output token (its log-probability), a class one row.
      const rows = Array.isArray(m.scores[0]) ? m.scores : [m.scores];
      const top = Math.max(1e-12, ...rows.map((r) => Math.max(...r.map(Math.abs))));
      const box = $("attribution");
      box.textContent = "";
      rows.forEach((row, k) => {
        const line = el("div", { className: "attr-row" });
        if (rows.length > 1) line.appendChild(el("span", { className: "attr-label" }, A.output_tokens[k]));
        A.tokens.forEach((tok, i) => {
          const v = row[i];
          const s = el("span", { className: "attr-token" }, tok);
          const [r, g, b] = diverging(v / top);
          s.style.background = `rgb(${r},${g},${b})`;
          s.addEventListener("mousemove", (ev) => showTip(ev, tok + ": " + v.toPrecision(4)));
          s.addEventListener("mouseleave", hideTip);
          line.appendChild(s);
        });
        box.appendChild(line);
      });
      colourBar($("attr-legend"), (t) => diverging(2 * t - 1), (-top).toPrecision(3),
        top.toPrecision(3));
      $("attr-info").textContent = m.completeness_gap === undefined ? "" :
        `f(input) ${m.output.toFixed(4)}, f(baseline) ${m.baseline_output.toFixed(4)}, ` +
        `completeness gap ${m.completeness_gap.toExponential(2)}`;
    };
    sel.addEventListener("change", draw);
    draw();
    const curves = A.faithfulness || {};
    const rows = Object.keys(curves);
    if (!rows.length) return;
    $("faithfulness-box").hidden = false;
    const table = $("faithfulness");
    const head = el("tr");
    ["method", "deletion area ↓", "insertion area ↑", "insertion − deletion"].forEach((h) =>
      head.appendChild(el("th", {}, h)));
    table.appendChild(head);
    rows.sort((a, b) => (curves[b].insertion_area - curves[b].deletion_area) -
                        (curves[a].insertion_area - curves[a].deletion_area));
    rows.forEach((m) => {
      const c = curves[m], tr = el("tr");
      [m, c.deletion_area.toFixed(4), c.insertion_area.toFixed(4),
       (c.insertion_area - c.deletion_area).toFixed(4)].forEach((v) => tr.appendChild(el("td", {}, v)));
      table.appendChild(tr);
    });
  }

  // --- head view ----------------------------------------------------------------------------------
  const block = () => blocks[state.block];
  const queryTokens = () => D[block().queries];
  const keyTokens = () => D[block().keys];
  const pages = (n) => Math.max(1, Math.ceil(n / PAGE));

  function setupControls() {
    const sel = $("block");
    blocks.forEach((b, i) => sel.appendChild(el("option", { value: i }, b.name)));
    sel.addEventListener("change", () => {
      state.block = +sel.value;
      state.layer = 0;
      state.hidden.clear();
      state.focus = null;
      state.qPage = state.kPage = 0;
      buildHeadView();
      buildModelView();
    });
    $("layer").addEventListener("change", () => {
      state.layer = +$("layer").value;
      drawLines();
      markSelected();
    });
  }

  function buildHeadView() {
    const b = block();
    const layer = $("layer");
    layer.replaceChildren(...b.layers.map((l, i) => el("option", { value: i }, String(l))));
    layer.value = state.layer;
    const heads = $("heads");
    heads.replaceChildren(el("span", {}, "Heads "));
    b.heads.forEach((h, i) => {
      const s = el("span", { className: "hv-head", title: "head " + h });
      s.dataset.head = h;
      s.style.background = COLORS[h % COLORS.length];
      s.addEventListener("click", () => {
        if (state.hidden.has(i)) state.hidden.delete(i); else state.hidden.add(i);
        drawLines();
      });
      s.addEventListener("dblclick", () => {
        state.hidden = new Set(b.heads.map((_, k) => k).filter((k) => k !== i));
        drawLines();
      });
      heads.appendChild(s);
    });
    buildTokens();
  }

  function pager(label, n, key) {
    if (n <= PAGE) return null;
    const box = el("span");
    const text = el("span");
    const show = () => {
      const from = state[key] * PAGE;
      text.textContent = `${label} ${from}–${Math.min(n, from + PAGE) - 1} of ${n}`;
    };
    const prev = el("button", {}, "◀"), next = el("button", {}, "▶");
    prev.addEventListener("click", () => { if (state[key] > 0) { state[key]--; show(); buildTokens(); } });
    next.addEventListener("click", () => {
      if (state[key] < pages(n) - 1) { state[key]++; show(); buildTokens(); }
    });
    box.append(prev, " ", text, " ", next);
    show();
    return box;
  }

  function buildTokens() {
    const q = queryTokens(), k = keyTokens();
    const pg = $("pagers");
    pg.replaceChildren(...[pager("queries", q.length, "qPage"), pager("keys", k.length, "kPage")]
      .filter((x) => x));
    const column = (box, tokens, start, side) => {
      box.replaceChildren();
      for (let i = start; i < Math.min(tokens.length, start + PAGE); i++) {
        const t = el("div", { className: "hv-token", title: tokens[i] }, tokens[i]);
        t.dataset.index = i;
        t.dataset.side = side;
        t.addEventListener("mouseenter", () => { state.focus = { side, index: i }; focusTokens(); });
        t.addEventListener("mouseleave", () => { state.focus = null; focusTokens(); });
        box.appendChild(t);
      }
    };
    state.focus = null;
    column($("hv-left"), q, state.qPage * PAGE, "q");
    column($("hv-right"), k, state.kPage * PAGE, "k");
    drawLines();
  }

  function focusTokens() {
    for (const t of document.querySelectorAll(".hv-token")) {
      const f = state.focus && t.dataset.side === state.focus.side &&
        +t.dataset.index === state.focus.index;
      t.classList.toggle("focus", !!f);
    }
    drawLines();
  }

  function drawLines() {
    const b = block();
    document.querySelectorAll(".hv-head").forEach((s, i) => s.classList.toggle("off", state.hidden.has(i)));
    const q = b.weights[state.layer];
    const q0 = state.qPage * PAGE, k0 = state.kPage * PAGE;
    const nq = Math.min(q.rows - q0, PAGE), nk = Math.min(q.cols - k0, PAGE);
    const canvas = $("hv-canvas");
    const ratio = window.devicePixelRatio || 1;
    const w = 240, h = Math.max(nq, nk) * ROW;
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    canvas.width = w * ratio;
    canvas.height = h * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.lineWidth = 2;
    const f = state.focus;
    for (let hi = 0; hi < b.heads.length; hi++) {
      if (state.hidden.has(hi)) continue;
      const m = matrix(q, hi);
      ctx.strokeStyle = COLORS[b.heads[hi] % COLORS.length];
      for (let i = 0; i < nq; i++) {
        if (f && f.side === "q" && f.index !== q0 + i) continue;
        for (let j = 0; j < nk; j++) {
          if (f && f.side === "k" && f.index !== k0 + j) continue;
          const a = value(m, q0 + i, k0 + j);
          if (a < MIN_LINE) continue;
          ctx.globalAlpha = Math.min(1, a);
          ctx.beginPath();
          ctx.moveTo(0, i * ROW + ROW / 2);
          ctx.lineTo(w, j * ROW + ROW / 2);
          ctx.stroke();
        }
      }
    }
    ctx.globalAlpha = 1;
    canvas.dataset.drawn = (+canvas.dataset.drawn || 0) + 1;
  }

  // --- heatmaps -----------------------------------------------------------------------------------
  // Draws matrix m into canvas at `cell` px per entry, or max-pooled to `size` px when larger.
  // vmax (optional): colours relative to this value instead of the matrix's own maximum (a scale
  // shared across panels).
  function paint(canvas, m, size, vmax) {
    const k = vmax ? m.max / vmax : 1;
    const f = Math.max(1, Math.ceil(Math.max(m.rows, m.cols) / size));
    const cell = Math.max(1, Math.floor(size / Math.max(m.rows, m.cols)));
    const w = Math.ceil(m.cols / f), h = Math.ceil(m.rows / f);
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = w * (f > 1 ? 1 : cell) + "px";
    canvas.style.height = h * (f > 1 ? 1 : cell) + "px";
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let top = 0;
        for (let i = y * f; i < Math.min(m.rows, (y + 1) * f); i++)
          for (let j = x * f; j < Math.min(m.cols, (x + 1) * f); j++)
            top = Math.max(top, m.v[i * m.cols + j]);
        const [r, g, b] = shade((k * top) / 255);
        const o = 4 * (y * w + x);
        img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    return { f, cell: f > 1 ? 1 / f : cell };
  }

  // A heatmap with the token pair and value under the pointer: labelled cells of up to 24 px when
  // the tokens fit, else the max-pooled picture of paint().
  function heatmap(canvas, m, rows, cols, size, marks) {
    const n = Math.max(m.rows, m.cols);
    const labelled = n * 10 <= size;
    let cell, margin = 0, f = 1;
    if (labelled) {
      cell = Math.min(24, Math.floor(size / n));
      margin = 100;
      const ratio = window.devicePixelRatio || 1;
      const w = margin + m.cols * cell, h = margin + m.rows * cell;
      canvas.width = w * ratio;
      canvas.height = h * ratio;
      canvas.style.width = w + "px";
      canvas.style.height = h + "px";
      const ctx = canvas.getContext("2d");
      ctx.scale(ratio, ratio);
      for (let i = 0; i < m.rows; i++) {
        for (let j = 0; j < m.cols; j++) {
          const [r, g, b] = shade(m.v[i * m.cols + j] / 255);
          ctx.fillStyle = `rgb(${r},${g},${b})`;
          ctx.fillRect(margin + j * cell, margin + i * cell, cell, cell);
        }
      }
      ctx.fillStyle = "#222";
      ctx.font = "11px ui-monospace, monospace";
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      const cut = (t) => (t.length > 14 ? t.slice(0, 13) + "…" : t);
      rows.forEach((t, i) => ctx.fillText(cut(t), margin - 4, margin + i * cell + cell / 2));
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      cols.forEach((t, j) => ctx.fillText(cut(t), -(margin - 4), margin + j * cell + cell / 2));
      ctx.restore();
      if (marks) {
        ctx.strokeStyle = "#f07800";
        ctx.lineWidth = 2;
        marks.forEach((j, i) => {
          if (j >= 0) ctx.strokeRect(margin + j * cell + 1, margin + i * cell + 1, cell - 2, cell - 2);
        });
      }
    } else {
      const p = paint(canvas, m, size);
      cell = p.cell;
      f = p.f;
      if (marks) {
        const ctx = canvas.getContext("2d");
        ctx.fillStyle = "#f07800";
        marks.forEach((j, i) => { if (j >= 0) ctx.fillRect(Math.floor(j / f), Math.floor(i / f), 1, 1); });
      }
    }
    canvas.addEventListener("mousemove", (ev) => {
      const r = canvas.getBoundingClientRect();
      const i = Math.floor((ev.clientY - r.top - margin) / cell);
      const j = Math.floor((ev.clientX - r.left - margin) / cell);
      if (i < 0 || j < 0 || i >= m.rows || j >= m.cols) return hideTip();
      showTip(ev, `${rows[i]} → ${cols[j]}: ${value(m, i, j).toFixed(4)}`);
    });
    canvas.addEventListener("mouseleave", hideTip);
  }

  // --- model view ---------------------------------------------------------------------------------
  let mvGeneration = 0;
  function buildModelView() {
    const b = block();
    const grid = $("model-view");
    grid.replaceChildren();
    const withMean = b.heads.length > 1;
    grid.style.gridTemplateColumns = `auto repeat(${b.heads.length + (withMean ? 1 : 0)}, auto)`;
    grid.appendChild(el("span", { className: "axis" }, "layer \\ head"));
    for (const h of b.heads) grid.appendChild(el("span", { className: "axis" }, String(h)));
    if (withMean) grid.appendChild(el("span", { className: "axis" }, "mean"));
    const todo = [];
    // The shared scale: the largest weight of every captured layer and head of this attention.
    let shared = 0;
    if ($("shared-scale").checked)
      for (const q of b.weights) for (const mx of q.max) shared = Math.max(shared, mx);
    colourBar($("mv-legend"), shade, 0, shared ? shared.toPrecision(3) : "each matrix's own maximum");
    b.layers.forEach((l, li) => {
      grid.appendChild(el("span", { className: "axis" }, String(l)));
      b.heads.forEach((h, hi) => {
        const c = el("canvas", { className: "mv-cell", title: `layer ${l}, head ${h}` });
        c.dataset.layer = l;
        c.dataset.head = h;
        c.addEventListener("click", () => {
          state.layer = li;
          $("layer").value = li;
          state.hidden = new Set(b.heads.map((_, k) => k).filter((k) => k !== hi));
          drawLines();
          markSelected();
          $("head-view-section").scrollIntoView({ behavior: "smooth" });
        });
        grid.appendChild(c);
        const m = () => matrix(b.weights[li], hi);
        c.addEventListener("mousemove", (ev) => thumbTip(ev, c, m()));
        c.addEventListener("mouseleave", hideTip);
        todo.push(() => paint(c, m(), THUMB, shared));
      });
      if (withMean) {
        const c = el("canvas", { className: "mv-mean", title: `layer ${l}, mean over the captured heads` });
        c.dataset.layer = l;
        grid.appendChild(c);
        const mean = meanOverHeads(b.weights[li]);
        c.addEventListener("mousemove", (ev) => thumbTip(ev, c, mean));
        c.addEventListener("mouseleave", hideTip);
        todo.push(() => paint(c, mean, THUMB, shared));
      }
    });
    markSelected();
    // A few thumbnails per frame: a 512-token model keeps the page responsive while they appear.
    const generation = ++mvGeneration;
    return new Promise((resolve) => {
      const step = () => {
        if (generation !== mvGeneration) return resolve();
        const start = performance.now();
        while (todo.length && performance.now() - start < 12) todo.shift()();
        if (todo.length) requestAnimationFrame(step); else resolve();
      };
      requestAnimationFrame(step);
    });
  }

  // A thumbnail's query and key tokens and weight under the pointer.
  function thumbTip(ev, canvas, m) {
    const r = canvas.getBoundingClientRect();
    const i = Math.floor(((ev.clientY - r.top) / r.height) * m.rows);
    const j = Math.floor(((ev.clientX - r.left) / r.width) * m.cols);
    if (i < 0 || j < 0 || i >= m.rows || j >= m.cols) return hideTip();
    const b = block();
    showTip(ev, `${D[b.queries][i]} → ${D[b.keys][j]}: ${value(m, i, j).toFixed(4)}`);
  }

  // The mean of a layer's heads, re-quantised like the others (scaled to its own maximum).
  function meanOverHeads(q) {
    const n = q.rows * q.cols, sum = new Float32Array(n);
    for (let h = 0; h < q.count; h++) {
      const m = matrix(q, h);
      for (let i = 0; i < n; i++) sum[i] += (m.v[i] / 255) * m.max / q.count;
    }
    let top = 1e-30;
    for (let i = 0; i < n; i++) top = Math.max(top, sum[i]);
    const v = new Uint8Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.round((255 * sum[i]) / top);
    return { rows: q.rows, cols: q.cols, max: top, v };
  }

  function markSelected() {
    const b = block();
    for (const c of document.querySelectorAll(".mv-cell"))
      c.classList.toggle("selected", +c.dataset.layer === b.layers[state.layer]);
  }

  // --- rollout and alignment ----------------------------------------------------------------------
  function renderAggregates() {
    if (D.rollout) {
      $("rollout-section").hidden = false;
      heatmap($("rollout"), matrix(D.rollout, 0), D.tokens, D.tokens, 512);
      colourBar($("rollout-legend"), shade, 0, D.rollout.max[0].toPrecision(3));
    }
    if (D.alignment) {
      $("alignment-section").hidden = false;
      $("alignment-note").textContent = D.architecture === "rnn"
        ? "The decoder's attention over the source at each step (rows: the token predicted), " +
          "with the hard alignment (argmax) in orange."
        : `Cross-attention of decoder layer ${D.alignment_layer}, averaged over heads (rows: the ` +
          "token predicted), with the hard alignment (argmax) in orange.";
      colourBar($("alignment-legend"), shade, 0, D.alignment.max[0].toPrecision(3));
      heatmap($("alignment"), matrix(D.alignment, 0), D.output_tokens, D.tokens, 512,
        D.hard_alignment);
    }
  }

  renderPrediction();
  renderProvenance();
  renderImportance();
  renderAttribution();
  renderAggregates();
  let drawing = Promise.resolve();
  if (blocks.length) {
    setupControls();
    buildHeadView();
    drawing = buildModelView();
  } else {
    $("head-view-section").hidden = true;
    $("model-view-section").hidden = true;
  }
  $("shared-scale").addEventListener("change", () => {
    document.body.dataset.ready = "0";
    buildModelView().then(() => { document.body.dataset.ready = "1"; });
  });
  drawing.then(() => { document.body.dataset.ready = "1"; });
})();
