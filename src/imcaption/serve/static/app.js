// The page: send one image to the service, show the reading and where the model looked for each character.
"use strict";

const state = { task: "read" };
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function describeModel() {
  const health = await (await fetch("/healthz")).json();
  state.task = health.task;
  $("model").textContent = `${health.model} ${health.task === "read" ? "captcha recognizer" : "captioner"}` +
    ` · input ${health.input} · ${health.backend}`;
}

// One attention grid (rows x cols) drawn over the image: the grid is scaled up smoothly, as a red glow.
function attentionCanvas(image, grid, label) {
  const rows = grid.length, cols = grid[0].length;
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const cells = document.createElement("canvas");
  cells.width = cols;
  cells.height = rows;
  const cellContext = cells.getContext("2d");
  const pixels = cellContext.createImageData(cols, rows);
  // Stretched between the grid's least and most attended cells, and sharpened, so the glow marks the peak.
  const values = grid.flat();
  const low = Math.min(...values), span = Math.max(...values) - low || 1;
  values.forEach((value, i) => {
    pixels.data.set([255, 30, 30, Math.round(210 * ((value - low) / span) ** 1.5)], 4 * i);
  });
  cellContext.putImageData(pixels, 0, 0);
  context.imageSmoothingEnabled = true;
  context.drawImage(cells, 0, 0, canvas.width, canvas.height);
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(canvas, caption);
  return figure;
}

function showReading(reading, image) {
  $("word").textContent = reading.word || reading.caption || "(nothing read)";
  $("confidence").textContent = reading.confidence === undefined ? "" : `${(100 * reading.confidence).toFixed(1)} %`;
  $("characters").replaceChildren(...(reading.characters || []).map(({ char, confidence }) => {
    const chip = document.createElement("span");
    chip.className = "char";
    chip.innerHTML = `<b></b>${(100 * confidence).toFixed(1)} %`;
    chip.querySelector("b").textContent = char;
    return chip;
  }));
  const labels = reading.word ? [...reading.word] : (reading.caption || "").split(" ");
  $("attention").replaceChildren(...(reading.attention || []).map((grid, i) =>
    attentionCanvas(image, grid, labels[i] || "<end>")));
  $("result").hidden = false;
}

async function send(file) {
  if (!file) return;
  showError("");
  const body = new FormData();
  body.append("image", file, file.name || "pasted.png");
  const path = state.task === "read" ? "/v1/read" : "/v1/caption";
  let response, answer;
  try {
    response = await fetch(`${path}?attention=true`, { method: "POST", body });
    answer = await response.json();
  } catch (error) {
    $("result").hidden = true;
    showError(response ? `error ${response.status}` : "cannot reach the service");
    return;
  }
  if (!response.ok) {
    $("result").hidden = true;
    showError(answer.error ? answer.error.message : `error ${response.status}`);
    return;
  }
  const image = $("preview");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(file);
  await image.decode();
  showReading(answer, image);
  document.body.dataset.state = "done";
}

const drop = $("drop");
$("file").addEventListener("change", (event) => send(event.target.files[0]));
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  send(event.dataTransfer.files[0]);
});
document.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((entry) => entry.type.startsWith("image/"));
  if (item) send(item.getAsFile());
});
describeModel().catch(() => showError("cannot reach the service"));
