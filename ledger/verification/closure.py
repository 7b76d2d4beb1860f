"""三签 closure records: is a closed case properly signed by handler, unit leader, petitioner?

A closing counts only if, in the cycle it ends (since the latest reply; a reopen starts a new
cycle), the assigned handler's attestation, the consent of the unit leader now handling it and
the petitioner's own or witnessed signature are all present, in the order attest → consent →
petitioner → close, none dated after the close, and each verifies as ``verify`` would verify it
(signature, key valid at its log position, signer authorized at that position, hash chain).
Refusals (拒签) and override closings are reported as such and never make a closing valid; a
refusal shows its recorded reason, so it is told apart from a closing that skipped the
petitioner.

Two sources, no rule of its own: the rule-level part is
:func:`ledger.domain.cases.closure_problems` applied to the case state folded from the events
before the close — the very function ``close`` applies on write, so a closing the writer admits
without an override is valid here unless one of its events fails verification — and the
per-event verdicts come from :func:`ledger.verification.history.case_history`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.domain.cases import (
    SIGNATURE_NAMES,
    CaseState,
    Signed,
    apply_action,
    closure_problems,
)
from ledger.storage.store import Store
from ledger.verification.history import (
    CaseHistory,
    DirectoryEvent,
    HistoryEvent,
    case_history,
    directory_events,
)

#: The three signatures in their required order, by event type, with the role each stands for.
SIGNATURES: tuple[tuple[str, str], ...] = (
    ("attest", "handler"), ("consent", "unit_leader"), ("petitioner_sign", "petitioner"))
#: Problem codes (the text before the colon of every problem string).
PROBLEM_CODES = ("not_closed", "reopened", "no_reply", "missing_attest", "missing_consent",
                 "missing_petitioner", "refused", "override", "bad_signature", "unauthorized",
                 "broken_chain", "no_document", "wrong_order", "after_close", "bad_close")


@dataclass(frozen=True)
class ClosureSignature:
    """One of the three signatures of a closing cycle (``present`` False when absent)."""

    role: str
    present: bool = False
    actor: str | None = None
    at: str | None = None
    key: str | None = None
    seq: int | None = None
    position: int | None = None
    hash: str | None = None
    signature_ok: bool = False
    authorized: bool = False
    chain_ok: bool = False
    opinion: str | None = None
    form: str | None = None
    document_sha256: str | None = None
    petitioner: str | None = None
    problems: tuple[str, ...] = ()
    passed: bool = True        # the event passed every check (also those not flagged above)
    reason: str | None = None  # a refusal's (拒签) recorded reason (rules 3 require one)

    @property
    def verified(self) -> bool:
        """Counts as a signature: present, not a refusal, and every verdict good."""
        return (self.present and self.form != "refused" and self.signature_ok
                and self.authorized and self.chain_ok and self.passed)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "actor": self.actor, "at": self.at, "key": self.key, "verified": self.verified,
            "present": self.present, "seq": self.seq, "position": self.position,
            "hash": self.hash, "signature_ok": self.signature_ok,
            "authorized": self.authorized, "chain_ok": self.chain_ok,
            "problems": list(self.problems),
        }
        if self.role == "petitioner":
            out.update(opinion=self.opinion, form=self.form,
                       document_sha256=self.document_sha256, petitioner=self.petitioner,
                       reason=self.reason)
        return out


@dataclass(frozen=True)
class ClosureProblem:
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class ClosureRecord:
    """The closure record (三签结案记录) of a case's latest closing."""

    case: str
    closed_at: str | None
    closed_by: str | None
    close_seq: int | None
    override_reason: str | None
    signatures: dict[str, ClosureSignature]
    problems: tuple[ClosureProblem, ...]

    @property
    def valid(self) -> bool:
        return self.closed_at is not None and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case, "closed_at": self.closed_at, "valid": self.valid,
            "signatures": {role: sig.to_json() for role, sig in self.signatures.items()},
            "problems": [str(p) for p in self.problems],
            "closed_by": self.closed_by, "close_seq": self.close_seq,
            "override_reason": self.override_reason,
        }


def closure_record(store: Store, case: str,
                   directory: DirectoryEvent | None = None) -> ClosureRecord:
    """Judge the latest closing of ``case`` (InputError if the case is unknown)."""
    return judge_closure(case_history(store, case, directory))


def closure_report(store: Store) -> list[ClosureRecord]:
    """Closure records of every currently closed case, by case number (the directory is
    read and parsed once for all of them)."""
    directory = directory_events(store)
    return [closure_record(store, case, directory) for case in closed_cases(store)]


def closed_cases(store: Store) -> list[str]:
    """Cases whose latest ``close`` is not followed by a ``reopen``, by case number.

    Selected by the stored type column (one aggregate, not a replay); each record is then
    judged from the signed events, and ``verify`` catches a column that lies.
    """
    latest = store.latest_seqs_of_types(("close", "reopen"))
    return sorted(case for case, seqs in latest.items()
                  if "close" in seqs and ("reopen" not in seqs or seqs["reopen"] < seqs["close"]))


def judge_closure(history: CaseHistory) -> ClosureRecord:
    """The closure record of a case from its audit trail (a pure function)."""
    events = history.events
    closes = [i for i, e in enumerate(events) if e.type == "close"]
    empty = {role: ClosureSignature(role) for _, role in SIGNATURES}
    if not closes:
        return ClosureRecord(history.case, None, None, None, None, empty,
                             (ClosureProblem("not_closed", "the case has not been closed"),))
    end = closes[-1]
    close = events[end]
    problems: list[ClosureProblem] = []
    reopens = [e for e in events[end + 1:] if e.type == "reopen"]
    if reopens:
        problems.append(ClosureProblem("reopened", f"the case was reopened (#{reopens[0].seq}) "
                                       "after this closing and is not closed now"))
    closed_at = _moment(close.at) or _LATEST
    before = events[:end]
    state = _state_before(history.case, before, closed_at)
    problems.extend(ClosureProblem(code, detail)
                    for code, detail in closure_problems(state, closed_at))
    by_seq = {e.seq: e for e in before if _ok(e)}
    cycle = _cycle_start(before)
    signatures = {}
    for action, role in SIGNATURES:
        fact = _fact(state, action)
        event = by_seq.get(fact.seq) if fact is not None else None
        if event is None or event.data.get("form") == "refused":
            # No signature counts: show the one that failed verification, if any, and why.
            failed = _failed(before, action, cycle)
            if failed is not None:
                event = failed
                problems.extend(_verdict_problems(action, failed))
        signatures[role] = _signature(role, event, state.petitioner)
    problems.extend(_after_close(events[end + 1:]))
    problems.extend(_close_problems(close))
    return ClosureRecord(history.case, close.at, close.actor, close.seq,
                         close.data.get("override_reason"), signatures, tuple(problems))


#: Stands in for a close time that cannot be read (that close fails verification anyway).
_LATEST = datetime.max.replace(tzinfo=UTC)


def _state_before(case: str, events: list[HistoryEvent], closed_at: datetime) -> CaseState:
    """The case as the checked view (and so the writer) saw it when the close was written:
    the events before it that pass every check, folded in order."""
    state: CaseState | None = None
    for event in events:
        at = _moment(event.at)
        if at is None or not _ok(event):
            continue
        with contextlib.suppress(KeyError, TypeError, ValueError, AssertionError):
            state = apply_action(state, case, event.type, event.data, at, seq=event.seq,
                                 actor=event.actor)
    if state is None:   # no readable registration: judged as a case with nothing in it
        state = CaseState(case=case, registered_at=closed_at, petitioner="")
    return state


def _fact(state: CaseState, action: str) -> Signed | None:
    """The signature of the cycle the rule judged (a refusal when the petitioner did not sign)."""
    if action == "attest":
        return state.attest
    if action == "consent":
        return state.consent
    return state.petition or state.refusal


def _ok(event: HistoryEvent) -> bool:
    """Passed every check (one verdict per event, see history.py): only such an event changes
    the state or counts as a signature. The flags are read too, for histories built by hand
    (projections.triggers) that leave ``failures`` empty."""
    return event.ok and event.signature_ok and event.authorized and event.chain_ok


def _cycle_start(events: list[HistoryEvent]) -> int:
    """The seq of the counting reply or reopen that starts the cycle (0: none)."""
    return max((e.seq for e in events if e.type in ("reply", "reopen") and _ok(e)), default=0)


def _failed(events: list[HistoryEvent], action: str, cycle: int) -> HistoryEvent | None:
    """The latest ``action`` of the cycle that fails verification (a signature before a
    refusal: a refusal is shown only when no signature was attempted)."""
    failed = [e for e in events if e.type == action and e.seq > cycle and not _ok(e)]
    signed = [e for e in failed if e.data.get("form") != "refused"]
    pool = signed or failed
    return pool[-1] if pool else None


def _signature(role: str, event: HistoryEvent | None, petitioner: str | None
               ) -> ClosureSignature:
    petitioner = petitioner or None
    if event is None:
        return ClosureSignature(role, petitioner=petitioner)
    return ClosureSignature(
        role, True, event.actor, event.at, event.key, event.seq, event.position, event.hash,
        event.signature_ok, event.authorized, event.chain_ok, event.data.get("opinion"),
        event.data.get("form"), event.data.get("document_sha256"), petitioner, event.problems,
        _ok(event), event.data.get("reason"))


def _verdict_problems(action: str, event: HistoryEvent) -> list[ClosureProblem]:
    """The signature event's own verdicts, as ``verify`` and the case history give them."""
    where = f"{SIGNATURE_NAMES[action]} #{event.seq} by {event.actor}"
    problems = []
    detail = "; ".join(event.problems) or "see the case history"
    if not event.signature_ok:
        problems.append(ClosureProblem("bad_signature", f"{where}: {detail}"))
    elif not event.authorized:
        problems.append(ClosureProblem("unauthorized", f"{where}: {detail}"))
    if not event.chain_ok:
        problems.append(ClosureProblem("broken_chain", f"{where}: hash chain or sequence "
                                       "broken"))
    return problems


def _after_close(later: list[HistoryEvent]) -> list[ClosureProblem]:
    problems = []
    for event in later:
        if event.type == "reopen":
            break
        if event.type in SIGNATURE_NAMES:
            problems.append(ClosureProblem("after_close", f"{SIGNATURE_NAMES[event.type]} "
                                           f"#{event.seq} by {event.actor} was recorded after "
                                           "the closing"))
    return problems


def _close_problems(close: HistoryEvent) -> list[ClosureProblem]:
    problems = []
    reason = close.data.get("override_reason")
    if reason:
        problems.append(ClosureProblem("override", "closed by override, bypassing the three-"
                                       f"signature rule: {reason}"))
    if not _ok(close):
        detail = "; ".join(close.problems) or "see the case history"
        problems.append(ClosureProblem("bad_close", f"the closing #{close.seq} by "
                                       f"{close.actor} does not verify: {detail}"))
    return problems


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


__all__ = ["PROBLEM_CODES", "SIGNATURES", "ClosureProblem", "ClosureRecord",
           "ClosureSignature", "closed_cases", "closure_record", "closure_report",
           "judge_closure"]
