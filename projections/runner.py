"""Keep the read model current: a pull loop over the ledger's log, exactly once.

Events are read in chunks, folded in memory (the cases a chunk touches are loaded in one query
unless already held), and committed in ONE transaction per batch together with the new tracking
position, so a crash anywhere leaves rows and position consistent and the next catch-up resumes
after the last committed batch. Each case touched in a batch is written once, so the cost is one
row write per touched case, not per event; a batch ends after ``batch`` log entries or
``MAX_CASES`` touched cases, whichever comes first.

Folding happens outside the write transaction (SQLite's write lock is held only to write). At
commit the tracking row is read again (and on PostgreSQL locked): if another process advanced it
since this batch started, the batch is dropped and the loop continues from the new position,
so concurrent runners never apply an event twice. (eventsourcing's ProjectionRunner needs log
subscriptions, which its SQLite recorder does not implement; this loop works on both backends.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ledger.domain.policy import Policy
from ledger.log.statement import DIRECTORY_STREAM
from ledger.storage.store import Store

from . import readmodel as rm
from .events import decode, ledger_policy, wanted
from .fold import ActorRow, AssignmentRow, CaseRow, UnitRow, apply, assignment, directory_row

BATCH = 50_000
"""Log entries per transaction (at most)."""
MAX_CASES = 20_000
"""Touched cases per transaction (at most): bounds memory on interleaved logs."""
CHUNK = 1_000
"""Log entries read (and cases loaded) per round trip."""

Entry = tuple[int, str, int, str, bytes]
"""A log entry as read: (position, stream, seq, topic, stored state)."""


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up did."""

    applied: int      # log entries consumed by this call
    position: int     # tracked log position afterwards
    skipped: int      # unreadable events skipped so far (see `xinfang verify`)
    rebuilt: bool     # the read model was (re)created from position 0 by this call


@dataclass
class Batch:
    """One transaction's worth of folded changes; ``cases`` also caches rows between batches."""

    start: int
    skipped: int
    cases: dict[str, CaseRow]
    touched: dict[str, CaseRow] = field(default_factory=dict)
    assignments: list[AssignmentRow] = field(default_factory=list)
    repeats: list[tuple[str, str]] = field(default_factory=list)
    names: list[UnitRow | ActorRow] = field(default_factory=list)
    entries: int = 0
    end: int = 0


def catch_up(store: Store, *, batch: int = BATCH, limit: int | None = None) -> CatchUp:
    """Fold every event after the tracked position into the read model.

    ``limit`` stops after that many log entries (the rest waits for the next call).
    """
    policy = ledger_policy(store)
    with rm.storage_errors():
        rebuilt = _prepare(store)
        with store.cursor() as cur:
            position, _, skipped = rm.read_tracking(cur, store) or (0, 0, 0)
        applied = 0
        cache: dict[str, CaseRow] = {}
        while limit is None or applied < limit:
            want = batch if limit is None else min(batch, limit - applied)
            current = Batch(position, skipped, cache)
            fold_entries(store, current, read_log(store, position, want), policy)
            if current.entries == 0:
                break
            moved = _commit(store, current)
            if moved is not None:   # another runner committed first: continue after it
                position, skipped = moved
                cache = {}
                continue
            position, skipped = current.end, current.skipped
            applied += current.entries
            if len(cache) > MAX_CASES:
                cache = {}
    return CatchUp(applied, position, skipped, rebuilt)


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
        position, version, skipped = rm.read_tracking(cur, store) or (0, None, 0)
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
            tracked = rm.read_tracking(cur, store)
        if tracked is not None and tracked[1] == rm.PROJECTION_VERSION:
            return False
    with store.cursor(commit=True) as cur:
        tracked = rm.read_tracking(cur, store, lock=True) if rm.tables_exist(store) else None
        if tracked is not None and tracked[1] == rm.PROJECTION_VERSION:
            return False   # another process prepared them meanwhile
        _reset(cur, store)
    return True


def read_log(store: Store, after: int, limit: int) -> Iterator[list[Entry]]:
    """Up to ``limit`` log entries after ``after``, ``CHUNK`` per query.

    Plain tuples straight from the events table: building eventsourcing ``Notification``
    objects (``Store.iter_log``) costs more than folding the event.
    """
    sql = (f"SELECT {store.position_column}, originator_id, originator_version, topic, state "
           f"FROM {store.events_table} WHERE {store.position_column} > ? "
           f"ORDER BY {store.position_column} LIMIT ?")
    left = limit
    while left > 0:
        chunk = store.query(sql, (after, min(CHUNK, left)))
        if not chunk:
            return
        left -= len(chunk)
        after = chunk[-1][0]
        yield chunk  # type: ignore[misc]


def fold_entries(store: Store, batch: Batch, chunks: Iterator[list[Entry]],
                 policy: Policy) -> None:
    """Fold chunks of log entries into ``batch`` until it is full (by entries or cases)."""
    cases, touched = batch.cases, batch.touched
    for chunk in chunks:
        # Cases this chunk touches that are neither held nor registered in it: one query.
        registered = {entry[1] for entry in chunk if entry[3] == "register"}
        missing = {entry[1] for entry in chunk} - registered - cases.keys() - {DIRECTORY_STREAM}
        if missing:
            with store.cursor() as cur:
                cases.update(rm.load_cases(cur, store, sorted(missing)))
        for position, stream, seq, topic, state in chunk:
            if not wanted(stream, topic):
                continue
            event = decode(position, stream, seq, topic, state)
            if event is None:
                batch.skipped += 1
            elif stream == DIRECTORY_STREAM:
                named = directory_row(event)
                if named is not None:
                    batch.names.append(named)
            else:
                row = apply(cases.get(stream), event, policy)
                if row is None:
                    continue
                cases[stream] = touched[stream] = row
                if topic == "register":
                    batch.repeats.extend((row.case_no, earlier) for earlier in row.repeat_of)
                elif topic == "assign":
                    batch.assignments.append(assignment(row, event))
        batch.entries += len(chunk)
        batch.end = chunk[-1][0]
        if len(touched) >= MAX_CASES:
            return


def _commit(store: Store, batch: Batch) -> tuple[int, int] | None:
    """Write the batch and advance tracking, unless another runner moved it (then return where
    it stands, and nothing is written)."""
    with store.cursor(commit=True) as cur:
        tracked = rm.read_tracking(cur, store, lock=True)
        if tracked is None or tracked[0] != batch.start:
            return (tracked[0], tracked[2]) if tracked else (0, 0)
        rm.save_batch(cur, store, batch.touched.values(), batch.assignments, batch.repeats,
                      batch.names)
        rm.write_tracking(cur, store, batch.end, batch.skipped)
    return None
