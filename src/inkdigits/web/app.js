// inkdigits drawing pad: Pointer Events drawing, live reading, uploads. No dependencies.
"use strict";

const LIVE_INTERVAL_MS = 150; // live predictions while drawing, at most this often
const SIZES = { digit: [280, 280], number: [840, 280] };
const BRUSH = 18; // pad pixels; about an MNIST stroke for a digit the height of the pad

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const overlay = $("overlay");
const ctx = pad.getContext("2d");
const octx = overlay.getContext("2d");

const state = {
  mode: "digit",
  strokes: [], // each stroke: array of [x, y] in pad pixels
  drawing: null,
  seq: 0, // id of the last request sent
  shown: 0, // id of the last response rendered
  inFlight: 0,
  lastSent: 0,
  penUp: null, // {seq, t}: the request sent when the pen was lifted
};
// Pen-up to result-on-screen times (ms), for tests and benchmarks.
window.inkdigits = { latencies: [] };

// ------------------------------------------------------------------ drawing

function resetPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#111";
  ctx.fillStyle = "#111";
  ctx.lineWidth = BRUSH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
}

function drawStroke(points) {
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(points[0][0], points[0][1], BRUSH / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (let i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
  ctx.stroke();
}

function redraw() {
  resetPad();
  state.strokes.forEach(drawStroke);
  $("hint").hidden = state.strokes.length > 0;
}

function padPoint(ev) {
  const r = pad.getBoundingClientRect();
  return [((ev.clientX - r.left) * pad.width) / r.width, ((ev.clientY - r.top) * pad.height) / r.height];
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  state.drawing = [padPoint(ev)];
  state.strokes.push(state.drawing);
  $("hint").hidden = true;
  drawStroke(state.drawing);
});

pad.addEventListener("pointermove", (ev) => {
  if (!state.drawing) return;
  ev.preventDefault();
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of events.length ? events : [ev]) {
    const p = padPoint(e);
    const last = state.drawing[state.drawing.length - 1];
    state.drawing.push(p);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
  }
  const now = performance.now();
  if (state.inFlight === 0 && now - state.lastSent >= LIVE_INTERVAL_MS) predict(false);
});

function penUp(ev) {
  if (!state.drawing) return;
  state.drawing = null;
  predict(true);
}
pad.addEventListener("pointerup", penUp);
pad.addEventListener("pointercancel", penUp);

$("undo").addEventListener("click", () => {
  state.strokes.pop();
  redraw();
  state.strokes.length ? predict(true) : showEmpty();
});
$("clear").addEventListener("click", () => {
  state.strokes = [];
  redraw();
  showEmpty();
});
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") $("undo").click();
  else if (ev.key === "Escape") $("clear").click();
});

// ------------------------------------------------------------------ modes

function setMode(mode) {
  state.mode = mode;
  document.body.classList.toggle("number-mode", mode === "number");
  for (const m of ["digit", "number"]) {
    const b = $("mode-" + m);
    b.classList.toggle("active", m === mode);
    b.setAttribute("aria-selected", String(m === mode));
  }
  const [w, h] = SIZES[mode];
  pad.width = overlay.width = w;
  pad.height = overlay.height = h;
  $("hint").textContent = mode === "digit" ? "Draw a digit here" : "Write a number here";
  $("digit-details").hidden = mode !== "digit";
  $("number-details").hidden = mode !== "number";
  state.strokes = [];
  redraw();
  showEmpty();
}
$("mode-digit").addEventListener("click", () => setMode("digit"));
$("mode-number").addEventListener("click", () => setMode("number"));

// ------------------------------------------------------------------ reading

function padBlob() {
  return new Promise((resolve) => pad.toBlob(resolve, "image/png"));
}

async function predict(isPenUp) {
  if (!state.strokes.length) return;
  const seq = ++state.seq;
  const t0 = performance.now();
  if (isPenUp) state.penUp = { seq, t: t0 };
  state.lastSent = t0;
  state.inFlight++;
  const mode = state.mode;
  try {
    const blob = await padBlob();
    let url = mode === "digit" ? "/api/v1/digits?preview=true" : "/api/v1/numbers";
    if (mode === "digit" && isPenUp && $("explain-toggle").checked) url += "&explain=true";
    const resp = await fetch(url, { method: "POST", body: blob, headers: { "Content-Type": "image/png" } });
    const data = await resp.json();
    if (seq < state.shown || mode !== state.mode || !state.strokes.length) return; // stale
    state.shown = seq;
    if (!resp.ok) return showError(data.detail || resp.statusText);
    mode === "digit" ? showDigit(data) : showNumber(data);
    if (state.penUp && seq >= state.penUp.seq) {
      const ms = performance.now() - state.penUp.t;
      window.inkdigits.latencies.push(ms);
      document.body.dataset.latency = ms.toFixed(1);
      state.penUp = null;
    }
  } catch (err) {
    showError("cannot reach the server (" + err.message + ")");
  } finally {
    state.inFlight--;
  }
}

function pct(p) {
  return (100 * p).toFixed(p >= 0.995 || p < 0.005 ? 0 : 1) + "%";
}

function setAnswer(text, stateName, confidence, reason) {
  const a = $("answer");
  a.textContent = text;
  a.dataset.state = stateName;
  $("confidence").textContent = confidence;
  $("reason").textContent = reason || "";
}

function showEmpty() {
  state.shown = state.seq; // ignore anything still in flight
  setAnswer("–", "empty", state.mode === "digit" ? "Draw to start" : "Write a number to start", "");
  renderBars(null);
  $("seen").removeAttribute("src");
  $("seen-figure").hidden = true;
  $("heat-figure").hidden = true;
  $("digit-list").innerHTML = "";
  octx.clearRect(0, 0, overlay.width, overlay.height);
}

function showError(message) {
  setAnswer("!", "unsure", "Something went wrong", message);
}

function renderBars(probs) {
  const ol = $("bars");
  if (!ol.children.length) {
    for (let d = 0; d < 10; d++) {
      const li = document.createElement("li");
      li.dataset.digit = d;
      li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="pct"></span>`;
      ol.appendChild(li);
    }
  }
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  [...ol.children].forEach((li, d) => {
    const p = probs ? probs[d] : 0;
    li.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    li.querySelector(".pct").textContent = probs ? pct(p) : "";
    li.classList.toggle("best", d === best);
  });
}

function showDigit(r) {
  if (r.digit === null) {
    setAnswer("?", "unsure", "Not sure", r.reason);
  } else {
    setAnswer(String(r.digit), "sure", pct(r.confidence) + " sure", "");
  }
  renderBars(r.box ? r.probabilities : null);
  if (r.preprocessed) {
    $("seen").src = r.preprocessed;
    $("seen-figure").hidden = !r.box;
  }
  if (r.explanation) {
    $("heat").src = r.explanation;
    $("heat-figure").hidden = false;
  } else if (!$("explain-toggle").checked) {
    $("heat-figure").hidden = true;
  }
}

function drawBoxes(c, digits, scale) {
  c.lineWidth = Math.max(2, 2 * scale);
  c.font = `bold ${Math.round(22 * scale)}px system-ui, sans-serif`;
  c.textBaseline = "bottom";
  for (const line of digits) {
    for (const d of line) {
      if (!d.box) continue;
      const [x, y, w, h] = d.box.map((v) => v * scale);
      const colour = d.digit === null ? "#b45309" : "#2f6fed";
      c.strokeStyle = colour;
      c.strokeRect(x, y, w, h);
      const label = d.digit === null ? "?" : String(d.digit);
      const tw = c.measureText(label).width + 8 * scale;
      const th = 26 * scale;
      const ty = y >= th ? y - th : y + h;
      c.fillStyle = colour;
      c.fillRect(x, ty, tw, th);
      c.fillStyle = "#fff";
      c.fillText(label, x + 4 * scale, ty + th - 3 * scale);
    }
  }
}

// What to say of a number's doubts: digits read as "?" and lines whose digits
// the digit classifier and the line model counted differently.
const COUNT_NOTE = "a digit may be missing or extra";

function doubts(r) {
  const notes = [];
  if (r.digits.some((line) => line.some((d) => d.digit === null))) {
    notes.push("? marks a digit it is not sure of");
  }
  if ((r.count_confidences || []).some((c) => c < 1)) notes.push(COUNT_NOTE);
  return notes;
}

function showNumber(r) {
  const n = r.digits.reduce((k, line) => k + line.length, 0);
  if (!n) {
    setAnswer("?", "unsure", "No digit found", r.reason);
  } else {
    const notes = doubts(r);
    setAnswer(r.lines.join(" / "), notes.length ? "partly" : "sure", pct(r.confidence) + " sure", notes.join("; "));
  }
  octx.clearRect(0, 0, overlay.width, overlay.height);
  drawBoxes(octx, r.digits, 1);
  const ol = $("digit-list");
  ol.innerHTML = "";
  for (const line of r.digits) {
    for (const d of line) {
      const li = document.createElement("li");
      li.className = d.digit === null ? "unsure" : "";
      li.innerHTML = `<b>${d.digit === null ? "?" : d.digit}</b>${pct(d.confidence)}`;
      ol.appendChild(li);
    }
  }
}

// ------------------------------------------------------------------ uploads

async function readUpload(file) {
  if (!file) return;
  const out = $("upload-answer");
  const canvas = $("upload-canvas");
  $("upload-result").hidden = false;
  out.className = "upload-answer";
  out.textContent = "Reading " + file.name + "…";
  try {
    const resp = await fetch("/api/v1/numbers", { method: "POST", body: file });
    const data = await resp.json();
    if (!resp.ok) {
      out.className = "upload-answer error";
      out.textContent = file.name + ": " + (data.detail || resp.statusText);
      canvas.hidden = true;
      return;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      bitmap = null; // a format the browser cannot show (e.g. TIFF): answer only
    }
    canvas.hidden = !bitmap;
    if (bitmap) {
      const scale = Math.min(1, 1000 / bitmap.width);
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      const c = canvas.getContext("2d");
      c.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      drawBoxes(c, data.digits, scale);
    }
    const found = data.digits.reduce((k, line) => k + line.length, 0);
    const notes = found ? doubts(data) : [];
    out.textContent = found
      ? data.lines.join(" / ") + "  (" + pct(data.confidence) + " sure" + notes.map((t) => "; " + t).join("") + ")"
      : "No digit found";
  } catch (err) {
    out.className = "upload-answer error";
    out.textContent = "cannot reach the server (" + err.message + ")";
  }
}

$("file-input").addEventListener("change", (ev) => readUpload(ev.target.files[0]));
$("camera-input").addEventListener("change", (ev) => readUpload(ev.target.files[0]));
const drop = $("drop");
["dragenter", "dragover"].forEach((t) =>
  drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add("dragging"); })
);
["dragleave", "drop"].forEach((t) =>
  drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.remove("dragging"); })
);
drop.addEventListener("drop", (ev) => readUpload(ev.dataTransfer.files[0]));

// ------------------------------------------------------------------ start

fetch("/api/v1/model")
  .then((r) => r.json())
  .then((card) => {
    const int8 = card.serving && card.serving.precision === "int8";
    const m = (int8 ? card.int8 : card.metrics) || {};
    const acc = m.test_accuracy ? ` · ${(100 * m.test_accuracy).toFixed(2)}% on MNIST test` : "";
    const kind = int8 ? ", int8" : "";
    $("model-info").textContent = `Model: ${card.model.name} (${card.model.parameters.toLocaleString()} parameters${kind})${acc}`;
  })
  .catch(() => {});
setMode("digit");
