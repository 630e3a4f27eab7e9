// The page of the prediction service: draw or upload → POST v1/predict → show the text and the line boxes.
// URLs are relative so the page also works behind a path prefix (JupyterHub's /user/<name>/proxy/8000/).
"use strict";

const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
const result = document.getElementById("result");
const statusLine = document.getElementById("status");

function clearPad() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(event) {
  const r = pad.getBoundingClientRect();
  return [(event.clientX - r.left) * pad.width / r.width, (event.clientY - r.top) * pad.height / r.height];
}

let drawing = false;
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  pen.beginPath();
  pen.moveTo(...padPoint(event));
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  pen.lineTo(...padPoint(event));
  pen.stroke();
});
pad.addEventListener("pointerup", () => { drawing = false; });
pad.addEventListener("pointercancel", () => { drawing = false; });

function showStatus(message, isError) {
  statusLine.textContent = message;
  statusLine.className = isError ? "error" : "";
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the browser cannot display this file as an image"));
    image.src = src;
  });
}

async function drawResult(dataUrl, lines) {
  const image = await loadImage(dataUrl).catch(() => null);
  const ctx = result.getContext("2d");
  if (!image) { result.height = 1; result.dataset.boxes = "0"; return; }
  result.width = image.naturalWidth;
  result.height = image.naturalHeight;
  ctx.drawImage(image, 0, 0);
  ctx.lineWidth = Math.max(2, image.naturalWidth / 400);
  ctx.font = `${Math.max(14, image.naturalWidth / 50)}px sans-serif`;
  lines.forEach((line, i) => {
    const [x0, y0, x1, y1] = line.box;
    ctx.strokeStyle = ctx.fillStyle = i % 2 ? "#0070f3" : "#e0301e";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.fillText(String(i + 1), x0 + 2, Math.max(y0 - 4, 14));
  });
  result.dataset.boxes = String(lines.length);
}

async function read(dataUrl) {
  showStatus("Reading…", false);
  const started = performance.now();
  let answer;
  try {
    const response = await fetch("v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: dataUrl }),
    });
    answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  } catch (error) {
    showStatus(`Error: ${error.message}`, true);
    return;
  }
  document.getElementById("text").textContent = answer.text;
  const list = document.getElementById("lines");
  list.replaceChildren(...answer.lines.map((line) => {
    const item = document.createElement("li");
    item.textContent = `${line.text}  (confidence ${(100 * line.confidence).toFixed(0)} %)`;
    return item;
  }));
  await drawResult(dataUrl, answer.lines);
  const ms = Math.round(performance.now() - started);
  showStatus(`Read ${answer.lines.length} line${answer.lines.length === 1 ? "" : "s"} in ${ms} ms.`, false);
}

document.getElementById("read").addEventListener("click", () => read(pad.toDataURL("image/png")));
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => read(reader.result);
  reader.onerror = () => showStatus("Error: the file could not be read", true);
  reader.readAsDataURL(file);
});

pen.lineWidth = 7;
pen.lineCap = pen.lineJoin = "round";
pen.strokeStyle = "#000";
clearPad();
