"""Rebuilding a case's state from its stored events (one read, state and head together)."""

from __future__ import annotations

import copy
from collections import OrderedDict

from ledger.domain.cases import CaseState, apply_action
from ledger.log.statement import ZERO_HASH, Envelope, Statement
from ledger.storage.store import Store

Head = tuple[int, str]


def replay_case(store: Store, case: str, *, before_position: int | None = None,
                state: CaseState | None = None, head: Head = (0, ZERO_HASH)
                ) -> tuple[CaseState | None, Head]:
    """The case's state and head (seq, hash) from its events before ``before_position``,
    continuing from ``state``/``head`` when given (only later events are read)."""
    for record in store.stream(case, after_seq=head[0]):
        if before_position is not None and record.position >= before_position:
            break
        envelope = Envelope.from_bytes(record.state)
        statement = Statement.from_signed_bytes(envelope.signed, strict=False)
        state = apply_action(state, case, statement.type, statement.data,
                             statement.business_time)
        head = (record.seq, envelope.hash)
    return state, head


class CaseCache:
    """Case states and heads for one pass over the log, in bounded memory.

    The most recently used ``capacity`` cases stay in memory. A case not in memory whose next
    event is not its first was evicted earlier: it is rebuilt from the store (events of a case
    cluster in time, so that is rare).
    """

    def __init__(self, store: Store, capacity: int = 20000) -> None:
        self.store = store
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[CaseState | None, Head]] = OrderedDict()
        self.rebuilds = 0

    def get(self, case: str, position: int, seq: int | None = None
            ) -> tuple[CaseState | None, Head]:
        entry = self._entries.get(case)
        if entry is not None:
            self._entries.move_to_end(case)
            return entry
        if seq == 1:
            entry = (None, (0, ZERO_HASH))
        else:
            self.rebuilds += 1
            entry = replay_case(self.store, case, before_position=position)
        self.put(case, *entry)
        return entry

    def put(self, case: str, state: CaseState | None, head: Head) -> None:
        self._entries[case] = (state, head)
        self._entries.move_to_end(case)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def current(self, case: str) -> tuple[CaseState | None, Head]:
        """The case as stored now: cached, plus whatever was appended since (one query).

        Returns a copy the caller may change; the cache keeps its own.
        """
        entry = self._entries.get(case)
        state, head = entry if entry is not None else (None, (0, ZERO_HASH))
        state, head = replay_case(self.store, case, state=copy.copy(state), head=head)
        self.put(case, state, head)
        return copy.copy(state), head
