"""Cases as they stood at the end of a business day ("as of"), exactly.

A read-model row is the fold of all of a case's events. When nothing happened to the case after
the as-of date (``max_on <= as_of``, the usual case for "as of today") the row is the answer.
Otherwise the case is refolded from its own stream with the same pure fold, keeping only events
whose business date is on or before the as-of date (the registration always counts: it defines
the case). Only events the checked log accepted are refolded (``counted_events``). One query
per 500 such cases; no second set of rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from ledger.domain.policy import Policy
from ledger.storage.store import Store

from .events import decode
from .fold import CaseRow, apply
from .readmodel import counted_events


def as_of_rows(store: Store, rows: Sequence[CaseRow], as_of: date,
               policy: Policy) -> list[CaseRow]:
    """``rows`` (in the same order) as they stood at the end of ``as_of``."""
    day = as_of.isoformat()
    stale = [row.case_no for row in rows if row.max_on > day]
    if not stale:
        return list(rows)
    refolded = refold(store, stale, as_of, policy)
    return [refolded.get(row.case_no, row) for row in rows]


def refold(store: Store, case_nos: Sequence[str], as_of: date,
           policy: Policy) -> dict[str, CaseRow]:
    """Fold these cases' streams from the ledger, up to the end of ``as_of``."""
    day = as_of.isoformat()
    out: dict[str, CaseRow] = {}
    for start in range(0, len(case_nos), 500):
        chunk = list(case_nos[start:start + 500])
        # Only the events the checked log accepted, as the read model was folded from.
        for position, stream, seq, topic, state in counted_events(store, chunk):
            event = decode(position, stream, seq, topic, bytes(state))
            if event is None or (event.type != "register" and event.on > day):
                continue
            row = apply(out.get(stream), event, policy)
            if row is not None:
                out[stream] = row
    return out
