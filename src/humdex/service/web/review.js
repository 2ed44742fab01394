// humdex review page: one uncertain mined pair at a time; answers go to /review/api/answer.
"use strict";

const $ = (id) => document.getElementById(id);
let queue = [];
let skipped = new Set();

function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) $("status").textContent = text;
}

function versionUrl(kind, item, id) {
  return `review/api/${kind}/${encodeURIComponent(item.group_id)}/${encodeURIComponent(item.fragment_id)}/${encodeURIComponent(id)}`;
}

async function loadQueue() {
  const res = await fetch("review/api/queue");
  if (!res.ok) { setState("error", `could not load the queue (${res.status})`); return; }
  const data = await res.json();
  queue = data.items.filter((it) => !skipped.has(it.id));
  $("remaining").textContent = `${data.remaining} pairs to review`;
  showNext();
}

function showNext() {
  if (!queue.length) {
    $("pair").hidden = true;
    setState("empty", "Nothing left to review.");
    return;
  }
  const item = queue[0];
  $("pair").hidden = false;
  $("pair").dataset.id = item.id;
  $("pair-title").textContent =
    `${item.group_id} / fragment ${item.fragment_id}: ${item.original_source} ` +
    `${item.original_interval[0].toFixed(2)}–${item.original_interval[1].toFixed(2)} s vs ${item.source} ` +
    `${item.interval[0].toFixed(2)}–${item.interval[1].toFixed(2)} s, correlation ${item.correlation.toFixed(2)}`;
  $("original-audio").src = versionUrl("audio", item, item.original_id);
  $("candidate-audio").src = versionUrl("audio", item, item.id);
  setState("loading-pair", "Drawing the pitch contours…");
  Promise.all([fetch(versionUrl("contour", item, item.original_id)), fetch(versionUrl("contour", item, item.id))])
    .then(async ([a, b]) => {
      const ca = a.ok ? await a.json() : null;
      const cb = b.ok ? await b.json() : null;
      if (queue[0] !== item) return;
      drawContours($("review-contour"), ca, cb);
      setState("ready", "Listen to both, then answer.");
    })
    .catch((err) => setState("ready", `contours unavailable (${err})`));
}

function drawContours(canvas, original, candidate) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const series = [[original, "#1f5fd6"], [candidate, "#e8871e"]].filter(([c]) => c && c.midi.length);
  const values = series.flatMap(([c]) => c.midi.filter((m) => m !== null));
  if (!values.length) return;
  // the candidate is shown on the original's time axis: both span the full width
  const lo = Math.min(...values) - 2, hi = Math.max(...values) + 2;
  const y = (m) => canvas.height - 10 - (m - lo) / (hi - lo) * (canvas.height - 20);
  for (const [c, colour] of series) {
    ctx.fillStyle = colour;
    const n = c.midi.length;
    c.midi.forEach((m, i) => {
      if (m === null) return;
      ctx.fillRect(10 + i / n * (canvas.width - 20), y(m) - 1.5, 3, 3);
    });
  }
}

async function answer(kind) {
  if (!queue.length) return;
  const item = queue[0];
  setState("saving", "Saving…");
  const res = await fetch("review/api/answer", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({group_id: item.group_id, fragment_id: item.fragment_id, id: item.id, answer: kind}),
  });
  if (!res.ok) { setState("error", `not saved (${res.status})`); return; }
  if (kind === "skip") skipped.add(item.id);
  queue.shift();
  const data = await res.json();
  $("remaining").textContent = `${data.remaining} pairs to review`;
  showNext();
}

$("same").addEventListener("click", () => answer("same"));
$("different").addEventListener("click", () => answer("different"));
$("skip").addEventListener("click", () => answer("skip"));
document.addEventListener("keydown", (e) => {
  const kind = {s: "same", d: "different", k: "skip"}[e.key];
  if (kind && document.body.dataset.state === "ready") answer(kind);
});
loadQueue();
