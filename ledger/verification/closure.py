"""三签 closure records: is a closed case properly signed by handler, unit leader, petitioner?

A closing counts only if, in the cycle it ends (since the latest reply; a reopen starts a new
cycle), the handler's attestation, the handling unit leader's consent and the petitioner's own
or witnessed signature are all present, each verified as ``verify`` would verify it (signature,
key valid at its log position, signer authorized at that position, hash chain), in the order
attest → consent → petitioner → close, none dated after the close. Refusals (拒签) and
override closings are reported as such and never make a closing valid.

The per-event verdicts come from :func:`ledger.history.case_history`; this module only reads
them, so closure records are judged by exactly the rules that admitted (or should have refused)
each event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
SIGNATURE_NAMES = {"attest": "handler attestation", "consent": "unit leader consent",
                   "petitioner_sign": "petitioner signature"}
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

    @property
    def verified(self) -> bool:
        """Counts as a signature: present, not a refusal, and every verdict good."""
        return (self.present and self.form != "refused" and self.signature_ok
                and self.authorized and self.chain_ok)

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
                       document_sha256=self.document_sha256, petitioner=self.petitioner)
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
                   directory: list[DirectoryEvent] | None = None) -> ClosureRecord:
    """Judge the latest closing of ``case`` (InputError if the case is unknown)."""
    return judge_closure(case_history(store, case, directory))


def closure_report(store: Store) -> list[ClosureRecord]:
    """Closure records of every currently closed case, by case number (the directory is
    read and parsed once for all of them)."""
    directory = directory_events(store)
    return [closure_record(store, case, directory) for case in closed_cases(store)]


def closed_cases(store: Store) -> list[str]:
    """Cases whose latest ``close`` is not followed by a ``reopen``, by case number.

    Selected by the stored type column (an index scan, not a replay); each record is then
    judged from the signed events, and ``verify`` catches a column that lies.
    """
    rows = store.query(
        "SELECT originator_id, "
        "MAX(CASE WHEN topic='close' THEN originator_version END), "
        "MAX(CASE WHEN topic='reopen' THEN originator_version END) "
        f"FROM {store.events_table} WHERE topic IN ('close', 'reopen') GROUP BY originator_id")
    return sorted(case for case, close, reopen in rows
                  if close is not None and (reopen is None or reopen < close))


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
    window = _cycle(events, end, problems)
    signatures = {}
    for action, role in SIGNATURES:
        chosen = _choose(action, window)
        signatures[role] = _signature(role, chosen, history)
        problems.extend(_signature_problems(action, chosen, close))
    problems.extend(_order_problems(signatures))
    problems.extend(_after_close(events[end + 1:]))
    problems.extend(_close_problems(close))
    return ClosureRecord(history.case, close.at, close.actor, close.seq,
                         close.data.get("override_reason"), signatures, tuple(problems))


def _cycle(events: list[HistoryEvent], end: int,
           problems: list[ClosureProblem]) -> list[HistoryEvent]:
    """The events between the cycle's latest reply (after any reopen) and the close."""
    start = max((i for i in range(end) if events[i].type == "reopen"), default=-1)
    replies = [i for i in range(start + 1, end) if events[i].type == "reply"]
    if not replies:
        problems.append(ClosureProblem("no_reply", "there is no reply (答复) before this "
                                       "closing" + (" since the reopen" if start >= 0 else "")))
        return events[start + 1:end]
    return events[replies[-1] + 1:end]


def _ok(event: HistoryEvent) -> bool:
    return event.signature_ok and event.authorized and event.chain_ok


def _choose(action: str, window: list[HistoryEvent]) -> HistoryEvent | None:
    """The signature that stands: the latest good one, else the latest; refusals last."""
    candidates = [e for e in window if e.type == action]
    counting = [e for e in candidates if e.data.get("form") != "refused"]
    pool = counting or candidates
    good = [e for e in pool if _ok(e)]
    return (good or pool)[-1] if pool else None


def _signature(role: str, event: HistoryEvent | None, history: CaseHistory) -> ClosureSignature:
    petitioner = history.state.petitioner if history.state is not None else None
    if event is None:
        return ClosureSignature(role, petitioner=petitioner)
    return ClosureSignature(
        role, True, event.actor, event.at, event.key, event.seq, event.position, event.hash,
        event.signature_ok, event.authorized, event.chain_ok, event.data.get("opinion"),
        event.data.get("form"), event.data.get("document_sha256"), petitioner, event.problems)


def _signature_problems(action: str, event: HistoryEvent | None,
                        close: HistoryEvent) -> list[ClosureProblem]:
    name = SIGNATURE_NAMES[action]
    missing = f"missing_{action.removesuffix('_sign')}"
    if event is None:
        return [ClosureProblem(missing, f"no {name} since the latest reply")]
    where = f"{name} #{event.seq} by {event.actor}"
    if event.data.get("form") == "refused":
        return [ClosureProblem("refused", f"the petitioner refused to sign (拒签), recorded "
                               f"by {event.actor} (#{event.seq}); a refusal is not a signature")]
    problems = []
    detail = "; ".join(event.problems) or "see the case history"
    if not event.signature_ok:
        problems.append(ClosureProblem("bad_signature", f"{where}: {detail}"))
    elif not event.authorized:
        problems.append(ClosureProblem("unauthorized", f"{where}: {detail}"))
    if not event.chain_ok:
        problems.append(ClosureProblem("broken_chain", f"{where}: hash chain or sequence "
                                       "broken"))
    if event.data.get("form") == "witnessed" and not event.data.get("document_sha256"):
        problems.append(ClosureProblem("no_document", f"{where}: a witnessed signature "
                                       "without the signed document's SHA-256"))
    signed_at, closed_at = _moment(event.at), _moment(close.at)
    if signed_at is not None and closed_at is not None and signed_at > closed_at:
        problems.append(ClosureProblem("after_close", f"{where} is dated {event.at}, after "
                                       f"the closing at {close.at}"))
    return problems


def _order_problems(signatures: dict[str, ClosureSignature]) -> list[ClosureProblem]:
    """attest → consent → petitioner, by log order and by business time."""
    present = [(action, signatures[role]) for action, role in SIGNATURES
               if signatures[role].present and signatures[role].form != "refused"]
    problems = []
    for (first, a), (second, b) in zip(present, present[1:], strict=False):
        assert a.seq is not None and b.seq is not None
        if b.seq < a.seq:
            problems.append(ClosureProblem("wrong_order", f"the {SIGNATURE_NAMES[second]} "
                                           f"(#{b.seq}) precedes the {SIGNATURE_NAMES[first]} "
                                           f"(#{a.seq})"))
        elif (ta := _moment(a.at)) is not None and (tb := _moment(b.at)) is not None \
                and tb < ta:
            problems.append(ClosureProblem("wrong_order", f"the {SIGNATURE_NAMES[second]} is "
                                           f"dated {b.at}, before the {SIGNATURE_NAMES[first]} "
                                           f"({a.at})"))
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
