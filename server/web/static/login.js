// Sign in: sign the server's challenge with a key of this device (xinfang-auth/v1).
import { showKeys, sign, getKey, supported, words } from "./keys.js";

const prefix = document.body.dataset.prefix;
const form = document.getElementById("login");
const status = document.getElementById("login-status");
const w = words();

async function post(path, body) {
  const response = await fetch(prefix + path, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify(body), credentials: "same-origin" });
  let answer = {};
  try { answer = await response.json(); } catch (e) { /* not JSON */ }
  return { ok: response.ok, status: response.status, answer };
}

async function main() {
  if (!supported()) {
    document.getElementById("no-webcrypto").hidden = false;
    form.querySelector("button").disabled = true;
    return;
  }
  const keys = await showKeys(document.getElementById("key-list"),
                              document.getElementById("no-keys"), { choose: true });
  form.querySelector("button").disabled = keys.length === 0;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.querySelector("input[name=actor]:checked");
    if (!chosen) return;
    const actor = chosen.value;
    status.textContent = w.signing;
    try {
      const record = await getKey(actor);
      const challenge = await post("/auth/challenge", { actor });
      if (!challenge.ok) throw new Error(challenge.answer.error || String(challenge.status));
      const { nonce, origin, context } = challenge.answer;
      const message = `${context}\n${origin}\n${actor}\n${nonce}\n`;
      const signature = await sign(record.privateKey, message);
      const session = await post("/auth/session", { actor, nonce, signature });
      if (!session.ok) throw new Error(session.answer.error || String(session.status));
      window.location.assign(form.dataset.next);
    } catch (error) {
      status.textContent = `${w.refused}: ${error.message}. ${w.refused_hint}`;
    }
  });
}

main();
