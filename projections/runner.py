"""Keep the read model current from the checked log, exactly once.

The read side folds only what the one checker accepted: catch-up consumes the checked log
(:class:`ledger.verification.log.CheckedLog`: Merkle log, signatures, keys, authorization,
chains, times) from where it last stopped, folds the events that pass every check, and records
the ones that fail in ``rm_failures`` (they are never folded, and the other read-side queries
leave them out too, see ``readmodel.counted_events``). An event counts only once a stored
checkpoint signed by the log key covers it and matches the tree recomputed from the rows.

Events are folded in chunks (the cases a chunk touches are loaded in one query unless already
held) and committed in ONE transaction per batch together with the new tracking row — the
position, and the recomputed tree's leaf count and frontier at that position — so a crash
leaves rows and tracking consistent and the next catch-up resumes after the last committed
batch. Batches end at a point a signed checkpoint proves. At commit the tracking row is read
again (and on PostgreSQL locked): if another process advanced it since this batch started, the
batch is dropped and catch-up continues from the new position, so concurrent runners never
apply an event twice. (eventsourcing's ProjectionRunner needs log subscriptions, which its
SQLite recorder does not implement; this loop works on both backends.)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ledger.domain.policy import Policy
from ledger.log.statement import DIRECTORY_STREAM
from ledger.storage.store import Store
from ledger.verification.checks import CheckedEvent
from ledger.verification.log import CheckedLog, Resume

from . import readmodel as rm
from .events import decode, ledger_policy, wanted
from .fold import ActorRow, AssignmentRow, CaseRow, UnitRow, apply, assignment, directory_row

BATCH = 50_000
"""Log entries per transaction (at most)."""
MAX_CASES = 20_000
"""Touched cases per transaction (at most): bounds memory on interleaved logs."""
CHUNK = 1_000
"""Checked events folded (and cases loaded) per round trip."""


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up did."""

    applied: int      # log entries consumed by this call
    position: int     # tracked log position afterwards
    skipped: int      # events that failed a check and were not folded (see `xinfang verify`)
    rebuilt: bool     # the read model was (re)created from position 0 by this call


@dataclass
class Batch:
    """One transaction's worth of folded changes; ``cases`` also caches rows between batches."""

    start: rm.Tracking
    cases: dict[str, CaseRow]
    touched: dict[str, CaseRow] = field(default_factory=dict)
    assignments: list[AssignmentRow] = field(default_factory=list)
    repeats: list[tuple[str, str]] = field(default_factory=list)
    names: list[UnitRow | ActorRow] = field(default_factory=list)
    failures: list[tuple[int, int, str | None, int | None, str]] = field(default_factory=list)
    entries: int = 0
    skipped: int = 0

    def __post_init__(self) -> None:
        self.skipped = self.start.skipped


def catch_up(store: Store, *, batch: int = BATCH, limit: int | None = None,
             log_key: bytes | None = None, admin_key: bytes | None = None) -> CatchUp:
    """Fold every checked event after the tracked position into the read model.

    ``limit`` stops after about that many log entries (at the next point a checkpoint
    proves); ``log_key``/``admin_key`` pin the trust anchors (raw public keys).
    """
    policy = ledger_policy(store)
    with rm.storage_errors():
        rebuilt = _prepare(store)
        applied = 0
        while True:
            with store.cursor() as cur:
                tracked = rm.read_tracking(cur, store) or _START
            moved, entries = _run(store, tracked, batch, None if limit is None
                                  else limit - applied, policy, log_key, admin_key)
            applied += entries
            if not moved or (limit is not None and applied >= limit):
                break
    with store.cursor() as cur:
        final = rm.read_tracking(cur, store) or _START
    return CatchUp(applied, final.position, final.skipped, rebuilt)


_START = rm.Tracking(0, rm.PROJECTION_VERSION, 0, 0, b"")


def _run(store: Store, tracked: rm.Tracking, batch: int, limit: int | None, policy: Policy,
         log_key: bytes | None, admin_key: bytes | None) -> tuple[bool, int]:
    """One pass from ``tracked``: (stopped because another runner moved on?, entries)."""
    resume = Resume(tracked.position, tracked.leaves, tracked.frontier) \
        if tracked.position or tracked.leaves else None
    log = CheckedLog(store, trusted_log_key=log_key, trusted_admin_key=admin_key,
                     resume=resume, hold_unproven=True)
    current = Batch(tracked, {})
    pending: list[CheckedEvent] = []
    applied = 0
    for event in log:
        pending.append(event)
        point = log.released
        if point is None or point.position != event.position:
            continue   # not yet a point a checkpoint proves
        step = batch if limit is None else min(batch, limit - applied)
        if len(pending) >= CHUNK or current.entries + len(pending) >= step:
            fold_events(store, current, pending, policy)
            pending = []
        if current.entries >= step or len(current.touched) >= MAX_CASES:
            if _commit(store, current, point):
                return True, applied
            applied += current.entries
            current = Batch(_tracking(point, current), current.cases
                            if len(current.cases) <= MAX_CASES else {})
            if limit is not None and applied >= limit:
                return False, applied
    if pending:
        fold_events(store, current, pending, policy)
    if current.entries and log.released is not None:
        if _commit(store, current, log.released):
            return True, applied
        applied += current.entries
    return False, applied


def _tracking(point: Resume, batch: Batch) -> rm.Tracking:
    return rm.Tracking(point.position, rm.PROJECTION_VERSION, batch.skipped, point.size,
                       point.frontier)


def rebuild(store: Store, *, batch: int = BATCH) -> CatchUp:
    """Drop every read-model table and replay the whole log into fresh ones."""
    ledger_policy(store)   # fail before dropping anything if this is not a ledger
    with rm.storage_errors(), store.cursor(commit=True) as cur:
        _reset(cur, store)
    return replace(catch_up(store, batch=batch), rebuilt=True)


def status(store: Store) -> dict[str, Any]:
    """Where the read model stands against the ledger (without catching up)."""
    head = store.max_position()
    if not rm.tables_exist(store):
        return {"position": 0, "head": head, "behind": head, "version": None,
                "current_version": rm.PROJECTION_VERSION, "skipped": 0}
    with rm.storage_errors(), store.cursor() as cur:
        version = rm.tracked_version(cur, store)
        tracked = rm.read_tracking(cur, store) if version == rm.PROJECTION_VERSION else None
    position, skipped = (tracked.position, tracked.skipped) if tracked else (0, 0)
    return {"position": position, "head": head, "behind": max(0, head - position),
            "version": version, "current_version": rm.PROJECTION_VERSION, "skipped": skipped}


def _reset(cur: Any, store: Store) -> None:
    rm.drop_tables(cur, store)
    rm.create_tables(cur, store)
    rm.write_tracking(cur, store, 0, 0)


def _prepare(store: Store) -> bool:
    """Create the tables on first use; recreate them if they were built by another version."""
    if rm.tables_exist(store):
        with store.cursor() as cur:
            if rm.tracked_version(cur, store) == rm.PROJECTION_VERSION:
                return False
    with store.cursor(commit=True) as cur:
        if rm.tables_exist(store) and \
                rm.tracked_version(cur, store, lock=True) == rm.PROJECTION_VERSION:
            return False   # another process prepared them meanwhile
        _reset(cur, store)
    return True


def fold_events(store: Store, batch: Batch, events: list[CheckedEvent], policy: Policy) -> None:
    """Fold checked events into ``batch``: those that passed every check into rows, the
    failing ones into ``rm_failures`` only."""
    cases, touched = batch.cases, batch.touched
    # Cases these events touch that are neither held nor registered here: one query.
    registered = {e.stream for e in events if e.type == "register" and e.ok}
    missing = {e.stream for e in events if e.ok} - registered - cases.keys() - {DIRECTORY_STREAM}
    if missing:
        with store.cursor() as cur:
            cases.update(rm.load_cases(cur, store, sorted(missing)))
    for checked in events:
        batch.entries += 1
        if not checked.ok:
            batch.skipped += 1
            batch.failures.extend((f.position, int(f.check), f.stream, f.seq, f.reason)
                                  for f in checked.failures)
            continue
        if not wanted(checked.stream, checked.type) or checked.envelope is None:
            continue
        event = decode(checked.position, checked.stream, checked.seq, checked.type,
                       checked.envelope.to_bytes())
        if event is None:
            continue
        if checked.stream == DIRECTORY_STREAM:
            named = directory_row(event)
            if named is not None:
                batch.names.append(named)
            continue
        row = apply(cases.get(checked.stream), event, policy)
        if row is None:
            continue
        cases[checked.stream] = touched[checked.stream] = row
        if checked.type == "register":
            batch.repeats.extend((row.case_no, earlier) for earlier in row.repeat_of)
        elif checked.type == "assign":
            batch.assignments.append(assignment(row, event))


def _commit(store: Store, batch: Batch, point: Resume) -> bool:
    """Write the batch and advance tracking to ``point``; True (and nothing written) when
    another runner moved the tracking row since this batch started."""
    with store.cursor(commit=True) as cur:
        tracked = rm.read_tracking(cur, store, lock=True)
        if tracked is None or tracked.position != batch.start.position:
            return True
        rm.save_batch(cur, store, batch.touched.values(), batch.assignments, batch.repeats,
                      batch.names)
        rm.save_failures(cur, store, batch.failures)
        rm.write_tracking(cur, store, point.position, batch.skipped, point.size,
                          point.frontier)
    return False
