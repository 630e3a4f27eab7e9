// The page of the prediction service: draw or upload → POST v1/predict → show the text and the line boxes.
// URLs are relative so the page also works behind a path prefix (JupyterHub's /user/<name>/proxy/8000/).
"use strict";

const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
const result = document.getElementById("result");
const statusLine = document.getElementById("status");
const readButton = document.getElementById("read");
const clearButton = document.getElementById("clear");
const fileInput = document.getElementById("file");
const textBox = document.getElementById("text");
const lineList = document.getElementById("lines");

let inked = false;   // has anything been drawn on the pad since it was last cleared?
let busy = false;    // is a request on its way?

function clearPad() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  inked = false;
}

function clearResult() {
  textBox.textContent = "";
  lineList.replaceChildren();
  result.width = 900;
  result.height = 1;
  result.dataset.boxes = "0";
}

function padPoint(event) {
  const r = pad.getBoundingClientRect();
  return [(event.clientX - r.left) * pad.width / r.width, (event.clientY - r.top) * pad.height / r.height];
}

let drawing = false;
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  inked = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = padPoint(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x, y);  // a click alone leaves a dot (the dot of an i)
  pen.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  pen.lineTo(...padPoint(event));
  pen.stroke();
});
pad.addEventListener("pointerup", () => { drawing = false; });
pad.addEventListener("pointercancel", () => { drawing = false; });

function showStatus(message, kind) {
  statusLine.textContent = message;
  statusLine.className = kind || "";
}

function setBusy(value) {
  busy = value;
  readButton.disabled = fileInput.disabled = clearButton.disabled = value;
  document.body.classList.toggle("busy", value);
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

async function read(dataUrl, source) {
  if (busy) return;
  setBusy(true);
  clearResult();  // the old answer goes at once: what is shown always belongs to the last image sent
  showStatus("Reading…", "");
  const started = performance.now();
  try {
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
      showStatus(`Error: ${error.message}`, "error");
      return;
    }
    textBox.textContent = answer.text;
    lineList.replaceChildren(...answer.lines.map((line) => {
      const item = document.createElement("li");
      item.textContent = `${line.text}  (confidence ${(100 * line.confidence).toFixed(0)} %)`;
      return item;
    }));
    await drawResult(dataUrl, answer.lines);
    const ms = Math.round(performance.now() - started);
    if (answer.lines.length === 0) {
      const hint = source === "pad" ? "write a word along a line, letters about a fifth of the box high"
                                    : "try a sharper photo, with the writing filling more of it";
      showStatus(`Read 0 lines in ${ms} ms: no writing was found. Hint: ${hint}.`, "hint");
      return;
    }
    showStatus(`Read ${answer.lines.length} line${answer.lines.length === 1 ? "" : "s"} in ${ms} ms.`, "");
  } finally {
    setBusy(false);
  }
}

readButton.addEventListener("click", () => {
  if (!inked) {
    clearResult();
    showStatus("The pad is empty: write a word or two in the box with the mouse (or a finger), then press Read.",
               "hint");
    return;
  }
  read(pad.toDataURL("image/png"), "pad");
});
clearButton.addEventListener("click", () => {
  clearPad();
  clearResult();
  showStatus("Nothing read yet.", "");
});
fileInput.addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";  // so that choosing the same file again is a change too
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => read(reader.result, "file");
  reader.onerror = () => { clearResult(); showStatus("Error: the file could not be read", "error"); };
  reader.readAsDataURL(file);
});

pen.lineWidth = 7;
pen.lineCap = pen.lineJoin = "round";
pen.strokeStyle = "#000";
clearPad();
