"""A case's audit trail (审计轨迹): every event with its actor, times, and verdicts.

Each verdict is judged as ``verify`` judges it: the signature under the named key, the key's
validity and the actor's authorization at that event's log position (directory replayed up to
there), and the stream's hash link.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ledger.domain.cases import CaseState, CaseViolation, apply_action, check_action
from ledger.domain.directory import Directory
from ledger.domain.policy import Policy
from ledger.errors import InputError
from ledger.log.keys import verify_signature
from ledger.log.statement import DIRECTORY_STREAM, ZERO_HASH, Envelope, Statement
from ledger.storage.replay import replay_case
from ledger.storage.store import Store, StoredRecord


@dataclass(frozen=True)
class HistoryEvent:
    seq: int
    position: int
    type: str
    at: str
    recorded_at: str
    actor: str
    role: str
    unit: str | None
    data: dict[str, Any]
    hash: str
    key: str
    signature_ok: bool
    authorized: bool
    chain_ok: bool
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "position": self.position, "type": self.type, "at": self.at,
                "recorded_at": self.recorded_at, "actor": self.actor, "role": self.role,
                "unit": self.unit, "data": self.data, "hash": self.hash, "key": self.key,
                "signature_ok": self.signature_ok, "authorized": self.authorized,
                "chain_ok": self.chain_ok, "problems": list(self.problems)}


@dataclass
class CaseHistory:
    case: str
    events: list[HistoryEvent]
    state: CaseState | None
    deadlines: dict[str, date | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(e.signature_ok and e.authorized and e.chain_ok for e in self.events)

    def to_json(self) -> dict[str, Any]:
        state = self.state
        return {
            "case": self.case,
            "ok": self.ok,
            "status": case_status(state) if state else None,
            "deadlines": {k: (v.isoformat() if v else None) for k, v in self.deadlines.items()},
            "events": [e.to_json() for e in self.events],
        }


def case_status(state: CaseState) -> str:
    if state.final:
        return "final"
    if state.closed:
        return "closed"
    if state.decision in ("not_accepted", "not_reaccepted"):
        return state.decision
    if state.replied:
        return "replied"
    if state.handler:
        return "assigned"
    if state.decision == "accepted":
        return "accepted"
    return "registered"


def deadlines(state: CaseState, policy: Policy) -> dict[str, date | None]:
    out: dict[str, date | None] = {
        "acceptance": state.acceptance_due(policy),
        "handling": state.handling_due(policy),
        "supervision": state.supervision_due,
        "review_request": None,
    }
    if state.reply_served and state.review_stage is None:
        out["review_request"] = policy.add_days(state.reply_served, policy.review_request_days)
    return out


def _role_for(action: str, roles: frozenset[str], policy: Policy) -> str:
    for role in sorted(roles):
        if action in policy.permissions.get(role, ()):
            return role
    return "/".join(sorted(roles))


def case_history(store: Store, case: str,
                 directory_stream: list[DirectoryEvent] | None = None) -> CaseHistory:
    records = store.stream(case)
    if not records:
        raise InputError(f"unknown case {case}", "Check the case number.")
    directory_records = directory_stream if directory_stream is not None \
        else directory_events(store)
    directory = Directory()
    d_index = 0
    state: CaseState | None = None
    prev_hash, prev_seq = ZERO_HASH, 0
    events: list[HistoryEvent] = []

    def lookup_at(position: int) -> Callable[[str], CaseState | None]:
        """Other cases (``repeat_of``) as they stood just before ``position``."""
        return lambda other: replay_case(store, other, before_position=position)[0]

    for record in records:
        while d_index < len(directory_records) and \
                directory_records[d_index][0] < record.position:
            position, action, data = directory_records[d_index]
            directory.apply(action, data, position)
            d_index += 1
        event = _judge(record, directory, state, prev_hash, prev_seq,
                       lookup_at(record.position))
        events.append(event)
        if event.at:   # empty when the stored bytes could not be read at all
            with contextlib.suppress(KeyError, TypeError, ValueError, AssertionError):
                state = apply_action(state, case, event.type, event.data,
                                     datetime.fromisoformat(event.at))
        prev_hash, prev_seq = event.hash, record.seq
    for position, action, data in directory_records[d_index:]:
        directory.apply(action, data, position)
    history = CaseHistory(case, events, state)
    if state is not None:
        history.deadlines = deadlines(state, directory.policy)
    return history


DirectoryEvent = tuple[int, str, dict[str, Any]]   # position, type, data


def directory_events(store: Store) -> list[DirectoryEvent]:
    """The directory stream, parsed once; pass it to :func:`case_history` when judging many
    cases (each replays it up to its own events' positions)."""
    out = []
    for record in store.stream(DIRECTORY_STREAM):
        statement = Statement.from_signed_bytes(Envelope.from_bytes(record.state).signed)
        out.append((record.position, statement.type, statement.data))
    return out


def _judge(record: StoredRecord, directory: Directory, state: CaseState | None,
           prev_hash: str, prev_seq: int, lookup: Any) -> HistoryEvent:
    envelope = Envelope.from_bytes(record.state)
    problems: list[str] = []
    try:
        statement = Statement.from_signed_bytes(envelope.signed)
    except ValueError as exc:
        return HistoryEvent(record.seq, record.position, record.type, "", "", "", "", None, {},
                            envelope.hash, "", False, False, False, (f"unreadable: {exc}",))
    key_problem = directory.key_problem(statement.key, statement.actor, record.position)
    key = directory.keys.get(statement.key)
    signature_ok = key is not None and verify_signature(key.public, envelope.signature,
                                                        envelope.signed)
    if key_problem:
        problems.append(key_problem)
    elif not signature_ok:
        problems.append("signature does not verify")
    actor = directory.actor(statement.actor)
    authorized = actor is not None
    if actor is None:
        problems.append(f"{statement.actor} is not in the directory")
    else:
        try:
            check_action(state, statement.type, statement.data, actor,
                         statement.business_time, directory, lookup)
        except CaseViolation as exc:
            authorized = False
            problems.append(str(exc))
    chain_ok = statement.prev == prev_hash and statement.seq == prev_seq + 1 and \
        (statement.stream, statement.seq, statement.type) == (record.stream, record.seq,
                                                              record.type)
    if not chain_ok:
        problems.append("hash chain or sequence broken")
    return HistoryEvent(
        seq=record.seq, position=record.position, type=statement.type, at=statement.at,
        recorded_at=envelope.recorded_at.isoformat(timespec="seconds"), actor=statement.actor,
        role=_role_for(statement.type, actor.roles, directory.policy) if actor else "",
        unit=actor.unit if actor else None, data=statement.data, hash=envelope.hash,
        key=statement.key, signature_ok=signature_ok and key_problem is None,
        authorized=authorized, chain_ok=chain_ok, problems=tuple(problems))
