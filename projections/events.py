"""Decode stored ledger events into the small, typed records the read-side folds consume.

The read side trusts what is stored: it does not check signatures or chains (``xinfang verify``
does). An envelope that does not even parse is reported as ``None`` so one damaged row cannot
wedge the projection; the verifier names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.errors import EnvironmentProblem, StorageError
from ledger.policy import Policy, business_date
from ledger.statement import DIRECTORY_STREAM, Envelope, Statement, event_hash
from ledger.store import Store
from schemas.actions import CASE_ACTIONS, CASE_NO_PATTERN

DIRECTORY_TYPES = ("init", "unit.add", "actor.add")
"""Directory events the read model keeps (key rotations do not change names or units)."""


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One stored event as the read side sees it."""

    position: int
    stream: str
    seq: int
    type: str
    at: str
    on: date          # business date in Asia/Shanghai
    actor: str
    data: dict[str, Any]
    signed: bytes

    @property
    def hash(self) -> str:
        """The event hash (SHA-256 of the signed bytes), as cited in evidence references."""
        return event_hash(self.signed)

    @property
    def is_case(self) -> bool:
        return self.type in CASE_ACTIONS and CASE_NO_PATTERN.match(self.stream) is not None


def wanted(stream: str, topic: str) -> bool:
    """Whether the read side folds events of this stream and topic (decided before decoding)."""
    if stream == DIRECTORY_STREAM:
        return topic in DIRECTORY_TYPES
    return topic in CASE_ACTIONS


def decode(position: int, stream: str, state: bytes) -> LedgerEvent | None:
    """Parse one stored envelope; None if it is not a readable xinfang event."""
    try:
        signed = Envelope.from_bytes(state).signed
        statement = Statement.from_signed_bytes(signed, strict=False)
        on = business_date(datetime.fromisoformat(statement.at))
    except (ValueError, TypeError, KeyError):
        return None
    if statement.stream != stream:
        return None
    return LedgerEvent(position, stream, statement.seq, statement.type, statement.at, on,
                       statement.actor, statement.data, signed)


def ledger_policy(store: Store) -> Policy:
    """The policy the ledger runs under, as signed into its first (``init``) event."""
    record = store.event_at(DIRECTORY_STREAM, 1)
    if record is None:
        raise EnvironmentProblem("the ledger is not initialized", "Run `xinfang init` first.")
    event = decode(record.position, DIRECTORY_STREAM, record.state)
    if event is None or event.type != "init":
        raise StorageError("the ledger's first event is not a readable init event",
                           "Run `xinfang verify` to find what was changed.")
    return Policy.from_data(event.data.get("policy", {}))
