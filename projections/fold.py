"""The read model as a fold: ``apply(row, event, policy) -> row`` for cases, plus the rows a
single event derives (assignments, repeat links, directory names).

No I/O, no clock: the same events always give the same rows, which is what makes a rebuild equal
to an incremental catch-up, and lets a report refold a case "as it stood" at an earlier date.
Rows are updated in place (a batch owns them) for speed; the write side's ``cases.apply_action``
is mirrored, not imported, because the read model keeps more (who, when, and evidence refs).

The handlers are keyed by the action registry (``ledger.domain.actions``): every case action it
defines has one here (or is defined ``read_model=False`` and only advances the bookkeeping), and
:func:`apply` raises :class:`UnknownEventType` for any other type instead of skipping it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from ledger.domain.actions import REGISTRY, RULES_2022
from ledger.domain.policy import Policy

from .events import Day, LedgerEvent, business_day


class UnknownEventType(ValueError):
    """A case event whose type the action registry does not define (or the fold does not
    handle): the read model would silently go wrong, so it stops instead."""


@dataclass(slots=True)
class CaseRow:
    """Everything the reports (and accountability checks) need about one case, latest state.

    ``*_seq``/``*_hash`` fields are evidence references (the stream is ``case_no``). Days are
    business dates in Asia/Shanghai as ISO text (``Day``). ``max_on`` is the latest business
    date of any event folded in: a row answers "as of D" exactly when ``max_on <= D``.
    """

    case_no: str
    registered_at: str
    registered_on: Day
    registered_by: str
    register_hash: str
    channel: str
    source: str
    ref: str | None
    category: str
    petitioner: str
    persons: int
    summary: str
    repeat_of: tuple[str, ...]
    reception_day: bool
    received_by: str | None
    acceptance_due: Day            # receipt + the acceptance days (Art. 23)
    max_on: Day
    received_at: str | None = None  # receipt (收到): given, or the registration time
    received_on: Day | None = None
    new_facts: str | None = None    # a repeat petition's new facts or reasons
    # acceptance decision (made once)
    decision: str | None = None
    ground: str | None = None       # not accepted: the coded ground (Art. 19-22)
    decided_on: Day | None = None
    decided_by: str | None = None
    accept_seq: int | None = None
    accept_hash: str | None = None
    notice_served_on: Day | None = None
    handling_start: Day | None = None
    handling_due: Day | None = None
    # latest assignment (every assignment is in rm_assignments)
    unit: str | None = None
    handler: str | None = None
    assigned_on: Day | None = None
    assign_due: Day | None = None
    assign_count: int = 0
    # latest supervision
    supervised_on: Day | None = None
    supervised_by: str | None = None
    supervision_authority: str | None = None
    supervision_due: Day | None = None
    supervision_form: str | None = None
    supervise_count: int = 0
    remind_count: int = 0
    report_back_count: int = 0               # 回告 to the supervising authority
    report_back_on: Day | None = None        # the latest one's business date
    report_back_served_on: Day | None = None
    # leader package
    package_leader: str | None = None
    packaged_on: Day | None = None
    # handling
    progress_count: int = 0
    follow_up_count: int = 0
    last_progress_on: Day | None = None
    extension_days: int = 0          # granted while the handling period ran (they move it)
    late_extension_days: int = 0     # granted after it ended: they never move it (Art. 34)
    extension_count: int = 0
    extension_notified_on: Day | None = None
    # reply (cleared by reopen; the first one's served date is kept for "answered on the spot")
    replied_on: Day | None = None
    replied_by: str | None = None
    reply_served_on: Day | None = None
    first_reply_served_on: Day | None = None
    reply_outcome: str | None = None
    reply_resolution: str | None = None
    reply_seq: int | None = None
    reply_hash: str | None = None
    # the three signatures (三签)
    attested_by: str | None = None
    attested_on: Day | None = None
    consented_by: str | None = None
    consented_on: Day | None = None
    petitioner_form: str | None = None        # key / witnessed / refused (latest)
    petitioner_opinion: str | None = None
    petitioner_signed_by: str | None = None   # the petitioner, or the witnessing registrar
    petitioner_signed_on: Day | None = None
    petitioner_sign_seq: int | None = None
    petitioner_sign_hash: str | None = None
    refusal_reason: str | None = None         # a refusal's (拒签) recorded reason
    # closing
    closed_on: Day | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    close_seq: int | None = None
    close_hash: str | None = None
    override_reason: str | None = None
    close_count: int = 0
    desisted_on: Day | None = None
    # review (复查) and re-review (复核)
    review_stage: str | None = None
    review_level: str | None = None
    review_decision: str | None = None
    review_decided_on: Day | None = None
    review_served_on: Day | None = None       # the written decision served (Art. 35-36)
    hearing_days: int = 0                     # 听证 days, not counted in the 复核 period
    overturned_count: int = 0
    overturn_seq: int | None = None
    overturn_hash: str | None = None
    final: bool = False
    reopen_count: int = 0
    reopened_on: Day | None = None
    # reverse-check (倒查)
    reverse_check: str | None = None          # open / concluded
    reverse_check_count: int = 0
    reverse_check_findings: int = 0
    # bookkeeping
    last_seq: int = 0
    last_position: int = 0

    @property
    def closed(self) -> bool:
        return self.closed_on is not None

    @property
    def petitioner_signed(self) -> bool:
        """A refusal (拒签) never counts as a signature."""
        return self.petitioner_form in ("key", "witnessed")


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    """One assign/transfer (交办/转办), numbered per case from 1."""

    case_no: str
    n: int
    seq: int
    hash: str
    assigned_on: Day
    assigned_by: str
    unit: str
    handler: str
    due: Day | None


@dataclass(frozen=True, slots=True)
class UnitRow:
    unit: str
    name: str
    parent: str | None


@dataclass(frozen=True, slots=True)
class ActorRow:
    actor: str
    name: str
    unit: str | None
    roles: str   # comma-separated


def _add_days(policy: Policy, day: Day, days: int) -> Day:
    return policy.add_days(date.fromisoformat(day), days).isoformat()


def _handling_due(row: CaseRow, policy: Policy) -> Day | None:
    """Acceptance (or reopening) date + handling days + approved extension days."""
    if row.handling_start is None:
        return None
    return policy.handling_due(date.fromisoformat(row.handling_start),
                               row.extension_days).isoformat()


def register(event: LedgerEvent, policy: Policy) -> CaseRow:
    data = event.data
    received_at = data.get("received_at") or event.at
    received_on = business_day(received_at)
    return CaseRow(
        case_no=event.stream, registered_at=event.at, registered_on=event.on,
        registered_by=event.actor, register_hash=event.hash, channel=data["channel"],
        source=data["source"], ref=data.get("ref"), category=data["category"],
        petitioner=data["petitioner"], persons=int(data.get("persons", 1)),
        summary=data["summary"], repeat_of=tuple(data.get("repeat_of", ())),
        reception_day=bool(data.get("reception_day", False)),
        received_by=data.get("received_by"),
        acceptance_due=_add_days(policy, received_on, policy.acceptance_days), max_on=event.on,
        received_at=received_at, received_on=received_on, new_facts=data.get("new_facts"),
        last_seq=event.seq, last_position=event.position)


def _accept(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.decision = e.data["decision"]
    row.ground = e.data.get("ground")
    row.decided_on, row.decided_by = e.on, e.actor
    row.accept_seq, row.accept_hash = e.seq, e.hash
    served = e.data.get("notice_served_at")
    row.notice_served_on = business_day(served) if served else None
    if row.decision == "accepted":
        row.handling_start = e.on
        row.handling_due = _handling_due(row, policy)


def _assign(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.unit, row.handler = e.data["unit"], e.data["handler"]
    row.assigned_on, row.assign_due = e.on, e.data.get("due")
    row.assign_count += 1


def _supervise(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.supervised_on, row.supervised_by = e.on, e.actor
    row.supervision_authority = e.data["authority"]
    row.supervision_due = e.data["due"]
    row.supervision_form = e.data.get("form")
    row.supervise_count += 1


def _remind(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.remind_count += 1


def _report_back(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.report_back_count += 1
    row.report_back_on = e.on
    served = e.data.get("served_at")
    row.report_back_served_on = business_day(served) if served else None


def _package(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.package_leader, row.packaged_on = e.data["leader"], e.on


def _progress(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.progress_count += 1
    row.follow_up_count += bool(e.data.get("follow_up"))
    row.last_progress_on = e.on


def _extend(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    """An extension moves the deadline only when granted while the period ran (Art. 34), as
    the write side's ``cases.handling_due``; rules 1-2 let a late one be written."""
    row.extension_count += 1
    told = e.data.get("notified_at")
    row.extension_notified_on = business_day(told) if told else None
    if row.handling_due is not None and e.on > row.handling_due:
        row.late_extension_days += int(e.data["days"])
        return
    row.extension_days += int(e.data["days"])
    row.handling_due = _handling_due(row, policy)


def _reply(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.replied_on, row.replied_by = e.on, e.actor
    row.reply_served_on = business_day(e.data["served_at"])
    if row.first_reply_served_on is None:
        row.first_reply_served_on = row.reply_served_on
    row.reply_outcome, row.reply_resolution = e.data["outcome"], e.data["resolution"]
    row.reply_seq, row.reply_hash = e.seq, e.hash


def _attest(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.attested_by, row.attested_on = e.actor, e.on


def _consent(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.consented_by, row.consented_on = e.actor, e.on


def _petitioner_sign(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.petitioner_form, row.petitioner_opinion = e.data["form"], e.data.get("opinion")
    row.petitioner_signed_by, row.petitioner_signed_on = e.actor, e.on
    row.petitioner_sign_seq, row.petitioner_sign_hash = e.seq, e.hash
    row.refusal_reason = e.data.get("reason")


def _close(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.closed_on, row.closed_at, row.closed_by = e.on, e.at, e.actor
    row.close_seq, row.close_hash = e.seq, e.hash
    row.override_reason = e.data.get("override_reason")
    row.close_count += 1


def _desist(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.desisted_on = e.on


def _review_request(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.review_stage = f"{e.data['level']}_requested"


def _review_decide(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    level, decision = e.data["level"], e.data["decision"]
    row.review_stage = f"{level}_decided"
    row.review_level, row.review_decision, row.review_decided_on = level, decision, e.on
    served = e.data.get("served_at")
    row.review_served_on = business_day(served) if served else None
    if decision in ("changed", "revoked"):
        row.overturned_count += 1
        row.overturn_seq, row.overturn_hash = e.seq, e.hash
    if level == "recheck":
        # Art. 36: final when upheld; changed or revoked, it is handled again (rules 3)
        row.final = decision == "upheld" or policy.rules < RULES_2022


def _hearing(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.hearing_days += hearing_days(e)


def hearing_days(e: LedgerEvent) -> int:
    """The calendar days a hearing (听证) spans, both ends counted."""
    start, end = business_day(e.data["start"]), business_day(e.data["end"])
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1


_REOPEN_CLEARS = (
    "closed_on", "closed_at", "closed_by", "close_seq", "close_hash", "override_reason",
    "replied_on", "replied_by", "reply_served_on", "reply_outcome", "reply_resolution",
    "reply_seq", "reply_hash", "attested_by", "attested_on", "consented_by", "consented_on",
    "petitioner_form", "petitioner_opinion", "petitioner_signed_by", "petitioner_signed_on",
    "petitioner_sign_seq", "petitioner_sign_hash", "refusal_reason",
)


def _reopen(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    """Handling starts again (as on the write side): reply, signatures and closing are cleared."""
    for name in _REOPEN_CLEARS:
        setattr(row, name, None)
    row.extension_days = row.late_extension_days = row.extension_count = 0
    row.extension_notified_on = None
    row.handling_start = e.on
    row.handling_due = _handling_due(row, policy)
    row.reopen_count += 1
    row.reopened_on = e.on


def _reverse_check_open(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.reverse_check = "open"
    row.reverse_check_count += 1


def _reverse_check_finding(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.reverse_check_findings += 1


def _reverse_check_conclude(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    row.reverse_check = "concluded"


def _bookkeeping(row: CaseRow, e: LedgerEvent, policy: Policy) -> None:
    """An action the registry defines with ``read_model=False``: no column of its own."""


Handler = Callable[[CaseRow, LedgerEvent, Policy], None]
_HANDLERS: dict[str, Handler] = {
    "accept": _accept, "assign": _assign, "supervise": _supervise, "remind": _remind,
    "package": _package, "progress": _progress, "extend": _extend, "reply": _reply,
    "attest": _attest, "consent": _consent, "petitioner_sign": _petitioner_sign,
    "close": _close, "desist": _desist, "review_request": _review_request,
    "review_decide": _review_decide, "hearing": _hearing, "report_back": _report_back,
    "reopen": _reopen, "reverse_check_open": _reverse_check_open,
    "reverse_check_finding": _reverse_check_finding,
    "reverse_check_conclude": _reverse_check_conclude,
}
#: The fold of every case action of the registry but ``register`` (keyed by the registry:
#: an action it does not define has no handler, whatever this module holds).
_APPLY: dict[str, Handler] = {
    name: _HANDLERS.get(name) or _bookkeeping
    for name, definition in REGISTRY.items()
    if definition.stream == "case" and name != "register"
    and (name in _HANDLERS or not definition.read_model)}


def apply(row: CaseRow | None, event: LedgerEvent, policy: Policy) -> CaseRow | None:
    """Fold one case event into its row (None until the case is registered).

    Raises :class:`UnknownEventType` for a type the registry does not define or this fold
    does not handle: never a silent skip."""
    if event.type == "register":
        return row if row is not None else register(event, policy)
    handler = _APPLY.get(event.type)
    if handler is None:
        raise UnknownEventType(f"the read model has no fold for event type {event.type!r:.80} "
                               f"({event.stream}#{event.seq}); the action registry "
                               "(ledger/domain/actions.py) and projections/fold.py disagree")
    if row is None:
        return None   # an event of a stream with no registration: nothing to attach it to
    handler(row, event, policy)
    row.last_seq, row.last_position = event.seq, event.position
    if event.on > row.max_on:
        row.max_on = event.on
    return row


def assignment(row: CaseRow, event: LedgerEvent) -> AssignmentRow:
    """The assignment row an ``assign`` event adds (call after ``apply``)."""
    return AssignmentRow(row.case_no, row.assign_count, event.seq, event.hash, event.on,
                         event.actor, event.data["unit"], event.data["handler"],
                         event.data.get("due"))


def directory_row(event: LedgerEvent) -> UnitRow | ActorRow | None:
    """The name row a directory event adds (units and actors; other events add none)."""
    data = event.data
    if event.type == "unit.add":
        return UnitRow(data["unit"], data["name"], data.get("parent"))
    if event.type == "actor.add":
        return ActorRow(data["actor"], data["name"], data.get("unit"),
                        ",".join(data.get("roles", ())))
    return None
