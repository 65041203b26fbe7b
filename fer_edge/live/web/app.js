// fer-edge live page: per-face labels and scores from the event stream, and rolling charts.
// No libraries, no network beyond this server: a Pi on a closed network has no CDN.
"use strict";

const WINDOW_S = 60;            // the charts show the last minute
const STAGES = ["capture", "detect", "classify", "draw"];
const STAGE_COLORS = {capture: "#4c9be8", detect: "#e8a33c", classify: "#d0508a", draw: "#8a8a8a"};
const CROP_EVERY_MS = 250;      // the crop images are refreshed at most 4 times a second

const $ = (id) => document.getElementById(id);
const state = {
  cfg: {labels: [], colors: {}, title: ""},
  latest: null,                // the newest frame record
  dirty: false,
  follow: null,                // the face id the score chart follows (null: the first face)
  history: new Map(),          // face id -> [[t, scores[]], ...]
  stats: [],                   // [[t, stats record], ...]
  lastCrop: 0,
  ended: false,
};

function setState(text, cls) {
  const el = $("state");
  el.textContent = text;
  el.className = "state " + (cls || "");
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function colorOf(label) {
  return state.cfg.colors[label] || "#a0a0a0";
}

function onFrame(rec) {
  state.latest = rec;
  state.dirty = true;
  for (const f of rec.faces) {
    let h = state.history.get(f.id);
    if (!h) state.history.set(f.id, (h = []));
    h.push([rec.t, state.cfg.labels.map((k) => f.scores[k])]);
  }
  // forget what left the window (a face seen long ago, then its whole history)
  const oldest = rec.t - WINDOW_S;
  for (const [id, h] of state.history) {
    let i = 0;
    while (i < h.length && h[i][0] < oldest) i++;
    if (i) h.splice(0, i);
    if (!h.length) state.history.delete(id);
  }
}

function onStats(s) {
  const now = state.latest ? state.latest.t : Date.now() / 1000;
  state.stats.push([now, s]);
  while (state.stats.length && state.stats[0][0] < now - WINDOW_S) state.stats.shift();
  $("fps").textContent = s.fps.toFixed(1);
  for (const k of STAGES) $("ms-" + k).textContent = (s.stages_ms[k] || 0).toFixed(1);
  $("dropped").textContent = s.dropped + " of " + s.captured;
}

function renderFaces() {
  const rec = state.latest;
  if (!rec || !state.dirty) return;
  state.dirty = false;
  const box = $("faces");
  box.dataset.frame = String(rec.frame);
  $("frame-no").textContent = String(rec.frame);
  const showCrop = $("show-crop").checked;
  const now = performance.now();
  const refreshCrop = showCrop && now - state.lastCrop >= CROP_EVERY_MS;
  if (refreshCrop) state.lastCrop = now;
  const keep = new Set();
  for (const f of rec.faces) {
    keep.add(String(f.id));
    let card = box.querySelector(`.face[data-id="${f.id}"]`);
    if (!card) {
      card = el("div", "face");
      card.dataset.id = String(f.id);
      card.addEventListener("click", () => { state.follow = f.id; });
      const head = el("div", "head");
      head.append(el("span", "fid", "#" + f.id), el("span", "label"), el("span", "score"));
      const crop = el("img", "crop");
      crop.alt = "the face as the model sees it";
      const bars = el("div", "bars");
      for (const k of state.cfg.labels) {
        const row = el("div", "bar");
        row.dataset.label = k;
        const fill = el("span", "fill");
        fill.style.background = colorOf(k);
        row.append(el("span", "name", k), el("span", "track"), el("span", "val"));
        row.children[1].append(fill);
        bars.append(row);
      }
      const body = el("div", "body");
      body.append(crop, bars);
      card.append(head, body);
      box.append(card);
    }
    card.dataset.label = f.label;
    card.dataset.score = String(f.score);
    card.dataset.frame = String(rec.frame);
    card.classList.toggle("followed", f.id === currentFollow());
    const label = card.querySelector(".label");
    label.textContent = f.label;
    label.style.color = colorOf(f.label);
    card.querySelector(".score").textContent = f.score.toFixed(2);
    for (const row of card.querySelectorAll(".bar")) {
      const p = f.scores[row.dataset.label] || 0;
      row.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
      row.querySelector(".val").textContent = p.toFixed(2);
    }
    const crop = card.querySelector(".crop");
    crop.hidden = !showCrop;
    if (refreshCrop) crop.src = `crop.png?id=${f.id}&frame=${rec.frame}`;
  }
  for (const card of [...box.querySelectorAll(".face")]) if (!keep.has(card.dataset.id)) card.remove();
  const empty = box.querySelector(".empty");
  if (rec.faces.length && empty) empty.remove();
  if (!rec.faces.length && !empty) box.append(el("p", "empty", "no face in this frame"));
}

function currentFollow() {
  const rec = state.latest;
  if (state.follow !== null && state.history.has(state.follow)) return state.follow;
  return rec && rec.faces.length ? rec.faces[0].id : null;
}

// A line chart on a canvas: series = [{color, points: [[t, v], ...]}], x = the last WINDOW_S seconds.
function drawChart(canvas, series, tNow, yMax, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const L = 36, R = 8, T = 8, B = 18;
  const pw = w - L - R, ph = h - T - B;
  const x = (t) => L + pw * (1 - (tNow - t) / WINDOW_S);
  const y = (v) => T + ph * (1 - Math.min(v, yMax) / yMax);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#888";
  ctx.strokeStyle = "#333";
  ctx.lineWidth = 1;
  const steps = yMax / Math.pow(10, Math.floor(Math.log10(yMax))) === 2 ? 4 : 5;  // round-number ticks
  for (let i = 0; i <= steps; i++) {      // horizontal grid with plain-number labels
    const v = (yMax * i) / steps;
    ctx.beginPath();
    ctx.moveTo(L, y(v));
    ctx.lineTo(L + pw, y(v));
    ctx.stroke();
    ctx.fillText(String(+v.toFixed(2)), 2, y(v) + 4);
  }
  for (const s of [0, 15, 30, 45, 60]) ctx.fillText(s ? `-${s} s` : "now", x(tNow - s) - (s ? 14 : 22), h - 4);
  ctx.lineWidth = 1.6;
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    let started = false;
    for (const [t, v] of s.points) {
      if (t < tNow - WINDOW_S) continue;
      if (started) ctx.lineTo(x(t), y(v)); else { ctx.moveTo(x(t), y(v)); started = true; }
    }
    ctx.stroke();
  }
  if (unit) ctx.fillText(unit, L + 4, T + 10);
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function renderCharts() {
  const rec = state.latest;
  const tNow = rec ? rec.t : Date.now() / 1000;
  const id = currentFollow();
  $("chart-face").textContent = id === null ? "-" : "#" + id;
  const h = id === null ? [] : state.history.get(id) || [];
  const series = state.cfg.labels.map((k, i) => ({color: colorOf(k), points: h.map(([t, s]) => [t, s[i]])}));
  drawChart($("scores-chart"), series, tNow, 1, "score");
  const st = state.stats;
  let maxMs = 0, maxFps = 0;
  for (const [, s] of st) {
    for (const k of STAGES) maxMs = Math.max(maxMs, s.stages_ms[k] || 0);
    maxFps = Math.max(maxFps, s.fps);
  }
  drawChart($("latency-chart"), STAGES.map((k) => ({color: STAGE_COLORS[k],
    points: st.map(([t, s]) => [t, s.stages_ms[k] || 0])})), tNow, niceMax(maxMs), "ms");
  drawChart($("fps-chart"), [{color: "#5cc77a", points: st.map(([t, s]) => [t, s.fps])}], tNow, niceMax(maxFps), "FPS");
}

function legend(box, entries) {
  box.replaceChildren(...entries.map(([name, color]) => {
    const item = el("span", "item");
    const sw = el("span", "swatch");
    sw.style.background = color;
    item.append(sw, document.createTextNode(name));
    return item;
  }));
}

async function main() {
  try {
    state.cfg = await (await fetch("config.json", {cache: "no-store"})).json();
  } catch (e) {
    setState("cannot reach the server", "bad");
    return;
  }
  $("title").textContent = state.cfg.title;
  document.title = "fer-edge live: " + state.cfg.title;
  legend($("legend"), state.cfg.labels.map((k) => [k, colorOf(k)]));
  legend($("latency-legend"), STAGES.map((k) => [k, STAGE_COLORS[k]]));
  const es = new EventSource("events?stats=1");
  es.onopen = () => setState("live", "ok");
  es.onmessage = (e) => {              // unnamed events: the --headless records
    const rec = JSON.parse(e.data);
    if (rec.type === "frame") onFrame(rec);
    else if (rec.type === "summary") {
      state.ended = true;
      es.close();
      setState(`ended: ${rec.stop_reason} (${rec.frames} frames, ${rec.fps} FPS)`, "bad");
    }
  };
  es.addEventListener("stats", (e) => onStats(JSON.parse(e.data)));
  es.onerror = () => { if (!state.ended) setState("reconnecting", "bad"); };
  setInterval(renderFaces, 100);
  setInterval(renderCharts, 250);
}

main();
