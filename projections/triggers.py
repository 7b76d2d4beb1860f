"""The reverse-check (倒查) rules: one small function per trigger code, over one case's file.

A rule reads a :class:`CaseFile` (the case's events up to the report date, and the read-model row
folded from them, also as it stood right after each reply and close) and returns the triggers it
finds. Each trigger names who was responsible, taken from the chain of custody (who decided,
assigned, handled, replied, consented, closed; who was in charge when a deadline passed), and the
events that prove it, as ``{stream, seq, hash}`` references anyone can re-verify.

Pure: no I/O and no clock. ``projections.accountability`` loads the files, runs ``verify`` for
the ``integrity`` trigger, and aggregates. docs/accountability.md explains each rule (as the
command-line contract defines it) and its attribution.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ledger.domain.actions import RULES_2022
from ledger.domain.cases import handling_due
from ledger.domain.policy import SHANGHAI, Policy
from ledger.log.statement import EVENT_CONTEXT
from ledger.verification.closure import SIGNATURES, ClosureRecord, judge_closure
from ledger.verification.history import CaseHistory, HistoryEvent

from .events import Day, LedgerEvent, business_day
from .fold import ActorRow, CaseRow, apply, hearing_days
from .labels import LABELS, label
from .reports import days_between

SNAPSHOTS = ("reply", "close")
"""Events after which a file keeps the case's state (deadlines and signatures judged there)."""
SIGNED_CHECKS = frozenset({1, 2, 3})   # verify checks that make an event's signature not count
AUTHORIZATION_CHECKS = frozenset({4})
CHAIN_CHECKS = frozenset({5})


# ---- values ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ref:
    """An event reference: ``xinfang case history STREAM`` shows the event with this hash, and
    ``{stream, seq, hash}`` is exactly what a reverse-check finding cites as evidence."""

    stream: str
    seq: int
    hash: str
    position: int | None = None
    type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "seq": self.seq, "hash": self.hash,
                "position": self.position, "type": self.type}

    def text(self, case: str | None = None) -> str:
        """``#5`` within its own case, ``XF-2025-000009#1`` elsewhere (the CLI's syntax)."""
        return f"#{self.seq}" if self.stream == case else f"{self.stream}#{self.seq}"


def ref(event: LedgerEvent) -> Ref:
    return Ref(event.stream, event.seq, event.hash, event.position, event.type)


#: Roles whose responsibility is leadership (领导责任: the unit leader, the package leader);
#: every other capacity — handler, signer, the office that decided or closed, registrar,
#: reviewer — is direct responsibility (直接责任).
LEADERSHIP_ROLES = frozenset({"unit_leader", "leader"})


@dataclass(frozen=True, slots=True)
class Responsible:
    """Someone accountable for a trigger, in the capacity they failed in (a directory role, or
    ``signer`` for the actor an unverifiable event names)."""

    actor: str
    role: str
    unit: str | None

    @property
    def responsibility(self) -> str:
        """``direct`` (the handler or signer) or ``leadership`` (the unit leader, the package
        leader)."""
        return "leadership" if self.role in LEADERSHIP_ROLES else "direct"

    def to_json(self) -> dict[str, Any]:
        return {"actor": self.actor, "role": self.role, "unit": self.unit,
                "responsibility": self.responsibility}


@dataclass(frozen=True)
class Trigger:
    """One reason for a reverse-check. ``facts`` fill the detail sentence (labels.py)."""

    code: str
    facts: dict[str, Any]
    responsible: tuple[Responsible, ...]
    evidence: tuple[Ref, ...]
    on: Day | None = None          # when it happened, or the as-of day for what is missing
    due: Day | None = None
    days_late: int | None = None
    variant: str | None = None     # which detail sentence

    def detail(self, lang: str = "en") -> str:
        return describe(self, lang)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail("en"),
                "responsible": [r.to_json() for r in self.responsible],
                "evidence": [e.to_json() for e in self.evidence],
                "on": self.on, "due": self.due, "days_late": self.days_late,
                "variant": self.variant, "facts": self.facts}


# Facts whose values are codes, shown by their labels (kinds tried in order).
_FACT_KINDS: dict[str, tuple[str, ...]] = {
    "missing": ("closure", "accountability"), "decision": ("decision",), "level": ("level",),
    "action": ("action",), "deadline": ("deadline",)}


def describe(trigger: Trigger, lang: str = "en") -> str:
    """The trigger's detail sentence in Chinese (``zh``) or English."""
    return detail_text(trigger.code, trigger.variant, trigger.facts, lang)


def detail_text(code: str, variant: str | None, facts: Mapping[str, Any],
                lang: str = "en") -> str:
    """A detail sentence from a trigger's code, variant and facts (also from its JSON)."""
    zh, en = LABELS["trigger_detail"][f"{code}:{variant}" if variant else code]
    shown = {name: _fact_text(name, value, lang) for name, value in facts.items()}
    return (zh if lang == "zh" else en).format(**shown)


def _fact_text(name: str, value: Any, lang: str) -> str:
    kinds = _FACT_KINDS.get(name, ())
    values = value if isinstance(value, list) else [value]
    shown = []
    for item in values:
        text = str(item)
        for kind in kinds:
            if item in LABELS.get(kind, {}):
                text = label(kind, item, lang)
                break
        shown.append(text)
    return ("、" if lang == "zh" else ", ").join(shown)


@dataclass(frozen=True)
class BadEvent:
    """An event ``verify`` failed: its checks and reasons, and the actor it names (None when the
    stored bytes do not even parse)."""

    stream: str
    seq: int | None
    position: int
    checks: tuple[int, ...]
    reasons: tuple[str, ...]
    actor: str | None = None
    hash: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Context:
    """What the rules know beyond one case: the date, the policy, the directory, which later
    cases name each case in ``repeat_of``, and the verification result."""

    as_of: Day
    policy: Policy
    actors: Mapping[str, ActorRow]
    named_by: Mapping[str, Sequence[CaseRow]] = field(default_factory=dict)
    bad_events: Mapping[str, Sequence[BadEvent]] = field(default_factory=dict)


# ---- a case's file --------------------------------------------------------------------------

@dataclass
class CaseFile:
    """A case's events up to the report date, the row folded from them, and the row as it stood
    right after each reply and close (by seq)."""

    case_no: str
    events: list[LedgerEvent]
    row: CaseRow
    after: dict[int, CaseRow]
    _closures: list[tuple[LedgerEvent, ClosureRecord]] | None = field(
        default=None, init=False, repr=False)

    @classmethod
    def fold(cls, case_no: str, events: Sequence[LedgerEvent],
             policy: Policy) -> CaseFile | None:
        """Fold the events with the read model's own fold (None if never registered)."""
        row: CaseRow | None = None
        after: dict[int, CaseRow] = {}
        for event in events:
            row = apply(row, event, policy)
            if row is not None and event.type in SNAPSHOTS:
                after[event.seq] = replace(row)
        return None if row is None else cls(case_no, list(events), row, after)

    def of(self, *types: str) -> list[LedgerEvent]:
        return [e for e in self.events if e.type in types]

    def event(self, seq: int | None) -> LedgerEvent | None:
        return next((e for e in self.events if e.seq == seq), None)

    def last_before(self, seq: int, *types: str) -> LedgerEvent | None:
        return next((e for e in reversed(self.events) if e.seq < seq and e.type in types), None)

    def assignment_at(self, day: Day) -> LedgerEvent | None:
        """The assignment in force at the end of ``day`` (the latest one made by then)."""
        return next((e for e in reversed(self.events) if e.type == "assign" and e.on <= day),
                    None)

    def cycle_start(self, seq: int) -> LedgerEvent | None:
        """The acceptance or reopening that started the handling cycle ``seq`` belongs to."""
        return next((e for e in reversed(self.events) if e.seq < seq and (
            e.type == "reopen" or (e.type == "accept" and e.data.get("decision") == "accepted"))),
            None)

    def closures(self, ctx: Context) -> list[tuple[LedgerEvent, ClosureRecord]]:
        """Every closing with its 三签 record, judged by ``ledger.closure`` as ``report
        closures`` judges it; event verdicts come from ``verify`` (assumed good if not run)."""
        if self._closures is None:
            history = _history(self, ctx)
            self._closures = [
                (event, judge_closure(CaseHistory(self.case_no, history[:i + 1], None)))
                for i, event in enumerate(self.events) if event.type == "close"]
        return self._closures


def _history(f: CaseFile, ctx: Context) -> list[HistoryEvent]:
    """The file as ``ledger.history`` audit-trail entries with verify's verdicts. Only what
    ``judge_closure`` reads is filled in: the key and recorded time are left empty."""
    checks: dict[int | None, set[int]] = {}
    for bad in ctx.bad_events.get(f.case_no, ()):
        checks.setdefault(bad.seq, set()).update(bad.checks)
    out = []
    for e in f.events:
        failed = checks.get(e.seq, set())
        out.append(HistoryEvent(
            seq=e.seq, position=e.position, type=e.type, at=e.at, recorded_at="",
            actor=e.actor, role="", unit=None, data=e.data, hash=e.hash, key="",
            signature_ok=not failed & SIGNED_CHECKS,
            authorized=not failed & AUTHORIZATION_CHECKS, chain_ok=not failed & CHAIN_CHECKS,
            failures=tuple((check, "") for check in sorted(failed))))   # any failure: no count
    return out


# ---- custody: who was responsible -------------------------------------------------------------

def _person(ctx: Context, actor: str, role: str) -> Responsible:
    known = ctx.actors.get(actor)
    return Responsible(actor, role, known.unit if known else None)


def _unit_leaders(f: CaseFile, ctx: Context, unit: str | None) -> list[Responsible]:
    """The unit's leader: whoever of them acted on this case (extension, consent), else every
    unit leader of that unit in the directory."""
    if unit is None:
        return []
    acted = [e.actor for e in f.of("extend", "consent")
             if (a := ctx.actors.get(e.actor)) is not None and a.unit == unit]
    leaders = acted or sorted(a.actor for a in ctx.actors.values()
                              if a.unit == unit and "unit_leader" in a.roles.split(","))
    return [Responsible(actor, "unit_leader", unit) for actor in dict.fromkeys(leaders)]


def _in_charge(f: CaseFile, ctx: Context, day: Day,
               before: int | None = None) -> tuple[list[Responsible], list[LedgerEvent]]:
    """Who had the case at the end of ``day``: the handler then assigned and their unit's
    leader; if nobody was assigned, the office actor who accepted (or reopened) it, else the
    registrar. With the events that show it."""
    people, shown = _in_charge_directly(f, ctx, day, before)
    package = _package_at(f, day) if ctx.policy.rules >= RULES_2022 else None
    if package is not None:   # leadership responsibility of the leader in personal charge
        people.append(_person(ctx, package.data["leader"], "leader"))
        shown.append(package)
    return people, shown


def _in_charge_directly(f: CaseFile, ctx: Context, day: Day, before: int | None
                        ) -> tuple[list[Responsible], list[LedgerEvent]]:
    assign = f.assignment_at(day)
    if assign is not None:
        unit = assign.data["unit"]
        return ([Responsible(assign.data["handler"], "handler", unit),
                 *_unit_leaders(f, ctx, unit)], [assign])
    start = f.cycle_start(before if before is not None else f.events[-1].seq + 1)
    if start is not None:
        return [_person(ctx, start.actor, "petition_office")], [start]
    return [_registrar(f, ctx)], [f.events[0]]


def _package_at(f: CaseFile, day: Day) -> LedgerEvent | None:
    """The leader package (领导包案) in force at the end of ``day``."""
    return next((e for e in reversed(f.events) if e.type == "package" and e.on <= day), None)


def _registrar(f: CaseFile, ctx: Context) -> Responsible:
    known = ctx.actors.get(f.row.registered_by)
    role = "registrar" if known is None or "registrar" in known.roles.split(",") else "leader"
    return _person(ctx, f.row.registered_by, role)


def _refs(*events: LedgerEvent | None) -> tuple[Ref, ...]:
    """Evidence in log order, each event once."""
    unique = {e.seq: e for e in events if e is not None}
    return tuple(ref(unique[seq]) for seq in sorted(unique))


def _unique(people: Sequence[Responsible]) -> tuple[Responsible, ...]:
    return tuple(dict.fromkeys(people))


# ---- the rules ----------------------------------------------------------------------------------

def late_acceptance(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Decision later than registration + acceptance days, or none and as-of past that."""
    row, due = f.row, f.row.acceptance_due
    if row.decided_on is not None:
        if row.decided_on <= due:
            return []
        assert row.decided_by is not None
        days = days_between(due, row.decided_on)
        return [Trigger("late_acceptance", {"decided": row.decided_on, "due": due, "days": days},
                        (_person(ctx, row.decided_by, "petition_office"),),
                        _refs(f.events[0], f.event(row.accept_seq)), row.decided_on, due, days)]
    if ctx.as_of <= due:
        return []
    days = days_between(due, ctx.as_of)
    return [Trigger("late_acceptance", {"as_of": ctx.as_of, "due": due, "days": days},
                    (_registrar(f, ctx),), _refs(f.events[0]), ctx.as_of, due, days,
                    "undecided")]


def late_registration(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Registered later than receipt + the policy's registration working days (Art. 23, 44:
    not registering a received petition as required is itself a fault). Responsible: the
    registrar (or the receiving leader) who registered it."""
    row = f.row
    received = row.received_on or row.registered_on
    due = ctx.policy.add_working_days(date.fromisoformat(received),
                                      ctx.policy.registration_working_days).isoformat()
    if row.registered_on <= due:
        return []
    days = days_between(due, row.registered_on)
    return [Trigger("late_registration", {"received": received, "registered": row.registered_on,
                                          "due": due, "days": days},
                    (_registrar(f, ctx),), _refs(f.events[0]), row.registered_on, due, days)]


def late_notice(f: CaseFile, ctx: Context) -> list[Trigger]:
    """The acceptance notice (告知书) served after receipt + acceptance days (Art. 23); under
    rules 3 also a decision with no notice served by then (as-of past the deadline)."""
    accept = f.event(f.row.accept_seq)
    if accept is None:
        return []
    served = accept.data.get("notice_served_at")
    due = f.row.acceptance_due
    person = (_person(ctx, accept.actor, "petition_office"),)
    if not served:
        if ctx.policy.rules < RULES_2022 or ctx.as_of <= due:
            return []
        days = days_between(due, ctx.as_of)
        return [Trigger("late_notice", {"as_of": ctx.as_of, "due": due, "days": days}, person,
                        _refs(f.events[0], accept), ctx.as_of, due, days, "missing")]
    day = business_day(served)
    if day <= due:
        return []
    days = days_between(due, day)
    return [Trigger("late_notice", {"served": day, "due": due, "days": days}, person,
                    _refs(f.events[0], accept), day, due, days)]


def late_reply(f: CaseFile, ctx: Context) -> list[Trigger]:
    """A reply served after its cycle's handling deadline (acceptance or reopening + handling
    days + approved extensions); every cycle is judged, not only the latest."""
    out = []
    for reply in f.of("reply"):
        state = f.after[reply.seq]
        due, served = state.handling_due, state.reply_served_on
        if due is None or served is None or served <= due:
            continue
        start = f.cycle_start(reply.seq)
        people, shown = _in_charge(f, ctx, due, reply.seq)
        extensions = [e for e in f.of("extend")
                      if (start is None or e.seq > start.seq) and e.seq < reply.seq]
        days = days_between(due, served)
        out.append(Trigger("late_reply", {"served": served, "due": due, "days": days},
                           _unique(people), _refs(start, *shown, *extensions, reply), served,
                           due, days))
    return out


def _open_past_due(f: CaseFile, ctx: Context) -> tuple[Day, LedgerEvent | None] | None:
    """(handling due, cycle start) when the case is accepted, unreplied and past due."""
    row = f.row
    if row.decision != "accepted" or row.replied_on is not None or row.handling_due is None \
            or ctx.as_of <= row.handling_due:
        return None
    return row.handling_due, f.cycle_start(f.events[-1].seq + 1)


def overdue_open(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Accepted, no reply, as-of past the handling deadline."""
    found = _open_past_due(f, ctx)
    if found is None:
        return []
    due, start = found
    people, shown = _in_charge(f, ctx, due)
    extensions = [e for e in f.of("extend") if start is None or e.seq > start.seq]
    days = days_between(due, ctx.as_of)
    return [Trigger("overdue_open", {"as_of": ctx.as_of, "due": due, "days": days},
                    _unique(people), _refs(start, *shown, *extensions), ctx.as_of, due, days)]


def no_feedback(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Assigned, past the handling deadline, with no progress report (in this handling cycle)
    and no reply."""
    found = _open_past_due(f, ctx)
    if found is None or f.row.handler is None:
        return []
    due, start = found
    if any(start is None or e.seq > start.seq for e in f.of("progress")):
        return []
    people, shown = _in_charge(f, ctx, due)
    assigns = [e for e in f.of("assign") if start is None or e.seq > start.seq]
    days = days_between(due, ctx.as_of)
    return [Trigger("no_feedback", {"due": due, "days": days}, _unique(people),
                    _refs(start, *shown, *assigns), ctx.as_of, due, days)]


def supervision_missed(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Not closed by the (latest) supervision due date. A case not accepted cannot be closed:
    its decision answers the supervision, so it does not trigger."""
    row, due = f.row, f.row.supervision_due
    if due is None or row.decision in ("not_accepted", "not_reaccepted"):
        return []
    supervise = f.of("supervise")[-1]
    people, shown = _in_charge(f, ctx, due)
    if row.closed_on is not None:
        if row.closed_on <= due:
            return []
        days = days_between(due, row.closed_on)
        return [Trigger("supervision_missed", {"due": due, "closed": row.closed_on,
                                               "days": days},
                        _unique(people), _refs(supervise, *shown, f.event(row.close_seq)),
                        row.closed_on, due, days)]
    if ctx.as_of <= due:
        return []
    days = days_between(due, ctx.as_of)
    return [Trigger("supervision_missed", {"due": due, "as_of": ctx.as_of, "days": days},
                    _unique(people), _refs(supervise, *shown), ctx.as_of, due, days, "open")]


def no_report_back(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Rules 3 (Art. 39-40): no report-back (回告) to the supervising authority by the (latest)
    supervision's due date, made late or not at all by as-of. ``supervision_missed`` keeps its
    contract meaning (not closed by that date). Responsible: the handling body then."""
    row, due = f.row, f.row.supervision_due
    if ctx.policy.rules < RULES_2022 or due is None or \
            row.decision in ("not_accepted", "not_reaccepted"):
        return []
    supervise = f.of("supervise")[-1]
    backs = [e for e in f.of("report_back") if e.seq > supervise.seq]
    if any(e.on <= due for e in backs):
        return []
    people, shown = _in_charge(f, ctx, due)
    if backs:
        days = days_between(due, backs[0].on)
        return [Trigger("no_report_back", {"due": due, "reported": backs[0].on, "days": days},
                        _unique(people), _refs(supervise, *shown, backs[0]), backs[0].on, due,
                        days)]
    if ctx.as_of <= due:
        return []
    days = days_between(due, ctx.as_of)
    return [Trigger("no_report_back", {"due": due, "as_of": ctx.as_of, "days": days},
                    _unique(people), _refs(supervise, *shown), ctx.as_of, due, days, "none")]


_MISSING = {"handler": "missing_attest", "unit_leader": "missing_consent",
            "petitioner": "missing_petitioner"}
_ROLE_OF = {code: role for role, code in _MISSING.items()} | {
    "refused": "petitioner", "no_document": "petitioner"}
# Shown otherwise: per-event verdicts as unverified_<role>, an override by the variant.
_PER_EVENT = frozenset({"bad_signature", "unauthorized", "broken_chain", "override"})


def unsigned_closure(f: CaseFile, ctx: Context) -> list[Trigger]:
    """A closing without all three signatures (三签) standing: missing, refused (拒签), not
    verifying, or otherwise against the rule (order, dates, a handler or unit since changed) —
    whenever ``case verify-closure`` calls it invalid. Responsible: the closer, and the
    handler / unit leader whose signature is missing (a petitioner is never responsible)."""
    out = []
    for close, record in f.closures(ctx):
        if record.valid:   # exactly the verdict of `case verify-closure` / `report closures`
            continue
        missing = [role for _, role in SIGNATURES if not record.signatures[role].verified]
        codes = [_missing_code(record, role) for role in missing]
        for problem in record.problems:   # the rule's findings the roles above do not show
            role = _ROLE_OF.get(problem.code)
            if problem.code in _PER_EVENT or role in missing or problem.code in codes:
                continue
            codes.append(problem.code)   # e.g. wrong_order, after_close, a stale attestation
            if role is not None:
                missing.append(role)
        codes = codes or [p.code for p in record.problems[:1]]   # only the override
        state = f.after[close.seq]
        people = [_person(ctx, close.actor, "petition_office")]
        if "handler" in missing and state.handler is not None:
            people.append(Responsible(state.handler, "handler", state.unit))
        if "unit_leader" in missing:
            people.extend(_unit_leaders(f, ctx, state.unit))
        present = [f.event(record.signatures[role].seq) for _, role in SIGNATURES]
        override = close.data.get("override_reason")
        facts = {"closed": close.on, "missing": codes, **({"override": override} if override
                                                          else {})}
        variant = "override" if override else None
        if codes == ["refused"] and ctx.policy.rules >= RULES_2022:
            # A recorded refusal (拒签) with the handler's and the unit leader's signatures
            # standing: shown with its reason, and by itself no staff fault.
            refusal = f.event(record.signatures["petitioner"].seq)
            reason = refusal.data.get("reason") if refusal is not None else None
            facts = {**facts, "reason": reason or "—", "override": override or "—"}
            people, variant = [], "refused"
        out.append(Trigger("unsigned_closure", facts, _unique(people), _refs(*present, close),
                           close.on, variant=variant))
    return out


def _missing_code(record: ClosureRecord, role: str) -> str:
    sig = record.signatures[role]
    if not sig.present:
        return _MISSING[role]
    return "refused" if sig.form == "refused" else f"unverified_{role}"


def dissatisfied_closure(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Closed with the petitioner's standing opinion ``dissatisfied``. Responsible: the
    handler who replied in that cycle and the unit leader who consented."""
    out = []
    for close, record in f.closures(ctx):
        sig = record.signatures["petitioner"]
        if not sig.present or sig.opinion != "dissatisfied":
            continue
        reply = f.last_before(close.seq, "reply")
        consent = record.signatures["unit_leader"]
        people = [_person(ctx, reply.actor, "handler")] if reply is not None else []
        if consent.present and consent.actor is not None:
            people.append(_person(ctx, consent.actor, "unit_leader"))
        out.append(Trigger("dissatisfied_closure", {"closed": close.on}, _unique(people),
                           _refs(reply, f.event(sig.seq), close), close.on))
    return out


def reflow(f: CaseFile, ctx: Context) -> list[Trigger]:
    """A later case, registered after this one was closed (and not reopened since) or desisted,
    names it in ``repeat_of``: the matter flowed back (回流, 结而不息). Responsible: whoever
    closed it and the handler who replied, or the handler in charge at the desist."""
    out = []
    for later in ctx.named_by.get(f.case_no, ()):
        moment = datetime.fromisoformat(later.registered_at)
        before = [e for e in f.events if datetime.fromisoformat(e.at) < moment]
        lifecycle = [e for e in before if e.type in ("close", "reopen")]
        close = lifecycle[-1] if lifecycle and lifecycle[-1].type == "close" else None
        desist = next((e for e in before if e.type == "desist"), None)
        registered = Ref(later.case_no, 1, later.register_hash, type="register")
        facts = {"later": later.case_no, "registered": later.registered_on}
        if close is not None:
            reply = f.last_before(close.seq, "reply")
            people = [_person(ctx, close.actor, "petition_office")]
            if reply is not None:
                people.append(_person(ctx, reply.actor, "handler"))
            out.append(Trigger("reflow", {"closed": close.on, **facts}, _unique(people),
                               (*_refs(reply, close), registered), later.registered_on))
        elif desist is not None:
            people, shown = _in_charge(f, ctx, desist.on, desist.seq)
            handlers = [p for p in people if p.role == "handler"] or people
            out.append(Trigger("reflow", {"desisted": desist.on, **facts}, _unique(handlers),
                               (*_refs(*shown, desist), registered), later.registered_on,
                               variant="desisted"))
    return out


def bounced(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Three or more assignments. Responsible: the office actors who transferred it (every
    assignment after the first)."""
    assigns = f.of("assign")
    if len(assigns) < 3:
        return []
    people = [_person(ctx, e.actor, "petition_office") for e in assigns[1:]]
    units = " → ".join(e.data["unit"] for e in assigns)
    return [Trigger("bounced", {"count": len(assigns), "units": units}, _unique(people),
                    _refs(*assigns), assigns[2].on)]


def overturned(f: CaseFile, ctx: Context) -> list[Trigger]:
    """A review (复查) or re-review (复核) decision ``changed`` or ``revoked``. Responsible: the
    handler whose reply was reviewed and the unit leader who consented to it."""
    out = []
    for decision in f.of("review_decide"):
        if decision.data["decision"] not in ("changed", "revoked"):
            continue
        reply = f.last_before(decision.seq, "reply")
        people: list[Responsible] = []
        if reply is not None:
            people.append(_person(ctx, reply.actor, "handler"))
            consent = next((e for e in f.of("consent") if reply.seq < e.seq < decision.seq),
                           None)
            if consent is not None:
                people.append(_person(ctx, consent.actor, "unit_leader"))
            else:
                assign = f.assignment_at(reply.on)
                people.extend(_unit_leaders(f, ctx, assign.data["unit"] if assign else None))
        facts = {"level": decision.data["level"], "decision": decision.data["decision"],
                 "decided": decision.on}
        out.append(Trigger("overturned", facts, _unique(people), _refs(reply, decision),
                           decision.on))
    return out


def review_decision_due(f: CaseFile, policy: Policy, request: LedgerEvent,
                        decision: LedgerEvent | None) -> Day:
    """A review request + the decision days, plus the days of the hearings (听证) held on it
    before its decision: Art. 36, 听证所需时间不计算在前款规定的期限内."""
    due = policy.add_days(date.fromisoformat(request.on), policy.review_decision_days)
    end = decision.seq if decision is not None else f.events[-1].seq + 1
    held = sum(hearing_days(e) for e in f.of("hearing") if request.seq < e.seq < end)
    return (due + timedelta(days=held)).isoformat() if held else due.isoformat()


def late_review_decision(f: CaseFile, ctx: Context) -> list[Trigger]:
    """A review or re-review decided later than its request + the policy's decision days, or
    still undecided past that. Responsible: the reviewer who decided (nobody is named for a
    pending request: the directory does not say which reviewer it was sent to)."""
    out = []
    for request in f.of("review_request"):
        level = request.data["level"]
        decision = next((e for e in f.events if e.seq > request.seq
                         and e.type == "review_decide" and e.data.get("level") == level), None)
        due = review_decision_due(f, ctx.policy, request, decision)
        facts = {"level": level, "requested": request.on, "due": due}
        if decision is not None:
            if decision.on <= due:
                continue
            days = days_between(due, decision.on)
            out.append(Trigger("late_review_decision",
                               {**facts, "decided": decision.on, "days": days},
                               (_person(ctx, decision.actor, "reviewer"),),
                               _refs(request, decision), decision.on, due, days))
        elif ctx.as_of > due:
            days = days_between(due, ctx.as_of)
            out.append(Trigger("late_review_decision", {**facts, "as_of": ctx.as_of,
                                                        "days": days},
                               (), _refs(request), ctx.as_of, due, days, "pending"))
    return out


# ---- late entry (补录): business time is the signer's claim, recorded time the writer's ------

_RECORDED = struct.Struct(">Q")   # the envelope's recorded_at (µs), after the 4-byte magic
_STATEMENT = _RECORDED.size + 4 + 64 + len(EVENT_CONTEXT)   # where the statement JSON starts
_MIGRATION_KEY = b'"migration":'
_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def recorded_us(event: LedgerEvent) -> int:
    """When the writer recorded the event (µs since 1970, from the stored envelope)."""
    return int(_RECORDED.unpack_from(event.state, 4)[0])


def recorded_time(event: LedgerEvent) -> datetime | None:
    """The recorded time in Asia/Shanghai; None if the stored value is beyond any calendar
    (``verify`` reports such an envelope)."""
    try:
        return (_EPOCH + timedelta(microseconds=recorded_us(event))).astimezone(SHANGHAI)
    except OverflowError:
        return None


def migration_of(event: LedgerEvent) -> str | None:
    """The migration batch the event's signed statement names, if any. Only statements that
    contain the key are parsed in full (a JSON string cannot hold an unescaped quote, so
    ordinary events never match)."""
    if _MIGRATION_KEY not in event.state:
        return None
    try:
        obj = json.loads(event.state[_STATEMENT:])
    except (ValueError, RecursionError):
        return None
    name = obj.get("migration") if isinstance(obj, dict) else None
    return name if isinstance(name, str) else None


def _business_us(event: LedgerEvent) -> int | None:
    try:
        moment = datetime.fromisoformat(event.at)
        return (moment - _EPOCH) // timedelta(microseconds=1) if moment.tzinfo else None
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class _Deadline:
    kind: str                        # a LABELS["deadline"] code
    due: Day
    basis: LedgerEvent | None        # the event the deadline runs from


def _deadlines(f: CaseFile, ctx: Context) -> dict[int, _Deadline]:
    """The deadline each event answered, by seq, when its business time claims it was met:
    an acceptance decision (registration + acceptance days), an extension or reply (the
    cycle's handling deadline; for a reply, by its served date), a closing under supervision
    (the supervision due date), a review decision (request + decision days)."""
    out: dict[int, _Deadline] = {}
    policy = ctx.policy
    for e in f.events:
        if e.type == "accept" and e.on <= f.row.acceptance_due:
            out[e.seq] = _Deadline("acceptance", f.row.acceptance_due, f.events[0])
        elif e.type == "extend":
            start = f.cycle_start(e.seq)
            if start is None:
                continue
            earlier = [(date.fromisoformat(x.on), int(x.data.get("days", 0)))
                       for x in f.of("extend") if start.seq < x.seq < e.seq]
            due = handling_due(policy, date.fromisoformat(start.on), earlier).isoformat()
            if e.on <= due:
                out[e.seq] = _Deadline("handling", due, start)
        elif e.type == "reply":
            state = f.after[e.seq]
            handling, served = state.handling_due, state.reply_served_on
            if handling is not None and served is not None and served <= handling:
                out[e.seq] = _Deadline("handling", handling, f.cycle_start(e.seq))
        elif e.type == "close":
            supervision = f.after[e.seq].supervision_due
            if supervision is not None and e.on <= supervision:
                out[e.seq] = _Deadline("supervision", supervision,
                                       f.last_before(e.seq, "supervise"))
        elif e.type == "review_decide":
            request = next((r for r in reversed(f.of("review_request")) if r.seq < e.seq
                            and r.data.get("level") == e.data.get("level")), None)
            if request is None:
                continue
            due = review_decision_due(f, policy, request, e)
            if e.on <= due:
                out[e.seq] = _Deadline("review_decision", due, request)
    return out


def late_entry(f: CaseFile, ctx: Context) -> list[Trigger]:
    """An event recorded more than the policy's ``late_entry_days`` after its business time,
    or recorded after a deadline its business time claims it met (the ``deadline`` variant:
    by business time on time, by recorded time late). Responsible: the signer, who chose the
    business time. Events of a migration batch are reported once per batch instead, and
    events ``verify`` failed only as ``integrity`` (their claims are not theirs to answer)."""
    bad = {b.seq for b in ctx.bad_events.get(f.case_no, ())}
    threshold = ctx.policy.late_entry_days * _DAY_US
    deadlines: dict[int, _Deadline] | None = None
    out = []
    for e in f.events:
        if e.seq in bad or migration_of(e) is not None:
            continue
        business, recorded = _business_us(e), recorded_time(e)
        if business is None or recorded is None:
            continue
        if deadlines is None:
            deadlines = _deadlines(f, ctx)
        day = recorded.date().isoformat()
        deadline = deadlines.get(e.seq)
        missed = deadline is not None and day > deadline.due
        if not missed and recorded_us(e) - business <= threshold:
            continue
        facts: dict[str, Any] = {"action": e.type, "at": e.on, "recorded": day,
                                 "days": days_between(e.on, day)}
        person = (_person(ctx, e.actor, "signer"),)
        if missed:
            assert deadline is not None
            late = days_between(deadline.due, day)
            out.append(Trigger("late_entry", {**facts, "deadline": deadline.kind,
                                              "due": deadline.due},
                               person, _refs(deadline.basis, e), day, deadline.due, late,
                               "deadline"))
        else:
            out.append(Trigger("late_entry", facts, person, _refs(e), day, None,
                               facts["days"]))
    return out


def integrity(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Any verification failure in the case (see :func:`integrity_triggers`)."""
    return integrity_triggers(f.case_no, ctx)


def integrity_triggers(case_no: str, ctx: Context) -> list[Trigger]:
    """One trigger per event of the stream that ``verify`` failed; responsible: the actor the
    stored event names (it may be forged in their name: the detail says which check failed)."""
    out = []
    for bad in ctx.bad_events.get(case_no, ()):
        people = (_person(ctx, bad.actor, "signer"),) if bad.actor else ()
        evidence = (Ref(bad.stream, bad.seq, bad.hash, bad.position, bad.type),) \
            if bad.seq is not None and bad.hash is not None else ()
        facts = {"checks": ", ".join(str(c) for c in bad.checks),
                 "reasons": "; ".join(bad.reasons)}
        out.append(Trigger("integrity", facts, people, evidence))
    return out


Rule = Callable[[CaseFile, Context], list[Trigger]]

RULES: dict[str, Rule] = {
    "late_registration": late_registration,
    "late_acceptance": late_acceptance, "late_notice": late_notice, "late_reply": late_reply,
    "overdue_open": overdue_open, "no_feedback": no_feedback,
    "supervision_missed": supervision_missed, "no_report_back": no_report_back,
    "unsigned_closure": unsigned_closure,
    "dissatisfied_closure": dissatisfied_closure, "reflow": reflow, "bounced": bounced,
    "overturned": overturned, "late_review_decision": late_review_decision,
    "late_entry": late_entry, "integrity": integrity,
}
"""Every trigger code, in report order."""
CODES = tuple(RULES)


def evaluate(f: CaseFile, ctx: Context) -> list[Trigger]:
    """Every trigger of one case, rule by rule."""
    return [trigger for rule in RULES.values() for trigger in rule(f, ctx)]
