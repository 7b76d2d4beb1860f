"""The ledger server (``xinfang serve``): one process alone appends and holds the log key; every
person signs on their own device (docs/api.md, docs/operations.md).

:class:`LedgerServer` is the whole service without HTTP — sign-in, prepare, submit, reads
authorized by :mod:`server.access` — and :func:`create_ledger_app` wraps it in a Starlette
(ASGI) app served by uvicorn, the project's one HTTP framework (README, dependencies).

Threads: uvicorn serves requests on one event loop and runs each handler in Starlette's
thread pool. Writes (prepare, submit) take one lock around the ledger and its checked view, so
the server itself never races; reads take another around their own store and view, and
sessions a third, so a long report does not hold up writes or sign-ins. Each submission is one
database transaction with its signed checkpoint: a client that disconnects, or a server killed
mid-write, leaves whole submissions or nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger import (
    AUTH_CONTEXT,
    ConflictError,
    Envelope,
    EnvironmentProblem,
    ForbiddenError,
    InputError,
    Keystore,
    KeyUnavailableError,
    Ledger,
    LedgerError,
    LedgerView,
    PublicKey,
    StorageError,
    TransitionError,
    VerificationError,
    actor_keys,
    auth_message,
    b64,
    bundle_bytes,
    case_history,
    closed_cases,
    closure_record,
    closure_report,
    command_from_document,
    consistency_proof_between,
    cosign_latest,
    cosigned_note,
    directory_document,
    export_bundle,
    inclusion_proof_at,
    iso,
    open_store,
    prepare_commands,
    receipt_documents,
    submit_signed,
    unb64,
)
from projections import accountability_report, case_list, organization, statistics, supervision
from schemas import plain_errors
from server import api
from server.access import AccessIndex, Reader, reader_of

log = logging.getLogger("xinfang.server")

SESSION_SECONDS = 900
NONCE_SECONDS = 60
MAX_NONCES = 10000
MAX_SESSIONS = 10000
BODY_SECONDS = 60.0
VERSION = "1"


class Problem(Exception):
    """An HTTP refusal: status, the plain message, a hint and the error kind."""

    def __init__(self, status: int, message: str, hint: str | None = None, *,
                 kind: str = "input", index: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.hint, self.kind, self.index = (status, message, hint,
                                                                       kind, index)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "hint": self.hint, "kind": self.kind}
        if self.index is not None:
            out["index"] = self.index
        return out


def problem_of(exc: LedgerError) -> Problem:
    """The HTTP refusal of a library error (its kind keeps the CLI's exit code)."""
    index = getattr(exc, "index", None)
    for cls, status, kind in ((ConflictError, 409, "conflict"),
                              (ForbiddenError, 403, "forbidden"),
                              (TransitionError, 422, "transition"),
                              (InputError, 400, "input"),
                              (VerificationError, 409, "verification"),
                              (KeyUnavailableError, 503, "key"),
                              (StorageError, 503, "storage"),
                              (EnvironmentProblem, 503, "environment")):
        if isinstance(exc, cls):
            return Problem(status, exc.message, exc.hint, kind=kind,
                           index=index if type(index) is int else None)
    return Problem(500, exc.message, exc.hint, kind="environment")


def refuse_actor_keys(keystore: Keystore) -> None:
    """The server's keystore holds the log key and no actor's private key."""
    found = actor_keys(keystore) + sorted(p.name for p in keystore.path.glob("*.retired.key"))
    if found:
        raise EnvironmentProblem(
            f"the server's keystore {keystore.path} holds private keys of actors: "
            f"{', '.join(found[:5])}{' …' if len(found) > 5 else ''}; refusing to start",
            "The server keeps the log key only (log.key, log.state, log.pub, admin.pub); every "
            "person keeps their own key on their device (docs/operations.md).")
    if not keystore.has("log"):
        raise KeyUnavailableError(f"the server's keystore {keystore.path} holds no log key",
                                  "Copy log.key and log.state from the keystore `xinfang "
                                  "init` made (docs/operations.md).")


@dataclass(frozen=True)
class Session:
    actor: str
    key: str
    expires: float


class LedgerServer:
    """The ledger server's logic: sessions, writes, reads (every method is thread-safe)."""

    def __init__(self, ledger_url: str, keystore_dir: str | Path, *,
                 passphrase: str | None = None, session_seconds: int = SESSION_SECONDS,
                 witnesses: Any = None, clock: Callable[[], float] = time.time) -> None:
        keystore = Keystore(keystore_dir, passphrase)
        refuse_actor_keys(keystore)
        self.ledger = Ledger.open(ledger_url, keystore.path, passphrase)
        try:
            self.ledger.checkpoint()   # the log key and its state prove the stored tree now
            self.origin = self.ledger.origin
            self.sign_heads = self.ledger.note_signer()   # the export's stream-heads note
            log_key, admin_key = self.ledger.view.log_key, self.ledger.view.admin_key
            self.reads = open_store(ledger_url)
            self.read_view = LedgerView(self.reads, log_key=log_key, admin_key=admin_key)
            self.auth_store = open_store(ledger_url)
            self.auth_view = LedgerView(self.auth_store, log_key=log_key, admin_key=admin_key)
        except BaseException:
            self.ledger.close()
            raise
        self.access = AccessIndex(self.reads)
        self.session_seconds = session_seconds
        self.clock = clock
        self.write_lock = threading.Lock()
        self.read_lock = threading.Lock()
        self.auth_lock = threading.Lock()
        self.nonces: dict[str, tuple[str, float]] = {}
        self.sessions: dict[str, Session] = {}
        self.cosigner = _Cosigner(ledger_url, witnesses) if witnesses is not None else None

    def close(self) -> None:
        if self.cosigner is not None:
            self.cosigner.stop()
        for closing in (self.ledger.close, self.reads.close, self.auth_store.close):
            closing()

    # ---- who is asking ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        view = self.ledger.view
        return {"server": "xinfang-ledger", "version": VERSION, "origin": self.origin,
                "log_key": view.log_key.hex() if view.log_key else None,
                "admin_key": view.admin_key.hex() if view.admin_key else None,
                "auth": {"context": AUTH_CONTEXT, "scheme": "bearer"},
                "limits": {"prepare": api.MAX_PREPARE, "submit": api.MAX_SUBMIT,
                           "body_bytes": api.MAX_BODY_BYTES, "page": api.MAX_PAGE,
                           "session_seconds": self.session_seconds}}

    def challenge(self, request: api.ChallengeRequest) -> dict[str, Any]:
        now = self.clock()
        with self.auth_lock:
            if len(self.nonces) >= MAX_NONCES:
                self.nonces = {n: v for n, v in self.nonces.items() if v[1] > now}
                if len(self.nonces) >= MAX_NONCES:
                    raise Problem(503, "too many sign-ins at once", "Try again in a minute.",
                                  kind="environment")
            nonce = secrets.token_urlsafe(32)
            self.nonces[nonce] = (request.actor, now + NONCE_SECONDS)
        return {"nonce": nonce, "origin": self.origin, "expires_in": NONCE_SECONDS}

    def open_session(self, request: api.SessionRequest) -> dict[str, Any]:
        now = self.clock()
        refused = Problem(401, f"sign-in as {request.actor} refused: the nonce is unknown or "
                          "used, or the signature is not by the actor's valid registered key",
                          "Ask for a new challenge and sign it with your current key.",
                          kind="unauthenticated")
        with self.auth_lock:
            held = self.nonces.pop(request.nonce, None)
            if held is None or held[0] != request.actor or held[1] < now:
                raise refused
            directory = self.auth_view.directory()
            actor = directory.actor(request.actor)
            if actor is None or actor.key is None or actor.keyless:
                raise refused
            try:
                signature = unb64(request.signature, "signature")
            except InputError:
                raise refused from None
            message = auth_message(self.origin, request.actor, request.nonce)
            if not PublicKey(directory.keys[actor.key].public).verify(signature, message):
                raise refused
            if len(self.sessions) >= MAX_SESSIONS:
                self.sessions = {t: s for t, s in self.sessions.items() if s.expires > now}
            token = secrets.token_urlsafe(32)
            self.sessions[token] = Session(actor.actor, actor.key, now + self.session_seconds)
            reader = reader_of(directory, actor.actor)
        assert reader is not None
        with self.read_lock:
            self.access.refresh()
            may_log = self.access.may_read_log(reader)
        return {"token": token, "expires_in": self.session_seconds, "actor": actor.actor,
                "scope": reader.scope, "log": may_log}

    def authenticate(self, header: str | None) -> Reader:
        """The reader a request's bearer token names (401 unless a live session whose key is
        still the actor's valid registered key)."""
        if not header or not header.startswith("Bearer "):
            raise Problem(401, "this request needs a session", "Sign in: POST "
                          "/v1/auth/challenge, then /v1/auth/session (docs/api.md).",
                          kind="unauthenticated")
        token = header[len("Bearer "):].strip()
        now = self.clock()
        with self.auth_lock:
            session = self.sessions.get(token)
            if session is None or session.expires < now:
                self.sessions.pop(token, None)
                raise Problem(401, "the session is unknown or has expired", "Sign in again.",
                              kind="unauthenticated")
            directory = self.auth_view.directory()
            actor = directory.actor(session.actor)
            if actor is None or actor.key != session.key:
                self.sessions.pop(token, None)
                raise Problem(401, f"the key {session.actor} signed in with was revoked or "
                              "rotated", "Sign in again with the current key.",
                              kind="unauthenticated")
            reader = reader_of(directory, session.actor)
        assert reader is not None
        return reader

    def me(self, reader: Reader) -> dict[str, Any]:
        with self.read_lock:
            self.access.refresh()
            may_log = self.access.may_read_log(reader)
        return {"actor": reader.actor, "roles": sorted(reader.roles), "unit": reader.unit,
                "scope": reader.scope, "log": may_log}

    # ---- writes -----------------------------------------------------------------------------

    def prepare(self, reader: Reader, request: api.PrepareRequest) -> dict[str, Any]:
        commands, keys = [], {}
        for index, doc in enumerate(request.commands):
            try:
                command, pem = command_from_document(doc.model_dump())
            except LedgerError as exc:
                exc.index = index  # type: ignore[attr-defined]
                raise
            commands.append(command)
            if pem is not None:
                keys[index] = pem
        if request.lines is not None and len(request.lines) != len(commands):
            raise Problem(400, "lines must give one line number per command")
        with self.write_lock:
            prepared = prepare_commands(self.ledger, commands, public_keys=keys,
                                        lines=request.lines)
            if request.dry_run:
                return prepared.summary()
            duplicates = {item.index: item.recorded_at_position for item in prepared.items
                          if item.recorded_at_position is not None}
            receipts = receipt_documents(self.ledger.store, [
                self.ledger._receipt_for_position(position, duplicate=True)
                for position in duplicates.values()],
                proofs="all" if request.receipts == "all" else "none") if duplicates else []
        found = dict(zip(duplicates, receipts, strict=True))
        return {"items": [{"index": item.index, "duplicate": found[item.index]}
                          if item.index in found else
                          {"index": item.index, "signed": b64(item.signed or b"")}
                          for item in prepared.items]}

    def submit(self, reader: Reader, request: api.SubmitRequest) -> dict[str, Any]:
        events = []
        for index, event in enumerate(request.events):
            try:
                events.append((unb64(event.signed, "signed"),
                               unb64(event.signature, "signature")))
            except InputError as exc:
                raise Problem(400, exc.message, index=index) from None
        with self.write_lock:
            receipts = submit_signed(self.ledger, events)
            documents = receipt_documents(self.ledger.store, receipts, proofs=request.receipts)
        if self.cosigner is not None and any(not r.duplicate for r in receipts):
            self.cosigner.poke()
        return {"receipts": documents}

    # ---- the log: checkpoints, proofs, raw rows ---------------------------------------------

    def checkpoint(self, reader: Reader) -> dict[str, Any]:
        with self.read_lock:
            latest = self.reads.latest_checkpoint()
            if latest is None:
                raise Problem(503, "the ledger has no signed checkpoint", kind="environment")
            note = cosigned_note(self.reads, latest.note)
        return {"note": note, "size": latest.size, "root": latest.root.hex()}

    def inclusion(self, reader: Reader, index: int, size: int) -> dict[str, Any]:
        with self.read_lock:
            self._within_checkpoint(size)
            return {"index": index, "size": size,
                    "proof": [b64(p) for p in inclusion_proof_at(self.reads, index, size)]}

    def consistency(self, reader: Reader, old: int, new: int) -> dict[str, Any]:
        with self.read_lock:
            self._within_checkpoint(new)
            return {"from": old, "to": new,
                    "proof": [b64(p) for p in consistency_proof_between(self.reads, old, new)]}

    def _within_checkpoint(self, size: int) -> None:
        latest = self.reads.latest_checkpoint()
        if latest is None or size > latest.size:
            raise Problem(400, f"no signed checkpoint covers a tree of size {size}",
                          "Ask for sizes up to the latest checkpoint's.")

    def _log_reader(self, reader: Reader) -> None:
        self.access.refresh()
        if not self.access.may_read_log(reader):
            raise Problem(403, f"{reader.actor} may not read the raw log: it carries every "
                          "case and every identity", "The raw log is for readers who see "
                          "every case (inspectors, the petition office, leaders); use "
                          "`case list`, `case history` or `export` for your cases.",
                          kind="forbidden")

    def log_head(self, reader: Reader) -> dict[str, Any]:
        with self.read_lock:
            self._log_reader(reader)
            latest = self.reads.latest_checkpoint()
            size = latest.size if latest is not None else 0
            through = self.reads.position_of_leaf(size - 1) if size else 0
        return {"size": size, "through": through or 0,
                "note": latest.note if latest is not None else None}

    def log_events(self, reader: Reader, after: int, through: int, limit: int) -> dict[str, Any]:
        with self.read_lock:
            self._log_reader(reader)
            rows = next(self.reads.iter_rows(batch=limit, after=after), [])
        return {"events": [{"position": p, "stream": s, "seq": q, "type": t, "state": b64(x)}
                           for p, s, q, t, x in rows if p <= through]}

    def log_leaves(self, reader: Reader, after: int, below: int, limit: int) -> dict[str, Any]:
        with self.read_lock:
            self._log_reader(reader)
            leaves: list[list[Any]] = []
            for idx, position, digest in self.reads.iter_leaves(batch=limit, after=after):
                if idx >= below or len(leaves) >= limit:
                    break
                leaves.append([idx, position, b64(digest)])
        return {"leaves": leaves}

    def log_checkpoints(self, reader: Reader, after: int, through: int,
                        limit: int) -> dict[str, Any]:
        with self.read_lock:
            self._log_reader(reader)
            out: list[dict[str, Any]] = []
            for checkpoint in self.reads.iter_checkpoints(after=after):
                if checkpoint.size > through or len(out) >= limit:
                    break
                out.append({"size": checkpoint.size, "root": b64(checkpoint.root),
                            "note": checkpoint.note, "frontier": b64(checkpoint.frontier)})
        return {"checkpoints": out}

    def log_cosignatures(self, reader: Reader) -> dict[str, Any]:
        with self.read_lock:
            self._log_reader(reader)
            rows = self.reads.cosignatures()
        return {"cosignatures": [list(row) for row in rows[-10000:]]}

    # ---- reads ------------------------------------------------------------------------------

    def directory(self, reader: Reader) -> dict[str, Any]:
        with self.read_lock:
            directory = self.read_view.directory()
            staff = reader.roles - {"petitioner"}

            def show(actor: Any) -> bool:
                return bool(staff) or actor.actor == reader.actor or \
                    "petitioner" not in actor.roles

            return directory_document(directory, show)

    def event(self, reader: Reader, stream: str, seq: int) -> dict[str, Any]:
        if not 1 <= seq <= 2**53 or len(stream) > api.ID:
            raise Problem(404, f"no event {stream[:64]}#{seq}", kind="not_found")
        with self.read_lock:
            self.access.refresh()
            if stream != "directory" and not self.access.may_see(reader, stream):
                raise self._not_yours(stream)
            record = self.reads.event_at(stream, seq)
            if record is None:
                raise Problem(404, f"no event {stream}#{seq}", kind="not_found")
            digest = _hash_of(record.state)
        return {"stream": stream, "seq": seq, "position": record.position, "hash": digest}

    def _not_yours(self, case: str) -> Problem:
        return Problem(403, f"{case} is not a case you may read",
                       "Readers see their jurisdiction, their units' or their own cases.",
                       kind="forbidden")

    def _names(self) -> tuple[dict[str, str], dict[str, str]]:
        directory = self.read_view.directory()
        return ({a.actor: a.name for a in directory.actors.values()},
                {u.unit: u.name for u in directory.units.values()})

    def _redacted(self, reader: Reader, case: str, document: Any,
                  names: dict[str, str]) -> Any:
        return self.access.redact(reader, case, document, names)

    def cases(self, reader: Reader, query: dict[str, str]) -> dict[str, Any]:
        options = _case_list_options(query)
        with self.read_lock:
            self.access.refresh()
            report = case_list(self.reads, options.pop("as_of"), **options)
            names, _ = self._names()
            report["cases"] = [self._redacted(reader, row["case"], row, names)
                               for row in report["cases"]
                               if self.access.may_see(reader, row["case"])]
        return report

    def history(self, reader: Reader, case: str) -> dict[str, Any]:
        _case_number(case)
        with self.read_lock:
            self.access.refresh()
            if not self.access.may_see(reader, case):
                raise self._not_yours(case)
            history = case_history(self.read_view, case)
            names, units = self._names()
            document = history.to_json()
            shown = {e["actor"] for e in document["events"]} | {
                str(e["data"].get(k)) for e in document["events"]
                for k in ("handler", "leader", "petitioner", "actor") if e["data"].get(k)}
            document["names"] = {a: names[a] for a in sorted(shown) if a in names}
            document["units"] = units
            return self._redacted(reader, case, document, names)

    def closure(self, reader: Reader, case: str) -> dict[str, Any]:
        _case_number(case)
        with self.read_lock:
            self.access.refresh()
            if not self.access.may_see(reader, case):
                raise self._not_yours(case)
            names, _ = self._names()
            return self._redacted(reader, case, closure_record(self.reads, case).to_json(),
                                  names)

    def _everything(self, reader: Reader, report: str) -> None:
        if not reader.everything:
            raise Problem(403, f"the {report} report covers the whole ledger, which "
                          f"{reader.actor} may not read", "Ask someone whose jurisdiction is "
                          "the whole ledger, or use `case list` for your cases.",
                          kind="forbidden")

    def report(self, reader: Reader, name: str, query: dict[str, str]) -> dict[str, Any]:
        as_of = _day(query.get("as_of"), "as_of", end=True)
        with self.read_lock:
            self.access.refresh()
            names, _ = self._names()
            if name == "statistics":
                self._everything(reader, name)
                start, end = _day(query.get("from"), "from"), _day(query.get("to"), "to")
                if start is None or end is None:
                    raise Problem(400, "the statistics need from and to (YYYY-MM-DD)")
                document: Any = statistics(self.reads, start, end, as_of,
                                           compare=query.get("compare", "previous"))
            elif name == "supervision":
                if not (reader.everything or reader.subtree):
                    self._everything(reader, name)
                document = supervision(self.reads, as_of,
                                       date_from=_day(query.get("from"), "from"),
                                       date_to=_day(query.get("to"), "to"))
                if not reader.everything:
                    document["rows"] = [r for r in document["rows"]
                                        if self.access.may_see(reader, r["case"])]
                    document["by_unit"] = {u: v for u, v in document["by_unit"].items()
                                           if u in reader.subtree}
            elif name == "accountability":
                self._everything(reader, name)
                document = accountability_report(
                    self.reads, as_of, unit=query.get("unit") or None,
                    integrity=query.get("integrity", "true") != "false")
            elif name == "closures":
                chosen = [r for r in closure_report(self.reads)
                          if self.access.may_see(reader, r.case)]
                document = {"cases": [r.to_json() for r in chosen]}
            else:
                raise Problem(404, f"no report {name!r}", kind="not_found")
            document = self._redact_cases(reader, document, names)
            org = organization(self.reads)
        return {"report": document, "organization": (org or {}).get("name")}

    def _redact_cases(self, reader: Reader, document: Any, names: dict[str, str]) -> Any:
        for key in ("rows", "cases"):
            rows = document.get(key) if isinstance(document, dict) else None
            if isinstance(rows, list):
                document[key] = [self._redacted(reader, row["case"], row, names)
                                 if isinstance(row, dict) and "case" in row else row
                                 for row in rows]
        return document

    def export(self, reader: Reader, request: api.ExportRequest) -> bytes:
        with self.read_lock:
            self.access.refresh()
            chosen = list(request.cases)
            if request.all_closed:
                chosen += [c for c in closed_cases(self.reads) if self.access.may_see(reader, c)]
            if not chosen:
                raise Problem(400, "no case to export", "Name one or more cases, or use "
                              "--all-closed.")
            for case in chosen:
                if not self.access.may_see(reader, case):
                    raise self._not_yours(case)
            # The log key attests stream heads only for streams whose every event the checked
            # view passes (as the embedded `export` does).
            view = LedgerView(self.reads, log_key=self.read_view.log_key,
                              admin_key=self.read_view.admin_key)
            intact = all(stream.first_failure is None for stream in
                         (view.directory_stream(), *(view.stream(c) for c in chosen)))
            bundle = export_bundle(self.reads, chosen,
                                   sign_heads=self.sign_heads if intact else None)
            for case in [*bundle["cases"], *bundle.get("referenced_cases", [])]:
                if not self.access.may_see(reader, case) or \
                        self.access.hides_petitioner(reader, case):
                    raise Problem(403, f"a bundle of {case} would show its petitioner, whom "
                                  "the law hides from your unit (信访工作条例 Art. 30)",
                                  kind="forbidden")
        return bundle_bytes(bundle)


class _Cosigner:
    """Submits the latest checkpoint to the witnesses after writes (batched: one round per
    burst of writes), keeping their cosignatures in the ledger (``xf_cosignatures``)."""

    def __init__(self, ledger_url: str, witnesses: Any) -> None:
        self.policy = witnesses
        self.store = open_store(ledger_url)
        self.wake = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="xinfang-cosign", daemon=True)
        self.thread.start()

    def poke(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        self.thread.join(10)
        self.store.close()

    def _run(self) -> None:
        while not self.stopping:
            self.wake.wait(30)
            self.wake.clear()
            if self.stopping:
                return
            time.sleep(0.2)   # let a burst of writes finish first
            try:
                latest = self.store.latest_checkpoint()
                if latest is None:
                    continue
                outcome = cosign_latest(self.store, latest.note, self.policy.witnesses,
                                        self.policy.quorum)
                for index, error in sorted(outcome.result.errors.items()):
                    log.warning("witness %s: %s", self.policy.label(index), error.message)
            except LedgerError as exc:
                log.warning("cosigning failed: %s", exc.message)


def _case_number(case: str) -> None:
    if not re.fullmatch(r"XF-\d{4}-\d{6}", case):
        raise Problem(400, f"invalid case number {case[:64]!r}",
                      "Case numbers look like XF-2025-000001.")


def _hash_of(state: bytes) -> str:
    try:
        return Envelope.from_bytes(state).hash
    except ValueError:
        return hashlib.sha256(state).hexdigest()


def _day(value: str | None, name: str, *, end: bool = False) -> date | None:
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(400, f"{name} {value[:40]!r} is not a date",
                      "Use YYYY-MM-DD (a business date in Asia/Shanghai).") from None


_CASE_FILTERS = ("petitioner", "unit", "handler", "status", "category", "trigger")


def _case_list_options(query: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {name: query.get(name) or None for name in _CASE_FILTERS}
    options.update(overdue=query.get("overdue") == "true",
                   supervised=query.get("supervised") == "true",
                   date_from=_day(query.get("from"), "from"), date_to=_day(query.get("to"), "to"),
                   as_of=_day(query.get("as_of"), "as_of"))
    return options


# ---- HTTP ---------------------------------------------------------------------------------------

def _encode(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, default=iso).encode("utf-8")


def _json(document: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    return Response(_encode(document), status_code=status, media_type="application/json")


async def _body(request: Any, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"request body larger than {limit} bytes",
                      "Send fewer commands per request.", kind="too_large")
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise Problem(413, f"request body larger than {limit} bytes",
                                  "Send fewer commands per request.", kind="too_large")
    except TimeoutError:
        raise Problem(408, "the request body did not arrive in time", kind="input") from None
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "the request body is not JSON") from None


def _int(query: Any, name: str, default: int | None = None, *, low: int = -(2**63),
         high: int = 2**63 - 1) -> int:
    value = query.get(name)
    if value is None:
        if default is None:
            raise Problem(400, f"the query parameter {name} is required")
        return default
    try:
        number = int(value)
        if not low <= number <= high:
            raise ValueError
    except ValueError:
        raise Problem(400, f"the query parameter {name}={value[:40]!r} is not an integer "
                      f"in {low}..{high}") from None
    return number


def _validation(exc: ValidationError) -> Problem:
    parts = []
    for loc, sentence in plain_errors(exc)[:3]:
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {sentence}" if where else sentence)
    return Problem(400, "invalid request: " + "; ".join(parts or ["malformed"]),
                   "See docs/api.md or /openapi.json for the request's shape.")


#: (method, path, summary, request model, answer model, signed in?, query parameters)
ROUTES: list[tuple[str, str, str, str | None, str | None, bool, list[str]]] = [
    ("GET", "/v1/info", "The ledger's origin, log key and the server's limits", None, None,
     False, []),
    ("POST", "/v1/auth/challenge", "A nonce to sign for signing in", "ChallengeRequest",
     "ChallengeAnswer", False, []),
    ("POST", "/v1/auth/session", "Sign in with the signed nonce: a session token",
     "SessionRequest", "SessionAnswer", False, []),
    ("GET", "/v1/me", "The signed-in reader and what they may read", None, None, True, []),
    ("POST", "/v1/prepare", "Commands → the exact statement bytes to sign", "PrepareRequest",
     "PrepareAnswer", True, []),
    ("POST", "/v1/submit", "Signed statements → appended, with receipts", "SubmitRequest",
     "SubmitAnswer", True, []),
    ("GET", "/v1/directory", "Units, actors, roles and keys", None, None, True, []),
    ("GET", "/v1/events/{stream}/{seq}", "Position and hash of one event", None, None, True,
     []),
    ("GET", "/v1/checkpoint", "The latest signed checkpoint with its cosignatures", None, None,
     True, []),
    ("GET", "/v1/proofs/inclusion", "RFC 9162 inclusion proof of a leaf", None, "Proof", True,
     ["index", "size"]),
    ("GET", "/v1/proofs/consistency", "RFC 9162 consistency proof between tree sizes", None,
     "Proof", True, ["from", "to"]),
    ("GET", "/v1/cases", "Case list (the reader's cases only)", None, None, True,
     ["petitioner", "unit", "handler", "status", "overdue", "category", "from", "to",
      "supervised", "trigger", "as_of"]),
    ("GET", "/v1/cases/{case}/history", "A case's audit trail as the server judged it", None,
     None, True, []),
    ("GET", "/v1/cases/{case}/closure", "A case's closure record (三签)", None, None, True, []),
    ("GET", "/v1/reports/{name}", "statistics · supervision · accountability · closures", None,
     None, True, ["from", "to", "as_of", "compare", "unit", "integrity"]),
    ("POST", "/v1/export", "An offline bundle of cases (docs/bundle-format.md)",
     "ExportRequest", None, True, []),
    ("GET", "/v1/log/head", "The raw log: the latest checkpoint's size and last position",
     None, None, True, []),
    ("GET", "/v1/log/events", "The raw log: stored event rows by position", None, None, True,
     ["after", "through", "limit"]),
    ("GET", "/v1/log/leaves", "The raw log: Merkle leaves by index", None, None, True,
     ["after", "below", "limit"]),
    ("GET", "/v1/log/checkpoints", "The raw log: stored checkpoints by size", None, None, True,
     ["after", "through", "limit"]),
    ("GET", "/v1/log/cosignatures", "The raw log: witness cosignatures", None, None, True, []),
]


def create_ledger_app(server: LedgerServer) -> Any:
    """The ledger server as a Starlette app (the routes of :data:`ROUTES`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.routing import Route

    spec = api.openapi(ROUTES, VERSION)

    def endpoint(handler: Callable[..., Any], *, auth: bool = True,
                 model: type[api.Model] | None = None, limit: int = api.MAX_SMALL_BODY,
                 raw: bool = False) -> Callable[[Request], Any]:
        def work(header: str | None, body: Any, request: Request) -> tuple[Any, float]:
            """Everything but the body's arrival, in one hop to a worker thread."""
            reader = server.authenticate(header) if auth else None
            parsed = model.model_validate(body) if model is not None else None
            started = time.perf_counter()
            result = handler(reader, request, parsed)
            elapsed = (time.perf_counter() - started) * 1000
            return (result if raw else _encode(result)), elapsed

        async def serve(request: Request) -> Any:
            from starlette.responses import Response

            try:
                body = await _body(request, limit) if model is not None else None
                content, elapsed = await run_in_threadpool(
                    work, request.headers.get("authorization"), body, request)
                response = Response(content, media_type="application/json")
                response.headers["server-timing"] = f"app;dur={elapsed:.1f}"
                return response
            except Problem as exc:
                response = _json(exc.body(), exc.status)
                if exc.status == 401:
                    response.headers["www-authenticate"] = "Bearer"
                return response
            except ValidationError as exc:
                failure = _validation(exc)
                return _json(failure.body(), failure.status)
            except LedgerError as exc:
                failure = problem_of(exc)
                return _json(failure.body(), failure.status)
            except Exception:   # noqa: BLE001 - logged; the client gets a plain 500
                log.exception("error serving %s %s", request.method, request.url.path)
                return _json({"error": "internal server error", "hint": "See the server's log.",
                              "kind": "environment"}, 500)
        return serve

    def q(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    page = {"low": 1, "high": api.MAX_PAGE}
    routes = [
        Route("/openapi.json", lambda request: _json(spec), methods=["GET"]),
        Route("/v1/info", endpoint(lambda r, rq, b: server.info(), auth=False),
              methods=["GET"]),
        Route("/v1/auth/challenge", endpoint(lambda r, rq, b: server.challenge(b), auth=False,
                                             model=api.ChallengeRequest), methods=["POST"]),
        Route("/v1/auth/session", endpoint(lambda r, rq, b: server.open_session(b), auth=False,
                                           model=api.SessionRequest), methods=["POST"]),
        Route("/v1/me", endpoint(lambda r, rq, b: server.me(r)), methods=["GET"]),
        Route("/v1/prepare", endpoint(lambda r, rq, b: server.prepare(r, b),
                                      model=api.PrepareRequest, limit=api.MAX_BODY_BYTES),
              methods=["POST"]),
        Route("/v1/submit", endpoint(lambda r, rq, b: server.submit(r, b),
                                     model=api.SubmitRequest, limit=api.MAX_BODY_BYTES),
              methods=["POST"]),
        Route("/v1/directory", endpoint(lambda r, rq, b: server.directory(r)), methods=["GET"]),
        Route("/v1/events/{stream}/{seq:int}", endpoint(
            lambda r, rq, b: server.event(r, rq.path_params["stream"], rq.path_params["seq"])),
            methods=["GET"]),
        Route("/v1/checkpoint", endpoint(lambda r, rq, b: server.checkpoint(r)),
              methods=["GET"]),
        Route("/v1/proofs/inclusion", endpoint(lambda r, rq, b: server.inclusion(
            r, _int(q(rq), "index", low=0), _int(q(rq), "size", low=1))), methods=["GET"]),
        Route("/v1/proofs/consistency", endpoint(lambda r, rq, b: server.consistency(
            r, _int(q(rq), "from", low=0), _int(q(rq), "to", low=0))), methods=["GET"]),
        Route("/v1/cases", endpoint(lambda r, rq, b: server.cases(r, q(rq))), methods=["GET"]),
        Route("/v1/cases/{case}/history", endpoint(
            lambda r, rq, b: server.history(r, rq.path_params["case"])), methods=["GET"]),
        Route("/v1/cases/{case}/closure", endpoint(
            lambda r, rq, b: server.closure(r, rq.path_params["case"])), methods=["GET"]),
        Route("/v1/reports/{name}", endpoint(
            lambda r, rq, b: server.report(r, rq.path_params["name"], q(rq))), methods=["GET"]),
        Route("/v1/export", endpoint(lambda r, rq, b: server.export(r, b),
                                     model=api.ExportRequest, raw=True), methods=["POST"]),
        Route("/v1/log/head", endpoint(lambda r, rq, b: server.log_head(r)), methods=["GET"]),
        Route("/v1/log/events", endpoint(lambda r, rq, b: server.log_events(
            r, _int(q(rq), "after", -(2**63)), _int(q(rq), "through", 2**63 - 1),
            _int(q(rq), "limit", 1000, **page))), methods=["GET"]),
        Route("/v1/log/leaves", endpoint(lambda r, rq, b: server.log_leaves(
            r, _int(q(rq), "after", -1), _int(q(rq), "below", 2**63 - 1),
            _int(q(rq), "limit", 1000, **page))), methods=["GET"]),
        Route("/v1/log/checkpoints", endpoint(lambda r, rq, b: server.log_checkpoints(
            r, _int(q(rq), "after", -1), _int(q(rq), "through", 2**63 - 1),
            _int(q(rq), "limit", 1000, **page))), methods=["GET"]),
        Route("/v1/log/cosignatures", endpoint(lambda r, rq, b: server.log_cosignatures(r)),
              methods=["GET"]),
    ]
    # The web interface (issue 15, docs/web.md): its pages at /web, the root sends browsers there.
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount

    from server.web import create_web_app
    routes += [Mount("/web", app=create_web_app(server)),
               Route("/", lambda request: RedirectResponse("/web/", 303), methods=["GET"])]

    async def not_found(request: Request, exc: Exception) -> Any:
        status = getattr(exc, "status_code", 404)
        return _json({"error": f"no such endpoint: {request.method} {request.url.path}"
                      if status == 404 else "method not allowed", "hint": "See /openapi.json.",
                      "kind": "not_found"}, status)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


__all__ = ["ROUTES", "LedgerServer", "Problem", "create_ledger_app", "problem_of",
           "refuse_actor_keys"]
