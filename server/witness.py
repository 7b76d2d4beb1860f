"""A witness (C2SP ``tlog-witness``): it cosigns a log's checkpoint only as a consistent extension
of the latest one it cosigned, and remembers that one in its own state file (docs/witness.md).

:class:`Witness` is the whole protocol without HTTP; :func:`create_app` wraps it in a Starlette
(ASGI) app, served by uvicorn (``xinfang witness serve``):

* ``POST /add-checkpoint`` -- body: ``old <size>\\n``, at most 63 base64 consistency proof lines,
  a blank line, the signed checkpoint. Answers, exactly as c2sp.org/tlog-witness says:
  ``404`` unknown origin · ``403`` no valid signature by a trusted log key (or a line naming a
  trusted key whose signature fails) · ``400`` malformed, or old size above the checkpoint's ·
  ``409`` old size is not the size it holds, which is the ``text/x.tlog.size`` body · ``422``
  bad consistency proof (a line that is no hash included, as litewitness answers), a proof
  after ``old 0``, another root at the same size, or a size-0 checkpoint whose root is not the
  empty tree's · ``200`` one ``cosignature/v1`` line
  (``text/plain; charset=utf-8``). ``413`` for a body above 1 MiB.
* ``GET /<hex SHA-256 of the origin>/checkpoint`` -- the latest cosigned checkpoint of that
  log, with the log signature(s) it verified and its own cosignature (c2sp.org/tlog-witness,
  "Monitor Retrieval Mechanism"); ``404`` if it never cosigned one.
* ``GET /`` -- the witness's name, verifier key and logs, as plain text.

The state is one SQLite file: ``witness_logs`` holds one row per origin (size, root, cosigned
note, timestamp). Checking the old size and writing the new row happen in one ``BEGIN
IMMEDIATE`` transaction, under a per-origin lock, committed (WAL, ``synchronous=FULL``)
before the cosignature is returned -- the race the specification describes (a slow request
rolling the state back) cannot happen. Validly signed checkpoints it refuses with 422 are
kept in ``witness_refusals`` (bounded): they are evidence that the log forked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ledger import (
    CheckpointError,
    EnvironmentProblem,
    Signer,
    cosigner_vkey,
    note_key_id,
    parse_checkpoint,
    sign_cosignature,
    verify_checkpoint,
    verify_consistency,
)

if TYPE_CHECKING:
    from ledger import SignedCheckpoint

MAX_REQUEST_BYTES = 1 << 20       # an honest request is a few hundred bytes
MAX_PROOF_LINES = 63              # c2sp.org/tlog-witness: clients MUST NOT send more
MAX_REFUSALS_PER_LOG = 1000
EMPTY_ROOT = hashlib.sha256(b"").digest()
TEXT = "text/plain; charset=utf-8"
SIZE_TYPE = "text/x.tlog.size"
STATE_VERSION = "1"
_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")


class WitnessHTTPError(Exception):
    """A refusal with its HTTP status, content type and body."""

    def __init__(self, status: int, message: str, *, content_type: str = TEXT) -> None:
        super().__init__(message)
        self.status = status
        self.content_type = content_type
        self.body = (message.rstrip("\n") + "\n").encode("utf-8")


@dataclass(frozen=True)
class LogKey:
    """A key the witness trusts for one log: the note key name (the origin for xinfang logs)
    and the raw Ed25519 public key."""

    name: str
    public: bytes


@dataclass(frozen=True)
class AddRequest:
    old: int
    proof: tuple[bytes | None, ...]   # None: a line that is no base64 SHA-256 hash
    note: str
    signed: SignedCheckpoint | None   # None: the note does not parse (``problem`` says why)
    problem: str = ""


def parse_add_request(body: bytes) -> AddRequest:
    """Split an add-checkpoint body; ``400`` (or ``413``) for anything malformed."""
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessHTTPError(413, f"request body larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessHTTPError(400, "request body is not UTF-8") from None
    first, newline, rest = text.partition("\n")
    match = _OLD.fullmatch(first)
    if not newline or match is None:
        raise WitnessHTTPError(400, "the first line must be `old <size>` (decimal, no "
                                    "leading zeros)")
    old = int(match[1])
    proof: list[bytes | None] = []
    while True:
        line, newline, rest = rest.partition("\n")
        if not newline:
            raise WitnessHTTPError(400, "no blank line after the consistency proof")
        if line == "":
            break
        if len(proof) == MAX_PROOF_LINES:
            raise WitnessHTTPError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
        proof.append(_hash_line(line))
    try:
        return AddRequest(old, tuple(proof), rest, parse_checkpoint(rest))
    except CheckpointError as exc:
        return AddRequest(old, tuple(proof), rest, None, str(exc))


def _hash_line(line: str) -> bytes | None:
    """A proof line's hash; None when it is none, which makes the proof fail (422, as the
    reference litewitness answers) once the request is otherwise in order."""
    try:
        raw = base64.b64decode(line.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != line:
        return None
    return raw


class Witness:
    """The witness: its key and name, the logs it knows, its state file."""

    def __init__(self, name: str, signer: Signer,
                 logs: Mapping[str, Sequence[LogKey]], state_path: str | Path, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.signer = signer
        self.public = signer.public
        self.vkey = cosigner_vkey(name, self.public)   # also validates the name
        if not logs:
            raise ValueError("a witness needs at least one log (--log ORIGIN=log.pub)")
        self.logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self.by_hash = {hashlib.sha256(o.encode()).hexdigest(): o for o in self.logs}
        self.state_path = Path(state_path)
        self.clock = clock
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._init_state()

    # ---- state ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.state_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot open the witness state {self.state_path}: "
                                     f"{exc}") from None
        return conn

    def _init_state(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS witness_meta (key TEXT PRIMARY KEY, "
                         "value TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS witness_logs (origin TEXT PRIMARY KEY, "
                         "size INTEGER NOT NULL, root BLOB NOT NULL, timestamp INTEGER NOT "
                         "NULL, note TEXT NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS witness_refusals (id INTEGER PRIMARY "
                         "KEY, origin TEXT NOT NULL, received_at INTEGER NOT NULL, status "
                         "INTEGER NOT NULL, reason TEXT NOT NULL, request TEXT NOT NULL)")
            meta = dict(conn.execute("SELECT key, value FROM witness_meta").fetchall())
            if not meta:
                conn.executemany("INSERT INTO witness_meta VALUES (?, ?)",
                                 [("version", STATE_VERSION), ("key", self.public.hex()),
                                  ("name", self.name)])
            elif meta.get("version") != STATE_VERSION or meta.get("key") != self.public.hex():
                conn.execute("ROLLBACK")
                raise EnvironmentProblem(
                    f"the witness state {self.state_path} belongs to another witness key",
                    "Give each witness its own --state file.")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"the witness state {self.state_path} is unusable: "
                                     f"{exc}") from None
        finally:
            conn.close()

    def _lock(self, origin: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(origin, threading.Lock())

    @contextmanager
    def _transaction(self, origin: str) -> Iterator[sqlite3.Connection]:
        """This origin's lock and a write transaction (other processes sharing the file wait
        on BEGIN IMMEDIATE); committed when the block ends without an exception."""
        with self._lock(origin):
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise EnvironmentProblem(f"witness state error: {exc}") from None
            finally:
                conn.close()

    def state(self, origin: str) -> tuple[int, bytes, int, str] | None:
        """(size, root, timestamp, cosigned note) held for ``origin``."""
        conn = self._connect()
        try:
            row = conn.execute("SELECT size, root, timestamp, note FROM witness_logs WHERE "
                               "origin=?", (origin,)).fetchone()
        finally:
            conn.close()
        return None if row is None else (row[0], bytes(row[1]), row[2], row[3])

    def latest(self, origin_hash: str) -> str | None:
        """The latest cosigned checkpoint of the log whose origin hashes to ``origin_hash``."""
        origin = self.by_hash.get(origin_hash)
        held = self.state(origin) if origin is not None else None
        return held[3] if held is not None else None

    def refusals(self, origin: str) -> list[tuple[int, int, str, str]]:
        conn = self._connect()
        try:
            return [tuple(r) for r in conn.execute(   # type: ignore[misc]
                "SELECT received_at, status, reason, request FROM witness_refusals WHERE "
                "origin=? ORDER BY id", (origin,))]
        finally:
            conn.close()

    # ---- the protocol --------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> bytes:
        """Handle one add-checkpoint body: the cosignature line, or WitnessHTTPError."""
        request = parse_add_request(body)
        if request.signed is None:
            self._unparsed(request)
        checkpoint = request.signed.checkpoint
        origin = checkpoint.origin
        keys = self.logs.get(origin)
        if keys is None:
            raise WitnessHTTPError(404, f"unknown log origin {origin[:200]!r}")
        log_lines = self._log_signatures(request, keys)
        if request.old > checkpoint.size:
            raise WitnessHTTPError(400, f"old size {request.old} is above the checkpoint "
                                        f"size {checkpoint.size}")
        with self._transaction(origin) as conn:
            row = conn.execute("SELECT size, root, timestamp FROM witness_logs WHERE origin=?",
                               (origin,)).fetchone()
            held_size, held_root, held_time = (row[0], bytes(row[1]), row[2]) if row \
                else (0, EMPTY_ROOT, 0)
            if request.old != held_size:
                raise WitnessHTTPError(409, f"{held_size}", content_type=SIZE_TYPE)
            problem = self._consistency_problem(request, held_size, held_root)
            if problem is not None:   # the refusal is evidence: kept (committed), then 422
                self._refused(conn, origin, problem, request.note)
            else:
                # A cosignature's time never goes back, even if the clock does; never 0.
                timestamp = max(int(self.clock()), held_time, 1)
                cosignature = sign_cosignature(checkpoint.body(), self.name, self.signer,
                                               timestamp)
                note = checkpoint.body() + "\n" + "".join(log_lines) + cosignature.line()
                conn.execute("INSERT INTO witness_logs (origin, size, root, timestamp, note) "
                             "VALUES (?,?,?,?,?) ON CONFLICT(origin) DO UPDATE SET "
                             "size=excluded.size, root=excluded.root, "
                             "timestamp=excluded.timestamp, note=excluded.note",
                             (origin, checkpoint.size, checkpoint.root, timestamp, note))
        if problem is not None:
            raise WitnessHTTPError(422, problem)
        return cosignature.line().encode("utf-8")   # committed: persisted before answering

    def _unparsed(self, request: AddRequest) -> NoReturn:
        """A note that does not parse: 404 for an unknown origin; 403 when a line of a
        trusted key is what is malformed (c2sp.org/tlog-witness: such a note is "malformed
        per signed-note", and its signature fails); 400 otherwise."""
        origin = request.note.split("\n", 1)[0]
        keys = self.logs.get(origin)
        if keys is None:
            raise WitnessHTTPError(404 if "\n\n" in request.note else 400,
                                   f"unknown log origin {origin[:200]!r}" if "\n\n" in
                                   request.note else f"malformed checkpoint: {request.problem}")
        block = request.note[request.note.rfind("\n\n") + 2:]
        if any(line.startswith(f"\u2014 {key.name} ") for line in block.split("\n")
               for key in keys):
            raise WitnessHTTPError(403, f"invalid log signature: {request.problem}")
        raise WitnessHTTPError(400, f"malformed checkpoint: {request.problem}")

    def _log_signatures(self, request: AddRequest, keys: Sequence[LogKey]) -> list[str]:
        """The signature lines of trusted log keys, all verified (signed-note: lines of other
        keys are ignored; a line of a trusted key that fails makes the note invalid)."""
        assert request.signed is not None
        origin = request.signed.checkpoint.origin
        lines: list[str] = []
        for key in keys:
            kid = note_key_id(key.name, key.public)
            mine = [s for s in request.signed.signatures if s.name == key.name and
                    s.key_id == kid]
            if not mine:
                continue
            try:
                verify_checkpoint(request.note, key.name, key.public, origin=origin)
            except CheckpointError as exc:
                raise WitnessHTTPError(403, f"invalid log signature: {exc}") from None
            lines += [f"\u2014 {s.name} {base64.b64encode(s.key_id + s.signature).decode()}\n"
                      for s in mine]
        if not lines:
            raise WitnessHTTPError(403, "no signature by a log key this witness trusts for "
                                        f"{origin[:200]!r}")
        return lines

    @staticmethod
    def _consistency_problem(request: AddRequest, held_size: int,
                             held_root: bytes) -> str | None:
        assert request.signed is not None
        checkpoint = request.signed.checkpoint
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            return "a checkpoint of size 0 must have the empty tree's root"
        if request.old == 0:
            return "old size 0 takes no consistency proof" if request.proof else None
        if any(node is None for node in request.proof):
            return "a consistency proof line is not one canonical base64 SHA-256 hash"
        if request.old == checkpoint.size:
            if request.proof:
                return "the checkpoint has the size already cosigned: no proof is needed"
            if checkpoint.root != held_root:
                return (f"the checkpoint has size {checkpoint.size}, which this witness "
                        "cosigned with another root: the log forked")
            return None
        proof = [node for node in request.proof if node is not None]
        if not verify_consistency(request.old, checkpoint.size, held_root, checkpoint.root,
                                  proof):
            return (f"the consistency proof from size {request.old} to {checkpoint.size} does "
                    "not verify: the new tree does not extend the one this witness cosigned")
        return None

    def _refused(self, conn: sqlite3.Connection, origin: str, reason: str, note: str) -> None:
        conn.execute("INSERT INTO witness_refusals (origin, received_at, status, reason, "
                     "request) VALUES (?,?,?,?,?)", (origin, int(self.clock()), 422, reason,
                                                     note))
        conn.execute("DELETE FROM witness_refusals WHERE origin=? AND id NOT IN (SELECT id "
                     "FROM witness_refusals WHERE origin=? ORDER BY id DESC LIMIT ?)",
                     (origin, origin, MAX_REFUSALS_PER_LOG))

    def info(self) -> str:
        logs = "".join(f"log {origin} {h}\n" for h, origin in sorted(self.by_hash.items()))
        return f"witness {self.name}\nvkey {self.vkey}\n{logs}"


# ---- HTTP ----------------------------------------------------------------------------------------

def create_app(witness: Witness, *, max_request_bytes: int = MAX_REQUEST_BYTES) -> Any:
    """The witness as a Starlette app (the routes of the module docstring)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def text(status: int, body: bytes | str, content_type: str = TEXT) -> Response:
        return Response(body, status_code=status, media_type=None,
                        headers={"content-type": content_type})

    async def add_checkpoint(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_request_bytes:
            return text(413, f"request body larger than {max_request_bytes} bytes\n")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_request_bytes:
                return text(413, f"request body larger than {max_request_bytes} bytes\n")
        try:
            line = await run_in_threadpool(witness.add_checkpoint, bytes(body))
        except WitnessHTTPError as exc:
            return text(exc.status, exc.body, exc.content_type)
        except EnvironmentProblem as exc:
            return text(503, f"{exc.message}\n")
        return text(200, line)

    async def read_checkpoint(request: Request) -> Response:
        origin_hash = request.path_params["origin_hash"]
        if not re.fullmatch(r"[0-9a-f]{64}", origin_hash):
            return text(404, "not a lowercase hex SHA-256 of an origin\n")
        try:
            note = await run_in_threadpool(witness.latest, origin_hash)
        except EnvironmentProblem as exc:
            return text(503, f"{exc.message}\n")
        if note is None:
            return text(404, "this witness has cosigned no checkpoint of that log\n")
        return text(200, note)

    async def info(request: Request) -> Response:
        return text(200, witness.info())

    return Starlette(routes=[
        Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
        Route("/{origin_hash}/checkpoint", read_checkpoint, methods=["GET"]),
        Route("/", info, methods=["GET"]),
    ])


__all__ = ["EMPTY_ROOT", "MAX_PROOF_LINES", "MAX_REQUEST_BYTES", "AddRequest", "LogKey",
           "Witness", "WitnessHTTPError", "create_app", "parse_add_request"]
