"""The checked log: every stored row in position order, each judged, as a stream of verdicts.

``verify`` consumes the whole of it; the read model consumes it from where it last stopped. Per
row, in order:

1. the Merkle log (check 7): the row must sit at the position of the next stored leaf and its
   recomputed leaf hash must equal it; a row that no leaf covers (at position zero or below,
   beyond the last leaf, in a PostgreSQL id gap) is *outside the log*: it fails and is judged
   no further. The tree recomputed from the rows must have, at each stored checkpoint's size,
   that checkpoint's root, the checkpoint being signed by the log key. Verdicts are held back
   until such a checkpoint covers them: an event counts only once a signed tree head that
   matches the recomputed tree covers it;
2. the order-free half of the per-event checks — the signature (libsodium), then the schema
   of the data decoded in step 1 — in chunks of a batch, a few batches ahead, in worker
   processes on every core for large runs, before
3. the order-dependent half (:class:`~ledger.verification.checker.EventChecker`) with the
   order-free verdict already known, so a failing event never changes a state.

Each statement is decoded once, here, with its canonical form noted (step 1). The pass
balances itself: when it needs a chunk that no worker has started yet, it takes the chunk back
and checks it inline, so neither the main process nor the workers wait while the other has
work. Processes, not threads, although libsodium releases the GIL: a thread returning from one
verify must win the GIL back from the main thread's Python before it can start the next, which
costs about half of what it verifies (measured in bench/README.md).

Memory stays flat: rows are read in batches, and only per-stream heads, a bounded cache of case
states (rebuilt through the checked view when evicted), the Merkle frontier and the verdicts
not yet covered by a checkpoint are held.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Any

from ledger.domain.cases import CaseState
from ledger.log.checkpoint import CheckpointError, verify_checkpoint
from ledger.log.merkle import CompactRange, leaf_hash
from ledger.log.statement import DIRECTORY_STREAM, ZERO_HASH, leaf_bytes
from ledger.storage.store import Store, StoredCheckpoint
from ledger.verification.checker import (
    EventChecker,
    Head,
    KeyBook,
    LogEntry,
    OrderFreeJob,
    hex_key,
    order_free_batch,
    parse_entry,
)
from ledger.verification.checks import Check, CheckedEvent, Failure
from ledger.verification.view import LedgerView

BATCH = 2000
CHUNK = 250                  # order-free jobs per pool task: small enough to take back
PARALLEL_THRESHOLD = 20000   # below this many rows a process pool costs more than it saves
WORKER_NICENESS = 2          # workers yield a little to the sequential main process
_LEAF_POSITIONS = range(1, 2**64)   # leaf bytes carry the position as u64
_FIRST = -(2**63)


class ViewCases:
    """Case states and heads for one pass, in bounded memory: the most recently used
    ``capacity`` cases stay in memory; a case not held (evicted, or from before where the
    pass started) is rebuilt through the checked view."""

    def __init__(self, view: Callable[[], LedgerView], capacity: int) -> None:
        self.view = view
        self.capacity = capacity
        self.entries: OrderedDict[str, tuple[CaseState | None, Head]] = OrderedDict()

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, Head]:
        entry = self.entries.get(case)
        if entry is not None:
            self.entries.move_to_end(case)
            return entry
        # a first event chains to nothing; any other is rebuilt through the checked view
        entry = (None, (0, ZERO_HASH)) if seq == 1 else self.view().head_before(case, position)
        self.put(case, *entry)
        return entry

    def put(self, case: str, state: CaseState | None, head: Head) -> None:
        self.entries[case] = (state, head)
        self.entries.move_to_end(case)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)


@dataclass(frozen=True)
class Resume:
    """Where a previous pass stopped: the last position it judged and the recomputed tree
    (leaf count and compact-range hashes) as it stood there."""

    position: int
    size: int
    frontier: bytes


@dataclass
class _Batch:
    entries: list[LogEntry]
    extra: dict[int, list[Failure]]      # check-7 failures found while reading, by position
    outside: list[CheckedEvent]          # rows outside the log, already judged
    # Where the recomputed tree reached a stored checkpoint: position → (None when the
    # checkpoint proves everything up to there, else why it does not; where to resume).
    proven: dict[int, tuple[str | None, Resume]] = field(default_factory=dict)
    checked: list[LogEntry] = field(default_factory=list)   # entries with order-free jobs
    jobs: list[OrderFreeJob] = field(default_factory=list)
    futures: list[Future[list[tuple[int, Check, str]]]] = field(default_factory=list)


class CheckedLog:
    """Iterate ``CheckedEvent`` verdicts of every stored row in position order.

    Failures of the log as a whole (a deleted event's leaf, a checkpoint that does not
    verify or whose root differs) are collected in ``log_failures``; they are also attached,
    as *collective* failures, to each event of the run they make unproven, so that no such
    event counts.
    """

    def __init__(self, store: Store, *, trusted_log_key: bytes | None = None,
                 trusted_admin_key: bytes | None = None, workers: int | None = None,
                 case_cache: int = 20000, resume: Resume | None = None,
                 hold_unproven: bool = False, executor: str = "process") -> None:
        self.store = store
        self.trusted_log_key = trusted_log_key
        self.trusted_admin_key = trusted_admin_key
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        if executor not in ("process", "thread"):
            raise ValueError(f"executor is 'process' or 'thread', not {executor!r}")
        self.executor = executor   # where signature batches run ("thread": for measuring)
        self.resume = resume
        # True: verdicts no checkpoint proves by the end are not yielded at all (a reader
        # that resumes later judges them then); False: they are, marked failing.
        self.hold_unproven = hold_unproven
        #: The last point everything yielded so far is proven up to (for resuming).
        self.released: Resume | None = resume
        self.log_failures: list[Failure] = []
        self._view: LedgerView | None = None
        self.cases = ViewCases(self.view, case_cache)
        self.checker = EventChecker(self.cases, trusted_log_key=trusted_log_key,
                                    trusted_admin_key=trusted_admin_key)
        self.keybook = KeyBook()
        self.tree = CompactRange()
        self.latest: StoredCheckpoint | None = None
        self.origin = ""
        self.log_key: bytes = trusted_log_key or b""
        self.position = resume.position if resume else _FIRST
        self.outside_rows = 0
        self.roots_at: dict[int, bytes | None] = {}   # sizes to note the recomputed root at
        if resume is not None:
            self._resume(resume)

    def view(self) -> LedgerView:
        if self._view is None:
            self._view = LedgerView(self.store, log_key=self.trusted_log_key,
                                    admin_key=self.trusted_admin_key)
        return self._view

    def _resume(self, resume: Resume) -> None:
        """Start after ``resume``: the directory and stream heads as the checked view holds
        them there, the tree from the kept frontier (not from the database's)."""
        view = self.view()
        self.checker.directory = view.directory_before(resume.position + 1)
        self.checker.directory_head = view.head_before(DIRECTORY_STREAM, resume.position + 1)[1]
        for event in view.directory_stream().events:
            if event.position <= resume.position and event.statement is not None:
                self.keybook.learn_statement(event.statement)
        self.tree = CompactRange.from_bytes(resume.size, resume.frontier)
        self.origin = self.checker.directory.origin
        if self.trusted_log_key is None:
            self.log_key = self.checker.directory.log_key

    # ---- the pass -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[CheckedEvent]:
        stored_leaves = _Cursor(self.store.iter_leaves(batch=BATCH, after=self.tree.size - 1))
        checkpoints = _Cursor(self.store.iter_checkpoints(after=self.tree.size))
        pool = self._pool()
        pending: deque[_Batch] = deque()
        held: list[CheckedEvent] = []   # judged, waiting for a checkpoint to cover them
        try:
            for rows in self.store.iter_rows(batch=BATCH, after=self.position):
                batch = _Batch([], {}, [])
                for position, stream, seq, topic, state in rows:
                    self._read_row(position, stream, seq, topic, state, stored_leaves, batch)
                    self.position = position
                    self._compare_checkpoints(checkpoints, position, batch)
                self._submit(pool, batch)
                pending.append(batch)
                while len(pending) > max(2, 2 * self.workers if pool else 0):
                    yield from self._finish(pending.popleft(), held)
            while pending:
                yield from self._finish(pending.popleft(), held)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        for leaf_index, position, _ in stored_leaves:
            self.log_failures.append(Failure(
                position, Check.LOG, None, None, f"leaf {leaf_index} at position {position} "
                "was recorded but its event is missing (deleted)"))
            break
        uncovered = self._check_uncovered(checkpoints)
        if held and not self.hold_unproven:
            yield from _marked(held, uncovered or "not covered by a signed checkpoint")

    # ---- step 1: one row against the Merkle log --------------------------------------------

    def _read_row(self, position: int, stream: str, seq: int, topic: str, state: bytes,
                  stored: _Cursor, batch: _Batch) -> None:
        while True:
            recorded = stored.peek()
            if recorded is None or recorded[1] > position:
                where = "beyond the last leaf" if recorded is None else "in a gap between leaves"
                entry = parse_entry(position, stream, seq, topic, state)
                self.outside_rows += 1
                batch.outside.append(CheckedEvent(
                    position, stream, seq, topic, entry.envelope, entry.statement,
                    (Failure(position, Check.LOG, stream, seq, f"stored at position "
                             f"{position} ({where}), which no leaf of the Merkle log covers: "
                             "a row outside the log"),), outside=True))
                return
            leaf_index, leaf_position, leaf_digest = recorded
            if leaf_position < position:
                stored.pop()
                self.log_failures.append(Failure(
                    leaf_position, Check.LOG, None, None, f"leaf {leaf_index} at position "
                    f"{leaf_position} was recorded but its event is missing (deleted)"))
                continue
            stored.pop()
            break
        entry = parse_entry(position, stream, seq, topic, state, check_form=True)
        self.keybook.learn(entry)
        if stream == DIRECTORY_STREAM and seq == 1 and entry.statement is not None \
                and not self.origin:
            self.origin = entry.statement.origin
            if self.trusted_log_key is None:
                self.log_key = hex_key(entry.statement.data.get("log_key")) or b""
        batch.entries.append(entry)
        if position not in _LEAF_POSITIONS:
            batch.extra[position] = [Failure(position, Check.LOG, stream, seq,
                                             f"position {position} cannot be a leaf position")]
            return
        digest = leaf_hash(leaf_bytes(position, state))
        index = self.tree.size
        self.tree.append(digest)
        if self.tree.size in self.roots_at:
            self.roots_at[self.tree.size] = self.tree.root()
        if leaf_digest != digest:
            batch.extra[position] = [Failure(position, Check.LOG, stream, seq, "event bytes or "
                                             "position differ from the leaf recorded at write "
                                             "time")]
        elif leaf_index != index:
            batch.extra[position] = [Failure(position, Check.LOG, stream, seq, f"event is leaf "
                                             f"{index} but was recorded as leaf {leaf_index}")]

    # ---- steps 2 and 3: the per-event checks ------------------------------------------------

    def _pool(self) -> Executor | None:
        if self.workers <= 1 or self.store.max_position() - max(self.position, 0) \
                < PARALLEL_THRESHOLD:
            return None
        if self.executor == "thread":
            return ThreadPoolExecutor(self.workers)
        return ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                   initializer=_lower_priority)

    def _submit(self, pool: Executor | None, batch: _Batch) -> None:
        job_of = self.keybook.order_free_job
        for entry in batch.entries:
            job = job_of(entry)
            if job is not None:
                batch.jobs.append(job)
                batch.checked.append(entry)
        if pool is not None:
            batch.futures = [pool.submit(order_free_batch, batch.jobs[i:i + CHUNK])
                             for i in range(0, len(batch.jobs), CHUNK)]

    def _order_free(self, batch: _Batch) -> dict[int, list[Failure]]:
        """The order-free failures of a batch by position; a chunk no worker has started yet
        is taken back and checked here (the pass never waits while there is work)."""
        found: list[tuple[int, Check, str]] = []
        if not batch.futures:
            found = order_free_batch(batch.jobs)
        else:
            for n, future in enumerate(batch.futures):
                offset = n * CHUNK
                part = (order_free_batch(batch.jobs[offset:offset + CHUNK]) if future.cancel()
                        else future.result())
                found.extend((offset + index, check, reason) for index, check, reason in part)
        early: dict[int, list[Failure]] = {}
        for index, check, reason in found:
            entry = batch.checked[index]
            early[entry.position] = [Failure(entry.position, check, entry.stream, entry.seq,
                                             reason)]
        return early

    def _finish(self, batch: _Batch, held: list[CheckedEvent]) -> Iterator[CheckedEvent]:
        """Judge a batch in order once its order-free verdicts are known."""
        early = self._order_free(batch)
        outside = iter(batch.outside)
        next_outside = next(outside, None)
        for entry in batch.entries:
            while next_outside is not None and next_outside.position < entry.position:
                yield from self._release_outside(next_outside, held)
                next_outside = next(outside, None)
            found, extra = early.get(entry.position), batch.extra.get(entry.position)
            held.append(self.checker.check(
                entry, found + extra if found and extra else found or extra or ()))
            if entry.position in batch.proven:   # a stored checkpoint's size was reached here
                problem, point = batch.proven[entry.position]
                last = len(held) - 1
                for i, event in enumerate(_marked(held, problem)):
                    if i == last:
                        self.released = point
                    yield event
                held.clear()
        while next_outside is not None:
            yield from self._release_outside(next_outside, held)
            next_outside = next(outside, None)

    def _release_outside(self, event: CheckedEvent,
                         held: list[CheckedEvent]) -> Iterator[CheckedEvent]:
        """A row outside the log is judged no further: nothing to hold back. When nothing
        is held either, everything up to it is settled, so a reader may resume after it."""
        if not held:
            point = self.released
            self.released = Resume(event.position, point.size if point else 0,
                                   point.frontier if point else b"")
        yield event

    # ---- checkpoints -----------------------------------------------------------------------

    def _compare_checkpoints(self, checkpoints: _Cursor, position: int, batch: _Batch) -> None:
        """At each stored checkpoint's size: is the recomputed tree the one it signs? The
        verdict is noted for ``_finish`` in ``batch.proven``."""
        size = self.tree.size
        while (stored := checkpoints.peek()) is not None and stored.size <= size:
            checkpoints.pop()
            self.latest = stored
            if stored.size < size:
                continue  # only possible with duplicated sizes; reported below
            problem = self._checkpoint_problem(stored)
            if problem is not None:
                self.log_failures.append(Failure(position, Check.LOG, None, None, problem))
            if problem is not None or position not in batch.proven:
                batch.proven[position] = (problem, Resume(position, self.tree.size,
                                                          self.tree.to_bytes()))

    def _checkpoint_problem(self, stored: StoredCheckpoint) -> str | None:
        try:
            note = verify_checkpoint(stored.note, self.origin, self.log_key, origin=self.origin)
        except (CheckpointError, ValueError) as exc:
            return f"stored checkpoint of size {stored.size} does not verify: {exc}"
        if note.size != stored.size or note.root != stored.root:
            return f"stored checkpoint of size {stored.size}: note and columns disagree"
        if note.root != self.tree.root():
            return (f"the Merkle root over the first {stored.size} events differs from the "
                    "checkpoint signed then")
        return None

    def _check_uncovered(self, checkpoints: _Cursor) -> str | None:
        beyond = checkpoints.peek()
        if beyond is not None:
            reason = (f"a checkpoint covers {beyond.size} events but the log has only "
                      f"{self.tree.size} (events deleted from the tail?)")
            self.log_failures.append(Failure(
                self.position_of_leaf(self.tree.size + 1) or self.store.max_position() + 1,
                Check.LOG, None, None, reason))
            for stored in checkpoints:
                self.latest = stored
            return reason
        if self.latest is None:
            if self.checker.events and self.resume is None:
                self.log_failures.append(Failure(0, Check.LOG, None, None,
                                                 "the ledger has no checkpoint"))
                return "the ledger has no checkpoint"
            return None
        if self.tree.size > self.latest.size:
            reason = (f"{self.tree.size - self.latest.size} event(s) after leaf "
                      f"{self.latest.size} are not covered by any signed checkpoint")
            self.log_failures.append(Failure(self.position_of_leaf(self.latest.size + 1),
                                             Check.LOG, None, None, reason))
            return reason
        return None

    def position_of_leaf(self, size: int) -> int:
        """Log position of the ``size``-th leaf (1-based), 0 when unknown."""
        if size <= 0:
            return 0
        return self.store.position_of_leaf(size - 1) or 0


def _lower_priority() -> None:
    """Worker initializer: below the main process, which does the sequential work."""
    with suppress(OSError):   # not permitted here: the workers run at normal priority
        os.nice(WORKER_NICENESS)


def _marked(events: list[CheckedEvent], reason: str | None) -> Iterator[CheckedEvent]:
    """Release held verdicts; with ``reason``, each gets a collective check-7 failure."""
    for event in events:
        if reason is None:
            yield event
        else:
            yield replace(event, failures=(*event.failures, Failure(
                event.position, Check.LOG, event.stream, event.seq, reason, collective=True)))


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


__all__ = ["CheckedLog", "Resume", "ViewCases"]
