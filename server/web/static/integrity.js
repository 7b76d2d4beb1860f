// The integrity page: "verify now" (a server job, polled) and a bundle upload.
import { base64, words } from "./keys.js";

const prefix = document.body.dataset.prefix;
const w = words();

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}

function showResult(state) {
  const out = document.getElementById("verify-result");
  out.replaceChildren();
  const p = document.createElement("p");
  if (state.error) {
    p.className = "error";
    p.textContent = state.error;
    out.append(p);
    return;
  }
  const result = state.result;
  p.id = "verify-verdict";
  p.dataset.ok = String(result.ok);
  p.className = result.ok ? "verdict ok" : "verdict bad";
  p.textContent = result.ok
    ? "✓ " + w.pass.replace("{events}", result.events).replace("{streams}", result.streams)
    : "✗ " + w.fail.replace("{n}", result.failures.length);
  out.append(p);
  if (!result.ok) {
    const table = document.createElement("table");
    table.className = "small";
    table.id = "verify-failures";
    const head = table.createTHead().insertRow();
    for (const name of [w.check, w.where, w.reason]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      head.append(th);
    }
    const body = table.createTBody();
    for (const f of state.failures) {
      const row = body.insertRow();
      row.dataset.check = f.check;
      cell(row, `${f.check} ${f.title}`);
      cell(row, f.stream ? `${f.stream}#${f.seq}` : `${f.position}`);
      cell(row, f.reason_text);
    }
    out.append(table);
  }
}

async function poll(id) {
  const progress = document.getElementById("verify-progress");
  const count = document.getElementById("verify-count");
  for (;;) {
    const response = await fetch(`${prefix}/integrity/verify/${id}`, { credentials: "same-origin" });
    const state = await response.json();
    if (!response.ok) { showResult({ error: state.error }); return; }
    progress.max = Math.max(state.total, 1);
    progress.value = state.done;
    count.textContent = `${state.done} / ${state.total}`;
    if (!state.running) { showResult(state); return; }
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

const button = document.getElementById("verify-now");
if (button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    document.getElementById("verify-result").textContent = w.running;
    try {
      const response = await fetch(`${prefix}/integrity/verify`, {
        method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
        body: "{}" });
      const state = await response.json();
      if (!response.ok) showResult({ error: state.error });
      else await poll(state.id);
    } finally {
      button.disabled = false;
    }
  });
}

document.getElementById("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("upload-status");
  const file = document.getElementById("bundle-file").files[0];
  if (!file) return;
  status.textContent = w.running;
  const body = { bundle: base64(await file.arrayBuffer()),
                 log_key: document.getElementById("log-key").value,
                 admin_key: document.getElementById("admin-key").value };
  const response = await fetch(`${prefix}/integrity/bundles`, {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify(body) });
  const answer = await response.json();
  if (response.ok) window.location.assign(answer.url);
  else status.textContent = answer.error;
});
