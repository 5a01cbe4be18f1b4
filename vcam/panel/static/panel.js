// The kdcam panel: every change is one control request (POST /api/request), the same one `kdcam ctl` sends;
// what the camera does (from here, the terminal or `kdcam ctl`) comes back over the WebSocket /ws.
"use strict";

const $ = (id) => document.getElementById(id);
const HOLD_MS = 1500; // a control just changed here is not overwritten by an older status for that long
const HISTORY = 60; // points in each chart: one a second, the last minute
const held = {}; // control name -> time until which incoming status leaves it alone
let status = null;
let dragging = false;

function hold(name) { held[name] = Date.now() + HOLD_MS; }
function isHeld(name) { return (held[name] || 0) > Date.now(); }

function say(text, bad) {
  const line = $("message");
  line.textContent = text || "";
  line.classList.toggle("bad", Boolean(bad));
}

// Actions go to the camera one at a time, in the order they were made: two requests in
// flight on two connections could arrive the other way round (a slider's 0.8 after its 0.6).
let queue = Promise.resolve();
function send(cmd, value) {
  const sent = queue.then(() => sendNow(cmd, value));
  queue = sent.catch(() => null);
  return sent;
}

async function sendNow(cmd, value) {
  const request = value === undefined ? { cmd } : { cmd, value };
  let response;
  try {
    response = await fetch("/api/request", {
      method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
  } catch (err) {
    say("the camera does not answer (is `kdcam start` still running?)", true);
    return null;
  }
  if (!response.ok) {
    say((await response.text()).trim() || `refused (${response.status})`, true);
    return null;
  }
  const answer = await response.json();
  if (answer.ok) {
    say(answer.message || "", false);
    showStatus(answer.status, true);
  } else {
    say(answer.error, true);
  }
  return answer;
}

function fillSelect(select, names, current) {
  const wanted = names.includes(current) || !current ? names : [current, ...names];
  const have = Array.from(select.options, (option) => option.value);
  if (have.join("\n") !== wanted.join("\n")) {
    select.replaceChildren(...wanted.map((name) => new Option(name, name)));
  }
  if (!select.disabled) select.value = current;
}

function showStatus(next, fromAction) {
  if (!next) return;
  status = next;
  const on = next.effect === "on";
  const effect = $("effect");
  effect.setAttribute("aria-pressed", String(on));
  effect.textContent = on ? "Effect on" : "Effect off";
  if (!dragging && (fromAction || !isHeld("strength"))) {
    $("strength").value = String(next.strength);
  }
  $("strength-value").textContent = Number(next.strength).toFixed(2);
  for (const radio of document.querySelectorAll('input[name="split"]')) radio.checked = radio.value === next.split;
  fillSelect($("model"), next.models || [], next.model);
  fillSelect($("engine"), next.engines || [], next.engine);
}

// -- controls --------------------------------------------------------------------------------

function wireControls() {
  $("effect").addEventListener("click", () => send("toggle"));

  const slider = $("strength");
  let timer = null;
  const sendStrength = () => {
    timer = null;
    hold("strength");
    send("strength", Math.round(Number(slider.value) * 100) / 100);
  };
  slider.addEventListener("input", () => {
    hold("strength");
    $("strength-value").textContent = Number(slider.value).toFixed(2);
    if (timer === null) timer = setTimeout(sendStrength, 120);
  });
  slider.addEventListener("pointerdown", () => { dragging = true; });
  window.addEventListener("pointerup", () => { dragging = false; });

  for (const radio of document.querySelectorAll('input[name="split"]')) {
    radio.addEventListener("change", () => { if (radio.checked) send("split", radio.value); });
  }
  for (const [id, cmd] of [["model", "model"], ["engine", "engine"]]) {
    const select = $(id);
    select.addEventListener("change", async () => {
      const name = select.value;
      select.disabled = true;
      say(`switching ${cmd} to ${name}\u2026`, false);
      try { await send(cmd, name); } finally { select.disabled = false; if (status) showStatus(status, true); }
    });
  }
  $("save").addEventListener("click", async () => {
    const button = $("save");
    button.disabled = true;
    try { await send("save"); } finally { button.disabled = false; }
  });
}

// -- the before / after wipe --------------------------------------------------------------------

function wireWipe() {
  const stage = $("stage");
  const divider = $("divider");
  const place = (percent) => {
    const value = Math.min(100, Math.max(0, Math.round(percent)));
    stage.style.setProperty("--split", `${value}%`);
    divider.setAttribute("aria-valuenow", String(value));
    divider.setAttribute("aria-valuetext", `${value}% before`);
  };
  const fromPointer = (event) => {
    const box = stage.getBoundingClientRect();
    place(((event.clientX - box.left) / box.width) * 100);
  };
  let wiping = false;
  stage.addEventListener("pointerdown", (event) => {
    wiping = true;
    try { stage.setPointerCapture(event.pointerId); } catch (err) { /* the drag still follows inside the stage */ }
    fromPointer(event);
    divider.focus();
    event.preventDefault();
  });
  stage.addEventListener("pointermove", (event) => { if (wiping) fromPointer(event); });
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
    stage.addEventListener(name, () => { wiping = false; });
  }
  divider.addEventListener("keydown", (event) => {
    const now = Number(divider.getAttribute("aria-valuenow"));
    const steps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -20, PageUp: 20 };
    if (event.key in steps) place(now + steps[event.key]);
    else if (event.key === "Home") place(0);
    else if (event.key === "End") place(100);
    else return;
    event.preventDefault();
  });
  place(50);
}

const frameUrls = {};
function showFrame(buffer) {
  const tag = new Uint8Array(buffer, 0, 1)[0] === 0x42 ? "before" : "after";
  const url = URL.createObjectURL(new Blob([buffer.slice(1)], { type: "image/jpeg" }));
  const img = $(tag);
  const old = frameUrls[tag];
  frameUrls[tag] = url;
  img.onload = () => { if (old) URL.revokeObjectURL(old); };
  img.src = url;
  $("waiting").hidden = true;
}

// -- the live chart --------------------------------------------------------------------------------

const series = { sent_fps: [], latency_p95_ms: [], cpu_cores: [] };
const charts = { sent_fps: ["fps-chart", "fps-value", 1], latency_p95_ms: ["latency-chart", "latency-value", 1],
  cpu_cores: ["cpu-chart", "cpu-value", 2] };

function draw(canvas, points) {
  const width = canvas.clientWidth || 240;
  if (canvas.width !== width) canvas.width = width;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const values = points.filter((value) => value !== null);
  if (values.length < 2) return;
  const top = Math.max(...values) * 1.15 || 1;
  context.strokeStyle = getComputedStyle(canvas).color;
  context.lineWidth = 1.5;
  context.beginPath();
  let started = false;
  points.forEach((value, index) => {
    if (value === null) { started = false; return; }
    const x = (index / (HISTORY - 1)) * (canvas.width - 2) + 1;
    const y = canvas.height - 2 - (value / top) * (canvas.height - 6);
    if (started) context.lineTo(x, y); else context.moveTo(x, y);
    started = true;
  });
  context.stroke();
}

function showStats(stats) {
  for (const [key, [canvasId, valueId, digits]] of Object.entries(charts)) {
    const value = typeof stats[key] === "number" ? stats[key] : null;
    const points = series[key];
    points.push(value);
    if (points.length > HISTORY) points.shift();
    $(valueId).textContent = value === null ? "\u2013" : value.toFixed(digits);
    draw($(canvasId), points);
  }
  $("engine-line").textContent = stats.engine_line || "";
  $("machine-line").textContent = stats.machine_line || "";
}

// -- the live feed ---------------------------------------------------------------------------------

let socket = null;
let retry = 500;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => {
    retry = 500;
    $("connection").textContent = "live";
    $("connection").classList.remove("down");
    socket.send(JSON.stringify({ preview: !document.hidden }));
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") { showFrame(event.data); return; }
    const message = JSON.parse(event.data);
    if (message.type === "status") showStatus(message.status, false);
    else if (message.type === "stats") showStats(message.stats);
  };
  socket.onclose = () => {
    $("connection").textContent = "not connected: retrying (if `kdcam start` restarted, run `kdcam panel`)";
    $("connection").classList.add("down");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 5000);
  };
}

document.addEventListener("visibilitychange", () => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ preview: !document.hidden }));
});

wireControls();
wireWipe();
connect();
