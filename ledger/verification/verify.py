"""Streaming verification of a whole ledger: checks 1-8 of docs/integrity.md, in log order.

Memory stays flat: events are read in batches and only per-stream heads, small case states and
the Merkle frontier are kept. Signature checks (the CPU-heavy part) run on every core in a
process pool, in bounded batches; everything that depends on order runs in this process.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from ledger.domain.cases import CaseState, CaseViolation, apply_action, check_action
from ledger.domain.directory import Directory, DirectoryViolation
from ledger.errors import LedgerError
from ledger.log.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, verify_checkpoint
from ledger.log.keys import key_id
from ledger.log.merkle import CompactRange, consistency_proof, leaf_hash, verify_consistency
from ledger.log.statement import (
    DIRECTORY_STREAM,
    ZERO_HASH,
    Envelope,
    Statement,
    event_hash,
    leaf_bytes,
)
from ledger.storage.replay import CaseCache
from ledger.storage.store import Store, StoredCheckpoint
from schemas.actions import ACTION_MODELS, parse_data

BATCH = 2000
PARALLEL_THRESHOLD = 20000   # below this many events a process pool costs more than it saves
MAX_FAILURES = 1000
CHECK_NAMES = {
    1: "signed bytes parse and match the stored columns",
    2: "signature verifies under the named key",
    3: "key belongs to the actor and was valid at that position",
    4: "actor authorized for the action at that position",
    5: "previous-hash link and gap-free sequence",
    6: "business time not after recorded time",
    7: "Merkle root and stored checkpoints",
    8: "consistency with the kept checkpoint",
}


@dataclass(frozen=True)
class Failure:
    position: int
    check: int
    stream: str | None
    seq: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "stream": self.stream, "seq": self.seq,
                "position": self.position, "reason": self.reason}


@dataclass
class VerifyReport:
    ok: bool
    events: int
    streams: int
    checkpoint_size: int | None
    checkpoint_root: str | None
    failures: list[Failure] = field(default_factory=list)
    kept_checkpoint: dict[str, Any] | None = None
    truncated_failures: bool = False

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok, "events": self.events, "streams": self.streams,
            "checkpoint": {"size": self.checkpoint_size, "root": self.checkpoint_root},
            "failures": [f.to_json() for f in self.failures],
        }
        if self.kept_checkpoint is not None:
            out["kept_checkpoint"] = self.kept_checkpoint
        return out


# ---- the parallel part: runs in worker processes (and inline for small ledgers) ---------------

SignatureJob = tuple[int, str, int, bytes, bytes, bytes]  # position, stream, seq, pub, sig, signed


def check_signatures(jobs: list[SignatureJob]) -> list[Failure]:
    """Check 2 (signature) and the canonical/schema half of check 1 for a batch of events."""
    failures = []
    keys: dict[bytes, Ed25519PublicKey] = {}   # a batch has few distinct signers
    for position, stream, seq, public, signature, signed in jobs:
        key = keys.get(public)
        if key is None:
            try:
                key = keys[public] = Ed25519PublicKey.from_public_bytes(public)
            except ValueError:
                key = None
        try:
            if key is None:
                raise InvalidSignature
            key.verify(signature, signed)
        except InvalidSignature:
            failures.append(Failure(position, 2, stream, seq,
                                    "signature does not verify under the named key"))
            continue
        try:
            statement = Statement.from_signed_bytes(signed)
        except ValueError as exc:
            failures.append(Failure(position, 1, stream, seq, f"signed bytes: {exc}"))
            continue
        problem = schema_problem(statement.type, statement.data)
        if problem:
            failures.append(Failure(position, 1, stream, seq, problem))
    return failures


def schema_problem(action: str, data: dict[str, Any]) -> str | None:
    if action not in ACTION_MODELS:
        return None if action == "init" else f"unknown event type {action!r}"
    payload = dict(data)
    if action in ("actor.add", "actor.rotate_key"):
        payload.pop("public_key", None)
    try:
        normalized = parse_data(action, payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"data does not match the {action} schema: {first.get('msg')}"
    if normalized != payload:
        return f"data is not in the canonical {action} form"
    return None


class CaseSource(Protocol):
    """Where the checker keeps case states and heads: a bounded cache over the store
    (:class:`ledger.replay.CaseCache`), or plain memory for a bundle."""

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, tuple[int, str]]: ...

    def put(self, case: str, state: CaseState | None, head: tuple[int, str]) -> None: ...


class EventChecker:
    """The per-event rules of verification, with no storage of its own: the directory is
    replayed as events arrive, cases live in ``cases``, failures go to ``fail``. Used by
    :class:`LedgerVerifier` over a store and by ``ledger.bundle`` over a bundle file."""

    def __init__(self, cases: CaseSource, fail: Callable[[int, int, str | None, int | None,
                                                          str], None], *,
                 trusted_log_key: bytes | None = None,
                 trusted_admin_key: bytes | None = None) -> None:
        self.cases = cases
        self.fail = fail
        self.trusted_log_key = trusted_log_key
        self.trusted_admin_key = trusted_admin_key
        self.directory = Directory()
        self.directory_head: tuple[int, str] = (0, ZERO_HASH)
        self.events = 0
        self.streams = 0

    def check(self, position: int, stream: str, seq: int, topic: str,
              state: bytes) -> SignatureJob | None:
        """Checks 1 and 3-6 of one stored event, in log order; returns its signature job
        (check 2, run by :func:`check_signatures`, possibly in another process)."""
        self.events += 1
        if seq == 1:
            self.streams += 1
        try:
            envelope = Envelope.from_bytes(state)
            parsed = Statement.from_signed_bytes(envelope.signed, strict=False)
            at = datetime.fromisoformat(parsed.at)   # parsed once, used by checks 4 and 6
            statement: Statement | None = parsed
        except (ValueError, TypeError):
            statement = None
        if statement is None:
            self.fail(position, 1, stream, seq, "stored state is not a signed xinfang statement")
            return None
        if (statement.stream, statement.seq, statement.type) != (stream, seq, topic):
            self.fail(position, 1, stream, seq,
                      f"signed bytes say {statement.stream}#{statement.seq} {statement.type}, "
                      f"the stored columns say {stream}#{seq} {topic}")
        if self.directory.initialized and statement.origin != self.directory.origin:
            self.fail(position, 1, stream, seq, f"origin {statement.origin!r} is not this "
                      "ledger's")
        self._check_time(position, stream, statement, envelope, at)
        job = self._check_key(position, stream, statement, envelope)
        if stream == DIRECTORY_STREAM:
            self.directory_head = self._check_chain(position, stream, statement, envelope,
                                                    self.directory_head)
            self._check_directory(position, stream, statement)
        else:
            case, head = self.cases.get(stream, position, seq)
            head = self._check_chain(position, stream, statement, envelope, head)
            case = self._check_case(position, stream, statement, case, at)
            self.cases.put(stream, case, head)
        return job

    def _check_chain(self, position: int, stream: str, statement: Statement,
                     envelope: Envelope, head: tuple[int, str]) -> tuple[int, str]:
        last_seq, last_hash = head
        if statement.seq != last_seq + 1:
            self.fail(position, 5, stream, statement.seq,
                      f"sequence jumps from {last_seq} to {statement.seq} (events missing or "
                      "reordered)")
        elif statement.prev != last_hash:
            self.fail(position, 5, stream, statement.seq,
                      "previous-hash link does not match the stream's previous event")
        return statement.seq, event_hash(envelope.signed)

    def _check_time(self, position: int, stream: str, statement: Statement,
                    envelope: Envelope, at: datetime) -> None:
        tolerance = timedelta(seconds=self.directory.policy.clock_tolerance_seconds)
        if at.tzinfo is None or at > envelope.recorded_at + tolerance:
            self.fail(position, 6, stream, statement.seq,
                      f"business time {statement.at} is after the recorded time "
                      f"{envelope.recorded_at.isoformat()} (beyond {tolerance})")

    def _check_key(self, position: int, stream: str, statement: Statement,
                   envelope: Envelope) -> SignatureJob | None:
        if statement.type == "init" and not self.directory.initialized:
            try:
                public = bytes.fromhex(statement.data.get("admin_key", ""))
            except ValueError:
                public = b""
            if self.trusted_admin_key is not None and public != self.trusted_admin_key:
                self.fail(position, 3, stream, statement.seq,
                          "the ledger's admin key is not the trusted admin key")
            if key_id(public) != statement.key:
                self.fail(position, 3, stream, statement.seq, "init is not signed by the admin "
                          "key it registers")
            return (position, stream, statement.seq, public, envelope.signature, envelope.signed)
        problem = self.directory.key_problem(statement.key, statement.actor, position)
        if problem is not None:
            self.fail(position, 3, stream, statement.seq, problem)
        record = self.directory.keys.get(statement.key)
        if record is None:
            return None
        return (position, stream, statement.seq, record.public, envelope.signature,
                envelope.signed)

    def _check_directory(self, position: int, stream: str, statement: Statement) -> None:
        try:
            try:
                self.directory.check(statement.type, statement.actor, statement.data)
            except DirectoryViolation as exc:
                self.fail(position, 4, stream, statement.seq, str(exc))
            self.directory.apply(statement.type, statement.data, position)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.fail(position, 1, stream, statement.seq,
                      f"data cannot be applied: {type(exc).__name__} {exc}")
            return
        if statement.type == "init" and self.trusted_log_key is not None and \
                self.directory.log_key != self.trusted_log_key:
            self.fail(position, 7, stream, statement.seq,
                      "the ledger's log key is not the trusted log key")

    def _check_case(self, position: int, stream: str, statement: Statement,
                    case: CaseState | None, at: datetime) -> CaseState | None:
        try:
            signer = self.directory.actor(statement.actor)
            if signer is None:
                self.fail(position, 4, stream, statement.seq,
                          f"{statement.actor} is not in the directory at this position")
            else:
                try:
                    check_action(case, statement.type, statement.data, signer, at,
                                 self.directory, lambda other: self.cases.get(other,
                                                                              position)[0])
                except CaseViolation as exc:
                    self.fail(position, 4, stream, statement.seq, str(exc))
            if case is None and statement.type != "register":
                return None
            return apply_action(case, stream, statement.type, statement.data, at)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.fail(position, 1, stream, statement.seq,
                      f"data cannot be applied: {type(exc).__name__} {exc}")
            return case



# ---- the sequential part --------------------------------------------------------------------

class LedgerVerifier:
    def __init__(self, store: Store, *, kept_checkpoint: str | None = None,
                 trusted_log_key: bytes | None = None, trusted_admin_key: bytes | None = None,
                 workers: int | None = None, case_cache: int = 20000,
                 progress: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.kept_text = kept_checkpoint
        self.trusted_log_key = trusted_log_key
        self.trusted_admin_key = trusted_admin_key
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self.progress = progress
        self.failures: list[Failure] = []
        self.truncated = False
        self.checker = EventChecker(CaseCache(store, case_cache), self.fail,
                                    trusted_log_key=trusted_log_key,
                                    trusted_admin_key=trusted_admin_key)
        self.directory = self.checker.directory
        self.tree = CompactRange()
        self.latest: StoredCheckpoint | None = None
        self.kept: Checkpoint | None = None
        self.kept_root: bytes | None = None
        self.kept_summary: dict[str, Any] | None = None

    def fail(self, position: int, check: int, stream: str | None, seq: int | None,
             reason: str) -> None:
        if len(self.failures) >= MAX_FAILURES:
            self.truncated = True
            return
        self.failures.append(Failure(position, check, stream, seq, reason))

    def run(self) -> VerifyReport:
        self._parse_kept()
        stored_leaves = _LeafCursor(self.store)
        checkpoints = _Cursor(self.store.iter_checkpoints())
        pool = self._pool()
        pending: deque[Future[list[Failure]]] = deque()
        jobs: list[SignatureJob] = []
        try:
            for note in self.store.iter_log(batch=BATCH):
                job = self._check_event(note.id, str(note.originator_id), note.originator_version,
                                        note.topic, note.state, stored_leaves)
                if job is not None:
                    jobs.append(job)
                self._compare_checkpoints(checkpoints, note.id)
                if len(jobs) >= BATCH:
                    self._submit(pool, pending, jobs)
                    jobs = []
                if self.progress and self.checker.events % BATCH == 0:
                    self.progress(self.checker.events)
            self._submit(pool, pending, jobs)
            while pending:
                self._collect(pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        for leaf_index, position in stored_leaves:
            self.fail(position, 7, None, None,
                      f"leaf {leaf_index} at position {position} was recorded but its event is "
                      "missing (deleted)")
            break
        self._check_uncovered(checkpoints)
        self._check_kept()
        self.failures.sort(key=lambda f: (f.position, f.check))
        return VerifyReport(
            ok=not self.failures, events=self.checker.events, streams=self.checker.streams,
            checkpoint_size=self.latest.size if self.latest else None,
            checkpoint_root=self.latest.root.hex() if self.latest else None,
            failures=self.failures, kept_checkpoint=self.kept_summary,
            truncated_failures=self.truncated)

    # ---- per event -----------------------------------------------------------------------

    def _check_event(self, position: int, stream: str, seq: int, topic: str, state: bytes,
                     stored_leaves: _LeafCursor) -> SignatureJob | None:
        self._check_leaf(position, stream, seq, state, stored_leaves)
        return self.checker.check(position, stream, seq, topic, state)

    def _check_leaf(self, position: int, stream: str, seq: int, state: bytes,
                    stored: _LeafCursor) -> None:
        digest = leaf_hash(leaf_bytes(position, state))
        index = self.tree.size
        self.tree.append(digest)
        while True:
            recorded = stored.peek()
            if recorded is None:
                self.fail(position, 7, stream, seq,
                          f"event at leaf {index} is not in the Merkle log recorded at write time")
                return
            leaf_index, leaf_position, leaf_digest = recorded
            if leaf_position < position:
                stored.pop()
                self.fail(leaf_position, 7, None, None,
                          f"leaf {leaf_index} at position {leaf_position} was recorded but its "
                          "event is missing (deleted)")
                continue
            if leaf_position > position:
                self.fail(position, 7, stream, seq,
                          f"event at position {position} was never recorded in the Merkle log")
                return
            stored.pop()
            if leaf_digest != digest:
                self.fail(position, 7, stream, seq,
                          "event bytes or position differ from the leaf recorded at write time")
            elif leaf_index != index:
                self.fail(position, 7, stream, seq,
                          f"event is leaf {index} but was recorded as leaf {leaf_index}")
            return

    # ---- parallel signature checks ----------------------------------------------------------

    def _pool(self) -> ProcessPoolExecutor | None:
        if self.workers <= 1 or self.store.max_position() < PARALLEL_THRESHOLD:
            return None
        return ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))

    def _submit(self, pool: ProcessPoolExecutor | None,
                pending: deque[Future[list[Failure]]], jobs: list[SignatureJob]) -> None:
        if not jobs:
            return
        if pool is None:
            for failure in check_signatures(jobs):
                self.fail(failure.position, failure.check, failure.stream, failure.seq,
                          failure.reason)
            return
        while len(pending) >= 2 * self.workers:
            self._collect(pending.popleft())
        pending.append(pool.submit(check_signatures, jobs))

    def _collect(self, future: Future[list[Failure]]) -> None:
        for failure in future.result():
            self.fail(failure.position, failure.check, failure.stream, failure.seq,
                      failure.reason)

    # ---- checkpoints -----------------------------------------------------------------------

    def _parse_kept(self) -> None:
        if self.kept_text is None:
            return
        try:
            self.kept = parse_checkpoint(self.kept_text).checkpoint
        except CheckpointError as exc:
            self.fail(0, 8, None, None, f"the kept checkpoint is malformed: {exc}")

    def _compare_checkpoints(self, checkpoints: _Cursor, position: int) -> None:
        """Compare, as the tree reaches their sizes, every stored and the kept checkpoint."""
        size = self.tree.size
        if self.kept is not None and self.kept.size == size:
            self.kept_root = self.tree.root()
        while (stored := checkpoints.peek()) is not None and stored.size <= size:
            checkpoints.pop()
            self.latest = stored
            if stored.size < size:
                continue  # only possible with duplicated sizes; reported below
            root = self.tree.root()
            try:
                note = verify_checkpoint(stored.note, self.directory.origin,
                                         self.directory.log_key, origin=self.directory.origin)
            except CheckpointError as exc:
                self.fail(position, 7, None, None,
                          f"stored checkpoint of size {stored.size} does not verify: {exc}")
                continue
            if note.size != stored.size or note.root != stored.root:
                self.fail(position, 7, None, None,
                          f"stored checkpoint of size {stored.size}: note and columns disagree")
            elif note.root != root:
                self.fail(position, 7, None, None,
                          f"the Merkle root over the first {stored.size} events differs from "
                          "the checkpoint signed then")

    def _check_uncovered(self, checkpoints: _Cursor) -> None:
        beyond = checkpoints.peek()
        if beyond is not None:
            self.fail(self._position_of_leaf(self.tree.size + 1) or self.store.max_position() + 1,
                      7, None, None,
                      f"a checkpoint covers {beyond.size} events but the log has only "
                      f"{self.tree.size} (events deleted from the tail?)")
            for stored in checkpoints:
                self.latest = stored
            return
        if self.latest is None:
            if self.checker.events:
                self.fail(0, 7, None, None, "the ledger has no checkpoint")
            return
        if self.tree.size > self.latest.size:
            self.fail(self._position_of_leaf(self.latest.size + 1), 7, None, None,
                      f"{self.tree.size - self.latest.size} event(s) after leaf "
                      f"{self.latest.size} are not covered by any signed checkpoint")

    def _position_of_leaf(self, size: int) -> int:
        """Log position of the ``size``-th leaf (1-based), 0 when unknown."""
        if size <= 0:
            return 0
        rows = self.store.query(f"SELECT position FROM {self.store.t('xf_leaves')} WHERE idx=?",
                                (size - 1,))
        return rows[0][0] if rows else 0

    def _check_kept(self) -> None:
        kept = self.kept
        if kept is None or self.kept_text is None:
            return
        self.kept_summary = {"size": kept.size, "root": kept.root.hex(), "consistent": False}
        try:
            verify_checkpoint(self.kept_text, self.directory.origin, self.directory.log_key,
                              origin=self.directory.origin)
        except CheckpointError as exc:
            self.fail(0, 8, None, None, f"the kept checkpoint does not verify under this "
                      f"ledger's log key: {exc}")
            return
        if kept.size > self.tree.size:
            self.fail(self._position_of_leaf(self.tree.size + 1) or self.store.max_position(),
                      8, None, None,
                      f"the kept checkpoint covers {kept.size} events but the ledger has only "
                      f"{self.tree.size}: rolled back or truncated")
            return
        if self.kept_root != kept.root:
            self.fail(self._position_of_leaf(kept.size), 8, None, None,
                      f"the first {kept.size} events differ from the kept checkpoint: the log "
                      "was rewritten or rolled back")
            return
        latest = self.latest
        if latest is not None and latest.size >= kept.size:
            try:
                proof = consistency_proof(kept.size, latest.size, self.store.get_node)
                good = verify_consistency(kept.size, latest.size, kept.root, latest.root, proof)
                reason = "the RFC 9162 consistency proof does not verify"
            except LedgerError as exc:   # a missing node is a failed proof
                good, proof, reason = False, [], str(exc)
            if not good:
                self.fail(self._position_of_leaf(kept.size), 8, None, None, reason)
                return
            self.kept_summary["proof"] = [p.hex() for p in proof]
        self.kept_summary["consistent"] = True


class _Cursor:
    """Peekable iterator."""

    def __init__(self, items: Iterator[Any]) -> None:
        self._items = items
        self._next = next(items, None)

    def peek(self) -> Any:
        return self._next

    def pop(self) -> None:
        self._next = next(self._items, None)

    def __iter__(self) -> Iterator[Any]:
        while self._next is not None:
            item = self._next
            self.pop()
            yield item


class _LeafCursor:
    """Streams the stored leaf table in index order, alongside the events."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: Iterator[tuple[int, int, bytes]] = self._iter()
        self._next: tuple[int, int, bytes] | None = next(self._rows, None)

    def _iter(self) -> Iterator[tuple[int, int, bytes]]:
        last = -1
        table = self.store.t("xf_leaves")
        while True:
            rows = self.store.query(f"SELECT idx, position, hash FROM {table} WHERE idx>? "
                                    "ORDER BY idx LIMIT ?", (last, BATCH))
            for idx, position, digest in rows:
                yield idx, position, bytes(digest)
            if len(rows) < BATCH:
                return
            last = rows[-1][0]

    def peek(self) -> tuple[int, int, bytes] | None:
        return self._next

    def pop(self) -> None:
        self._next = next(self._rows, None)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        while self._next is not None:
            idx, position, _ = self._next
            self.pop()
            yield idx, position


def verify_ledger(store: Store, **options: Any) -> VerifyReport:
    return LedgerVerifier(store, **options).run()


__all__ = ["CHECK_NAMES", "CaseSource", "EventChecker", "Failure", "LedgerVerifier",
           "VerifyReport", "check_signatures", "verify_ledger"]
