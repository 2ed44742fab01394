// humdex web page: record or drop a query, POST it to the search API, draw the answer. Plain JS.
"use strict";

const params = new URLSearchParams(location.search);
const RECORD_S = Number(params.get("record_s")) || 12;      // auto-stop after this many seconds
const COUNTDOWN_S = params.has("countdown_s") ? Number(params.get("countdown_s")) : 3;
const $ = (id) => document.getElementById(id);
const state = { busy: false, stream: null, recorder: null, meterTimer: null, audioCtx: null };

function setState(name) { document.body.dataset.state = name; }
function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}
function fmtTime(s) {
  if (s === null || s === undefined || !isFinite(s)) return "\u2014";
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}
async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail ?? body);
  } catch (_) {
    return `${resp.status} ${resp.statusText}`;
  }
}

// ---------- catalog ----------
async function loadCatalog() {
  try {
    const resp = await fetch("songs");
    if (!resp.ok) throw new Error(await errorMessage(resp));
    const body = await resp.json();
    $("catalog-summary").textContent =
      `${body.count} song${body.count === 1 ? "" : "s"} in the catalog.`;
    const list = $("song-list");
    list.replaceChildren();
    for (const song of body.songs) {
      const li = document.createElement("li");
      li.dataset.songId = song.song_id;
      li.textContent = (song.title || song.song_id) + (song.artist ? ` \u2014 ${song.artist}` : "")
        + ` (${song.song_id}, ${song.kind})`;
      const del = document.createElement("button");
      del.type = "button";
      del.textContent = "remove";
      del.addEventListener("click", () => removeSong(song.song_id));
      li.appendChild(del);
      list.appendChild(li);
    }
  } catch (err) {
    $("catalog-summary").textContent = `Cannot read the catalog: ${err.message}`;
  }
}

async function removeSong(songId) {
  if (!confirm(`Remove ${songId} from the catalog?`)) return;
  const resp = await fetch(`songs/${encodeURIComponent(songId)}`, { method: "DELETE" });
  $("catalog-status").textContent = resp.ok ? `Removed ${songId}.` : await errorMessage(resp);
  loadCatalog();
}

async function addSong(event) {
  event.preventDefault();
  const form = new FormData($("add-song"));
  $("catalog-status").textContent = "Adding\u2026";
  const resp = await fetch("songs", { method: "POST", body: form });
  if (resp.ok) {
    const body = await resp.json();
    $("catalog-status").textContent = `Added ${body.added.join(", ")}.`;
    $("add-song").reset();
  } else {
    $("catalog-status").textContent = `Not added: ${await errorMessage(resp)}`;
  }
  loadCatalog();
}

// ---------- recording ----------
function pickMimeType() {
  for (const type of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"]) {
    if (window.MediaRecorder && MediaRecorder.isTypeSupported(type)) return type;
  }
  return "";
}

function startMeter(stream) {
  state.audioCtx = new AudioContext();
  const source = state.audioCtx.createMediaStreamSource(stream);
  const analyser = state.audioCtx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  state.meterTimer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    const rms = Math.sqrt(sum / samples.length);
    const db = 20 * Math.log10(rms + 1e-9);            // -60 dB .. 0 dB -> 0 .. 100 %
    $("level").style.width = `${Math.max(0, Math.min(100, (db + 60) * 100 / 60))}%`;
  }, 50);
}

function stopMeter() {
  clearInterval(state.meterTimer);
  state.meterTimer = null;
  $("level").style.width = "0";
  if (state.audioCtx) state.audioCtx.close();
  state.audioCtx = null;
}

function countdown(seconds) {
  return new Promise((resolve) => {
    const el = $("countdown");
    if (seconds <= 0) { resolve(); return; }
    el.hidden = false;
    let left = seconds;
    el.textContent = String(left);
    const timer = setInterval(() => {
      left -= 1;
      if (left <= 0) { clearInterval(timer); el.hidden = true; resolve(); }
      else el.textContent = String(left);
    }, 1000);
  });
}

async function record() {
  if (state.busy) return;
  state.busy = true;
  $("record").disabled = true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (err) {
    setStatus(`No microphone: ${err.message}. You can drop a recording instead.`, true);
    state.busy = false;
    $("record").disabled = false;
    return;
  }
  startMeter(state.stream);
  setState("countdown");
  setStatus("Get ready\u2026");
  await countdown(COUNTDOWN_S);
  const mimeType = pickMimeType();
  const recorder = new MediaRecorder(state.stream, mimeType ? { mimeType } : undefined);
  const chunks = [];
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.onstop = () => finishRecording(chunks, recorder.mimeType || mimeType);
  state.recorder = recorder;
  recorder.start(250);
  setState("recording");
  setStatus(`Recording: hum now (up to ${RECORD_S} s).`);
  $("stop").hidden = false;
  const started = performance.now();
  state.clockTimer = setInterval(() => {
    const elapsed = (performance.now() - started) / 1000;
    $("clock").textContent = `${elapsed.toFixed(1)} s / ${RECORD_S} s`;
    if (elapsed >= RECORD_S) stopRecording();
  }, 100);
}

function stopRecording() {
  clearInterval(state.clockTimer);
  if (state.recorder && state.recorder.state !== "inactive") state.recorder.stop();
}

function finishRecording(chunks, mimeType) {
  $("stop").hidden = true;
  $("clock").textContent = "";
  stopMeter();
  for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  state.recorder = null;
  const blob = new Blob(chunks, { type: mimeType || "audio/webm" });
  const ext = blob.type.includes("ogg") ? "ogg" : blob.type.includes("mp4") ? "m4a" : "webm";
  state.busy = false;
  search(blob, `recording.${ext}`);
}

// ---------- search ----------
async function search(blob, filename) {
  if (state.busy) return;
  state.busy = true;
  $("record").disabled = true;
  setState("searching");
  setStatus(`Searching ${filename}\u2026`);
  const form = new FormData();
  form.append("file", blob, filename);
  const fromStart = $("from-start").checked;
  try {
    const resp = await fetch(`search?top=10&detail=true&from_start=${fromStart}`,
                             { method: "POST", body: form });
    if (!resp.ok) throw new Error(await errorMessage(resp));
    const answer = await resp.json();
    showAnswer(answer);
    setStatus("");
    setState("done");
  } catch (err) {
    $("answer").hidden = true;
    setStatus(`Could not search: ${err.message}`, true);
    setState("error");
  } finally {
    state.busy = false;
    $("record").disabled = false;
  }
}

function showAnswer(answer) {
  const best = answer.results[0];
  const verdict = $("verdict");
  verdict.classList.toggle("match", answer.match);
  verdict.classList.toggle("nomatch", !answer.match);
  let detail = "";
  if (answer.match) {
    verdict.textContent = `Best match: ${best.title || best.song_id}  (score ${best.score.toFixed(3)})`;
    if (best.start_s !== null) detail = `Your query matches ${fmtTime(best.start_s)} \u2013 `
      + `${fmtTime(best.end_s)} of the song.`;
  } else if (!best) {
    verdict.textContent = "No match: the catalog is empty.";
  } else {
    verdict.textContent = "No match: nothing in the catalog is close enough.";
    const lead = answer.margin === null ? "" : `, only ${answer.margin.toFixed(3)} ahead of the next ones`;
    detail = `The closest song scores ${best.score.toFixed(3)}${lead}; a match needs a score of `
      + `${answer.threshold.toFixed(2)} and a lead of ${answer.min_margin.toFixed(2)}. `
      + "The list below is only the nearest melodies.";
  }
  $("verdict-detail").textContent = detail;
  const drawn = answer.match && answer.melody;
  $("legend-song").hidden = !drawn;
  $("legend-query").textContent = drawn
    ? "your query (transposed to the song's key, stretched over the matched passage)" : "your query";
  const tbody = $("results").querySelector("tbody");
  tbody.replaceChildren();
  for (const hit of answer.results) {
    const tr = document.createElement("tr");
    tr.dataset.songId = hit.song_id;
    if (!answer.match || hit.rank > 1) tr.classList.add("below");
    const width = Math.round(80 * Math.min(1, Math.max(0, hit.score)));  // scores lie in [0, 1]
    const bar = `<span class="bar" style="width:${width}px"></span>`;
    tr.innerHTML = `<td>${hit.rank}</td><td></td><td>${bar}${hit.score.toFixed(3)}</td>`
      + `<td>${fmtTime(hit.start_s)} \u2013 ${fmtTime(hit.end_s)}</td>`;
    tr.children[1].textContent = hit.title ? `${hit.title} (${hit.song_id})` : hit.song_id;
    tbody.appendChild(tr);
  }
  const t = answer.timing_ms;
  $("timing").textContent = `query ${answer.query}: pitch ${t.pitch.toFixed(0)} ms, `
    + `search ${t.search.toFixed(0)} ms, total ${t.total.toFixed(0)} ms`;
  $("answer").hidden = false;
  drawContours($("contour"), answer.query_contour, answer.match ? answer.melody : null, best);
}

// ---------- drawing ----------
function median(values) {
  const v = values.filter((x) => x !== null && isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : null;
}

function contourPoints(contour, t0, t1) {
  // -> [[t_s, midi|null], ...]; stretched over [t0, t1] when given, else on its own time axis.
  const n = contour.midi.length;
  const span = (t0 !== null && t1 !== null && t1 > t0) ? (t1 - t0) / Math.max(1, n) : contour.hop_s;
  const start = (t0 !== null && t1 !== null && t1 > t0) ? t0 : (contour.start_s || 0);
  return contour.midi.map((m, i) => [start + i * span, m]);
}

function drawContours(canvas, query, melody, hit) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 44, R = 10, T = 10, B = 26;
  ctx.clearRect(0, 0, W, H);
  if (!query) return;
  let songPts = [];
  let queryPts;
  if (melody && hit && hit.start_s !== null && hit.end_s !== null) {
    songPts = contourPoints(melody, null, null);
    queryPts = contourPoints(query, hit.start_s, hit.end_s);
    const inside = songPts.filter(([t]) => t >= hit.start_s && t <= hit.end_s).map(([, m]) => m);
    const shift = (median(inside) ?? 0) - (median(query.midi) ?? 0);
    queryPts = queryPts.map(([t, m]) => [t, m === null ? null : m + shift]);
  } else {
    queryPts = contourPoints(query, null, null);
  }
  const all = songPts.concat(queryPts).filter(([, m]) => m !== null);
  if (!all.length) return;
  const tMin = Math.min(...all.map(([t]) => t)), tMax = Math.max(...all.map(([t]) => t)) + 1e-3;
  const mMin = Math.floor(Math.min(...all.map(([, m]) => m))) - 2;
  const mMax = Math.ceil(Math.max(...all.map(([, m]) => m))) + 2;
  const x = (t) => L + (t - tMin) * (W - L - R) / (tMax - tMin);
  const y = (m) => T + (mMax - m) * (H - T - B) / (mMax - mMin);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#6b7580";
  ctx.strokeStyle = "#e3e6ea";
  ctx.lineWidth = 1;
  const names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
  for (let m = Math.ceil(mMin); m <= mMax; m++) {
    if (m % 12 !== 0 && (mMax - mMin > 24 || m % 12 !== 7)) continue;
    ctx.beginPath(); ctx.moveTo(L, y(m)); ctx.lineTo(W - R, y(m)); ctx.stroke();
    ctx.fillText(`${names[m % 12]}${Math.floor(m / 12) - 1}`, 4, y(m) + 4);
  }
  const step = Math.max(0.5, Math.pow(10, Math.floor(Math.log10(tMax - tMin))) / 2);
  for (let t = Math.ceil(tMin / step) * step; t <= tMax; t += step) {
    ctx.fillText(fmtTime(t), x(t) - 14, H - 8);
  }
  if (hit && melody && hit.start_s !== null && hit.end_s !== null) {
    ctx.fillStyle = "rgba(230, 126, 34, 0.08)";
    ctx.fillRect(x(hit.start_s), T, x(hit.end_s) - x(hit.start_s), H - T - B);
  }
  drawLine(ctx, songPts, x, y, "#2c6fbb", 3);
  drawLine(ctx, queryPts, x, y, "#e67e22", 2);
}

function drawLine(ctx, pts, x, y, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  let pen = false;
  for (const [t, m] of pts) {
    if (m === null) { pen = false; continue; }
    if (pen) ctx.lineTo(x(t), y(m)); else ctx.moveTo(x(t), y(m));
    pen = true;
  }
  ctx.stroke();
}

// ---------- wiring ----------
function setupDrop() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) search(file, file.name);
  });
  $("file-input").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) search(file, file.name);
    e.target.value = "";
  });
}

$("record").addEventListener("click", record);
$("stop").addEventListener("click", stopRecording);
$("add-song").addEventListener("submit", addSong);
setupDrop();
loadCatalog();
setState("idle");
