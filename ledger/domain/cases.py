"""The life of a petition case as a state machine: who may do what, when, and what it changes.

``check_action`` raises :class:`CaseViolation` (``forbidden`` for authorization, otherwise an
illegal transition) and is used both when writing and when verifying, so the ledger is re-checked
by exactly the rules that admitted it. ``apply_action`` folds an admitted event into the state.

:func:`closure_problems` is the one definition of the three-signature rule (三签): ``close``
applies it on write and ``ledger.verification.closure`` applies it when judging a closure, so
the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
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

    def name(self, what: str) -> str:
        return f"{what} #{self.seq}" + (f" by {self.actor}" if self.actor else "")


@dataclass(slots=True)
class CaseState:
    """What the rules need to know about one case (kept small: verification holds all of them)."""

    case: str
    registered_at: datetime
    petitioner: str
    repeat_of: tuple[str, ...] = ()
    decision: str | None = None
    handling_start: date | None = None
    unit: str | None = None
    handler: str | None = None
    assign_count: int = 0
    supervised: bool = False
    supervision_due: date | None = None
    package_leader: str | None = None
    extension_days: int = 0
    replied: bool = False
    reply_served: date | None = None
    # The current cycle's closure signatures (since the latest reply; a reopen starts anew)
    attest: Signed | None = None
    consent: Signed | None = None
    petition: Signed | None = None         # the petitioner's own or witnessed signature
    refusal: Signed | None = None          # the latest recorded refusal (拒签)
    closed_at: datetime | None = None
    desisted: bool = False
    review_stage: str | None = None        # "<level>_requested" / "<level>_decided"
    review_date: date | None = None        # of the latest request or decision
    review_changed: bool = False
    final: bool = False
    reverse_check_open: bool = False
    last_seq: int = 0                      # the seq of the latest event folded in

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    def handling_due(self, policy: Policy) -> date | None:
        if self.handling_start is None:
            return None
        return policy.handling_due(self.handling_start, self.extension_days)

    def acceptance_due(self, policy: Policy) -> date:
        return policy.add_days(business_date(self.registered_at), policy.acceptance_days)


CaseLookup = Callable[[str], "CaseState | None"]
#: One action's rule: raises CaseViolation unless ``signer`` may do it to ``case`` at ``at``.
Rule = Callable[[CaseState, dict[str, Any], Actor, datetime, Directory, CaseLookup], None]


def _forbid(message: str) -> CaseViolation:
    return CaseViolation(message, forbidden=True)


def check_action(case: CaseState | None, action: str, data: dict[str, Any], signer: Actor,
                 at: datetime, directory: Directory, lookup: CaseLookup) -> None:
    """Raise CaseViolation unless ``signer`` may perform ``action`` on ``case`` at ``at``."""
    policy = directory.policy
    roles = signer.roles
    if not policy.may(roles, action):
        allowed = "/".join(policy.roles_for(action)) or "nobody"
        raise _forbid(f"{signer.actor} ({'/'.join(sorted(roles))}) may not {action}; "
                      f"it needs the role {allowed}")
    if action == "register":
        if case is not None:
            raise CaseViolation(f"case {case.case} is already registered")
        _check_register(data, signer, directory, lookup, at)
        return
    if case is None:
        raise CaseViolation("the case is not registered")
    if at < case.registered_at:
        raise CaseViolation(f"business time {at.isoformat()} is before the case's registration")
    if action in REVERSE_CHECK_ACTIONS:
        _check_reverse_check(case, action, data, directory)
        return
    if case.final and action != "desist":  # a desist undertaking is no further handling
        raise CaseViolation("the matter is final after its 复核 (recheck) decision; "
                            "a new petition on it can only be registered and not re-accepted")
    handler = _RULES.get(action)
    if handler is None:
        raise CaseViolation(f"unknown action {action}")
    handler(case, data, signer, at, directory, lookup)


def _check_register(data: dict[str, Any], signer: Actor, directory: Directory,
                    lookup: CaseLookup, at: datetime) -> None:
    policy = directory.policy
    if "registrar" not in signer.roles:  # a leader registers only at the reception day
        if not data.get("reception_day"):
            raise _forbid(f"{signer.actor} is a leader and may register only reception-day "
                          "(接待日) petitions")
        if data.get("received_by") not in (None, signer.actor):
            raise _forbid(f"{signer.actor} may register reception-day petitions only as the "
                          "receiving leader")
    if data["category"] not in policy.categories:
        raise CaseViolation(f"unknown category {data['category']!r}; the policy knows "
                            + ", ".join(policy.categories))
    petitioner = directory.actor(data["petitioner"])
    if petitioner is None or "petitioner" not in petitioner.roles:
        raise CaseViolation(f"{data['petitioner']} is not a registered petitioner",
                            )
    received_by = data.get("received_by")
    if received_by is not None:
        leader = directory.actor(received_by)
        if leader is None or "leader" not in leader.roles:
            raise CaseViolation(f"received_by {received_by} is not a leader")
    for earlier in data.get("repeat_of", []):
        state = lookup(earlier)
        if state is None:
            raise CaseViolation(f"repeat_of names {earlier}, which is not registered")
        if state.registered_at > at:
            raise CaseViolation(f"repeat_of names {earlier}, registered after this petition")


def _need_open(case: CaseState) -> None:
    if case.closed:
        raise CaseViolation("the case is closed; reopen it first")


def _need_accepted(case: CaseState) -> None:
    if case.decision != "accepted":
        raise CaseViolation("the case has not been accepted (受理)")


def _need_assigned(case: CaseState) -> None:
    _need_accepted(case)
    if case.handler is None:
        raise CaseViolation("the case has not been assigned to a handler")


def _need_handler(case: CaseState, signer: Actor) -> None:
    if case.handler != signer.actor:
        raise _forbid(f"{signer.actor} is not the handler assigned to {case.case} "
                      f"(that is {case.handler or 'nobody'})")


def _need_unit_leader(case: CaseState, signer: Actor) -> None:
    if case.unit is None or signer.unit != case.unit:
        raise _forbid(f"{signer.actor} leads {signer.unit or 'no unit'}, not the handling unit "
                      f"{case.unit or '(none)'} of {case.case}")


def _need_reply(case: CaseState) -> None:
    if not case.replied:
        raise CaseViolation("the case has no reply (答复) yet")


def _accept(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    if case.decision is not None:
        raise CaseViolation(f"the acceptance decision was already made ({case.decision})")
    finals = [c for c in case.repeat_of if (s := lookup(c)) is not None and s.final]
    if finals and data["decision"] != "not_reaccepted":
        raise CaseViolation(f"the matter of {finals[0]} is final after 复核; the only decision "
                            "is not_reaccepted (不再受理)")
    if data["decision"] == "not_reaccepted" and not finals:
        raise CaseViolation("not_reaccepted needs an earlier case of the same matter (repeat_of) "
                            "whose 复核 decision is final")


def _assign(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_accepted(case)
    if data["unit"] not in directory.units:
        raise CaseViolation(f"unit {data['unit']} does not exist")
    handler = directory.actor(data["handler"])
    if handler is None or "handler" not in handler.roles:
        raise CaseViolation(f"{data['handler']} is not a handler")
    if handler.unit != data["unit"]:
        raise CaseViolation(f"handler {handler.actor} belongs to {handler.unit}, "
                            f"not {data['unit']}")


def _supervise(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
               directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)


def _remind(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    if not case.supervised:
        raise CaseViolation("reminders (催办) need a supervised (督办) case")


def _package(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
             directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    leader = directory.actor(data["leader"])
    if leader is None or "leader" not in leader.roles:
        raise CaseViolation(f"{data['leader']} is not a leader")
    if case.package_leader == data["leader"]:
        raise CaseViolation(f"{data['leader']} already has this case packaged (包案)")


def _progress(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
              directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_assigned(case)
    _need_handler(case, signer)


def _extend(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_assigned(case)
    _need_unit_leader(case, signer)
    if case.replied:
        raise CaseViolation("the case is already replied; no extension is needed")
    limit = directory.policy.max_extension_days
    if case.extension_days + data["days"] > limit:
        raise CaseViolation(f"extensions may total at most {limit} days; "
                            f"{case.extension_days} already granted, {data['days']} asked")


def _reply(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
           directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_assigned(case)
    _need_handler(case, signer)
    if case.replied:
        raise CaseViolation("the case is already replied (答复)")
    if datetime.fromisoformat(data["served_at"]) < case.registered_at:
        raise CaseViolation("the reply cannot be served before the case was registered")


def _attest(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_handler(case, signer)
    _need_reply(case)
    if _standing_attest(case) is not None:
        raise CaseViolation("the resolution is already attested by the assigned handler")


def _consent(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
             directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_unit_leader(case, signer)
    _need_reply(case)
    if directory.policy.rules < 2:   # rules v1: the signatures in any order
        if case.consent is not None and case.consent.unit == case.unit:
            raise CaseViolation("the unit leader has already consented")
        return
    attest = _standing_attest(case)
    if attest is None:
        raise CaseViolation("the unit leader consents after the handler's attestation "
                            f"({ORDER}); {_attest_missing(case)}")
    if at < attest.at:
        raise CaseViolation(f"the consent would be dated {at.isoformat()}, before the handler "
                            f"attestation #{attest.seq} ({attest.at.isoformat()}); {ORDER}")
    if _standing_consent(case) is not None:
        raise CaseViolation("the unit leader has already consented")


def _petitioner_sign(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                     directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    if data["form"] == "key":
        if signer.actor != case.petitioner or "petitioner" not in signer.roles:
            raise _forbid(f"only the case's own petitioner {case.petitioner} signs with a key")
    elif "registrar" not in signer.roles:
        raise _forbid("witnessed signatures and refusals are recorded by a registrar")
    _need_reply(case)
    if _standing_petition(case) is not None:
        raise CaseViolation("the petitioner has already signed")
    if data["form"] == "refused" or directory.policy.rules < 2:
        return   # a refusal is no signature, so it has no place in the order (nor in rules v1)
    consent = _standing_consent(case)
    if consent is None:
        raise CaseViolation("the petitioner signs after the unit leader's consent "
                            f"({ORDER}); {_consent_missing(case)}")
    if at < consent.at:
        raise CaseViolation(f"the signature would be dated {at.isoformat()}, before the unit "
                            f"leader consent #{consent.seq} ({consent.at.isoformat()}); {ORDER}")


def _close(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
           directory: Directory, lookup: CaseLookup) -> None:
    _need_open(case)
    _need_accepted(case)
    _need_reply(case)
    problems = closure_problems(case, at) if directory.policy.rules >= 2 else [
        (f"missing_{name}", f"no {SIGNATURE_NAMES[action]}") for action, name, present in (
            ("attest", "attest", case.attest), ("consent", "consent", case.consent),
            ("petitioner_sign", "petitioner", case.petition)) if present is None]
    if problems and not data.get("override_reason"):
        raise CaseViolation(
            "closing needs the three signatures (三签) standing, in the order "
            f"{ORDER}, none dated after the closing: "
            + "; ".join(f"{code}: {detail}" for code, detail in problems)
            + ". Record an override_reason to close anyway", problems=problems)


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
            problems.append(("refused", f"the petitioner refused to sign (拒签), recorded{by} "
                             f"(#{refusal.seq}); a refusal is not a signature"))
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


def _desist(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    if case.desisted:
        raise CaseViolation("the petitioner has already desisted (停访息诉)")


def _review_request(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                    directory: Directory, lookup: CaseLookup) -> None:
    policy = directory.policy
    day = business_date(at)
    if data["level"] == "review":
        if case.reply_served is None:
            raise CaseViolation("a review (复查) needs a served reply")
        if case.review_stage is not None:
            raise CaseViolation(f"a review is already under way ({case.review_stage})")
        due = policy.add_days(case.reply_served, policy.review_request_days)
    else:
        if case.review_stage != "review_decided":
            raise CaseViolation("a re-review (复核) needs a decided review (复查)")
        assert case.review_date is not None
        due = policy.add_days(case.review_date, policy.review_request_days)
    if day > due:
        raise CaseViolation(f"the {data['level']} request window closed on {due.isoformat()}")


def _review_decide(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                   directory: Directory, lookup: CaseLookup) -> None:
    if case.review_stage != f"{data['level']}_requested":
        raise CaseViolation(f"there is no pending {data['level']} request")


def _reopen(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
            directory: Directory, lookup: CaseLookup) -> None:
    if not case.closed and not case.review_changed:
        raise CaseViolation("only a closed case or one whose review changed the decision "
                            "can be reopened")


_RULES: dict[str, Rule] = {
    "accept": _accept, "assign": _assign, "supervise": _supervise, "remind": _remind,
    "package": _package, "progress": _progress, "extend": _extend, "reply": _reply,
    "attest": _attest, "consent": _consent, "petitioner_sign": _petitioner_sign,
    "close": _close, "desist": _desist, "review_request": _review_request,
    "review_decide": _review_decide, "reopen": _reopen,
}


def _check_reverse_check(case: CaseState, action: str, data: dict[str, Any],
                         directory: Directory) -> None:
    if action == "reverse_check_open":
        if case.reverse_check_open:
            raise CaseViolation("a reverse-check (倒查) is already open on this case")
        return
    if not case.reverse_check_open:
        raise CaseViolation("open a reverse-check (倒查) first")
    if action == "reverse_check_finding" and directory.actor(data["actor"]) is None:
        raise CaseViolation(f"finding names {data['actor']}, who is not in the directory")


def apply_action(case: CaseState | None, case_no: str, action: str, data: dict[str, Any],
                 at: datetime, *, seq: int | None = None, actor: str | None = None
                 ) -> CaseState:
    """Fold one admitted event into the case state (returns the same object when it exists).

    ``seq`` defaults to the one after the last event folded (right when every event of the
    stream is folded in order); ``actor`` is kept with the closure signatures for messages only.
    """
    if seq is None:
        seq = case.last_seq + 1 if case is not None and action != "register" else 1
    if action == "register":
        return CaseState(case=case_no, registered_at=at, petitioner=data["petitioner"],
                         repeat_of=tuple(data.get("repeat_of", ())), last_seq=seq)
    assert case is not None
    case.last_seq = seq
    day = business_date(at)
    if action == "accept":
        case.decision = data["decision"]
        if data["decision"] == "accepted":
            case.handling_start = day
    elif action == "assign":
        case.unit, case.handler = data["unit"], data["handler"]
        case.assign_count += 1
    elif action == "supervise":
        case.supervised = True
        case.supervision_due = date.fromisoformat(data["due"])
    elif action == "package":
        case.package_leader = data["leader"]
    elif action == "extend":
        case.extension_days += data["days"]
    elif action == "reply":
        case.replied = True
        case.reply_served = business_date(datetime.fromisoformat(data["served_at"]))
        case.attest = case.consent = case.petition = case.refusal = None   # a new cycle
    elif action == "attest":
        case.attest = Signed(seq, at, actor, handler=case.handler, unit=case.unit)
    elif action == "consent":
        case.consent = Signed(seq, at, actor, unit=case.unit)
    elif action == "petitioner_sign":
        signed = Signed(seq, at, actor, form=data["form"],
                        document_sha256=data.get("document_sha256"))
        if data["form"] == "refused":
            case.refusal = signed
        else:
            case.petition = signed
    elif action == "close":
        case.closed_at = at
    elif action == "desist":
        case.desisted = True
    elif action == "review_request":
        case.review_stage = f"{data['level']}_requested"
        case.review_date = day
    elif action == "review_decide":
        case.review_stage = f"{data['level']}_decided"
        case.review_date = day
        case.review_changed = data["decision"] in ("changed", "revoked")
        if data["level"] == "recheck":
            case.final = True
    elif action == "reopen":
        case.closed_at = None
        case.replied = False
        case.reply_served = None
        case.attest = case.consent = case.petition = case.refusal = None
        case.review_changed = False
        case.extension_days = 0
        case.handling_start = day
    elif action == "reverse_check_open":
        case.reverse_check_open = True
    elif action == "reverse_check_conclude":
        case.reverse_check_open = False
    return case
