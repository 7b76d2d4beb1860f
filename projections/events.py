"""Decode stored ledger events into the small, typed records the read-side folds consume.

The read side trusts what is stored: it does not check signatures or chains (``xinfang verify``
does). An envelope that does not even parse is reported as ``None`` so one damaged row cannot
wedge the projection; the verifier names it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from ledger.domain.policy import Policy, business_date
from ledger.errors import EnvironmentProblem, InputError, StorageError, VerificationError
from ledger.log.statement import (
    DIRECTORY_STREAM,
    ENVELOPE_MAGIC,
    EVENT_CONTEXT,
    Envelope,
    event_hash,
)
from ledger.storage.store import Store
from schemas.actions import CASE_ACTIONS, CASE_NO_PATTERN

DIRECTORY_TYPES = ("init", "unit.add", "actor.add")
"""Directory events the read model keeps (key rotations do not change names or units)."""
_HEADER = len(Envelope(0, bytes(64), b"").to_bytes())   # magic, recorded_at, signature
_BODY = len(EVENT_CONTEXT)
_scan = json.JSONDecoder().raw_decode   # parses a value at an offset (hot path: no wrapper)


Day = str
"""A business date in Asia/Shanghai as ISO text, ``YYYY-MM-DD``: it sorts and compares as a date,
and is stored as it is (no conversion on the hot path)."""


def business_day(moment: str) -> Day:
    """The Asia/Shanghai business date of an ISO 8601 time (or date)."""
    if len(moment) == 10:
        return moment
    # Most times are written in +08:00, whose first ten characters are the date.
    if moment.endswith("+08:00"):
        return moment[:10]
    return business_date(datetime.fromisoformat(moment)).isoformat()


class LedgerEvent(NamedTuple):
    """One stored event as the read side sees it (a tuple: built once per event, cheaply)."""

    position: int
    stream: str
    seq: int
    type: str
    at: str
    on: Day           # business date in Asia/Shanghai
    actor: str
    data: dict[str, Any]
    state: bytes      # the stored envelope

    @property
    def hash(self) -> str:
        """The event hash (SHA-256 of the signed bytes), as cited in evidence references."""
        return event_hash(self.state[_HEADER:])


def wanted(stream: str, topic: str) -> bool:
    """Whether the read side folds this log entry: the directory's names, or a case event
    (decided from the stored columns, before decoding)."""
    if stream == DIRECTORY_STREAM:
        return topic in DIRECTORY_TYPES
    return topic in CASE_ACTIONS and CASE_NO_PATTERN.match(stream) is not None


def decode(position: int, stream: str, seq: int, topic: str,
           state: bytes) -> LedgerEvent | None:
    """Parse one stored event (the row's columns and its envelope); None if unreadable.

    Lighter than ``Statement.from_signed_bytes``, because it runs once per event on every
    catch-up: stream, seq and type come from the row's columns, and of the statement only
    ``actor``, ``at`` and ``data`` are read (see ``_statement_fields``). Proving that columns and
    statement agree, that the JSON is canonical and the signature valid is the verifier's job.
    """
    if not state.startswith(ENVELOPE_MAGIC) or not state.startswith(EVENT_CONTEXT, _HEADER):
        return None
    try:
        actor, at, data = _statement_fields(state[_HEADER + _BODY:].decode())
        on = at[:10] if at.endswith("+08:00") else business_day(at)
        return LedgerEvent(position, stream, seq, topic, at, on, actor, data, state)
    except (ValueError, TypeError, KeyError):
        return None


_ACTOR = '{"actor":"'
_AT = ',"at":"'
_DATA = ',"data":'


def _statement_fields(text: str) -> tuple[str, str, dict[str, Any]]:
    """``actor``, ``at`` and ``data`` of a statement, JSON-parsing only ``data``.

    Stored statements are RFC 8785 canonical: no whitespace, keys sorted, so the text starts
    ``{"actor":"…","at":"…",`` and ``,"data":`` cannot occur earlier (inside a JSON string a
    quote is always escaped). Anything else takes the full parse.
    """
    if text.startswith(_ACTOR):
        actor_end = text.find('"', len(_ACTOR))
        if text.startswith(_AT, actor_end + 1):
            at_start = actor_end + 1 + len(_AT)
            at_end = text.find('"', at_start)
            data_key = text.find(_DATA, at_end)
            actor, at = text[len(_ACTOR):actor_end], text[at_start:at_end]
            if data_key > 0 and "\\" not in actor and "\\" not in at:
                data, _ = _scan(text, data_key + len(_DATA))
                if isinstance(data, dict):
                    return actor, at, data
    obj, _ = _scan(text, 0)
    if not isinstance(obj["actor"], str) or not isinstance(obj["at"], str) \
            or not isinstance(obj["data"], dict):
        raise ValueError("not a statement")
    return obj["actor"], obj["at"], obj["data"]


def ledger_policy(store: Store) -> Policy:
    """The policy the ledger runs under, as signed into its first (``init``) event."""
    record = store.event_at(DIRECTORY_STREAM, 1)
    if record is None:
        raise EnvironmentProblem("the ledger is not initialized", "Run `xinfang init` first.")
    event = decode(record.position, DIRECTORY_STREAM, record.seq, record.type, record.state)
    if event is None or event.type != "init":
        raise StorageError("the ledger's first event is not a readable init event",
                           "Run `xinfang verify` to find what was changed.")
    try:
        return Policy.recorded(event.data.get("policy", {}))
    except InputError as exc:   # a policy no writer could have signed: the init is forged
        raise VerificationError(f"the ledger's init event holds an invalid policy: {exc}",
                                "Run `xinfang verify` to find what was changed.") from None
