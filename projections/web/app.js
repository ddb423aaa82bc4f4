// ordo-projector's live page. The board is always the projector's own
// answer (/api/board): on each event of the stream (/api/events) the page
// asks again, with min_position set to that event, so an order shows up
// once the read model has it. Charts are drawn as SVG from /api/analytics.
"use strict";

const COLUMNS = ["Created", "Confirmed", "Preparing", "Ready", "OutForDelivery"];
const LABELS = { OutForDelivery: "Out for delivery" };
const STAGES = ["confirm", "start", "prepare", "pickup", "deliver", "total"];
const SVG = "http://www.w3.org/2000/svg";

let restaurant = Number(new URLSearchParams(location.search).get("restaurant") || 1);
let lastPosition = 0;  // the newest event the stream brought
let shownPosition = 0; // the position the board was answered at
let boardTimer = null;
let board = null;

const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  return r.json();
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function age(us) {
  const s = Math.max(0, Math.floor((Date.now() * 1000 - us) / 1e6));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}` :
         `${m}:${String(s % 60).padStart(2, "0")}`;
}

function renderBoard() {
  const root = $("board");
  root.replaceChildren();
  for (const status of COLUMNS) {
    const col = el("div", { class: "column", "data-status": status });
    const h = el("h2");
    h.append(el("span", {}, LABELS[status] || status));
    h.append(el("span", { class: "count", "data-count": status }, String(board.counts[status] || 0)));
    col.append(h);
    for (const o of board.active.filter((x) => x.status === status)) {
      const card = el("div", { class: "card", "data-order": o.order_id, "data-since": o.updated_at_us,
                               "data-created": o.created_at_us });
      card.append(el("span", { class: "id", title: o.order_id }, o.order_id));
      card.append(el("span", { class: "age" }, age(o.created_at_us)));
      col.append(card);
    }
    root.append(col);
  }
  $("finished").textContent =
    `Delivered: ${board.counts.Delivered || 0} · Cancelled: ${board.counts.Cancelled || 0}` +
    ` · as of position ${board.position}`;
  document.body.dataset.position = board.position;
  tickAges();
}

function tickAges() {
  for (const card of document.querySelectorAll(".card")) {
    const created = Number(card.dataset.created);
    card.querySelector(".age").textContent = age(created);
    const minutes = (Date.now() * 1000 - created) / 6e7;
    card.classList.toggle("old", minutes >= 20 && minutes < 45);
    card.classList.toggle("late", minutes >= 45);
  }
}

async function refreshBoard() {
  boardTimer = null;
  const want = lastPosition;
  const r = await getJSON(`/api/board?restaurant=${restaurant}` +
                          (want > 0 ? `&min_position=${want}` : ""));
  if (!r.ok) {
    if (r.error && r.error.code === "lagging") scheduleBoard(200);
    return;
  }
  if (r.position < shownPosition) return; // an older answer that came late
  board = r;
  shownPosition = r.position;
  renderBoard();
}

function scheduleBoard(ms) {
  if (!boardTimer) boardTimer = setTimeout(refreshBoard, ms);
}

async function refreshStatus() {
  const r = await getJSON("/api/status");
  const root = $("status");
  root.replaceChildren();
  if (!r.ok) return;
  root.append(el("span", {}, `engine head ${r.engine_head}`));
  for (const p of r.projections) {
    root.append(el("span", { class: p.state, "data-projection": p.name },
                   `${p.name}: ${p.position} (lag ${p.lag_events}, ${p.state})`));
  }
}

function bars(svg, labels, series, classes) {
  svg.replaceChildren();
  const W = 600, H = 180, left = 34, bottom = 22, top = 8;
  const max = Math.max(1, ...series.flat());
  const slot = (W - left) / Math.max(1, labels.length);
  const bw = (slot * 0.8) / series.length;
  for (let t = 0; t <= 2; t++) {
    const v = (max * t) / 2, y = H - bottom - ((H - bottom - top) * t) / 2;
    const tx = document.createElementNS(SVG, "text");
    tx.setAttribute("x", 2); tx.setAttribute("y", y + 4);
    tx.textContent = v >= 10 ? Math.round(v) : v.toFixed(1);
    svg.append(tx);
  }
  labels.forEach((label, i) => {
    series.forEach((s, k) => {
      const h = ((H - bottom - top) * s[i]) / max;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", left + i * slot + slot * 0.1 + k * bw);
      r.setAttribute("y", H - bottom - h);
      r.setAttribute("width", Math.max(1, bw - 1));
      r.setAttribute("height", h);
      r.setAttribute("class", classes[k]);
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${label}: ${s[i]}`;
      r.append(title);
      svg.append(r);
    });
    const tx = document.createElementNS(SVG, "text");
    tx.setAttribute("x", left + i * slot + slot * 0.1);
    tx.setAttribute("y", H - 6);
    tx.textContent = label;
    svg.append(tx);
  });
}

async function refreshCharts() {
  const hour = 3600e6;
  const to = Math.ceil((Date.now() * 1000) / hour) * hour;
  const from = to - 12 * hour;
  const r = await getJSON(`/api/analytics?from_us=${from}&to_us=${to}&bucket=hour&restaurant=${restaurant}`);
  if (!r.ok) return;
  const b = r.buckets;
  bars($("per-hour"), b.map((x) => new Date(x.start_us / 1000).toISOString().slice(11, 13) + "h"),
       [b.map((x) => x.created)], ["bar"]);
  // Stage times: the slowest p50 and p95 of the window's hours (each hour
  // holds its own percentiles; a maximum is what a kitchen wants to see).
  const p50 = STAGES.map((s) => Math.max(0, ...b.map((x) => (x.stages[s] ? x.stages[s].p50_ms : 0))) / 6e4);
  const p95 = STAGES.map((s) => Math.max(0, ...b.map((x) => (x.stages[s] ? x.stages[s].p95_ms : 0))) / 6e4);
  bars($("stages"), STAGES, [p50.map((v) => +v.toFixed(1)), p95.map((v) => +v.toFixed(1))], ["bar", "bar2"]);
  const from3 = ["Created", "Confirmed", "Preparing"];
  bars($("cancels"), from3, [from3.map((s) => b.reduce((n, x) => n + x.cancelled_from[s], 0))], ["bar2"]);
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("hello", () => {
    $("live").classList.add("on");
    $("live").textContent = "live";
  });
  es.addEventListener("change", (e) => {
    const ev = JSON.parse(e.data);
    lastPosition = Math.max(lastPosition, ev.position);
    scheduleBoard(50);
  });
  es.addEventListener("reload", () => { scheduleBoard(0); refreshCharts(); });
  es.onerror = () => { // EventSource reconnects by itself
    $("live").classList.remove("on");
    $("live").textContent = "reconnecting";
  };
}

$("restaurant").value = restaurant;
$("pick").addEventListener("submit", (e) => {
  e.preventDefault();
  restaurant = Number($("restaurant").value) || 0;
  history.replaceState(null, "", `?restaurant=${restaurant}`);
  refreshBoard();
  refreshCharts();
});

connect();
refreshBoard();
refreshStatus();
refreshCharts();
setInterval(tickAges, 1000);
setInterval(refreshStatus, 2000);
setInterval(refreshCharts, 10000);
