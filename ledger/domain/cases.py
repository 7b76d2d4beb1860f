"""The life of a petition case as a state machine: who may do what, when, and what it changes.

``check_action`` raises :class:`CaseViolation` (``forbidden`` for authorization, otherwise an
illegal transition) and is used both when writing and when verifying, so the ledger is re-checked
by exactly the rules that admitted it. ``apply_action`` folds an admitted event into the state.
Both dispatch to the action's one definition in the registry (:mod:`ledger.domain.actions`:
its roles, scope rule, precondition and effect); this module holds the case state, the checks
the definitions share and the three-signature rule.

:func:`closure_problems` is the one definition of the three-signature rule (三签): ``close``
applies it on write and ``ledger.verification.closure`` applies it when judging a closure, so
the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ledger.domain.directory import Actor, Directory
from ledger.domain.policy import Policy, business_date

REVERSE_CHECK_ACTIONS = ("reverse_check_open", "reverse_check_finding", "reverse_check_conclude")


class CaseViolation(Exception):
    def __init__(self, message: str, *, forbidden: bool = False,
                 problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.forbidden = forbidden
        self.problems = tuple(problems or ())   # a refused close: the 三签 rule's problems


@dataclass(frozen=True, slots=True)
class Signed:
    """Facts about one closure signature (三签) that the rule needs, not the event itself.

    ``handler`` and ``unit`` are the case's assigned handler and handling unit when it was
    given: an attestation stands only while its handler is still the one assigned, a consent
    only while the case stays with that unit. That the signer *was* that handler, that unit's
    leader, or the case's petitioner is the signature event's own authorization verdict
    (``check_action`` when written, re-judged by ``verify`` and the case history), so the rule
    never depends on ``actor``, which a caller may leave out.
    """

    seq: int
    at: datetime
    actor: str | None = None
    handler: str | None = None     # attest: the handler assigned then
    unit: str | None = None        # attest, consent: the handling unit then
    form: str | None = None        # petitioner_sign: key / witnessed / refused
    document_sha256: str | None = None
    reason: str | None = None      # a refusal's recorded reason

    def name(self, what: str) -> str:
        return f"{what} #{self.seq}" + (f" by {self.actor}" if self.actor else "")


@dataclass(slots=True)
class CaseState:
    """What the rules need to know about one case (kept small: verification holds all of them)."""

    case: str
    registered_at: datetime
    petitioner: str
    repeat_of: tuple[str, ...] = ()
    received_at: datetime | None = None    # receipt (收到, Art. 23); None: the registration
    new_facts: bool = False                # a repeat petition registered with new facts
    decision: str | None = None
    accepted_by: str | None = None         # who signed the acceptance (the accepting organ)
    handling_start: date | None = None
    unit: str | None = None
    handler: str | None = None
    assign_count: int = 0
    supervised: bool = False
    supervision_due: date | None = None
    package_leader: str | None = None
    extension_days: int = 0                # granted in the current handling cycle
    extension_count: int = 0
    extensions: tuple[tuple[date, int], ...] = ()   # (business date, days) in this cycle
    replied: bool = False
    reply_served: date | None = None
    reply_unit: str | None = None          # the handling unit that replied
    # The current cycle's closure signatures (since the latest reply; a reopen starts anew)
    attest: Signed | None = None
    consent: Signed | None = None
    petition: Signed | None = None         # the petitioner's own or witnessed signature
    refusal: Signed | None = None          # the latest recorded refusal (拒签)
    closed_at: datetime | None = None
    desisted: bool = False
    review_stage: str | None = None        # "<level>_requested" / "<level>_decided"
    review_date: date | None = None        # of the latest request or decision
    review_served: date | None = None      # the latest decision's written form served
    review_by: str | None = None           # who decided the 复查 (review)
    review_changed: bool = False
    rechecked: bool = False                # a 复核 decision was made (final under rules 1-2)
    final: bool = False                    # a 复核 upheld: final (Art. 36)
    reverse_check_open: bool = False
    last_seq: int = 0                      # the seq of the latest event folded in

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def handling_due(self, policy: Policy) -> date | None:
        """Acceptance (or reopening) + the handling period + the extensions granted while it
        ran (a late one never moves the deadline, Art. 34)."""
        if self.handling_start is None:
            return None
        return handling_due(policy, self.handling_start, self.extensions)

    @property
    def received(self) -> datetime:
        return self.received_at or self.registered_at

    def acceptance_due(self, policy: Policy) -> date:
        """The acceptance notice is due 15 日 from receipt (Art. 23)."""
        return policy.add_days(business_date(self.received), policy.acceptance_days)

    def is_final(self, rules: int) -> bool:
        """Final after the 复核: under rules 3 only an upheld one (Art. 36: a changed or
        revoked decision lets the matter be handled again); under rules 1-2 any."""
        return self.final if rules >= 3 else self.rechecked


def handling_due(policy: Policy, start: date, extensions: Iterable[tuple[date, int]]) -> date:
    """The handling deadline: ``start`` + the handling period + each extension granted on or
    before the deadline as it then stood. An extension dated after it (which rules 1-2 let
    be written) is recorded but never moves the deadline (Art. 34: only while it runs)."""
    granted = 0
    due = policy.handling_due(start, 0)
    for day, days in extensions:
        if day <= due:
            granted += days
            due = policy.handling_due(start, granted)
    return due


CaseLookup = Callable[[str], "CaseState | None"]
#: One action's rule: raises CaseViolation unless ``signer`` may do it to ``case`` at ``at``.
Rule = Callable[[CaseState, dict[str, Any], Actor, datetime, Directory, CaseLookup], None]


def forbid(message: str) -> CaseViolation:
    return CaseViolation(message, forbidden=True)


_forbid = forbid


def check_action(case: CaseState | None, action: str, data: dict[str, Any], signer: Actor,
                 at: datetime, directory: Directory, lookup: CaseLookup) -> None:
    """Raise CaseViolation unless ``signer`` may perform ``action`` on ``case`` at ``at``:
    the role grant of the ledger's policy, then the action's definition (its scope rule and
    precondition, as the rules version recorded at ``init`` states them)."""
    policy = directory.policy
    definition = actions.REGISTRY.get(action)
    if definition is None or definition.stream != "case" or definition.check is None:
        raise CaseViolation(f"unknown action {action}")
    roles = signer.roles
    if not policy.may(roles, action):
        allowed = "/".join(policy.roles_for(action)) or "nobody"
        raise _forbid(f"{signer.actor} ({'/'.join(sorted(roles))}) may not {action}; "
                      f"it needs the role {allowed}")
    if action == "register":
        if case is not None:
            raise CaseViolation(f"case {case.case} is already registered")
        definition.check(case, data, signer, at, directory, lookup)  # type: ignore[arg-type]
        return
    if case is None:
        raise CaseViolation("the case is not registered")
    if at < case.registered_at:
        raise CaseViolation(f"business time {at.isoformat()} is before the case's registration")
    if definition.group != "reverse-check" and action != "desist" and \
            case.is_final(policy.rules):   # a desist undertaking is no further handling
        raise CaseViolation("the matter is final after its 复核 (recheck) decision; "
                            "a new petition on it can only be registered and not re-accepted")
    definition.check(case, data, signer, at, directory, lookup)


def apply_action(case: CaseState | None, case_no: str, action: str, data: dict[str, Any],
                 at: datetime, *, seq: int | None = None, actor: str | None = None
                 ) -> CaseState:
    """Fold one admitted event into the case state (returns the same object when it exists).

    ``seq`` defaults to the one after the last event folded (right when every event of the
    stream is folded in order); ``actor`` is kept with the closure signatures and as who
    accepted or reviewed (the scope rules of extensions and reviews need it).
    """
    if seq is None:
        seq = case.last_seq + 1 if case is not None and action != "register" else 1
    definition = actions.REGISTRY[action]
    if action == "register":
        assert definition.create is not None
        return definition.create(case_no, data, at, seq, actor)
    assert case is not None and definition.effect is not None
    case.last_seq = seq
    definition.effect(case, Fact(data, at, business_date(at), seq, actor))
    return case


@dataclass(frozen=True, slots=True)
class Fact:
    """One admitted event as an effect sees it."""

    data: dict[str, Any]
    at: datetime
    day: date            # the business date (Asia/Shanghai)
    seq: int
    actor: str | None


# ---- checks the definitions share ----------------------------------------------------------

def need_open(case: CaseState) -> None:
    if case.closed:
        raise CaseViolation("the case is closed; reopen it first")


def need_accepted(case: CaseState) -> None:
    if case.decision != "accepted":
        raise CaseViolation("the case has not been accepted (受理)")


def need_assigned(case: CaseState) -> None:
    need_accepted(case)
    if case.handler is None:
        raise CaseViolation("the case has not been assigned to a handler")


def need_handler(case: CaseState, signer: Actor) -> None:
    if case.handler != signer.actor:
        raise _forbid(f"{signer.actor} is not the handler assigned to {case.case} "
                      f"(that is {case.handler or 'nobody'})")


def need_unit_leader(case: CaseState, signer: Actor) -> None:
    if case.unit is None or signer.unit != case.unit:
        raise _forbid(f"{signer.actor} leads {signer.unit or 'no unit'}, not the handling unit "
                      f"{case.unit or '(none)'} of {case.case}")


def need_reply(case: CaseState) -> None:
    if not case.replied:
        raise CaseViolation("the case has no reply (答复) yet")


def unit_chain(directory: Directory, unit: str | None) -> list[str]:
    """``unit`` and the units above it, nearest first (the unit tree as the directory holds
    it at the event's position; a parent loop, impossible to write, ends the chain)."""
    chain: list[str] = []
    while unit is not None and unit not in chain:
        chain.append(unit)
        node = directory.units.get(unit)
        unit = node.parent if node is not None else None
    return chain


def is_above(directory: Directory, upper: str | None, lower: str | None) -> bool:
    """Whether ``upper`` is an ancestor of ``lower`` in the unit tree (not the unit itself)."""
    return upper is not None and upper in unit_chain(directory, lower)[1:]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


_need_open, _need_accepted, _need_assigned = need_open, need_accepted, need_assigned
_need_handler, _need_unit_leader, _need_reply = need_handler, need_unit_leader, need_reply


# ---- the three-signature rule (三签, domain.md "The life of a case" 9-10) -----------------------

ORDER = "attest → consent → petitioner"
SIGNATURE_NAMES = {"attest": "handler attestation", "consent": "unit leader consent",
                   "petitioner_sign": "petitioner signature"}
ClosureProblems = list[tuple[str, str]]   # (code, detail); codes as in verification.closure


def _standing_attest(case: CaseState) -> Signed | None:
    """The attestation that counts: given by the handler still assigned."""
    attest = case.attest
    return attest if attest is not None and attest.handler == case.handler else None


def _follows(later: Signed | None, earlier: Signed) -> Signed | None:
    """``later`` if it comes after ``earlier`` in the log and in business time."""
    if later is None or later.seq < earlier.seq or later.at < earlier.at:
        return None
    return later


def _standing_consent(case: CaseState) -> Signed | None:
    """The consent that counts: for the unit now handling the case, after the attestation."""
    attest = _standing_attest(case)
    consent = case.consent
    if attest is None or consent is None or consent.unit != case.unit:
        return None
    return _follows(consent, attest)


def _standing_petition(case: CaseState) -> Signed | None:
    """The petitioner's signature that counts: after the standing consent, and a witnessed
    one with its document's digest."""
    consent, petition = _standing_consent(case), case.petition
    if consent is None or (petition is not None and petition.form == "witnessed"
                           and not petition.document_sha256):
        return None
    return _follows(petition, consent)


def _attest_missing(case: CaseState) -> str:
    attest = case.attest
    if attest is None:
        return "there is no handler attestation since the latest reply (答复)"
    return (f"the {attest.name('handler attestation')} was given while {attest.handler} was "
            f"the assigned handler; the case is now assigned to {case.handler or 'nobody'}, "
            "who has not attested")


def _consent_missing(case: CaseState) -> str:
    consent = case.consent
    if consent is not None and consent.unit != case.unit:
        return (f"the {consent.name('unit leader consent')} was given for {consent.unit}; the "
                f"case is now handled by {case.unit or 'no unit'}, whose leader has not consented")
    if _standing_attest(case) is None:
        return _attest_missing(case)
    if consent is None:
        return "there is no unit leader consent since the latest reply (答复)"
    return f"the {consent.name('unit leader consent')} does not follow the handler attestation"


def closure_problems(case: CaseState, close_at: datetime) -> ClosureProblems:
    """Why closing ``case`` at ``close_at`` breaks the three-signature rule (empty: it holds).

    The rule (domain.md 9-10; the seed's 三个必须): in the current cycle (since the latest reply,
    a reopen starting a new one) the assigned handler's attestation, the consent of the unit now
    handling the case and the petitioner's own or witnessed signature (with the document's
    SHA-256) are present, in the order attest → consent → petitioner by log order and business
    time, none dated after the closing. A refusal (拒签) never counts. Whether each signature
    event verifies and was authorized is judged per event, not here.
    """
    problems: ClosureProblems = []
    if not case.replied:
        problems.append(("no_reply", "there is no reply (答复) before this closing"))
    attest = _standing_attest(case)
    if attest is None:
        problems.append(("missing_attest", _attest_missing(case)))
    consent = case.consent
    if consent is None or consent.unit != case.unit:
        problems.append(("missing_consent", "there is no unit leader consent since the latest "
                         "reply (答复)" if consent is None else _consent_missing(case)))
        consent = None
    petition = case.petition
    if petition is None:
        if case.refusal is not None:
            refusal = case.refusal
            by = f" by {refusal.actor}" if refusal.actor else ""
            why = f", reason: {refusal.reason}" if refusal.reason else ""
            problems.append(("refused", f"the petitioner refused to sign (拒签), recorded{by} "
                             f"(#{refusal.seq}){why}; a refusal is not a signature"))
        else:
            problems.append(("missing_petitioner", "there is no petitioner signature since the "
                             "latest reply (答复)"))
    elif petition.form == "witnessed" and not petition.document_sha256:
        problems.append(("no_document", f"the witnessed {petition.name('petitioner signature')}"
                         " carries no SHA-256 of the signed document"))
    present = [(action, sig) for action, sig in (("attest", attest), ("consent", consent),
                                                 ("petitioner_sign", petition)) if sig]
    for action, sig in present:
        if sig.at > close_at:
            problems.append(("after_close", f"the {sig.name(SIGNATURE_NAMES[action])} is dated "
                             f"{sig.at.isoformat()}, after the closing at "
                             f"{close_at.isoformat()}"))
    for (first, a), (second, b) in zip(present, present[1:], strict=False):
        if b.seq < a.seq:
            problems.append(("wrong_order", f"the {SIGNATURE_NAMES[second]} (#{b.seq}) precedes "
                             f"the {SIGNATURE_NAMES[first]} (#{a.seq})"))
        elif b.at < a.at:
            problems.append(("wrong_order", f"the {SIGNATURE_NAMES[second]} is dated "
                             f"{b.at.isoformat()}, before the {SIGNATURE_NAMES[first]} "
                             f"({a.at.isoformat()})"))
    return problems


# The registry (its definitions use this module's state and checks).
from ledger.domain import actions  # noqa: E402
