"""The ledger server's client: sign on this device, let the server append (docs/api.md).

:class:`LedgerClient` offers what the command line asks of a local :class:`Ledger` —
``execute``, ``execute_many``, ``import_file``, the directory actions, ``event_hash``,
``directory``, ``checkpoint`` — over HTTP to ``xinfang serve``. Every write is prepared by the
server against the current stream head, checked here to say exactly what was asked, signed
here with the keystore's key of the acting person, and submitted; a conflict (another write
moved the head meanwhile) prepares and signs again, a bounded number of times. Every command
carries a command id, so a retried submission is recorded once. The receipt the server
answers with (stream, seq, position, event hash, signed checkpoint, inclusion proof) is
proven on arrival and kept in ``<keystore>/receipts/``; :meth:`LedgerClient.check_receipts`
later proves each is still included and that the log only grew since.

Readers who may read the whole log get a **mirror**: the raw rows (events, leaves,
checkpoints, cosignatures) copied into a local SQLite ledger, incrementally, with the Merkle
nodes recomputed here, so that ``verify``, ``case history`` and the rest run their unchanged
local code against it under the pinned log and admin keys — trusting no verdict the server
computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from ledger.domain.directory import Directory
from ledger.errors import (
    ConflictError,
    EnvironmentProblem,
    ForbiddenError,
    InputError,
    KeyUnavailableError,
    LedgerError,
    StorageError,
    TransitionError,
    VerificationError,
)
from ledger.log.checkpoint import CheckpointError, parse_checkpoint, verify_checkpoint
from ledger.log.keys import ID_PATTERN, LOG_KEY_NAME, Keystore, PublicKey, Signer
from ledger.log.merkle import CompactRange
from ledger.log.statement import DIRECTORY_STREAM, Statement, format_time
from ledger.storage.store import AppendConflict, Store, StoredCheckpoint, StoredRecord, open_store
from ledger.verification.view import LedgerView
from ledger.writing.commands import Command, Receipt
from ledger.writing.importer import ImportResult, read_import_file
from ledger.writing.session import migration_name, validation_message
from ledger.writing.wire import (
    auth_message,
    b64,
    check_kept_receipt,
    check_receipt,
    command_document,
    directory_from_document,
    unb64,
)
from schemas.actions import CASE_ACTIONS, CASE_NO_PATTERN, parse_data

DEFAULT_TIMEOUT = 30.0
MAX_RETRIES = 20
PAGE = 2000           # raw log rows per request when mirroring
_FIRST = -(2**63)

#: The error kinds of the server's JSON errors, as the library's own errors (exit codes).
ERROR_KINDS: dict[str, type[LedgerError]] = {
    "input": InputError, "transition": TransitionError, "forbidden": ForbiddenError,
    "unauthenticated": ForbiddenError, "conflict": ConflictError,
    "verification": VerificationError, "environment": EnvironmentProblem,
    "storage": StorageError, "key": KeyUnavailableError,
}


def actor_keys(keystore: Keystore) -> list[str]:
    """The actors whose current private key this keystore holds (not the log key)."""
    if not keystore.path.is_dir():
        return []
    names = []
    for path in sorted(keystore.path.glob("*.key")):
        name = path.name[:-len(".key")]
        if name not in (LOG_KEY_NAME, "witness") and not name.endswith(".retired") \
                and ID_PATTERN.match(name):
            names.append(name)
    return names


def _pinned(keystore: Keystore, name: str) -> bytes | None:
    try:
        path = keystore.public_path(name)
        return PublicKey.from_pem(path.read_bytes()).raw if path.exists() else None
    except (OSError, LedgerError, ValueError):
        return None


@dataclass(frozen=True)
class KeptReceipt:
    """The verdict on one kept receipt (``receipts check``)."""

    file: str
    stream: str
    seq: int
    position: int
    hash: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "stream": self.stream, "seq": self.seq,
                "position": self.position, "hash": self.hash, "ok": self.ok,
                "problem": self.problem}


class LedgerClient:
    """A session with one ledger server, signing with the keys of ``keystore``.

    ``actor`` is who reads (the session's actor; writes sign in as the acting person when
    no reader is named). ``log_key``/``admin_key`` are the pinned trust anchors (default:
    ``log.pub``/``admin.pub`` in the keystore); receipts are proven under the log key.
    """

    def __init__(self, url: str, keystore: Keystore, *, actor: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, log_key: bytes | None = None,
                 admin_key: bytes | None = None,
                 on_receipt: Callable[[Path], None] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--server {url!r} is not an http(s) URL",
                             "Give the server's address, e.g. http://127.0.0.1:8400.")
        self.url = url.rstrip("/")
        self.keystore = keystore
        self.actor = actor
        self.timeout = timeout
        self.log_key = log_key if log_key is not None else _pinned(keystore, LOG_KEY_NAME)
        self.admin_key = admin_key if admin_key is not None else _pinned(keystore, "admin")
        self.on_receipt = on_receipt
        # TCP_NODELAY: a request's headers and body are two writes; without it the body waits
        # for the server's delayed ACK (Nagle), ~40 ms a request.
        self.http = httpx.Client(
            base_url=self.url, timeout=timeout, headers={"user-agent": "xinfang-client/1"},
            transport=transport or httpx.HTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))
        self._tokens: dict[str, tuple[str, float]] = {}
        self._info: dict[str, Any] | None = None
        self._directory: Directory | None = None
        self._mirror: Store | None = None
        self._view: LedgerView | None = None
        self._fresh_keys: dict[str, Signer] = {}   # keys made here for actor.add / rotate
        self._heads: dict[str, tuple[int, str]] = {}   # stream heads this client wrote

    def close(self) -> None:
        self.http.close()
        if self._mirror is not None:
            self._mirror.close()
            self._mirror = None

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- HTTP ---------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **options)
        except httpx.TimeoutException:
            raise EnvironmentProblem(f"the ledger server at {self.url} did not answer within "
                                     f"{self.timeout:g} s",
                                     "Try again; a write that timed out is recognized and not "
                                     "recorded twice.") from None
        except httpx.HTTPError as exc:
            raise EnvironmentProblem(f"cannot reach the ledger server at {self.url}: "
                                     f"{exc.__class__.__name__}",
                                     "Check --server / XINFANG_SERVER and that `xinfang serve` "
                                     "is running.") from None

    def call(self, method: str, path: str, *, actor: str | None = None, auth: bool = True,
             json_body: Any = None, params: dict[str, Any] | None = None,
             raw: bool = False) -> Any:
        """One API request (signing in first when needed); the decoded JSON answer, or the
        body's bytes with ``raw``. The server's JSON errors become the library's errors."""
        for attempt in range(2):
            headers = {}
            if auth:
                headers["authorization"] = f"Bearer {self._token(actor)}"
            response = self._send(method, path, json=json_body, params=params, headers=headers)
            if response.status_code == 401 and auth and attempt == 0:
                self._tokens.pop(actor or self._reader(), None)   # expired: sign in again
                continue
            if response.status_code >= 400:
                raise self._error(response)
            if raw:
                return response.content
            try:
                return response.json()
            except ValueError:
                raise EnvironmentProblem(f"the ledger server at {self.url} answered "
                                         f"{path} with something that is not JSON") from None
        raise AssertionError("unreachable")

    def _error(self, response: httpx.Response) -> LedgerError:
        try:
            body = response.json()
            message, hint, kind = str(body["error"]), body.get("hint"), str(body.get("kind"))
        except (ValueError, KeyError, TypeError):
            message, hint, kind = (f"the ledger server answered {response.status_code}",
                                   None, "")
        cls = ERROR_KINDS.get(kind) or (InputError if response.status_code < 500
                                        else EnvironmentProblem)
        error = cls(message, hint if isinstance(hint, str) else None)
        if isinstance(body := _json_or_none(response), dict) and type(body.get("index")) is int:
            error.index = body["index"]  # type: ignore[attr-defined]
        error.status = response.status_code  # type: ignore[attr-defined]
        return error

    # ---- who we are ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The server's public description: origin, log key, limits (no sign-in needed)."""
        if self._info is None:
            info = self.call("GET", "/v1/info", auth=False)
            if not isinstance(info, dict) or type(info.get("origin")) is not str:
                raise EnvironmentProblem(f"{self.url} does not look like a xinfang ledger server")
            if self.log_key is not None and info.get("log_key") != self.log_key.hex():
                raise VerificationError(
                    f"the ledger at {self.url} names another log key than the pinned one",
                    "It is not the ledger you trust (or the pinned log.pub is another "
                    "ledger's).")
            self._info = info
        return self._info

    @property
    def origin(self) -> str:
        return str(self.info()["origin"])

    def _reader(self) -> str:
        if self.actor:
            return self.actor
        held = actor_keys(self.keystore)
        if len(held) == 1:
            return held[0]
        raise InputError("say who you are to the ledger server",
                         "Set XINFANG_ACTOR (or --as) to your actor id; your keystore must "
                         "hold its key.")

    def _token(self, actor: str | None) -> str:
        who = actor or self._reader()
        held = self._tokens.get(who)
        if held is not None and held[1] > time.time() + 5:
            return held[0]
        signer = self.keystore.load(who)
        challenge = self.call("POST", "/v1/auth/challenge", auth=False,
                              json_body={"actor": who})
        nonce = str(challenge.get("nonce"))
        signature = signer.sign(auth_message(self.origin, who, nonce))
        session = self.call("POST", "/v1/auth/session", auth=False,
                            json_body={"actor": who, "nonce": nonce,
                                       "signature": b64(signature)})
        token = str(session["token"])
        self._tokens[who] = (token, time.time() + float(session.get("expires_in", 60)))
        return token

    def whoami(self) -> dict[str, Any]:
        """The signed-in reader and what the server lets them read (``scope``, ``log``)."""
        result: dict[str, Any] = self.call("GET", "/v1/me")
        return result

    # ---- writing ------------------------------------------------------------------------------

    def execute(self, action: str, case: str | None, data: dict[str, Any], *, as_actor: str,
                at: datetime | None = None, cmd: str | None = None,
                public_key_pem: bytes | None = None) -> Receipt:
        """Prepare, check, sign here and submit one command (retried on a conflict)."""
        command = Command(action, case, data, as_actor, at or datetime.now(tz=UTC),
                          cmd or f"c-{uuid.uuid4().hex}")
        return self.execute_many([command], public_key_pems={0: public_key_pem}
                                 if public_key_pem else None)[0]

    def execute_many(self, commands: list[Command], *, batch_size: int = 1000,
                     progress: Callable[[str, int, int], None] | None = None,
                     public_key_pems: dict[int, bytes] | None = None,
                     lines: Sequence[int] | None = None,
                     keep: str = "all") -> list[Receipt]:
        """Write ``commands`` through the server: prepared in chunks the server judges whole
        (nothing of a chunk is written unless all of it passes), signed here, submitted
        ``batch_size`` a request (one transaction each). ``keep`` is ``all`` (a receipt per
        event) or ``last`` (one per batch, for imports). A conflict prepares what is not yet
        written again. Commands whose id is recorded come back as duplicates."""
        if not commands:
            return []
        keys = {i: PublicKey.from_pem(p).raw for i, p in (public_key_pems or {}).items()}
        receipts: list[Receipt | None] = [None] * len(commands)
        limit = int(self.info().get("limits", {}).get("prepare", 5000))
        pending = list(range(len(commands)))
        written = 0
        session_actor = self.actor if self.actor and self.keystore.has(self.actor) else \
            commands[0].actor
        if len(commands) == 1 and not keys:
            receipts[0] = self._submit_on_known_head(commands[0], session_actor)
            pending = [] if receipts[0] is not None else pending
        for attempt in range(MAX_RETRIES):
            if not pending:
                break
            chunk = pending[:limit]
            try:
                self._write_chunk(commands, chunk, keys, receipts, session_actor,
                                  lines=lines, batch_size=batch_size, keep=keep,
                                  progress=progress, total=len(commands), written=written)
            except ConflictError:
                if attempt == MAX_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
            pending = [i for i in pending if receipts[i] is None]
            written = len(commands) - len(pending)
        if pending:
            raise ConflictError(f"gave up after {MAX_RETRIES} concurrent conflicts",
                                "Run the same command again: what was written is recognized "
                                "and skipped.")
        for index, command in enumerate(commands):
            self._after_write(command, keys.get(index))
        return [r for r in receipts if r is not None]

    def _write_chunk(self, commands: list[Command], chunk: list[int], keys: dict[int, bytes],
                     receipts: list[Receipt | None], session_actor: str, *,
                     lines: Sequence[int] | None, batch_size: int, keep: str,
                     progress: Callable[[str, int, int], None] | None, total: int,
                     written: int) -> None:
        try:
            prepared = self.call("POST", "/v1/prepare", actor=session_actor, json_body={
                "commands": [command_document(commands[i], keys.get(i)) for i in chunk],
                "receipts": "all" if keep == "all" else "none",
                **({"lines": [lines[i] for i in chunk]} if lines is not None else {})})
        except LedgerError as exc:
            local = getattr(exc, "index", None)
            if type(local) is int and 0 <= local < len(chunk):
                exc.index = chunk[local]  # type: ignore[attr-defined]  # the caller's index
            raise
        to_sign: list[tuple[int, bytes]] = []
        for item in _items(prepared):
            index = chunk[item["index"]]
            if "duplicate" in item:
                receipts[index] = self._accept_receipt(item["duplicate"], None, None)
                continue
            signed = unb64(item.get("signed"), "the prepared statement")
            self._check_prepared(commands[index], signed, keys.get(index))
            to_sign.append((index, signed))
        if progress:
            progress("checked", written + len(chunk), total)
        signers: dict[str, Signer] = {}
        signatures = []
        for index, signed in to_sign:
            actor = commands[index].actor
            signer = signers.get(actor) or signers.setdefault(actor, self.keystore.load(actor))
            signatures.append(signer.sign(signed))
        done = written + len(chunk) - len(to_sign)
        for start in range(0, len(to_sign), batch_size):
            batch = list(zip(to_sign[start:start + batch_size],
                             signatures[start:start + batch_size], strict=True))
            answer = self.call("POST", "/v1/submit", actor=session_actor, json_body={
                "events": [{"signed": b64(signed), "signature": b64(signature)}
                           for (_, signed), signature in batch],
                "receipts": keep})
            documents = answer.get("receipts") if isinstance(answer, dict) else None
            if not isinstance(documents, list) or len(documents) != len(batch):
                raise EnvironmentProblem("the ledger server's answer to a submission has no "
                                         "receipt for every event")
            for ((index, signed), signature), document in zip(batch, documents, strict=True):
                receipts[index] = self._accept_receipt(document, signed, signature)
            done += len(batch)
            if progress:
                progress("written", done, total)

    def _submit_on_known_head(self, command: Command, session_actor: str) -> Receipt | None:
        """One round trip instead of two when this client wrote the stream's head itself:
        the statement ``prepare`` would build — the same library code, on the head this
        client's last receipt proved — signed and submitted directly. The server judges it
        completely, as always; any refusal (another write moved the head: 409) falls back to
        prepare, which gives the authoritative answer. None: not applicable, or refused."""
        head = self._heads.get(command.case or "")
        if head is None or command.action not in CASE_ACTIONS or command.action == "register":
            return None
        try:
            signer = self.keystore.load(command.actor)
            statement = Statement(
                origin=self.origin, stream=str(command.case), seq=head[0] + 1, prev=head[1],
                type=command.action, at=format_time(command.at), actor=command.actor,
                key=signer.key_id, data=parse_data(command.action, command.data),
                cmd=command.cmd, migration=command.migration)
        except (ValidationError, LedgerError, KeyError, ValueError):
            return None
        signed = statement.signed_bytes()
        signature = signer.sign(signed)
        try:
            answer = self.call("POST", "/v1/submit", actor=session_actor, json_body={
                "events": [{"signed": b64(signed), "signature": b64(signature)}],
                "receipts": "all"})
        except (InputError, VerificationError):   # stale head, or any other refusal
            self._heads.pop(str(command.case), None)
            return None
        documents = answer.get("receipts") if isinstance(answer, dict) else None
        if not isinstance(documents, list) or len(documents) != 1:
            raise EnvironmentProblem("the ledger server's answer to a submission has no receipt")
        return self._accept_receipt(documents[0], signed, signature)

    def _check_prepared(self, command: Command, signed: bytes, public_key: bytes | None) -> None:
        """Refuse to sign bytes that do not say exactly what was asked (VerificationError)."""
        try:
            statement = Statement.from_signed_bytes(signed)
        except ValueError as exc:
            raise VerificationError(f"the server prepared bytes that are no statement: {exc}",
                                    "Nothing was signed.") from None
        signer = self.keystore.load(command.actor)
        if statement.key != signer.key_id:
            raise KeyUnavailableError(
                f"your keystore's key of {command.actor} ({signer.key_id}) is not the "
                f"registered key ({statement.key[:16]})",
                "It may have been rotated or revoked; use the current key.")
        try:
            expected = parse_data(command.action, command.data)
        except ValidationError as exc:
            raise InputError(f"invalid {command.action}: {validation_message(exc)}") from None
        except KeyError:
            raise InputError(f"unknown action {command.action!r}") from None
        if public_key is not None:
            expected["public_key"] = public_key.hex()
        if command.action == "actor.revoke_key" and "key" not in expected \
                and "key" in statement.data:
            expected["key"] = statement.data["key"]
        if command.case is not None:
            stream_ok = statement.stream == command.case
        elif command.action == "register":   # the server chose the next free number
            stream_ok = bool(CASE_NO_PATTERN.match(statement.stream))
        else:
            stream_ok = statement.stream == DIRECTORY_STREAM
        checks = {"origin": statement.origin == self.origin, "stream": stream_ok,
                  "type": statement.type == command.action,
                  "actor": statement.actor == command.actor,
                  "at": statement.at == format_time(command.at),
                  "data": statement.data == expected, "cmd": statement.cmd == command.cmd,
                  "migration": statement.migration == command.migration}
        wrong = [name for name, good in checks.items() if not good]
        if wrong:
            raise VerificationError(
                f"the server prepared a statement that does not say what was asked "
                f"({', '.join(wrong)} differ); nothing was signed",
                "The server may not be the ledger you trust.")

    def _accept_receipt(self, document: Any, signed: bytes | None,
                        signature: bytes | None) -> Receipt:
        if not isinstance(document, dict):
            raise EnvironmentProblem("the ledger server sent a receipt that is not an object")
        if document.get("proof") is None:   # a bare receipt (an import's inner events)
            try:
                return Receipt(str(document["stream"]), int(document["seq"]),
                               int(document["position"]), str(document["type"]),
                               str(document["hash"]), bool(document.get("duplicate")))
            except (KeyError, TypeError, ValueError):
                raise EnvironmentProblem("the ledger server sent a malformed receipt") from None
        checked = check_receipt(document, signed=signed, signature=signature,
                                log_key=self.log_key, origin=self.origin)
        self._keep(checked.document)
        receipt = checked.receipt
        if receipt.seq > self._heads.get(receipt.stream, (0, ""))[0]:
            self._heads[receipt.stream] = (receipt.seq, receipt.hash)   # proven, ours
        return receipt

    @property
    def receipts_dir(self) -> Path:
        return self.keystore.path / "receipts"

    def _keep(self, document: dict[str, Any]) -> None:
        folder = self.receipts_dir
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{int(document['position']):012d}-{str(document['hash'])[:16]}.json"
        path = folder / name
        data = json.dumps({"server": self.url, "origin": self.origin, **document},
                          ensure_ascii=False, indent=1).encode("utf-8")
        # Written whole and renamed into place; not fsynced (a power cut may lose this copy of
        # the receipt, never the event, which is in the log).
        fd = os.open(path.with_name(name + ".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(path.with_name(name + ".tmp"), path)
        if self.on_receipt is not None:
            self.on_receipt(path)

    def _after_write(self, command: Command, public_key: bytes | None) -> None:
        """After a directory write: forget the cached directory; keep a key made here."""
        if command.action.startswith(("actor.", "unit.")):
            self._directory = None
        if command.action not in ("actor.add", "actor.rotate_key"):
            return
        fresh = self._fresh_keys.pop(str(command.data.get("actor", "")), None)
        if fresh is not None and public_key == fresh.public:
            if command.action == "actor.rotate_key":
                self.keystore.retire(fresh.name)
            self.keystore.save(fresh)

    # ---- the directory ------------------------------------------------------------------------

    def directory(self) -> Directory:
        """The directory as the server judged it (names, roles, units, keys)."""
        if self._directory is None:
            self._directory = directory_from_document(self.call("GET", "/v1/directory"))
        return self._directory

    @property
    def policy(self) -> Any:
        return self.directory().policy

    def _new_key(self, actor: str, public_key_pem: bytes | None) -> bytes:
        """The PEM to register: given, or a key made here and saved once the write is in."""
        if public_key_pem is not None:
            return public_key_pem
        signer = Signer.generate(actor)
        self._fresh_keys[actor] = signer
        return signer.public_key.to_pem()

    def add_unit(self, unit: str, name: str, parent: str | None = None, *, as_actor: str,
                 at: datetime | None = None, cmd: str | None = None) -> Receipt:
        data = {"unit": unit, "name": name, **({"parent": parent} if parent else {})}
        return self.execute("unit.add", None, data, as_actor=as_actor, at=at, cmd=cmd)

    def add_actor(self, actor: str, name: str, *, roles: Sequence[str] | Any,
                  unit: str | None = None, keyless: bool = False,
                  public_key_pem: bytes | None = None, as_actor: str,
                  at: datetime | None = None, cmd: str | None = None) -> Receipt:
        data: dict[str, Any] = {"actor": actor, "name": name, "roles": sorted(set(roles)),
                                "keyless": keyless}
        if unit:
            data["unit"] = unit
        pem = None if keyless else self._new_key(actor, public_key_pem)
        if keyless and public_key_pem is not None:
            raise InputError("a keyless actor takes no public key")
        return self.execute("actor.add", None, data, as_actor=as_actor, at=at, cmd=cmd,
                            public_key_pem=pem)

    def rotate_key(self, actor: str, *, as_actor: str, at: datetime | None = None,
                   public_key_pem: bytes | None = None) -> Receipt:
        return self.execute("actor.rotate_key", None, {"actor": actor}, as_actor=as_actor,
                            at=at, public_key_pem=self._new_key(actor, public_key_pem))

    def revoke_key(self, actor: str, *, as_actor: str, key: str | None = None,
                   reason: str | None = None, at: datetime | None = None) -> Receipt:
        data = {"actor": actor, **({"key": key} if key else {}),
                **({"reason": reason} if reason else {})}
        return self.execute("actor.revoke_key", None, data, as_actor=as_actor, at=at)

    def event_hash(self, stream: str, seq: int) -> str | None:
        """The hash of a stored event (None if there is none): a finding's evidence."""
        try:
            found = self.call("GET", f"/v1/events/{stream}/{seq}")
        except InputError as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        return str(found["hash"])

    # ---- imports ------------------------------------------------------------------------------

    def import_file(self, path: str | os.PathLike[str], *, batch_size: int = 1000,
                    progress: Callable[[str, int, int], None] | None = None,
                    migration: str | None = None, dry_run: bool = False) -> ImportResult:
        """An import through the server: every line parsed here first; then judged by the
        server (whole, in chunks of its prepare limit) before any of it is written, signed
        here, appended ``batch_size`` events a transaction; idempotent by line id."""
        migration = migration_name(migration)
        commands, numbers = read_import_file(path, migration)
        if not commands:
            return ImportResult(0, 0, 0, None, None, migration, dry_run)
        if migration is not None:
            commands = [replace(c, migration=migration) for c in commands]
        missing = sorted({c.actor for c in commands if not self.keystore.has(c.actor)})
        if missing and not dry_run:
            raise KeyUnavailableError(
                f"the keystore {self.keystore.path} holds no key of {', '.join(missing[:5])}"
                + (" …" if len(missing) > 5 else ""),
                "Each line is signed here with its actor's key: import where those keys are.")
        if dry_run:
            summary = self.call("POST", "/v1/prepare", json_body={
                "commands": [command_document(c) for c in commands], "lines": numbers,
                "dry_run": True})
            return ImportResult(len(commands), 0, int(summary["skipped"]), None, None,
                                migration or commands[0].migration, True,
                                dict(summary["actions"]), tuple(summary["cases"]))
        receipts = self.execute_many(commands, batch_size=batch_size, progress=progress,
                                     lines=numbers, keep="last")
        written = [r for r in receipts if not r.duplicate]
        return ImportResult(lines=len(commands), written=len(written),
                            skipped=len(receipts) - len(written),
                            first_position=written[0].position if written else None,
                            last_position=written[-1].position if written else None,
                            migration=migration or commands[0].migration)

    # ---- checkpoints and receipts -------------------------------------------------------------

    def checkpoint(self) -> str:
        """The server's latest signed checkpoint (with the witness cosignatures it keeps),
        verified under the pinned log key when there is one."""
        answer = self.call("GET", "/v1/checkpoint")
        note = str(answer["note"])
        if self.log_key is not None:
            try:
                verify_checkpoint(note, self.origin, self.log_key, origin=self.origin)
            except (CheckpointError, ValueError) as exc:
                raise VerificationError(f"the server's checkpoint does not verify under the "
                                        f"pinned log key: {exc}") from None
        return note

    def reanchor(self) -> str:
        raise InputError("only the server's operator can re-anchor its log",
                         "Run `xinfang checkpoint --reanchor` on the server host, against "
                         "its ledger and keystore (without --server).")

    def kept_receipts(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        folder = self.receipts_dir
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                document = {}
            yield path, document if isinstance(document, dict) else {}

    def check_receipts(self) -> tuple[dict[str, Any], list[KeptReceipt]]:
        """Prove every kept receipt of this server's ledger against its current checkpoint:
        still included, and the current tree consistent with the receipt's."""
        if self.log_key is None:
            raise KeyUnavailableError("no pinned log key to prove receipts with",
                                      "Pass --log-key log.pub (the ledger's public log key) "
                                      "or put log.pub into the keystore.")
        note = self.checkpoint()
        current = parse_checkpoint(note).checkpoint
        verdicts = []
        for path, document in self.kept_receipts():
            if document.get("origin") not in (None, self.origin):
                continue   # another ledger's receipt
            problem: str | None
            try:
                index, size = int(document["leaf_index"]), int(document["tree_size"])
                inclusion = self.call("GET", "/v1/proofs/inclusion",
                                      params={"index": index, "size": current.size})
                consistency = self.call("GET", "/v1/proofs/consistency",
                                        params={"from": size, "to": current.size})
                problem = check_kept_receipt(
                    document, current_note=note, inclusion=inclusion.get("proof"),
                    consistency=consistency.get("proof"), log_key=self.log_key,
                    origin=self.origin)
            except (KeyError, TypeError, ValueError):
                problem = "the receipt file is unreadable"
            except LedgerError as exc:
                if isinstance(exc, EnvironmentProblem) and not isinstance(exc, StorageError):
                    raise
                problem = exc.message
            verdicts.append(KeptReceipt(path.name, str(document.get("stream")),
                                        _int_or(document.get("seq")),
                                        _int_or(document.get("position")),
                                        str(document.get("hash")), problem))
        return {"size": current.size, "root": current.root.hex(), "note": note}, verdicts

    # ---- the mirror: the raw log, copied here -------------------------------------------------

    @property
    def mirror_path(self) -> Path:
        key = hashlib.sha256(f"{self.url}\n{self.origin}".encode()).hexdigest()[:16]
        return self.keystore.path / "mirrors" / f"{key}.db"

    @property
    def store(self) -> Store:
        """The local mirror of the server's log, synced once per client (incrementally)."""
        if self._mirror is None:
            path = self.mirror_path
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            mirror = open_store(f"sqlite:///{path}", create=True)
            try:
                self._sync(mirror)
            except BaseException:
                mirror.close()
                raise
            self._mirror = mirror
        return self._mirror

    @property
    def view(self) -> LedgerView:
        """The checked view of the mirror, under the pinned anchors."""
        if self._view is None:
            self._view = LedgerView(self.store, log_key=self.log_key, admin_key=self.admin_key)
        return self._view

    def _sync(self, mirror: Store) -> None:
        """Copy what is new: up to the server's latest checkpoint, one consistent cut."""
        head = self.call("GET", "/v1/log/head")
        size, through = int(head["size"]), int(head["through"])
        after = mirror.max_row_position()
        after = _FIRST if after is None else after
        while after < through:
            page = self.call("GET", "/v1/log/events", params={
                "after": after, "through": through, "limit": PAGE})["events"]
            rows = [_record(row) for row in page]
            if not rows:
                break
            self._mirror_rows(mirror, rows, [], [], [])
            after = rows[-1].position
        leaves_have = mirror.leaf_count()
        tree = _compact(mirror, leaves_have)
        while leaves_have < size:
            page = self.call("GET", "/v1/log/leaves", params={
                "after": leaves_have - 1, "below": size, "limit": PAGE})["leaves"]
            if not page:
                break
            leaves, nodes = [], []
            for row in page:
                index, position, digest = int(row[0]), int(row[1]), unb64(row[2], "a leaf")
                if index != tree.size or len(digest) != 32:
                    raise VerificationError(f"the server's leaves are not contiguous at {index}")
                nodes += tree.append(digest)
                leaves.append((index, position, digest))
            self._mirror_rows(mirror, [], leaves, nodes, [])
            leaves_have = tree.size
        latest = mirror.latest_checkpoint()
        last = latest.size if latest is not None else -1
        while True:
            page = self.call("GET", "/v1/log/checkpoints", params={
                "after": last, "through": size, "limit": PAGE})["checkpoints"]
            checkpoints = [StoredCheckpoint(int(c["size"]), unb64(c["root"], "a root"),
                                            str(c["note"]), unb64(c["frontier"], "a frontier"))
                           for c in page]
            if not checkpoints:
                break
            self._mirror_rows(mirror, [], [], [], checkpoints)
            last = checkpoints[-1].size
        cosignatures = self.call("GET", "/v1/log/cosignatures")["cosignatures"]
        by_size: dict[int, list[tuple[str, str, str]]] = {}
        for row in cosignatures:
            by_size.setdefault(int(row[0]), []).append((str(row[1]), str(row[2]), str(row[3])))
        for cosigned, rows_of in by_size.items():
            mirror.add_cosignatures(cosigned, rows_of)

    @staticmethod
    def _mirror_rows(mirror: Store, *rows: Any) -> None:
        try:
            mirror.mirror_rows(*rows)
        except AppendConflict:
            raise VerificationError("the server sent a row the mirror already holds another "
                                    "copy of", "Delete the mirror to fetch the log anew.") \
                from None


def _compact(store: Store, size: int) -> CompactRange:
    """The compact range of the mirror's first ``size`` leaves, from its own nodes."""
    parts, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if (size >> level) & 1:
            parts.append(store.get_node(level, start >> level))
            start += 1 << level
    return CompactRange(size, parts)


def _record(row: Any) -> StoredRecord:
    try:
        position, stream, seq, topic, state = row["position"], row["stream"], row["seq"], \
            row["type"], row["state"]
        if type(position) is not int or type(seq) is not int:
            raise TypeError
        return StoredRecord(position, str(stream), seq, str(topic), unb64(state, "a state"))
    except (KeyError, TypeError, InputError):
        raise VerificationError("the server sent a malformed log row") from None


def _items(prepared: Any) -> list[dict[str, Any]]:
    items = prepared.get("items") if isinstance(prepared, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and type(i.get("index"))
                                              is int for i in items):
        raise EnvironmentProblem("the ledger server's answer to prepare is malformed")
    return items


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int_or(value: Any) -> int:
    return value if type(value) is int else -1


__all__ = ["ERROR_KINDS", "KeptReceipt", "LedgerClient", "actor_keys"]
