// Doing work on a case (issue 16): what you sign is what you see.
//
// The form's command goes to the server's prepare; the canonical bytes it answers are decoded
// here and compared, field by field, with the form — origin, case, action, actor, business
// time, key id, command id and every data field. Any difference: refuse, sign nothing. Else
// the page shows the decoded statement and the SHA-256 of the bytes; "sign" signs exactly
// those bytes with this browser's non-extractable key and submits them; the receipt is shown,
// checked to hold those bytes and that signature, and kept in this browser's IndexedDB.
import { getKey, base64, hex } from "./keys.js";

const CONTEXT = "xinfang-ledger/v1/event\n";
const prefix = document.body.dataset.prefix;
const section = document.getElementById("work");
const words = section ? JSON.parse(document.getElementById("work-words").textContent) : {};
const status = document.getElementById("work-status");
const review = document.getElementById("review");
const receiptBox = document.getElementById("receipt");
const again = document.getElementById("reprepare");
let pending = null;   // {form, command, bytes, signedB64}

const pad = (n) => String(n).padStart(2, "0");

// A datetime-local value (Beijing time) as the statement writes it: +08:00, seconds.
export function beijing(value) {
  if (!value) return null;
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) throw new Error(`${value}: not a time`);
  return `${m[1]}T${m[2]}:${m[3]}:${m[4] || "00"}+08:00`;
}

function nowBeijing() {
  const t = new Date(Date.now() + 8 * 3600 * 1000);
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}T` +
         `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`;
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function same(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
           a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

// The form as a command's data, and each field's description for showing it.
export function collect(form) {
  const data = {};
  const fields = {};
  for (const box of form.querySelectorAll(".field")) {
    const name = box.dataset.field;
    const type = box.dataset.type;
    fields[name] = { type, label: box.dataset.label, box,
                     fallback: box.dataset.default === undefined ? undefined
                       : JSON.parse(box.dataset.default) };
    let value;
    if (type === "codes") {
      value = Array.from(box.querySelectorAll("input:checked"), (i) => i.value);
      if (!value.length) value = undefined;
    } else if (type === "flag") {
      value = box.querySelector("input").checked;
    } else {
      const raw = box.querySelector("select, input, textarea").value.trim();
      if (raw === "") value = undefined;
      else if (type === "int") {
        if (!/^-?\d+$/.test(raw)) throw new Error(`${box.dataset.label}: ${raw}`);
        value = Number(raw);
      } else if (type === "time") value = beijing(raw);
      else if (type === "texts") {
        value = raw.split("\n").map((s) => s.trim()).filter(Boolean);
      } else if (type === "refs") {
        try { value = JSON.parse(raw); } catch (e) { throw new Error(`${box.dataset.label}: JSON`); }
      } else value = raw;
    }
    if (value !== undefined) data[name] = value;
  }
  return { data, fields };
}

// Why the prepared statement does not say what the form says ([] when it does).
export function differences(statement, command, fields, keyId, origin) {
  const wrong = [];
  const expect = { origin, stream: command.case, type: command.action, actor: command.actor,
                   at: command.at, key: keyId, cmd: command.cmd };
  for (const [name, value] of Object.entries(expect)) {
    if (name === "stream" && value === null) {   // a registration: the server numbers it
      if (command.action !== "register" || !/^XF-\d{4}-\d{6}$/.test(statement.stream) ||
          statement.seq !== 1) wrong.push(name);
    } else if (statement[name] !== value) wrong.push(name);
  }
  if (statement.migration !== undefined && statement.migration !== null) wrong.push("migration");
  const data = statement.data;
  if (!data || typeof data !== "object" || Array.isArray(data)) return [...wrong, "data"];
  for (const name of new Set([...Object.keys(data), ...Object.keys(command.data)])) {
    const field = fields[name];
    if (!field) { wrong.push(`data.${name}`); continue; }
    if (name in command.data) {
      if (!same(data[name], command.data[name])) wrong.push(`data.${name}`);
    } else if (!(field.fallback !== undefined && same(data[name], field.fallback))) {
      wrong.push(`data.${name}`);   // the server may fill in a declared default only
    }
  }
  return wrong;
}

function shown(field, value) {
  if (value === true) return "✓";
  if (value === false) return "✗";
  const label = (code) => {
    const option = field && field.box.querySelector(
      `option[value="${CSS.escape(String(code))}"], input[value="${CSS.escape(String(code))}"]`);
    if (!option) return String(code);
    const text = option.tagName === "OPTION" ? option.textContent
      : option.parentElement.textContent.trim();
    return `${text} (${code})`;
  };
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : label(v))).join("；");
  if (typeof value === "object" && value !== null) return JSON.stringify(value);
  return field && ["code", "codes"].includes(field.type) ? label(value) : String(value);
}

function showStatement(form, statement, fields, digest) {
  const rows = [[words.action, `${form.dataset.label} (${statement.type})`],
                [words.case, statement.stream], [words.business_time, statement.at],
                [words.actor, `${statement.actor} · ${statement.key}`]];
  for (const [name, value] of Object.entries(statement.data)) {
    rows.push([fields[name] ? fields[name].label : name, shown(fields[name], value)]);
  }
  const body = review.querySelector("tbody");
  body.replaceChildren();
  for (const [name, value] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = name;
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(th, td);
    body.append(tr);
  }
  document.getElementById("review-hash").textContent = digest;
  document.getElementById("review-checked").textContent = words.checked;
  review.hidden = false;
  review.focus();
}

async function post(path, body) {
  const response = await fetch(prefix + path, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body), credentials: "same-origin" });
  let answer = {};
  try { answer = await response.json(); } catch (e) { /* not JSON */ }
  return { ok: response.ok, status: response.status, answer };
}

function say(text, kind) {
  status.textContent = text;
  status.className = kind || "";
}

function refuse(answer, code) {
  const reason = answer.error || String(code);
  say(`${words.refused}：${reason}${answer.hint ? `（${answer.hint}）` : ""} ${words.nothing_signed}`,
      "error");
}

async function prepare(form, cmd) {
  review.hidden = true;
  again.hidden = true;
  pending = null;
  const actor = section.dataset.actor;
  const record = await getKey(actor);
  if (!record) { document.getElementById("no-key").hidden = false; return; }
  let collected;
  let at;
  try {
    collected = collect(form);
    at = beijing(form.querySelector("[data-at]").value);
  } catch (error) {
    say(`${words.refused}：${error.message}`, "error");
    return;
  }
  const command = { action: form.dataset.action, case: section.dataset.case || null, actor, at,
                    data: collected.data, cmd };
  const answer = await post("/work/prepare", command);
  if (!answer.ok) { refuse(answer.answer, answer.status); return; }
  if (answer.answer.duplicate) { await accept(answer.answer.duplicate, command, null, null); return; }
  const bytes = fromBase64(answer.answer.signed || "");
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  let statement;
  try {
    if (!text.startsWith(CONTEXT)) throw new Error("context");
    statement = JSON.parse(text.slice(CONTEXT.length));
  } catch (error) {
    say(`${words.tampered}（${error.message}）。${words.nothing_signed}`, "error");
    return;
  }
  const wrong = differences(statement, command, collected.fields, record.keyId,
                            section.dataset.origin);
  if (wrong.length) {
    say(`${words.tampered}：${wrong.join(", ")}。${words.nothing_signed}`, "error");
    section.dataset.refused = wrong.join(",");
    return;
  }
  const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
  pending = { form, command, bytes, signed: answer.answer.signed, record };
  say("");
  showStatement(form, statement, collected.fields, digest);
}

function contains(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function receipts() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("xinfang-receipts", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("receipts", { keyPath: "hash" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export async function keptReceipts() {
  const db = await receipts();
  return new Promise((resolve, reject) => {
    const request = db.transaction("receipts").objectStore("receipts").getAll();
    request.onsuccess = () => { db.close(); resolve(request.result); };
    request.onerror = () => { db.close(); reject(request.error); };
  });
}

async function keep(receipt, command) {
  const db = await receipts();
  await new Promise((resolve, reject) => {
    const tx = db.transaction("receipts", "readwrite");
    tx.objectStore("receipts").put({ ...receipt, actor: command.actor, case: command.case,
                                     action: command.action, kept: new Date().toISOString() });
    tx.oncomplete = () => { db.close(); resolve(); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  });
}

async function accept(receipt, command, bytes, signature) {
  if (bytes) {
    const envelope = fromBase64(receipt.envelope || "");
    if (!contains(envelope, bytes) || !contains(envelope, signature)) {
      say(`${words.refused}：the receipt's event is not the statement that was signed`, "error");
      return;
    }
  }
  await keep(receipt, { ...command, case: receipt.stream });
  document.getElementById("reload").href = `${prefix}/cases/${receipt.stream}`;
  const facts = document.getElementById("receipt-facts");
  facts.replaceChildren();
  const rows = [[words.position, receipt.position], [words.event_hash, receipt.hash],
                [words.leaf_index, receipt.leaf_index], [words.tree_size, receipt.tree_size],
                [words.proof, `${(receipt.proof || []).length} × SHA-256`],
                [words.checkpoint, receipt.checkpoint]];
  for (const [name, value] of rows) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value === null || value === undefined ? "—" : String(value);
    if (name === words.position) dd.id = "receipt-position";
    if (name === words.checkpoint) dd.className = "note";
    div.append(dt, dd);
    facts.append(div);
  }
  receiptBox.hidden = false;
  say(`${words.written}：${receipt.stream} · ${command.action} · ${words.position} ${receipt.position}`, "ok");
  section.dataset.written = String(receipt.position);
}

async function signAndSubmit() {
  if (!pending) return;
  const { command, bytes, signed, record, form } = pending;
  pending = null;
  review.hidden = true;
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" },
                                                            record.privateKey, bytes));
  const answer = await post("/work/submit", { signed, signature: base64(signature) });
  if (!answer.ok) { refuse(answer.answer, answer.status); return; }
  if (answer.answer.conflict) {
    say(`${words.conflict}（${answer.answer.conflict}）`, "error");
    again.hidden = false;
    again.onclick = () => prepare(form, command.cmd);
    return;
  }
  await accept(answer.answer.receipt, command, bytes, signature);
}

function newCmd() {
  return `web-${hex(crypto.getRandomValues(new Uint8Array(12)))}`;
}

function main() {
  if (!section) return;
  for (const input of section.querySelectorAll("[data-at]")) input.value = nowBeijing();
  for (const form of section.querySelectorAll("form.work-form")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      prepare(form, newCmd()).catch((error) => say(`${words.refused}：${error.message}`, "error"));
    });
  }
  document.getElementById("sign-submit")?.addEventListener("click", () => {
    signAndSubmit().catch((error) => say(`${words.refused}：${error.message}`, "error"));
  });
  document.getElementById("sign-cancel")?.addEventListener("click", () => {
    pending = null;
    review.hidden = true;
    say(words.nothing_signed);
  });
}

main();
