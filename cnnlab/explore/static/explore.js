// cnnlab explore: the page.  Plain JavaScript; everything it loads comes from this server.
// The drawing canvas's raw pixels go to POST /api/predict, which rasterises them the way the
// model's dataset was made and answers with every layer's output; a hovered unit's arithmetic
// comes from POST /api/unit.  The selected input, layer and unit live in the URL.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, source: { kind: "draw" }, last: null, pages: {}, sel: null, pinned: false,
                inflight: false, dirty: false, seq: 0, unitTimer: null };
const MAP_PX = 56;          // a map's displayed side (at most), pixels

// ------------------------------------------------------------------ helpers
function decode(arr) {      // {"shape", "b64"} -> {shape, data: Float32Array}
  const bin = atob(arr.b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return { shape: arr.shape, data: new Float32Array(bytes.buffer) };
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fmt(v) {
  if (v === null || v === undefined) return "·";
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(2) : v.toFixed(3);
}

function maxAbs(values) {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m;
}

function colour(v, m) {     // signed value -> rgb: warm for positive, blue for negative, black at 0
  const t = m > 0 ? Math.min(1, Math.abs(v) / m) : 0;
  return v >= 0 ? [255 * t, 200 * t, 90 * t] : [70 * t, 140 * t, 255 * t];
}

async function api(path, body, headers = { "Content-Type": "application/json" }) {
  const r = await fetch(path, body === undefined ? {} : { method: "POST", headers, body });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

// ------------------------------------------------------------------ URL state
function readUrl() {
  const q = new URLSearchParams(location.search);
  if (q.get("src") === "test") state.source = { kind: "test", index: parseInt(q.get("i") || "0", 10) || 0 };
  if (q.get("layer")) {
    const u = (q.get("unit") || "0,0,0").split(",").map((s) => parseInt(s, 10) || 0);
    state.sel = { layer: q.get("layer"), c: u[0], y: u[1] || 0, x: u[2] || 0 };
    state.pinned = true;
  }
}

function writeUrl() {
  const q = new URLSearchParams(location.search);
  q.set("src", state.source.kind);
  if (state.source.kind === "test") q.set("i", state.source.index); else q.delete("i");
  if (state.sel && state.pinned) {
    q.set("layer", state.sel.layer); q.set("unit", [state.sel.c, state.sel.y, state.sel.x].join(","));
  } else { q.delete("layer"); q.delete("unit"); }
  const method = $("m-method").value, target = $("m-target").value;
  if (method) q.set("method", method); else q.delete("method");
  if (method && target !== "") q.set("class", target); else q.delete("class");
  if (method === "fgsm") q.set("eps", $("m-eps").value); else q.delete("eps");
  history.replaceState(null, "", "?" + q.toString());
}

// ------------------------------------------------------------------ drawing
const draw = $("draw");
const ctx = draw.getContext("2d", { willReadFrequently: true });

function clearCanvas() {
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, draw.width, draw.height);
}

function canvasPixels() {   // the canvas as an H x W list of grey values in [0, 1]
  const { data, width, height } = ctx.getImageData(0, 0, draw.width, draw.height);
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = new Array(width);
    for (let x = 0; x < width; x++) row[x] = Math.round(data[4 * (y * width + x)] / 255 * 1000) / 1000;
    rows.push(row);
  }
  return rows;
}

function setupDrawing() {
  clearCanvas();
  let down = false, lastPt = null;
  const pt = (e) => {
    const r = draw.getBoundingClientRect();
    return [(e.clientX - r.left) * draw.width / r.width, (e.clientY - r.top) * draw.height / r.height];
  };
  draw.addEventListener("pointerdown", (e) => {
    if (state.source.kind !== "draw") { clearCanvas(); state.source = { kind: "draw" }; writeUrl(); }
    down = true; lastPt = pt(e); draw.setPointerCapture(e.pointerId);
    ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(lastPt[0], lastPt[1], 5, 0, 2 * Math.PI); ctx.fill();
    requestPredict();
  });
  draw.addEventListener("pointermove", (e) => {
    if (!down) return;
    const p = pt(e);
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 10; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(lastPt[0], lastPt[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    lastPt = p;
    requestPredict();
  });
  const up = () => { if (down) { down = false; requestPredict(); } };
  draw.addEventListener("pointerup", up);
  draw.addEventListener("pointercancel", up);
  $("clear").onclick = () => { clearCanvas(); state.source = { kind: "draw" }; writeUrl(); requestPredict(); };
  $("invert").onchange = () => requestPredict();
  $("upload").onchange = (e) => {
    const f = e.target.files[0];
    if (f) { state.source = { kind: "upload", file: f }; writeUrl(); requestPredict(); }
  };
  const pick = (i) => {
    state.source = { kind: "test", index: i }; $("test-index").value = i; writeUrl(); requestPredict();
  };
  $("pick").onclick = () => pick(parseInt($("test-index").value, 10) || 0);
  $("random").onclick = () => pick(Math.floor(Math.random() * state.model.test_images));
}

// ------------------------------------------------------------------ requests
function inputBody(extra = {}) {
  const invert = $("invert").checked;
  if (state.source.kind === "test") return JSON.stringify({ test_index: state.source.index, ...extra });
  return JSON.stringify({ image: state.lastPixels || canvasPixels(), invert, ...extra });
}

function requestPredict() {  // at most one request in flight; the newest canvas goes next
  if (state.inflight) { state.dirty = true; return; }
  state.inflight = true; state.dirty = false;
  document.body.dataset.busy = "1";
  predict().catch(showError).finally(() => {
    state.inflight = false;
    if (state.dirty) requestPredict(); else document.body.dataset.busy = "0";
  });
}

async function predict() {
  const seq = ++state.seq;
  let out;
  if (state.source.kind === "upload") {
    const f = state.source.file;
    const q = $("invert").checked ? "?invert=1" : "";
    out = await api("/api/predict" + q, f, { "Content-Type": f.type || "image/png" });
    state.lastPixels = null;
  } else {
    state.lastPixels = state.source.kind === "draw" ? canvasPixels() : null;
    const body = inputBody({ pages: state.pages });
    out = await api("/api/predict", body);
  }
  if (seq !== state.seq) return;
  state.last = out;
  render(out);
  afterPredict();
  document.body.dataset.predictions = String(seq);   // a finished repaint, for tests and benchmarks
}

function showError(e) { $("warnings").textContent = String(e.message || e); }

// ------------------------------------------------------------------ rendering
function render(out) {
  $("warnings").textContent = (out.warnings || []).join(" ");
  renderInput(out);
  renderProbs(out);
  for (const layer of out.layers) renderLayer(layer);
  if (state.sel) showUnit(state.sel, false);
}

function renderInput(out) {
  const inp = decode(out.input);
  const [C, H, W] = inp.shape;
  paint($("input"), inp);
  const f = $("field"); f.width = W * 8; f.height = H * 8;
  const style = { digits: "32×32 bitmap counted in 4×4 blocks (scikit-learn's digits)",
                  mnist: "fitted in 20×20, centred by mass in 28×28 (MNIST)",
                  fashion: "trimmed, longer side 28 (Fashion-MNIST)", crop: "centre square, resized",
                  "as-is": "a test image, as stored" }[out.style] || out.style;
  $("input-note").textContent = `${C}×${H}×${W} raw pixels; ${style}` +
    (out.label !== null && out.label !== undefined ? `; true class ${out.classes[out.label]}` : "");
}

function renderProbs(out) {
  const box = $("probs"); box.textContent = "";
  out.probabilities.forEach((p, k) => {
    const bar = el("i"); bar.style.width = (100 * p).toFixed(1) + "%";
    box.append(el("div", { class: "prob" + (k === out.prediction ? " top" : ""), "data-class": k },
                  el("span", { class: "name", text: out.classes[k] }), el("span", { class: "bar" }, bar),
                  el("span", { text: (100 * p).toFixed(1) + "%" })));
  });
  $("prediction").textContent = out.classes[out.prediction];
  $("prediction").dataset.k = out.prediction;
}

function layerBox(layer) {
  let box = document.querySelector(`.layer[data-layer="${CSS.escape(layer.name)}"]`);
  if (box) return box;
  const shape = layer.shape.join("×");
  box = el("div", { class: "layer", "data-layer": layer.name },
           el("h3", {}, layer.name + " ", el("span", { class: "meta", text: `${layer.type} · ${shape}` })));
  $("layers").append(box);
  return box;
}

function renderLayer(layer) {
  const box = layerBox(layer);
  const a = decode(layer.data);
  let body = box.querySelector(".body");
  if (!body) { body = el("div", { class: "body" }); box.append(body); }
  if (layer.shape.length === 1) return renderVector(body, layer, a);
  const [n, h, w] = a.shape;
  const m = Math.max(Math.abs(layer.min), Math.abs(layer.max));
  let maps = body.querySelector(".maps");
  if (!maps || maps.childElementCount !== n) {
    body.textContent = ""; maps = el("div", { class: "maps" }); body.append(maps);
    const zoom = Math.max(1, Math.floor(MAP_PX / Math.max(h, w)));
    for (let k = 0; k < n; k++) {
      const c = el("canvas", { width: w, height: h, "data-channel": layer.channel_offset + k });
      c.style.width = w * zoom + "px"; c.style.height = h * zoom + "px";
      c.addEventListener("mousemove", (e) => hoverMap(e, layer.name, c, layer.scale));
      c.addEventListener("click", (e) => {
        state.pinned = !state.pinned; hoverMap(e, layer.name, c, layer.scale, true);
        if (state.pinned && $("m-method").value === "top9") runMethod();
      });
      maps.append(c);
    }
    pager(body, layer);
  }
  const canvases = maps.querySelectorAll("canvas");
  for (let k = 0; k < n; k++) {
    const g = canvases[k].getContext("2d");
    const img = g.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const [r, gg, b] = colour(a.data[k * h * w + i], m);
      img.data[4 * i] = r; img.data[4 * i + 1] = gg; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }
  state.maps = state.maps || {};
  state.maps[layer.name] = { a, layer };
}

function pager(body, layer) {
  const C = layer.shape[0], per = layer.channels_per_page, off = layer.channel_offset;
  const notes = [];
  if (layer.scale > 1) notes.push(`maps shown at 1/${layer.scale} resolution (block averages)`);
  if (C > per) notes.push(`maps ${off}–${Math.min(C, off + per) - 1} of ${C}`);
  if (!notes.length) return;
  const p = el("div", { class: "pager", text: notes.join("; ") + " " });
  if (C > per) {
    const go = (o) => { state.pages[layer.name] = o; requestPredict(); };
    const prev = el("button", { type: "button", text: "‹" }); prev.onclick = () => go(Math.max(0, off - per));
    const next = el("button", { type: "button", text: "›" }); next.onclick = () => go(off + per < C ? off + per : off);
    p.append(prev, " ", next);
  }
  body.append(p);
}

function renderVector(body, layer, a) {
  const n = a.shape[0];
  const per = Math.min(n, 64), rows = Math.ceil(n / per);
  let c = body.querySelector("canvas");
  if (!c) {
    body.textContent = "";
    c = el("canvas", { class: "vector", width: per, height: rows });
    const cell = Math.max(4, Math.min(12, Math.floor(640 / per)));
    c.style.width = per * cell + "px"; c.style.height = rows * cell + "px";
    c.addEventListener("mousemove", (e) => hoverVector(e, layer.name, c, per, n));
    c.addEventListener("click", (e) => { state.pinned = !state.pinned; hoverVector(e, layer.name, c, per, n, true); });
    body.append(c);
  }
  const m = maxAbs(a.data);
  const g = c.getContext("2d");
  const img = g.createImageData(per, rows);
  for (let i = 0; i < per * rows; i++) {
    const [r, gg, b] = i < n ? colour(a.data[i], m) : [20, 20, 20];
    img.data[4 * i] = r; img.data[4 * i + 1] = gg; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  state.maps = state.maps || {};
  state.maps[layer.name] = { a, layer };
}

// ------------------------------------------------------------------ units
function hoverMap(e, name, canvas, scale, click = false) {
  if (state.pinned && !click) return;
  const r = canvas.getBoundingClientRect();
  const y = Math.floor((e.clientY - r.top) / r.height * canvas.height);
  const x = Math.floor((e.clientX - r.left) / r.width * canvas.width);
  const c = parseInt(canvas.dataset.channel, 10);
  showUnit({ layer: name, c, y: y * scale, x: x * scale }, true);
}

function hoverVector(e, name, canvas, per, n, click = false) {
  if (state.pinned && !click) return;
  const r = canvas.getBoundingClientRect();
  const k = Math.floor((e.clientY - r.top) / r.height * canvas.height) * per +
            Math.floor((e.clientX - r.left) / r.width * canvas.width);
  if (k < n) showUnit({ layer: name, c: k, y: 0, x: 0 }, true);
}

function localValue(sel) {   // the unit's value from the activations the page holds
  const m = state.maps && state.maps[sel.layer];
  if (!m) return null;
  const { a, layer } = m;
  if (layer.shape.length === 1) return a.data[sel.c];
  const [, h, w] = a.shape, k = sel.c - layer.channel_offset;
  if (layer.scale !== 1 || k < 0 || k >= a.shape[0]) return null;
  return a.data[(k * h + sel.y) * w + sel.x];
}

function showUnit(sel, fetchNow) {
  state.sel = sel; writeUrl();
  document.querySelectorAll(".maps canvas.sel").forEach((c) => c.classList.remove("sel"));
  const box = document.querySelector(`.layer[data-layer="${CSS.escape(sel.layer)}"] canvas[data-channel="${sel.c}"]`);
  if (box) box.classList.add("sel");
  const v = localValue(sel);
  const info = $("info"); info.textContent = "";
  const where = state.maps[sel.layer] && state.maps[sel.layer].layer.shape.length === 3
    ? `channel ${sel.c}, row ${sel.y}, column ${sel.x}` : `unit ${sel.c}`;
  const val = el("span", { id: "unit-value", class: "big", text: v === null ? "…" : fmt(v) });
  if (v !== null) val.dataset.value = String(v);
  info.append(el("div", { text: `${sel.layer}: ${where}` }), el("div", {}, "value ", val));
  $("info-hint").textContent = state.pinned ? "Pinned (click a unit to release)." : "Hover a unit (click to keep it).";
  clearTimeout(state.unitTimer);
  state.unitTimer = setTimeout(() => fetchUnit(sel), fetchNow ? 60 : 0);
}

function post(path, fields) {   // the shown input plus fields: an uploaded file (fields in the query) or JSON
  if (state.source.kind === "upload") {
    const f = state.source.file, q = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) q.set(k, String(v));
    if ($("invert").checked) q.set("invert", "1");
    return api(path + "?" + q.toString(), f, { "Content-Type": f.type || "image/png" });
  }
  return api(path, inputBody(fields));
}

async function fetchUnit(sel) {
  let d;
  try { d = await post("/api/unit", { layer: sel.layer, channel: sel.c, y: sel.y, x: sel.x }); }
  catch (e) { return showError(e); }
  if (state.sel !== sel) return;
  const info = $("info");
  if ($("unit-value").textContent === "…") { $("unit-value").textContent = fmt(d.value); $("unit-value").dataset.value = String(d.value); }
  outlineField(d.field);
  const add = (...xs) => info.append(...xs);
  add(el("div", { class: "muted", text: d.type + (d.field ? `, receptive field rows ${d.field[0]}–${d.field[2] - 1}, columns ${d.field[1]}–${d.field[3] - 1} of the input` : "") }));
  if (d.dot) {
    if (d.patch) add(el("h3", { text: "input patch × filter" }), matrices(d.patch, d.filter));
    const paren = (v) => (v < 0 ? `(${fmt(v)})` : fmt(v));
    const terms = d.dot.terms.map((t) => `${paren(t.w)}·${paren(t.x)}`).join(" + ");
    const rest = d.dot.rest_count ? ` + (${d.dot.rest_count} smaller terms: ${fmt(d.dot.rest)})` : "";
    add(el("h3", { text: d.dot.rest_count ? `dot product: the ${d.dot.terms.length} largest of ${d.dot.count} terms` : `dot product of ${d.dot.count} terms` }),
        el("div", { class: "eq", text: `${terms}${rest} = ${fmt(d.dot.sum)}` }),
        el("div", { class: "eq", text: `+ bias ${fmt(d.bias)} = ${fmt(d.pre)} (before the non-linearity)` }));
    if (d.activation) add(el("div", { class: "eq", text: `${d.activation.type} (${d.activation.layer}) → ${fmt(d.activation.value)}` }));
    if (d.strongest_weights) add(el("h3", { text: "strongest weights" }),
      el("div", { class: "eq", text: d.strongest_weights.map((s) => `in ${s.input}: ${fmt(s.w)}`).join(", ") }));
  } else if (d.window) {
    add(el("h3", { text: d.winner ? "pooling window (the winner highlighted)" : "pooling window (averaged)" }),
        table(d.window, d.winner));
  } else if (d.input_value !== undefined) {
    add(el("div", { class: "eq", text: `input ${fmt(d.input_value)} → output ${fmt(d.value)}` }));
  }
}

function table(rows, win) {
  const t = el("table");
  rows.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((v, j) => tr.append(el("td", { class: win && win[0] === i && win[1] === j ? "win" : "", text: fmt(v) })));
    t.append(tr);
  });
  return t;
}

function matrices(patch, filter) {   // per input channel: patch and filter side by side
  const wrap = el("div");
  const shown = Math.min(patch.length, 4);
  for (let c = 0; c < shown; c++) {
    wrap.append(el("div", { class: "muted", text: `input channel ${c}` }),
                el("div", { class: "row" }, table(patch[c]), table(filter[c])));
  }
  if (patch.length > shown) wrap.append(el("div", { class: "muted", text: `… and ${patch.length - shown} more channels` }));
  return wrap;
}

function outlineField(box) {
  const f = $("field"), g = f.getContext("2d");
  g.clearRect(0, 0, f.width, f.height);
  if (!box || !state.last) return;
  const S = state.last.input.shape[1], k = f.width / S;
  g.strokeStyle = "#ffb84d"; g.lineWidth = 2;
  g.strokeRect(box[1] * k + 1, box[0] * k + 1, (box[3] - box[1]) * k - 2, (box[2] - box[0]) * k - 2);
}

// ------------------------------------------------------------------ methods
// POST /api/method runs a cnnlab.viz method on the shown input: a heat map over the input
// (saliency, guided backprop, DeconvNet, occlusion), or images below (FGSM, class model,
// first-layer filters, the top-9 test images of the selected unit).
const ON_INPUT = ["saliency", "guided", "deconvnet", "occlusion", "fgsm"];
const methods = { seq: 0, timer: null };

function setupMethods() {
  const again = () => { clearTimeout(methods.timer); methods.timer = setTimeout(runMethod, 120); };
  const show = () => {
    $("m-eps-row").hidden = $("m-method").value !== "fgsm";
    $("m-eps-val").textContent = parseFloat($("m-eps").value).toFixed(2);
  };
  $("m-method").onchange = () => { show(); writeUrl(); again(); };
  $("m-target").onchange = () => { writeUrl(); again(); };
  $("m-eps").oninput = () => { show(); writeUrl(); again(); };
  const q = new URLSearchParams(location.search);   // a shared view: its method, class and eps
  if (q.get("method") && [...$("m-method").options].some((o) => o.value === q.get("method"))) $("m-method").value = q.get("method");
  if (q.get("eps")) $("m-eps").value = q.get("eps");
  show();
}

function fillTargets() {
  const t = $("m-target"), keep = t.value;
  t.textContent = "";
  t.append(el("option", { value: "", text: "predicted" }));
  state.model.classes.forEach((name, k) => t.append(el("option", { value: k, text: name })));
  const wanted = keep || new URLSearchParams(location.search).get("class");
  if (wanted && wanted < state.model.classes.length) t.value = wanted;
}

function afterPredict() {   // a new input: the input-based methods follow it (and a shared view's runs once)
  const method = $("m-method").value;
  if (ON_INPUT.includes(method) || (method && !methods.ran)) runMethod();
  methods.ran = true;
}

async function runMethod() {
  const method = $("m-method").value, seq = ++methods.seq;
  clearOverlay(); $("m-out").textContent = ""; $("m-note").textContent = "";
  document.body.dataset.method = "";
  if (!method) return;
  const fields = { method };
  if ($("m-target").value !== "") fields.target = parseInt($("m-target").value, 10);
  if (method === "fgsm") fields.eps = parseFloat($("m-eps").value);
  if (method === "class_model" && fields.target === undefined) fields.target = state.last ? state.last.prediction : 0;
  if (method === "top9") {
    const m = state.sel && state.maps && state.maps[state.sel.layer];
    if (!m || m.layer.shape.length !== 3) { $("m-note").textContent = "Click a unit of a conv or pool layer first."; return; }
    fields.layer = state.sel.layer; fields.channel = state.sel.c;
  }
  $("m-note").textContent = "computing…";
  $("m-progress").hidden = method !== "occlusion" && method !== "class_model"; $("m-progress").value = 0;
  let d;
  try { d = await (ON_INPUT.includes(method) ? post("/api/method", fields) : api("/api/method", JSON.stringify(fields))); } catch (e) { if (seq === methods.seq) $("m-note").textContent = e.message; return; }
  finally { if (seq === methods.seq) $("m-progress").hidden = true; }
  if (seq !== methods.seq) return;
  showMethod(d);
  document.body.dataset.method = method;
}

function clearOverlay() { const o = $("overlay"); o.getContext("2d").clearRect(0, 0, o.width, o.height); }

function drawHeat(values, H, W, signed) {   // a map over the input, drawn on #overlay
  const o = $("overlay"); o.width = W; o.height = H;
  const m = maxAbs(values);
  const g = o.getContext("2d"), img = g.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    const v = values[i], t = m > 0 ? Math.min(1, Math.abs(v) / m) : 0;
    const rgb = signed ? colour(v, m) : [255, 80 + 150 * t, 40];
    img.data.set([...rgb, Math.round(230 * t)], 4 * i);
  }
  g.putImageData(img, 0, 0);
}

function imageCanvas(arr, px, signed = false) {   // a (C, H, W) array as a canvas, px pixels a side
  const c = el("canvas"), [H, W] = paint(c, decode(arr), signed);
  c.style.width = px + "px"; c.style.height = Math.round(px * H / W) + "px";
  return c;
}

function paint(c, a, signed = false) {   // a decoded (C, H, W) or (H, W) array on canvas c, sized to it: raw pixels in [0, 1], or signed colours
  const [C, H, W] = a.shape.length === 3 ? a.shape : [1, ...a.shape];
  c.width = W; c.height = H;
  const m = signed ? maxAbs(a.data) : 0;
  const g = c.getContext("2d"), img = g.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    const rgb = signed ? colour(a.data[i], m)
      : [0, 1, 2].map((k) => 255 * Math.min(1, Math.max(0, a.data[(C === 3 ? k : 0) * H * W + i])));
    img.data.set([...rgb, 255], 4 * i);
  }
  g.putImageData(img, 0, 0);
  return [H, W];
}

function showMethod(d) {
  const out = $("m-out"), names = state.model.classes, pct = (p) => (100 * p).toFixed(1) + "%";
  const S = state.last ? state.last.input.shape[1] : 0;
  if (d.heat) {
    const h = decode(d.heat);
    if (d.method === "occlusion") {   // each input pixel: the mean drop of p(target) over the squares covering it
      const [OH, OW] = h.shape, drop = new Float32Array(S * S), n = new Float32Array(S * S);
      for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
        for (let y = i * d.stride; y < i * d.stride + d.size; y++) for (let x = j * d.stride; x < j * d.stride + d.size; x++) {
          drop[y * S + x] += Math.max(0, d.probability - h.data[i * OW + j]); n[y * S + x] += 1;
        }
      }
      for (let k = 0; k < S * S; k++) drop[k] = n[k] ? drop[k] / n[k] : 0;
      drawHeat(drop, S, S, false);
      let lo = 1;
      for (const v of h.data) lo = Math.min(lo, v);
      $("m-note").textContent = `p(${d.target_name}) falls from ${pct(d.probability)} to as low as ${pct(lo)} when a ${d.size}×${d.size} square is grey; red: where it falls most.`;
    } else {
      drawHeat(h.data, h.shape[0], h.shape[1], d.signed);
      $("m-note").textContent = `${{ saliency: "|∂ score / ∂ input|", guided: "guided backprop", deconvnet: "DeconvNet" }[d.method]} for class ${d.target_name}, over the input.`;
    }
    return;
  }
  $("m-note").textContent = "";
  if (d.method === "fgsm") {
    const b = d.before;
    out.append(el("div", { class: "grid" },
      el("figure", {}, imageCanvas(d.image, 100), el("figcaption", { text: "adversarial input" })),
      el("figure", {}, imageCanvas(d.perturbation, 100, true), el("figcaption", { text: `perturbation (±${d.eps})` }))),
      el("div", { id: "fgsm-result", "data-k": d.prediction, text: `${names[b.prediction]} (${pct(b.probabilities[b.prediction])}) → ` },
         el("span", { class: "big", text: `${names[d.prediction]} (${pct(d.probabilities[d.prediction])})` })));
  } else if (d.method === "class_model") {
    out.append(el("figure", {}, imageCanvas(d.image, 140),
                  el("figcaption", { text: `the input that maximises ${d.target_name}: p = ${pct(d.probability)}` })));
  } else if (d.method === "filters") {
    const a = decode(d.images), grid = el("div", { class: "grid" });
    const [K, kh, kw] = a.shape, rgb = a.shape.length === 4;
    for (let k = 0; k < K; k++) {
      const c = el("canvas", { width: kw, height: kh, title: `${d.layer}[${k}]` });
      c.style.width = c.style.height = "30px";
      const g = c.getContext("2d"), img = g.createImageData(kw, kh);
      for (let i = 0; i < kh * kw; i++) {
        const px = rgb ? [0, 1, 2].map((ch) => 255 * a.data[(k * kh * kw + i) * 3 + ch]) : Array(3).fill(255 * a.data[k * kh * kw + i]);
        img.data.set([...px, 255], 4 * i);
      }
      g.putImageData(img, 0, 0);
      grid.append(c);
    }
    out.append(el("div", { class: "muted", text: `${d.layer}: ${d.shape.join("×")}` }), grid);
  } else if (d.method === "top9") {
    const grid = el("div", { class: "grid" });
    for (const it of d.items) {
      grid.append(el("figure", {}, imageCanvas(it.patch, 52), el("figcaption", { text: `#${it.index} ${it.label} ${fmt(it.value)}` })));
    }
    out.append(el("div", { class: "muted", text: `${d.layer} channel ${d.channel}: the 9 of ${d.searched} test images it fires on most, cropped to its receptive field` }), grid);
  }
}

// ------------------------------------------------------------------ training live
// GET /api/train/events is a stream of server-sent events: status, step, epoch, snapshot
// (filters, histograms; the page's model got the new weights) and model (another model).
const train = { out: null, steps: [], epochs: [], state: "idle", drawQueued: false };
window.cnnlabTrain = train;   // read by the browser test

async function setupTraining() {
  let t;
  try { t = await api("/api/train"); } catch (e) { return showError(e); }
  const m = $("t-model"), d = $("t-dataset");
  m.append(el("option", { value: "", text: "the dataset's default" }));
  for (const name of t.models) m.append(el("option", { value: name, text: name }));
  for (const name of t.datasets) d.append(el("option", { value: name, text: name }));
  d.value = t.defaults.dataset; $("t-lr").value = t.defaults.lr;
  $("t-batch").value = t.defaults.batch_size; $("t-epochs").value = t.defaults.epochs;
  $("t-start").onclick = startTraining;
  $("t-pause").onclick = () => control({ action: train.state === "paused" ? "resume" : "pause" });
  $("t-stop").onclick = () => control({ action: "stop" });
  $("t-setlr").onclick = () => control({ action: "lr", lr: parseFloat($("t-lr").value) });
  setTrainState({ state: t.state, message: t.message });
  drawCurves();
  const es = new EventSource("/api/train/events");
  const on = (kind, f) => es.addEventListener(kind, (msg) => f(JSON.parse(msg.data)));
  on("status", setTrainState);
  on("step", (e) => { train.steps.push(e); showLast(); queueCurves(); });
  on("epoch", (e) => { train.epochs.push({ ...e, step: train.steps.length }); showLast(); queueCurves(); });
  on("progress", (e) => { if (e.task === $("m-method").value) $("m-progress").value = e.done / e.total; });
  on("snapshot", (e) => { drawFilters(e.filters); drawHistograms(e.layers); requestPredict(); });
  on("model", () => loadModel().then(() => {
    $("layers").textContent = ""; state.maps = {}; state.pages = {};
    if (state.sel && !state.model.layers.some((la) => la.name === state.sel.layer)) { state.sel = null; state.pinned = false; }
    requestPredict();
  }).catch(showError));
}

async function startTraining() {
  const num = (id) => { const v = parseFloat($(id).value); return Number.isFinite(v) ? v : null; };
  const body = { model: $("t-model").value || null, dataset: $("t-dataset").value, lr: num("t-lr"),
                 batch_size: num("t-batch"), epochs: num("t-epochs") };
  try { await api("/api/train", JSON.stringify(body)); } catch (e) { $("train-msg").textContent = e.message; }
}

async function control(body) {
  try { await api("/api/train/control", JSON.stringify(body)); } catch (e) { $("train-msg").textContent = e.message; }
}

function setTrainState(e) {
  if (e.state === "running" && e.out && e.out !== train.out) {   // a new run: new curves
    train.out = e.out; train.steps.length = 0; train.epochs.length = 0; queueCurves();
  }
  if (e.state === "following" && e.out) train.out = e.out;
  train.state = e.state;
  document.body.dataset.train = e.state;
  const live = e.state === "running" || e.state === "paused";
  $("train-state").textContent = e.state === "idle" ? "" : e.state;
  if (e.message) $("train-msg").textContent = e.message;
  $("t-start").disabled = live || e.state === "following";
  $("t-pause").disabled = $("t-stop").disabled = $("t-setlr").disabled = !live;
  $("t-pause").textContent = e.state === "paused" ? "Resume" : "Pause";
}

// An epoch's held-out score: the validation split's (the default), or the test set's
// for a run trained with --val-split 0.
const heldOut = (e) => (e.val_acc !== undefined ? e.val_acc : e.test_acc);
const heldOutName = (e) => (e.val_acc !== undefined ? "validation" : "test");

function showLast() {
  const s = train.steps[train.steps.length - 1], ep = train.epochs[train.epochs.length - 1];
  const parts = [];
  if (s) parts.push(`step ${s.step} (epoch ${s.epoch}): loss ${fmt(s.loss)}, acc ${(100 * s.acc).toFixed(0)}%, lr ${s.lr.toPrecision(3)}`);
  if (ep && heldOut(ep) !== undefined) parts.push(`epoch ${ep.epoch}: ${heldOutName(ep)} accuracy ${(100 * heldOut(ep)).toFixed(1)}%`);
  $("t-last").textContent = parts.join("; ");
  document.body.dataset.steps = String(train.steps.length);
}

function queueCurves() {
  if (train.drawQueued) return;
  train.drawQueued = true;
  requestAnimationFrame(() => { train.drawQueued = false; drawCurves(); });
}

function drawCurves() {   // step loss (orange), its running mean, step accuracy (blue), held-out accuracy (green)
  const c = $("curves"), g = c.getContext("2d"), W = c.width, H = c.height, pad = 22;
  g.fillStyle = "#0d1014"; g.fillRect(0, 0, W, H);
  const steps = train.steps, n = Math.max(steps.length, train.epochs.length ? train.epochs[train.epochs.length - 1].step : 0);
  g.font = "18px system-ui, sans-serif";
  if (!n) { g.fillStyle = "#8a94a3"; g.fillText("loss and accuracy appear here as a run trains", pad, H / 2); return; }
  let top = 0;
  for (const s of steps) top = Math.max(top, s.loss);
  for (const e of train.epochs) top = Math.max(top, e.train_loss || 0);
  top = top || 1;
  const X = (i) => pad + (W - 2 * pad) * (n > 1 ? i / (n - 1) : 0.5);
  const Y = (v, hi) => H - pad - (H - 2 * pad) * Math.min(1, v / hi);
  const line = (pts, colour, width) => {
    g.strokeStyle = colour; g.lineWidth = width; g.beginPath();
    pts.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y))); g.stroke();
  };
  line(steps.map((s, i) => [X(i), Y(s.acc, 1)]), "rgba(90,134,200,.55)", 1.5);
  line(steps.map((s, i) => [X(i), Y(s.loss, top)]), "rgba(255,184,77,.45)", 1.5);
  let avg = null;   // an exponential running mean, so the trend reads through the noise
  line(steps.map((s, i) => { avg = avg === null ? s.loss : 0.9 * avg + 0.1 * s.loss; return [X(i), Y(avg, top)]; }), "#ffb84d", 3);
  g.fillStyle = "#7fc97f";
  const held = train.epochs.filter((e) => heldOut(e) !== undefined);
  line(held.map((e) => [X(Math.max(0, e.step - 1)), Y(heldOut(e), 1)]), "#7fc97f", 2);
  for (const e of held) { g.beginPath(); g.arc(X(Math.max(0, e.step - 1)), Y(heldOut(e), 1), 5, 0, 2 * Math.PI); g.fill(); }
  g.fillStyle = "#ffb84d"; g.fillText(`loss (0–${top.toPrecision(2)})`, pad, 18);
  g.fillStyle = "#5a86c8"; g.fillText("train acc", pad + 190, 18);
  g.fillStyle = "#7fc97f"; g.fillText(held.length ? `${heldOutName(held[0]).slice(0, 3)} acc` : "val acc", pad + 300, 18);
}

function drawFilters(f) {
  if (!f) return;
  $("t-filters-box").hidden = false;
  const a = decode(f.data), [K, C, kh, kw] = a.shape, box = $("t-filters");
  if (box.childElementCount !== K) {
    box.textContent = "";
    for (let k = 0; k < K; k++) box.append(el("canvas", { width: kw, height: kh, title: `${f.name}[${k}]` }));
  }
  const m = maxAbs(a.data);
  box.querySelectorAll("canvas").forEach((cv, k) => {
    const g = cv.getContext("2d"), img = g.createImageData(kw, kh);
    for (let i = 0; i < kh * kw; i++) {
      let rgb;
      if (C === 3) rgb = [0, 1, 2].map((ch) => 127.5 + 127.5 * a.data[(k * C + ch) * kh * kw + i] / (m || 1));
      else rgb = colour(a.data[k * C * kh * kw + i], m);
      img.data.set([...rgb, 255], 4 * i);
    }
    g.putImageData(img, 0, 0);
  });
}

function drawHistograms(layers) {
  if (!layers || !layers.length) return;
  $("t-hist-box").hidden = false;
  const box = $("t-hist"); box.textContent = "";
  for (const row of layers.slice(0, 12)) {
    const cell = (h, colourName) => {
      const cv = el("canvas", { width: 90, height: 22 });
      if (!h || !h.counts.length) return cv;
      const g = cv.getContext("2d"), top = Math.max(...h.counts), w = 90 / h.counts.length;
      g.fillStyle = colourName;
      h.counts.forEach((c, i) => { const hh = 22 * c / top; g.fillRect(i * w, 22 - hh, w - 0.5, hh); });
      cv.title = `${fmt(h.lo)} … ${fmt(h.hi)}`;
      return cv;
    };
    box.append(el("div", { class: "h" }, el("span", { text: row.name }), cell(row.weights, "#5a86c8"),
                  cell(row.grads, "#7fc97f")));
  }
  if (layers.length > 12) box.append(el("div", { class: "muted", text: `… and ${layers.length - 12} more layers` }));
}

// ------------------------------------------------------------------ start
async function loadModel() {
  state.model = await api("/api/model");
  const m = state.model;
  $("model-name").textContent = `${m.name} · input ${m.input_shape.join("×")}` + (m.untrained ? " · untrained weights" : "");
  $("model-source").textContent = m.source;
  $("test-row").style.display = m.test_images ? "" : "none";
  if (m.test_images) $("test-index").max = m.test_images - 1;
  fillTargets();
}

async function start() {
  readUrl();
  setupDrawing();
  setupMethods();
  try { await loadModel(); } catch (e) { return showError(e); }
  if (state.source.kind === "test") $("test-index").value = state.source.index;
  requestPredict();
  setupTraining();
}

start();
