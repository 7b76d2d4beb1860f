// Keys on this device: WebCrypto Ed25519 keys whose private half is not extractable, kept in
// this browser's IndexedDB (per site). Nothing here sends a private key anywhere.
const DB = "xinfang-keys";
const STORE = "keys";

export function supported() {
  return Boolean(window.isSecureContext && window.crypto && window.crypto.subtle &&
                 window.indexedDB);
}

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "actor" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, action) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = action(tx.objectStore(STORE));
    tx.oncomplete = () => { db.close(); resolve(request ? request.result : undefined); };
    tx.onerror = () => { db.close(); reject(tx.error); };
  });
}

export const listKeys = () => withStore("readonly", (s) => s.getAll());
export const getKey = (actor) => withStore("readonly", (s) => s.get(actor));
export const putKey = (record) => withStore("readwrite", (s) => s.put(record));
export const deleteKey = (actor) => withStore("readwrite", (s) => s.delete(actor));

export function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function pem(der, kind) {
  const body = base64(der).match(/.{1,64}/g).join("\n");
  return `-----BEGIN ${kind}-----\n${body}\n-----END ${kind}-----\n`;
}

// PEM, fingerprint and key id of a public key, as `xinfang key new` prints them.
export async function publicFacts(publicKey) {
  const raw = await crypto.subtle.exportKey("raw", publicKey);
  const spki = await crypto.subtle.exportKey("spki", publicKey);
  const digest = hex(await crypto.subtle.digest("SHA-256", raw));
  return { publicHex: hex(raw), pem: pem(spki, "PUBLIC KEY"),
           fingerprint: `SHA256:${digest}`, keyId: digest.slice(0, 16) };
}

// A new key pair; the private key cannot be exported, by this page or any other.
export async function makeKey() {
  return crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
}

// An Ed25519 PKCS#8 PEM private key file, imported as a non-extractable key (its public key
// is read once from a transient extractable copy, which is then dropped).
export async function importKeyFile(text) {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) throw new Error("encrypted");
  const found = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(text);
  if (!found) throw new Error("bad_file");
  let der;
  try {
    der = Uint8Array.from(atob(found[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch (e) {
    throw new Error("bad_file");
  }
  const algorithm = { name: "Ed25519" };
  let jwk;
  try {
    const transient = await crypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"]);
    jwk = await crypto.subtle.exportKey("jwk", transient);
  } catch (e) {
    throw new Error("bad_file");
  }
  const privateKey = await crypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]);
  const publicKey = await crypto.subtle.importKey(
    "jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, algorithm, true, ["verify"]);
  return { privateKey, publicKey };
}

export async function keep(actor, pair, source) {
  const facts = await publicFacts(pair.publicKey);
  const record = { actor, privateKey: pair.privateKey, publicKey: pair.publicKey, source,
                   created: new Date().toISOString(), ...facts };
  await putKey(record);
  return record;
}

export async function sign(privateKey, text) {
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, privateKey,
                                             new TextEncoder().encode(text));
  return base64(signature);
}

export function words() {
  const node = document.getElementById("words");
  return node ? JSON.parse(node.textContent) : {};
}

// The keys of this device as a list (radio buttons to choose one, or remove buttons).
export async function showKeys(container, empty, { choose = false, onRemove = null } = {}) {
  const w = words();
  const keys = await listKeys();
  container.replaceChildren();
  empty.hidden = keys.length > 0;
  keys.sort((a, b) => a.actor.localeCompare(b.actor));
  keys.forEach((record, n) => {
    const row = document.createElement("div");
    row.className = "key";
    const id = `key-${n}`;
    const text = `${record.actor} — ${w.key_id || "key"} ${record.keyId}`;
    if (choose) {
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: "actor", value: record.actor, id,
                             checked: n === 0 });
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = text;
      row.append(input, " ", label);
    } else {
      const span = document.createElement("span");
      span.textContent = `${text} · ${record.fingerprint}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = w.forget || "remove";
      remove.setAttribute("aria-label", `${w.forget || "remove"} ${record.actor}`);
      remove.addEventListener("click", async () => {
        await deleteKey(record.actor);
        if (onRemove) onRemove();
      });
      row.append(span, " ", remove);
    }
    container.append(row);
  });
  return keys;
}
