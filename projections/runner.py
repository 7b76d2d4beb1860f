"""Keep the read model current: a pull loop over the ledger's log, exactly once.

Each batch of events is folded in memory (each touched case loaded once, written once) and
committed in ONE transaction together with the new tracking position, so a crash anywhere leaves
rows and position consistent and the next catch-up resumes after the last committed batch.
The tracking row is read again (and on PostgreSQL locked) inside that transaction: if another
process advanced it meanwhile, this one drops its batch and continues from the new position, so
concurrent runners never apply an event twice. (eventsourcing's ProjectionRunner needs log
subscriptions, which its SQLite recorder does not implement; this loop works on both backends.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from eventsourcing.persistence import Notification

from ledger.policy import Policy
from ledger.statement import DIRECTORY_STREAM
from ledger.store import Store

from . import readmodel as rm
from .events import decode, ledger_policy, wanted
from .fold import ActorRow, AssignmentRow, CaseRow, UnitRow, apply, assignment, directory_row

BATCH = 1000


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up did."""

    applied: int      # log entries consumed by this call
    position: int     # tracked log position afterwards
    skipped: int      # unreadable events skipped so far (see `xinfang verify`)
    rebuilt: bool     # the read model was (re)created from position 0 by this call


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
        log = store.iter_log(after=position, batch=batch)
        while limit is None or applied < limit:
            size = batch if limit is None else min(batch, limit - applied)
            chunk = list(islice(log, size))
            if not chunk:
                break
            with store.cursor(commit=True) as cur:
                current = rm.read_tracking(cur, store, lock=True)
                moved = current is None or current[0] != position
                if not moved:
                    skipped += apply_batch(cur, store, chunk, policy)
                    rm.write_tracking(cur, store, chunk[-1].id, skipped)
            if moved:   # another runner committed first: continue after its position
                position, _, skipped = current or (0, 0, 0)
                log = store.iter_log(after=position, batch=batch)
                continue
            position = chunk[-1].id
            applied += len(chunk)
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


def apply_batch(cur: Any, store: Store, chunk: Sequence[Notification], policy: Policy) -> int:
    """Fold one batch of log entries and write the result; returns how many were unreadable."""
    skipped = 0
    events = []
    for note in chunk:
        if not wanted(note.originator_id, note.topic):
            continue
        event = decode(note.id, note.originator_id, note.state)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    registered_here = {e.stream for e in events if e.type == "register"}
    needed = {e.stream for e in events if e.is_case} - registered_here
    cases: dict[str, CaseRow] = rm.load_cases(cur, store, sorted(needed)) if needed else {}
    touched: dict[str, CaseRow] = {}
    assignments: list[AssignmentRow] = []
    repeats: list[tuple[str, str]] = []
    named: list[UnitRow | ActorRow] = []
    for event in events:
        if event.stream == DIRECTORY_STREAM:
            row_or_none = directory_row(event)
            if row_or_none is not None:
                named.append(row_or_none)
            continue
        if not event.is_case:
            continue
        row = apply(cases.get(event.stream), event, policy)
        if row is None:
            continue
        cases[event.stream] = touched[event.stream] = row
        if event.type == "register":
            repeats.extend((row.case_no, earlier) for earlier in row.repeat_of)
        elif event.type == "assign":
            assignments.append(assignment(row, event))
    rm.save_batch(cur, store, touched.values(), assignments, repeats, named)
    return skipped
