"""A case's audit trail (审计轨迹): every event with its actor, times, and verdicts.

Every verdict comes from the checked view (:mod:`ledger.verification.view`), which judges each
event with the same checker as ``verify``: signature, key validity and authorization at that
event's log position, the hash chain, business against recorded time, and the event's place in
the signed Merkle log. An event that fails any check is shown as failing and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ledger.domain.cases import CaseState
from ledger.domain.policy import Policy
from ledger.errors import InputError
from ledger.storage.store import Store
from ledger.verification.checks import Check, CheckedEvent
from ledger.verification.view import LedgerView


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
    failures: tuple[tuple[int, str], ...] = ()   # (check, reason) of every failed check
    recorded_lag_seconds: int | None = None      # recorded time minus business time

    @property
    def ok(self) -> bool:
        """Passed every check: only such an event counts (as a signature, a state change or
        a closure) for any reader."""
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "position": self.position, "type": self.type, "at": self.at,
                "recorded_at": self.recorded_at, "actor": self.actor, "role": self.role,
                "unit": self.unit, "data": self.data, "hash": self.hash, "key": self.key,
                "signature_ok": self.signature_ok, "authorized": self.authorized,
                "chain_ok": self.chain_ok, "ok": self.ok, "problems": list(self.problems),
                "failures": [{"check": c, "reason": r} for c, r in self.failures],
                "recorded_lag_seconds": self.recorded_lag_seconds}


@dataclass
class CaseHistory:
    case: str
    events: list[HistoryEvent]
    state: CaseState | None
    deadlines: dict[str, date | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.events)

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


def case_history(store: Store | LedgerView, case: str,
                 view: LedgerView | None = None) -> CaseHistory:
    """The audit trail of ``case``, every event judged by the checked view (pass one view
    when reading many cases: the directory is then checked once)."""
    if view is None:
        view = store if isinstance(store, LedgerView) else LedgerView(store)
    checked = view.stream(case)
    if not checked.events:
        raise InputError(f"unknown case {case}", "Check the case number.")
    policy = view.directory().policy
    events = [_event(view, event, policy) for event in checked.events]
    history = CaseHistory(case, events, checked.state)
    if checked.state is not None:
        history.deadlines = deadlines(checked.state, policy)
    return history


def directory_events(store: Store) -> LedgerView:
    """A checked view to share when judging many cases (the directory is checked once)."""
    return LedgerView(store)


DirectoryEvent = LedgerView   # the shared per-report state, as callers name it


def _event(view: LedgerView, event: CheckedEvent, policy: Policy) -> HistoryEvent:
    statement, envelope = event.statement, event.envelope
    failures = tuple((int(f.check), f.reason) for f in event.failures)
    problems = tuple(f.reason for f in event.failures)
    digest = event.hash or ""
    if statement is None:
        return HistoryEvent(event.seq, event.position, event.type, "", "", "", "", None, {},
                            digest, "", False, False, False, problems, failures)
    recorded, lag = "", None
    if envelope is not None:
        try:
            moment = envelope.recorded_at
            recorded = moment.isoformat(timespec="seconds")
            lag = int((moment - datetime.fromisoformat(statement.at)).total_seconds())
        except (ArithmeticError, ValueError, TypeError):
            recorded = ""
    actor = view.directory_at(event.position).actor(statement.actor)
    return HistoryEvent(
        seq=event.seq, position=event.position, type=statement.type, at=statement.at,
        recorded_at=recorded, actor=statement.actor,
        role=_role_for(statement.type, actor.roles, policy) if actor else "",
        unit=actor.unit if actor else None, data=statement.data, hash=digest,
        key=statement.key,
        signature_ok=not event.failed(Check.SIGNATURE, Check.KEY, Check.PARSE),
        authorized=not event.failed(Check.AUTHORIZATION),
        chain_ok=not event.failed(Check.CHAIN, Check.LOG),
        problems=problems, failures=failures, recorded_lag_seconds=lag)
