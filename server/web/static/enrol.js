// Enrol: make a key on this device, or load a key file; show the public key for the admin.
import { getKey, keep, makeKey, importKeyFile, showKeys, supported, words } from "./keys.js";

const prefix = document.body.dataset.prefix;
const w = words();
const list = document.getElementById("key-list");
const empty = document.getElementById("no-keys");

function refresh() {
  showKeys(list, empty, { onRemove: refresh });
}

function show(record) {
  document.getElementById("made").hidden = false;
  document.getElementById("pem").value = record.pem;
  document.getElementById("fingerprint").textContent = record.fingerprint;
  document.getElementById("key-id").textContent = record.keyId;
  document.getElementById("qr").src = `${prefix}/enrol/qr.svg?key=${record.publicHex}`;
  const link = document.getElementById("download-pub");
  link.href = URL.createObjectURL(new Blob([record.pem], { type: "application/x-pem-file" }));
  link.download = `${record.actor}.pub`;
  const server = window.location.origin;
  document.getElementById("cmd-add").textContent =
    `xinfang --server ${server} actor add ${record.actor} --name NAME --unit UNIT ` +
    `--role ROLE --public-key ${record.actor}.pub --as admin-01`;
  document.getElementById("cmd-rotate").textContent =
    `xinfang --server ${server} actor rotate-key ${record.actor} ` +
    `--public-key ${record.actor}.pub --as admin-01`;
}

async function main() {
  if (!supported()) {
    document.getElementById("no-webcrypto").hidden = false;
    document.querySelectorAll("form button").forEach((b) => { b.disabled = true; });
    return;
  }
  refresh();
  const make = document.getElementById("make");
  make.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("make-status");
    const actor = document.getElementById("make-actor").value.trim();
    if (await getKey(actor) && !document.getElementById("make-replace").checked) {
      status.textContent = w.exists;
      return;
    }
    const record = await keep(actor, await makeKey(), "made");
    show(record);
    status.textContent = w.made;
    refresh();
  });
  const fileInput = document.getElementById("key-file");
  const actorInput = document.getElementById("load-actor");
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file && !actorInput.value) actorInput.value = file.name.replace(/\.(key|pem)$/i, "");
  });
  document.getElementById("load-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("load-status");
    const file = fileInput.files[0];
    if (!file) return;
    try {
      const pair = await importKeyFile(await file.text());
      const record = await keep(actorInput.value.trim(), pair, "loaded");
      status.textContent = `${w.loaded} ${record.actor} — ${record.fingerprint}`;
      refresh();
    } catch (error) {
      status.textContent = w[error.message] || w.bad_file;
    }
  });
}

main();
