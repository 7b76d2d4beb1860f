"""The ledger server (issue 12) as a real `xinfang serve` process on a loopback port, on SQLite
and PostgreSQL: writes signed on the person's device (a keystore holding only their key), the
server judging every submission with the write path's own rules, forged submissions refused
with nothing written, sessions, receipts, and the embedded-mode commands through `--server`.

The helpers here (``Served``, ``serve``, ``served``) are shared by the other test_server_*.py
modules.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger import Keystore, LedgerClient, Statement, check_receipt, verify_ledger
from ledger.log.keys import Signer
from ledger.log.statement import format_time
from ledger.storage.store import Store, open_store
from tests.world import ORIGIN, World, build_world, t

XINFANG = Path(sys.executable).with_name("xinfang")
SERVER_FILES = ("log.key", "log.state", "log.pub", "admin.pub")


@dataclass
class Served:
    """A world's ledger behind a running `xinfang serve`; every person's key in its own
    keystore (``keys_of``), the server's keystore holding the log key only."""

    world: World
    root: Path
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    case: str = ""
    keystores: dict[str, Path] = field(default_factory=dict)

    @property
    def ledger_url(self) -> str:
        return self.world.url

    @property
    def server_keys(self) -> Path:
        return self.root / "server-keys"

    def keys_of(self, *actors: str) -> Path:
        """A device keystore holding only these actors' keys (and the public anchors)."""
        name = "+".join(actors)
        if name not in self.keystores:
            path = self.root / "devices" / name
            path.mkdir(parents=True)
            for actor in actors:
                for suffix in (".key", ".pub"):
                    shutil.copy2(self.world.keystore / f"{actor}{suffix}", path)
            for anchor in ("log.pub", "admin.pub"):
                shutil.copy2(self.world.keystore / anchor, path)
            self.keystores[name] = path
        return self.keystores[name]

    def client(self, actor: str, *, keys: Path | None = None) -> LedgerClient:
        return LedgerClient(self.url, Keystore(keys or self.keys_of(actor)), actor=actor)

    def cli(self, actor: str, *args: str, keys: Path | None = None,
            env: dict[str, str] | None = None) -> Result:
        """`xinfang --server URL …` in this process, as ``actor`` on their own device."""
        environment = {"XINFANG_SERVER": self.url, "XINFANG_ACTOR": actor,
                       "XINFANG_KEYSTORE": str(keys or self.keys_of(actor)),
                       "XINFANG_PASSPHRASE": "", **(env or {})}
        return CliRunner().invoke(cli, list(args), env=environment)

    def store(self) -> Store:
        return open_store(self.ledger_url)

    def events(self) -> int:
        with self.store() as store:
            return store.max_position()

    def start(self) -> None:
        self.url, self.proc = serve(self.ledger_url, self.server_keys, self.root)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def serve(ledger_url: str, keystore: Path, root: Path, *extra: str
          ) -> tuple[str, subprocess.Popen[str]]:
    """Start `xinfang serve` on a free loopback port; its URL once it listens."""
    log = open(root / "server.log", "a")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([str(XINFANG), "serve", "--ledger", ledger_url, "--keystore",
                             str(keystore), "--listen", "127.0.0.1:0", *extra],
                            stdout=subprocess.PIPE, stderr=log, text=True,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("XINFANG_")})
    log.close()
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first[0] if first else "")
    if found is None:
        proc.kill()
        raise AssertionError(f"the server did not start: {first} "
                             f"{(root / 'server.log').read_text()[-2000:]}")
    return found.group(1), proc


def split_keys(world: World, root: Path) -> Path:
    """The server's keystore: the log key, its state and the public anchors — nothing else."""
    server = root / "server-keys"
    server.mkdir(parents=True)
    for name in SERVER_FILES:
        shutil.copy2(world.keystore / name, server / name)
    os.remove(world.keystore / "log.key")   # the embedded keystore no longer writes
    return server


def make_served(ledger_url: str, root: Path) -> Served:
    world = build_world(ledger_url, root / "keys")
    case = world.accepted_case()
    world.ledger.close()
    split_keys(world, root)
    served = Served(world, root, case=case)
    served.start()
    return served


@pytest.fixture
def served(ledger_url: str, tmp_path: Path) -> Iterator[Served]:
    """A served ledger on each backend."""
    s = make_served(ledger_url, tmp_path)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def served_sqlite(tmp_path: Path) -> Iterator[Served]:
    """A served ledger on SQLite, for what does not depend on the backend."""
    s = make_served(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path)
    try:
        yield s
    finally:
        s.stop()


def raw(served: Served, actor: str, method: str, path: str, **options: Any) -> httpx.Response:
    """One API request as ``actor`` (signed in through the client), the raw answer."""
    with served.client(actor) as client:
        token = client._token(actor)
    return httpx.request(method, served.url + path, timeout=30,
                         headers={"authorization": f"Bearer {token}"}, **options)


def prepared(served: Served, actor: str, action: str, case: str | None, data: dict[str, Any],
             at: str = "2025-03-06") -> bytes:
    answer = raw(served, actor, "POST", "/v1/prepare", json={"commands": [{
        "action": action, "case": case, "actor": actor, "at": t(at).isoformat(),
        "data": data}]})
    assert answer.status_code == 200, answer.text
    return base64.b64decode(answer.json()["items"][0]["signed"])


def submit(served: Served, actor: str, signed: bytes, signature: bytes) -> httpx.Response:
    return raw(served, actor, "POST", "/v1/submit", json={"events": [{
        "signed": base64.b64encode(signed).decode(),
        "signature": base64.b64encode(signature).decode()}]})


def signer(served: Served, actor: str) -> Signer:
    return Keystore(served.world.keystore).load(actor)


# ---- writing through the server -----------------------------------------------------------------

def test_a_write_signed_on_the_device_lands_with_a_receipt(served: Served) -> None:
    """The officer's keystore holds only her key; the server's holds the log key only. The
    server appends what she signed, sets the recorded time, and answers with a receipt that
    proves the event is in the signed tree."""
    device = served.keys_of("officer-07")
    assert sorted(p.name for p in device.glob("*.key")) == ["officer-07.key"]
    assert sorted(p.name for p in served.server_keys.glob("*.key")) == ["log.key"]
    before = served.events()
    result = served.cli("officer-07", "case", "progress", served.case, "--note", "经服务器记录",
                        "--at", "2025-03-06 10:00", "--format", "json", "--lang", "en")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["position"] > before and document["case"] == served.case
    kept = list((device / "receipts").glob("*.json"))
    assert len(kept) == 1
    receipt = json.loads(kept[0].read_text())
    log_key = (served.world.keystore / "log.pub").read_bytes()
    from ledger import PublicKey

    checked = check_receipt(receipt, log_key=PublicKey.from_pem(log_key).raw, origin=ORIGIN)
    assert checked.receipt.position == document["position"]
    assert checked.receipt.hash == document["hash"]
    with served.store() as store:
        record = store.event_at(served.case, document["seq"])
        assert record is not None
        from ledger import Envelope

        envelope = Envelope.from_bytes(record.state)
        statement = Statement.from_signed_bytes(envelope.signed)
        assert statement.actor == "officer-07" and statement.data["note"] == "经服务器记录"
        assert signer(served, "officer-07").public_key.verify(envelope.signature,
                                                              envelope.signed)
        assert verify_ledger(store, trusted_log_key=PublicKey.from_pem(log_key).raw).ok
    # the receipt check proves it is still included, consistently, against the current tree
    again = served.cli("officer-07", "case", "progress", served.case, "--note", "再报",
                       "--at", "2025-03-07")   # another write: the tree grows past the receipt
    assert again.exit_code == 0, again.output
    check = served.cli("officer-07", "receipts", "check", "--format", "json")
    assert check.exit_code == 0, check.output
    verdict = json.loads(check.stdout)
    assert verdict["ok"] and verdict["checked"] == 2
    forged = json.loads(kept[0].read_text())
    forged["proof"] = forged["proof"][::-1] if len(forged["proof"]) > 1 else [
        base64.b64encode(bytes(32)).decode()]
    kept[0].write_text(json.dumps(forged))
    check = served.cli("officer-07", "receipts", "check", "--format", "json")
    assert check.exit_code == 1 and json.loads(check.stdout)["failed"] == 1


def test_the_server_refuses_a_keystore_with_actor_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    world = build_world(url, tmp_path / "keys")
    world.ledger.close()
    with pytest.raises(AssertionError, match="holds private keys of actors"):
        serve(url, world.keystore, tmp_path)


def test_every_case_action_and_directory_action_through_the_server(served_sqlite: Served) -> None:
    served = served_sqlite
    """The admin's key stays on the admin's device: directory actions are signed there; a
    new officer makes her key on her device and the admin registers its public key."""
    admin = served.keys_of("admin-01")
    officer = served.root / "devices" / "officer-20"
    made = CliRunner().invoke(cli, ["--keystore", str(officer), "key", "new", "--actor",
                                    "officer-20", "--no-passphrase", "--format", "json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert key["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert key["fingerprint"].startswith("SHA256:") and len(key["key"]) == 16
    for name in ("log.pub", "admin.pub"):
        shutil.copy2(served.world.keystore / name, officer)
    added = served.cli("admin-01", "actor", "add", "officer-20", "--name", "周二十",
                       "--unit", "station-03", "--role", "handler", "--public-key",
                       key["public_key_file"], "--as", "admin-01", keys=admin)
    assert added.exit_code == 0, added.output
    assert key["key"] in added.output
    assert not (admin / "officer-20.key").exists()
    assign = served.cli("office-01", "case", "assign", served.case, "--unit", "station-03",
                        "--handler", "officer-20", "--as", "office-01", "--at", "2025-03-05")
    assert assign.exit_code == 0, assign.output
    steps = [
        ("officer-20", ["case", "progress", served.case, "--note", "已约谈"]),
        ("officer-20", ["case", "reply", served.case, "--outcome", "support", "--resolution",
                        "problem_solved", "--served-at", "2025-03-10 10:00", "--text", "已办理"]),
        ("officer-20", ["case", "attest", served.case, "--evidence", "答复书-001"]),
        ("lead-03", ["case", "consent", served.case]),
        ("pet-0001", ["case", "petitioner-sign", served.case, "--form", "key", "--opinion",
                      "satisfied"]),
        ("office-01", ["case", "close", served.case]),
    ]
    for day, (actor, args) in enumerate(steps, start=6):
        result = served.cli(actor, *args, "--as", actor, "--at", f"2025-03-{day:02d} 15:00",
                            keys=officer if actor == "officer-20" else None)
        assert result.exit_code == 0, (actor, args, result.output)
    closure = served.cli("inspector-01", "case", "verify-closure", served.case, "--format",
                         "json")
    assert closure.exit_code == 0, closure.output
    assert json.loads(closure.stdout)["valid"] is True
    rotated = served.root / "rotated.pub"
    rotated.write_bytes(Signer.generate("officer-20").public_key.to_pem())
    rotate = served.cli("admin-01", "actor", "rotate-key", "officer-20", "--public-key",
                        str(rotated), "--as", "admin-01", keys=admin)
    assert rotate.exit_code == 0, rotate.output
    stale = served.cli("officer-20", "case", "list", keys=officer)
    assert stale.exit_code == 2 and "refused" in stale.output   # the old key signs in no more
    with served.store() as store:
        assert verify_ledger(store).ok


def test_import_through_the_server_is_validated_whole_and_idempotent(served_sqlite: Served) -> None:
    served = served_sqlite
    device = served.keys_of("registrar-01", "office-01")
    lines = [{"id": f"line-{n}", "action": "register", "case": f"XF-2025-{100 + n:06d}",
              "actor": "registrar-01", "at": "2025-04-01T09:00:00+08:00",
              "data": {"channel": "letter", "source": "direct", "category": "help",
                       "petitioner": "pet-0001", "summary": f"导入 {n}"}} for n in range(30)]
    lines += [{"id": f"accept-{n}", "action": "accept", "case": f"XF-2025-{100 + n:06d}",
               "actor": "office-01", "at": "2025-04-02T09:00:00+08:00",
               "data": {"decision": "accepted"}} for n in range(30)]
    bad = [*lines, {"id": "bad", "action": "close", "case": "XF-2025-000100",
                    "actor": "office-01", "at": "2025-04-03T09:00:00+08:00", "data": {}}]
    path = served.root / "import.jsonl"
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in bad) + "\n")
    before = served.events()
    refused = served.cli("office-01", "import", str(path), keys=device)
    assert refused.exit_code == 2, refused.output
    assert "import line 61" in refused.output and "nothing was written" in refused.output
    assert served.events() == before
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    dry = served.cli("office-01", "import", str(path), "--dry-run", "--format", "json",
                     keys=device)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["would_write"] == 60 and served.events() == before
    done = served.cli("office-01", "import", str(path), "--batch-size", "25", "--format",
                      "json", keys=device)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["written"] == 60 and summary["skipped"] == 0
    again = served.cli("office-01", "import", str(path), "--format", "json", keys=device)
    assert json.loads(again.stdout)["skipped"] == 60 and served.events() == before + 60
    # one receipt kept per batch (25 + 25 + 10), each proving its batch's checkpoint
    assert len(list((device / "receipts").glob("*.json"))) == 3


# ---- forged submissions ------------------------------------------------------------------------

def test_forged_submissions_are_refused_with_nothing_written(served: Served) -> None:
    case = served.case
    officer = signer(served, "officer-07")
    good = prepared(served, "officer-07", "progress", case, {"note": "真实"})
    before = served.events()

    def refused(response: httpx.Response, status: int, words: str) -> None:
        assert response.status_code == status, response.text
        body = response.json()
        assert words in body["error"] and body["kind"]
        assert served.events() == before

    refused(submit(served, "officer-07", good, bytes(64)), 403, "signature does not verify")
    altered = good.replace("真实".encode(), "篡改".encode())
    refused(submit(served, "officer-07", altered, officer.sign(good)), 403,
            "signature does not verify")
    # another actor's key signing the officer's statement
    refused(submit(served, "officer-07", good, signer(served, "officer-08").sign(good)), 403,
            "signature does not verify")
    # a well-signed statement by an actor without the right (officer-08 is not assigned)
    wrong = Statement.from_signed_bytes(good)
    other = Statement(origin=wrong.origin, stream=case, seq=wrong.seq, prev=wrong.prev,
                      type="progress", at=wrong.at, actor="officer-08",
                      key=signer(served, "officer-08").key_id, data={"note": "越权",
                                                                     "follow_up": False})
    refused(submit(served, "officer-08", other.signed_bytes(),
                   signer(served, "officer-08").sign(other.signed_bytes())), 403,
            "not the handler assigned")
    # the same statement signed for another ledger
    foreign = Statement(**{**_fields(wrong), "origin": "other.example/ledger"})
    refused(submit(served, "officer-07", foreign.signed_bytes(),
                   officer.sign(foreign.signed_bytes())), 400, "another ledger")
    # moved to another case: the signature no longer covers it
    moved = good.replace(case.encode(), b"XF-2025-000999")
    refused(submit(served, "officer-07", moved, officer.sign(good)), 403,
            "signature does not verify")
    # bytes that are not the canonical encoding, though properly signed
    loose = b"xinfang-ledger/v1/event\n" + json.dumps(wrong.to_object(), indent=1).encode()
    refused(submit(served, "officer-07", loose, officer.sign(loose)), 400, "statement")
    # a business time in the future
    future = Statement(**{**_fields(wrong), "at": format_time(t("2199-01-01"))})
    refused(submit(served, "officer-07", future.signed_bytes(),
                   officer.sign(future.signed_bytes())), 400, "future")
    # the honest statement goes in; replaying it adds nothing; a stale one is a conflict
    stale = prepared(served, "officer-07", "progress", case, {"note": "同时准备"})
    written = submit(served, "officer-07", good, officer.sign(good))
    assert written.status_code == 200, written.text
    assert served.events() == before + 1
    replay = submit(served, "officer-07", good, officer.sign(good))
    assert replay.status_code == 200 and replay.json()["receipts"][0]["duplicate"] is True
    before = served.events()
    refused(submit(served, "officer-07", stale, officer.sign(stale)), 409, "head")
    with served.store() as store:
        assert verify_ledger(store).ok


def _fields(statement: Statement) -> dict[str, Any]:
    return {name: getattr(statement, name) for name in
            ("origin", "stream", "seq", "prev", "type", "at", "actor", "key", "data", "cmd",
             "migration")}


def test_a_conflict_is_prepared_and_signed_again(served_sqlite: Served) -> None:
    served = served_sqlite
    """Another write lands between prepare and submit: the server answers 409 and the client
    prepares and signs again, so both writes are recorded, chained in order."""
    seen: list[str] = []
    interfered: list[bool] = []
    with served.client("officer-07") as client:
        real_call = client.call

        def interfering(method: str, path: str, **options: Any) -> Any:
            seen.append(path)
            answer = real_call(method, path, **options)
            if path == "/v1/prepare" and not interfered:
                interfered.append(True)
                with served.client("officer-07") as other:
                    other.execute("progress", served.case, {"note": "抢先"},
                                  as_actor="officer-07", at=t("2025-03-06"))
            return answer

        client.call = interfering  # type: ignore[method-assign]
        receipt = client.execute("progress", served.case, {"note": "后到"},
                                 as_actor="officer-07", at=t("2025-03-06"))
        assert seen.count("/v1/prepare") == 2 and seen.count("/v1/submit") == 2
        # the client wrote the head itself: the next write is one round trip, built on it
        seen.clear()
        client.execute("progress", served.case, {"note": "接着"}, as_actor="officer-07",
                       at=t("2025-03-06"))
        assert seen == ["/v1/submit"]
        # someone else moved the head: the direct submission is refused, prepare takes over
        with served.client("officer-07") as other:
            other.execute("progress", served.case, {"note": "插队"}, as_actor="officer-07",
                          at=t("2025-03-06"))
        seen.clear()
        client.execute("progress", served.case, {"note": "最后"}, as_actor="officer-07",
                       at=t("2025-03-06"))
        assert seen == ["/v1/submit", "/v1/prepare", "/v1/submit"]
    with served.store() as store:
        notes = [Statement.from_signed_bytes(_signed(r.state)).data["note"]
                 for r in store.stream(served.case) if r.type == "progress"]
        assert notes == ["抢先", "后到", "接着", "插队", "最后"] and receipt.seq == 5
        assert verify_ledger(store).ok


def _signed(state: bytes) -> bytes:
    from ledger import Envelope

    return Envelope.from_bytes(state).signed


# ---- sessions -----------------------------------------------------------------------------------

def test_sessions_need_the_actors_valid_key(served_sqlite: Served) -> None:
    served = served_sqlite
    url = served.url
    assert httpx.get(url + "/v1/cases").status_code == 401
    bogus = httpx.get(url + "/v1/cases", headers={"authorization": "Bearer nope"})
    assert bogus.status_code == 401 and bogus.json()["kind"] == "unauthenticated"
    nonce = httpx.post(url + "/v1/auth/challenge", json={"actor": "officer-07"}).json()["nonce"]
    from ledger import auth_message

    forged = signer(served, "officer-08").sign(auth_message(ORIGIN, "officer-07", nonce))
    refused = httpx.post(url + "/v1/auth/session", json={
        "actor": "officer-07", "nonce": nonce, "signature": base64.b64encode(forged).decode()})
    assert refused.status_code == 401
    good = signer(served, "officer-07").sign(auth_message(ORIGIN, "officer-07", nonce))
    again = httpx.post(url + "/v1/auth/session", json={
        "actor": "officer-07", "nonce": nonce, "signature": base64.b64encode(good).decode()})
    assert again.status_code == 401, "a nonce is good for one attempt only"
    # a keyless petitioner (paper signatures) cannot sign in at all
    nonce = httpx.post(url + "/v1/auth/challenge", json={"actor": "pet-0002"}).json()["nonce"]
    anyone = signer(served, "admin-01").sign(auth_message(ORIGIN, "pet-0002", nonce))
    keyless = httpx.post(url + "/v1/auth/session", json={
        "actor": "pet-0002", "nonce": nonce, "signature": base64.b64encode(anyone).decode()})
    assert keyless.status_code == 401
    # a session dies with its key
    with served.client("officer-07") as client:
        assert client.whoami()["actor"] == "officer-07"
        revoke = served.cli("admin-01", "actor", "revoke-key", "officer-07", "--reason",
                            "遗失", "--as", "admin-01")
        assert revoke.exit_code == 0, revoke.output
        token = client._tokens["officer-07"][0]
    gone = httpx.get(url + "/v1/me", headers={"authorization": f"Bearer {token}"})
    assert gone.status_code == 401 and "revoked" in gone.json()["error"]
    cannot = served.cli("officer-07", "case", "progress", served.case, "--note", "吊销后",
                        "--as", "officer-07", "--at", "2025-03-06")
    assert cannot.exit_code == 2 and "error:" in cannot.output


# ---- bad requests -------------------------------------------------------------------------------

def test_bad_and_oversized_requests_get_plain_json_errors(served_sqlite: Served) -> None:
    served = served_sqlite
    url = served.url
    spec = httpx.get(url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/submit" in spec["paths"]
    assert "SubmitRequest" in spec["components"]["schemas"]
    info = httpx.get(url + "/v1/info").json()
    assert info["origin"] == ORIGIN and info["limits"]["submit"] > 0
    missing = httpx.get(url + "/v1/nothing")
    assert missing.status_code == 404 and "no such endpoint" in missing.json()["error"]
    not_json = httpx.post(url + "/v1/auth/challenge", content=b"{nope")
    assert not_json.status_code == 400 and not_json.json()["error"] == \
        "the request body is not JSON"
    extra = httpx.post(url + "/v1/auth/challenge", json={"actor": "x", "admin": True})
    assert extra.status_code == 400 and "admin" in extra.json()["error"]
    huge = httpx.post(url + "/v1/auth/challenge", content=b"x" * (1 << 20),
                      headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["kind"] == "too_large"
    before = served.events()
    garbage = raw(served, "officer-07", "POST", "/v1/submit", json={"events": [
        {"signed": "!!notbase64", "signature": "AA=="}]})
    assert garbage.status_code == 400 and "base64" in garbage.json()["error"]
    empty = raw(served, "officer-07", "POST", "/v1/prepare", json={"commands": []})
    assert empty.status_code == 400
    bad_time = raw(served, "officer-07", "POST", "/v1/prepare", json={"commands": [{
        "action": "progress", "case": served.case, "actor": "officer-07", "at": "yesterday",
        "data": {"note": "x"}}]})
    assert bad_time.status_code == 400 and bad_time.json()["index"] == 0
    paging = raw(served, "inspector-01", "GET", "/v1/log/events", params={"limit": "huge"})
    assert paging.status_code == 400
    assert served.events() == before


def test_a_client_that_disconnects_leaves_a_whole_write_or_none(served_sqlite: Served) -> None:
    import socket
    import time

    served = served_sqlite
    host, port = served.url.removeprefix("http://").split(":")
    with served.client("officer-07") as client:
        token = client._token("officer-07")
    signed = prepared(served, "officer-07", "progress", served.case, {"note": "断线"})
    body = json.dumps({"events": [{"signed": base64.b64encode(signed).decode(),
                                   "signature": base64.b64encode(
                                       signer(served, "officer-07").sign(signed)).decode()}]})
    head = (f"POST /v1/submit HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    before = served.events()
    with socket.create_connection((host, int(port))) as sock:   # half a body, then gone
        sock.sendall((head + body[: len(body) // 2]).encode())
    with socket.create_connection((host, int(port))) as sock:   # all of it, then gone
        sock.sendall((head + body).encode())
    deadline = time.monotonic() + 10
    while served.events() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.events() == before + 1   # the whole request, once
    again = submit(served, "officer-07", signed, signer(served, "officer-07").sign(signed))
    assert again.status_code == 200 and again.json()["receipts"][0]["duplicate"] is True
    with served.store() as store:
        assert verify_ledger(store).ok


def test_an_unreachable_server_is_an_environment_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    Keystore(keys).create("officer-07")
    result = CliRunner().invoke(cli, ["--server", "http://127.0.0.1:9", "--keystore", str(keys),
                                      "case", "progress", "XF-2025-000001", "--note", "x",
                                      "--as", "officer-07"])
    assert result.exit_code == 3 and "cannot reach the ledger server" in result.output


def test_server_option_after_the_subcommand(served_sqlite: Served) -> None:
    served = served_sqlite
    """`xinfang verify --server URL …` as the issue writes it (the global option hoisted)."""
    keys = served.keys_of("inspector-01")
    result = CliRunner().invoke(cli, [
        "--keystore", str(keys), "verify", "--server", served.url, "--log-key",
        str(keys / "log.pub"), "--admin-key", str(keys / "admin.pub"), "--format", "json"],
        env={"XINFANG_ACTOR": "inspector-01"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_the_api_docs_client_writes_and_checks_its_receipt(served_sqlite: Served) -> None:
    """docs/api.md's few-line client (httpx, cryptography, stdlib) against a real server."""
    served = served_sqlite
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text("utf-8")
    namespace: dict[str, Any] = {}
    exec(text.split("```python\n")[-1].split("```")[0], namespace)  # noqa: S102
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from ledger import PublicKey

    key = load_pem_private_key((served.world.keystore / "officer-07.key").read_bytes(), None)
    token = namespace["sign_in"](served.url, "officer-07", key)
    command = {"action": "progress", "case": served.case, "actor": "officer-07",
               "at": t("2025-03-06").isoformat(), "data": {"note": "外部系统提交"},
               "cmd": "office-system-4711"}
    before = served.events()
    receipt = namespace["write"](served.url, token, key, command)
    log_key = PublicKey.from_pem((served.world.keystore / "log.pub").read_bytes()).raw
    assert namespace["receipt_holds"](receipt, ORIGIN, log_key)
    assert not namespace["receipt_holds"]({**receipt, "leaf_index": receipt["leaf_index"] - 1},
                                          ORIGIN, log_key)
    again = namespace["write"](served.url, token, key, command)   # the same command id
    assert again["duplicate"] is True and again["position"] == receipt["position"]
    assert served.events() == before + 1


def test_the_server_has_its_checkpoints_cosigned_by_witnesses(tmp_path: Path) -> None:
    """`serve --witness URL=WITNESS.pub`: after writes the server submits its checkpoint to
    the witness (batched, in the background) and keeps the cosignature with it."""
    import time

    from tests.test_witness_cli import _start

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    world = build_world(url, tmp_path / "keys")
    case = world.accepted_case()
    world.ledger.close()
    split_keys(world, tmp_path)
    witness = _start(tmp_path / "jjjc", "jjjc.test.example/witness", "jjjc",
                     world.keystore / "log.pub")
    served = Served(world, tmp_path, case=case)
    try:
        served.url, served.proc = serve(url, served.server_keys, tmp_path, "--witness",
                                        witness.option(), "--quorum", "1")
        with served.client("officer-07") as client:
            receipt = client.execute("progress", case, {"note": "见证"}, as_actor="officer-07",
                                     at=t("2025-03-06"))
            deadline = time.monotonic() + 20
            note = client.checkpoint()
            while "jjjc.test.example/witness" not in note and time.monotonic() < deadline:
                time.sleep(0.2)
                note = client.checkpoint()
        assert "\u2014 jjjc.test.example/witness " in note
        assert f"\n{receipt.position}\n" in note or receipt.position <= int(note.split("\n")[1])
        keys = served.keys_of("inspector-01")
        verified = served.cli("inspector-01", "verify", "--witness", str(witness.pub),
                              "--quorum", "1", "--format", "json")
        assert verified.exit_code == 0, verified.output
        assert json.loads(verified.stdout)["witnessed"]["cosigners"], keys
    finally:
        served.stop()
        witness.proc.terminate()
        witness.proc.wait(10)
