"""The action registry: every action defined once.

One :class:`Action` per action kind holds everything about it — its data schema (the pydantic
model in :mod:`schemas.actions`, by name), who may do it (the roles a new ledger grants, and
those of older rules versions) and on which cases (its scope rule), its precondition, its
effect on :class:`~ledger.domain.cases.CaseState`, its labels (中文/English), help and example,
its place in the chain of custody, and the labels and help of its fields. Everything else is
derived from it:

* ``check_action`` / ``apply_action`` (:mod:`ledger.domain.cases`) dispatch to ``check`` and
  ``effect``, on write and on verify alike;
* the default role grants (:func:`permissions_for`, recorded in a new ledger's policy);
* the command line's ``case`` and ``reverse-check`` subcommands and their options, coded
  choices included (:func:`fields_of`, used by ``cli/case_commands.py``);
* the import line's JSON Schema with each field's label and help (:func:`import_schema`);
* the action labels of every report (``projections/labels.py``), the chain of custody
  (:func:`custody_steps`) and the read model's fold (``projections/fold.py`` keys its handlers
  by this registry and fails on a type it does not know);
* the JSON catalogue web forms are generated from (:func:`catalogue`) and the docs table
  ``docs/actions.md`` (:func:`markdown`; :data:`REGENERATE` is the command that writes it).

Adding an action: its model in ``schemas/actions.py`` and its definition here; a
``read_model=False`` action needs nothing else (the read model's own columns are the read
side's to add). ``tests/test_registry.py`` proves every view covers every action.

The rules cite the 信访工作条例 (2022) where they come from. Rules version 3 (``policy.rules``,
recorded at ``init``) holds them; ledgers recorded under 1 or 2 are judged by their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from ledger.domain.cases import (
    ORDER,
    SIGNATURE_NAMES,
    CaseLookup,
    CaseState,
    CaseViolation,
    Fact,
    Signed,
    _attest_missing,
    _consent_missing,
    _standing_attest,
    _standing_consent,
    _standing_petition,
    closure_problems,
    forbid,
    is_above,
    moment,
    need_accepted,
    need_assigned,
    need_handler,
    need_open,
    need_reply,
    need_unit_leader,
    unit_chain,
)
from ledger.domain.directory import Actor, Directory
from ledger.domain.policy import business_date
from schemas.actions import (
    ACTION_MODELS,
    CODE_LABELS,
    ENUM_KINDS,
    EventRef,
    Role,
    import_line_schema,
)

Check = Callable[[CaseState, dict[str, Any], Actor, datetime, Directory, CaseLookup], None]
Effect = Callable[[CaseState, Fact], None]
Create = Callable[[str, dict[str, Any], datetime, int, "str | None"], CaseState]

#: The rules version that states the 信访工作条例 (2022) rules (docs/read-side.md).
RULES_2022 = 3


@dataclass(frozen=True)
class FieldSpec:
    """A field's labels and help (its type, whether it is required and its choices come from
    the model). ``flag`` renames the command-line option, ``default`` is the command line's,
    ``choices`` names the label kind of an open code list (content categories), ``document``
    lets the command line take a file whose SHA-256 fills the field."""

    zh: str
    en: str
    help: str
    flag: str | None = None
    default: Any = None
    choices: str | None = None
    document: bool = False


@dataclass(frozen=True)
class Action:
    name: str
    zh: str
    en: str
    help: str
    example: str
    roles: tuple[str, ...]
    scope: str                      # who among the roles, and when, in words (docs, help)
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    check: Check | None = None      # scope rule and precondition (case actions)
    effect: Effect | None = None    # change of CaseState (case actions but register)
    create: Create | None = None    # register: the new case
    stream: str = "case"            # "case" or "directory"
    group: str | None = "case"      # the CLI group: "case", "reverse-check"; None: elsewhere
    command: str | None = None      # the CLI subcommand (default: the name, "-" for "_")
    custody: bool = True            # a step of the chain of custody (倒查 办理经过)
    article: str = ""               # where its rules come from (信访工作条例 2022)
    since_rules: int = 1            # the first rules version that has it
    legacy_roles: tuple[str, ...] | None = None   # the roles under rules 1-2, if different
    read_model: bool = True         # the read model folds it (projections/fold.py)

    @property
    def model(self) -> type[BaseModel]:
        return ACTION_MODELS[self.name]

    @property
    def cli_name(self) -> str:
        return self.command or self.name.replace("_", "-")

    def roles_under(self, rules: int) -> tuple[str, ...]:
        if rules < self.since_rules:
            return ()
        if rules < RULES_2022 and self.legacy_roles is not None:
            return self.legacy_roles
        return self.roles

    def label(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


def F(zh: str, en: str, help: str, **extra: Any) -> FieldSpec:  # noqa: N802 - a table's row
    return FieldSpec(zh, en, help, **extra)


# ---- register (登记) ------------------------------------------------------------------------

def _register_check(case: CaseState | None, data: dict[str, Any], signer: Actor, at: datetime,
                    directory: Directory, lookup: CaseLookup) -> None:
    policy = directory.policy
    if "registrar" not in signer.roles:  # a leader registers only at the reception day
        if not data.get("reception_day"):
            raise forbid(f"{signer.actor} is a leader and may register only reception-day "
                         "(接待日) petitions")
        if data.get("received_by") not in (None, signer.actor):
            raise forbid(f"{signer.actor} may register reception-day petitions only as the "
                         "receiving leader")
    if data["category"] not in policy.categories:
        raise CaseViolation(f"unknown category {data['category']!r}; the policy knows "
                            + ", ".join(policy.categories))
    petitioner = directory.actor(data["petitioner"])
    if petitioner is None or "petitioner" not in petitioner.roles:
        raise CaseViolation(f"{data['petitioner']} is not a registered petitioner")
    received_by = data.get("received_by")
    if received_by is not None:
        leader = directory.actor(received_by)
        if leader is None or "leader" not in leader.roles:
            raise CaseViolation(f"received_by {received_by} is not a leader")
    # Art. 23: the periods run from receipt, which cannot come after the registration.
    if "received_at" in data and moment(data["received_at"]) > at:
        raise CaseViolation(f"received_at {data['received_at']} is after the registration "
                            f"({at.isoformat()}); receipt comes first (Art. 23)")
    for earlier in data.get("repeat_of", []):
        state = lookup(earlier)
        if state is None:
            raise CaseViolation(f"repeat_of names {earlier}, which is not registered")
        if state.registered_at > at:
            raise CaseViolation(f"repeat_of names {earlier}, registered after this petition")


def _register_create(case_no: str, data: dict[str, Any], at: datetime, seq: int,
                     actor: str | None) -> CaseState:
    received = data.get("received_at")
    return CaseState(case=case_no, registered_at=at, petitioner=data["petitioner"],
                     repeat_of=tuple(data.get("repeat_of", ())),
                     received_at=moment(received) if received else None,
                     new_facts=bool(data.get("new_facts")), last_seq=seq)


# ---- accept (受理) --------------------------------------------------------------------------

def _accept_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    rules = directory.policy.rules
    need_open(case)
    if case.decision is not None:
        raise CaseViolation(f"the acceptance decision was already made ({case.decision})")
    decision = data["decision"]
    finals = [c for c in case.repeat_of if (s := lookup(c)) is not None and s.is_final(rules)]
    if finals and decision != "not_reaccepted" and (rules < RULES_2022 or not case.new_facts):
        # Art. 36: the same facts and reasons after a final 复核 are not accepted again; a
        # petition registered with new facts (rules 3) may be.
        raise CaseViolation(f"the matter of {finals[0]} is final after 复核; the only decision "
                            "is not_reaccepted (不再受理)"
                            + ("" if rules < RULES_2022 else
                               " unless the petition was registered with new_facts"))
    if decision == "not_reaccepted" and not finals:
        raise CaseViolation("not_reaccepted needs an earlier case of the same matter (repeat_of) "
                            "whose 复核 decision is final")
    if rules < RULES_2022:
        return
    if decision == "not_accepted" and "ground" not in data:
        # Art. 19-22: why it is not accepted, coded
        raise CaseViolation("a not_accepted decision names its ground (outside_remit, "
                            "legal_procedure, handled_elsewhere or other; Art. 19-22)")
    served = data.get("notice_served_at")
    if served is not None and moment(served) < case.received:
        raise CaseViolation(f"the acceptance notice cannot be served ({served}) before the "
                            "petition was received (Art. 23)")


def _accept_effect(case: CaseState, f: Fact) -> None:
    case.decision = f.data["decision"]
    case.accepted_by = f.actor
    if case.decision == "accepted":
        case.handling_start = f.day


# ---- assign (交办/转办) ----------------------------------------------------------------------

def _assign_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    need_accepted(case)
    if data["unit"] not in directory.units:
        raise CaseViolation(f"unit {data['unit']} does not exist")
    handler = directory.actor(data["handler"])
    if handler is None or "handler" not in handler.roles:
        raise CaseViolation(f"{data['handler']} is not a handler")
    if handler.unit != data["unit"]:
        raise CaseViolation(f"handler {handler.actor} belongs to {handler.unit}, "
                            f"not {data['unit']}")


def _assign_effect(case: CaseState, f: Fact) -> None:
    case.unit, case.handler = f.data["unit"], f.data["handler"]
    case.assign_count += 1


# ---- supervise, remind, report back (督办, 催办, 回告) ------------------------------------------

def _supervise_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                     directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)


def _supervise_effect(case: CaseState, f: Fact) -> None:
    case.supervised = True
    case.supervision_due = date.fromisoformat(f.data["due"])


def _remind_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    if not case.supervised:
        raise CaseViolation("reminders (催办) need a supervised (督办) case")


def _report_back_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                       directory: Directory, lookup: CaseLookup) -> None:
    # Art. 39-40: the handling body reports back (回告) to the supervising authority.
    if not case.supervised:
        raise CaseViolation("a report-back (回告) answers a supervision (督办); the case is not "
                            "supervised")
    roles = signer.roles & frozenset(directory.policy.roles_for("report_back"))
    handling_body = ("petition_office" in roles
                     or ("unit_leader" in roles and case.unit is not None
                         and signer.unit == case.unit)
                     or ("handler" in roles and case.handler == signer.actor))
    if not handling_body:
        raise forbid(f"{signer.actor} reports back only for the handling body: the assigned "
                     f"handler ({case.handler or 'nobody'}), a leader of the handling unit "
                     f"({case.unit or 'none'}) or the petition office")
    served = data.get("served_at")
    if served is not None and moment(served) < case.registered_at:
        raise CaseViolation("the report-back cannot be served before the case was registered")


def _nothing(case: CaseState, f: Fact) -> None:
    """The event changes no state the rules read (it counts in the read model)."""


# ---- package (领导包案), progress (进展/回访) ----------------------------------------------------

def _package_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                   directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    leader = directory.actor(data["leader"])
    if leader is None or "leader" not in leader.roles:
        raise CaseViolation(f"{data['leader']} is not a leader")
    if case.package_leader == data["leader"]:
        raise CaseViolation(f"{data['leader']} already has this case packaged (包案)")


def _package_effect(case: CaseState, f: Fact) -> None:
    case.package_leader = f.data["leader"]


def _progress_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                    directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    need_assigned(case)
    need_handler(case, signer)


# ---- extend (延期, Art. 34) -----------------------------------------------------------------

def _extend_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    policy = directory.policy
    need_open(case)
    if policy.rules < RULES_2022:   # rules 1-2: the handling unit's leader, at any time
        need_assigned(case)
        need_unit_leader(case, signer)
        if case.replied:
            raise CaseViolation("the case is already replied; no extension is needed")
        limit = policy.max_extension_days
        if case.extension_days + data["days"] > limit:
            raise CaseViolation(f"extensions may total at most {limit} days; "
                                f"{case.extension_days} already granted, {data['days']} asked")
        return
    # Art. 34: 60 days from acceptance; 情况复杂的，经本机关、单位负责人批准，可以适当延长办理期限，
    # 但延长期限不得超过30日，并告知信访人延期理由 — one extension, while the period runs,
    # approved by the head of the organ that accepted the case.
    need_accepted(case)
    if case.replied:
        raise CaseViolation("the case is already replied; no extension is needed")
    due = case.handling_due(policy)
    assert due is not None
    if business_date(at) > due:
        raise CaseViolation(f"the handling period ended on {due.isoformat()}; an extension is "
                            "approved only while it is running (Art. 34)")
    if case.extension_count:
        raise CaseViolation("the handling period was already extended once (Art. 34: one "
                            "extension)")
    limit = policy.max_extension_days
    if data["days"] > limit:
        raise CaseViolation(f"an extension is at most {limit} days (Art. 34); "
                            f"{data['days']} asked")
    accepting = directory.actor(case.accepted_by) if case.accepted_by else None
    organ = accepting.unit if accepting is not None else None
    if organ is None or signer.unit not in unit_chain(directory, organ):
        raise forbid(f"{signer.actor} ({signer.unit or 'no unit'}) is not a leader of the organ "
                     f"that accepted {case.case} ({organ or 'unknown'}) or of a unit above it; "
                     "the head of the accepting organ approves an extension (Art. 34)")
    told = data.get("notified_at")
    if told is not None and moment(told) < case.registered_at:
        raise CaseViolation("the petitioner cannot be told of the extension before the case "
                            "was registered")


def _extend_effect(case: CaseState, f: Fact) -> None:
    case.extension_days += f.data["days"]
    case.extension_count += 1
    case.extensions = (*case.extensions, (f.day, f.data["days"]))


# ---- reply (答复) and the three signatures (三签) --------------------------------------------

def _reply_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                 directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    need_assigned(case)
    need_handler(case, signer)
    if case.replied:
        raise CaseViolation("the case is already replied (答复)")
    if moment(data["served_at"]) < case.registered_at:
        raise CaseViolation("the reply cannot be served before the case was registered")


def _reply_effect(case: CaseState, f: Fact) -> None:
    case.replied = True
    case.reply_served = business_date(moment(f.data["served_at"]))
    case.reply_unit = case.unit
    case.attest = case.consent = case.petition = case.refusal = None   # a new cycle


def _attest_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    need_handler(case, signer)
    need_reply(case)
    if _standing_attest(case) is not None:
        raise CaseViolation("the resolution is already attested by the assigned handler")


def _attest_effect(case: CaseState, f: Fact) -> None:
    case.attest = Signed(f.seq, f.at, f.actor, handler=case.handler, unit=case.unit)


def _consent_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                   directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    need_unit_leader(case, signer)
    need_reply(case)
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


def _consent_effect(case: CaseState, f: Fact) -> None:
    case.consent = Signed(f.seq, f.at, f.actor, unit=case.unit)


def _petitioner_sign_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                           directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    if data["form"] == "key":
        if signer.actor != case.petitioner or "petitioner" not in signer.roles:
            raise forbid(f"only the case's own petitioner {case.petitioner} signs with a key")
    elif "registrar" not in signer.roles:
        raise forbid("witnessed signatures and refusals are recorded by a registrar")
    need_reply(case)
    if _standing_petition(case) is not None:
        raise CaseViolation("the petitioner has already signed")
    if data["form"] == "refused":
        if directory.policy.rules >= RULES_2022 and not data.get("reason"):
            # A refusal is recorded with what the petitioner gave as the reason, so a closure
            # after it can be told from one that skipped the petitioner.
            raise CaseViolation("a refusal to sign (拒签) is recorded with its reason")
        return   # a refusal is no signature, so it has no place in the order
    if directory.policy.rules < 2:
        return
    consent = _standing_consent(case)
    if consent is None:
        raise CaseViolation("the petitioner signs after the unit leader's consent "
                            f"({ORDER}); {_consent_missing(case)}")
    if at < consent.at:
        raise CaseViolation(f"the signature would be dated {at.isoformat()}, before the unit "
                            f"leader consent #{consent.seq} ({consent.at.isoformat()}); {ORDER}")


def _petitioner_sign_effect(case: CaseState, f: Fact) -> None:
    signed = Signed(f.seq, f.at, f.actor, form=f.data["form"],
                    document_sha256=f.data.get("document_sha256"), reason=f.data.get("reason"))
    if f.data["form"] == "refused":
        case.refusal = signed
    else:
        case.petition = signed


def _close_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                 directory: Directory, lookup: CaseLookup) -> None:
    need_open(case)
    need_accepted(case)
    need_reply(case)
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


def _close_effect(case: CaseState, f: Fact) -> None:
    case.closed_at = f.at


def _desist_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    if case.desisted:
        raise CaseViolation("the petitioner has already desisted (停访息诉)")


def _desist_effect(case: CaseState, f: Fact) -> None:
    case.desisted = True


# ---- review (复查), re-review (复核), hearing (听证), reopen (重新办理) --------------------------

def _review_request_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                          directory: Directory, lookup: CaseLookup) -> None:
    policy = directory.policy
    day = business_date(at)
    if data["level"] == "review":
        # Art. 35: 自收到书面答复之日起30日内
        if case.reply_served is None:
            raise CaseViolation("a review (复查) needs a served reply")
        if case.review_stage is not None:
            raise CaseViolation(f"a review is already under way ({case.review_stage})")
        due = policy.add_days(case.reply_served, policy.review_request_days)
    else:
        if case.review_stage != "review_decided":
            raise CaseViolation("a re-review (复核) needs a decided review (复查)")
        assert case.review_date is not None
        # Art. 36: from receipt of the written 复查 decision (rules 3: its served date, the
        # decision date when none was recorded; rules 1-2: the decision date)
        start = case.review_date
        if policy.rules >= RULES_2022 and case.review_served is not None:
            start = case.review_served
        due = policy.add_days(start, policy.review_request_days)
    if day > due:
        raise CaseViolation(f"the {data['level']} request window closed on {due.isoformat()}")


def _review_request_effect(case: CaseState, f: Fact) -> None:
    case.review_stage = f"{f.data['level']}_requested"
    case.review_date = f.day


def _reviewing_unit(case: CaseState, level: str, directory: Directory) -> str | None:
    """The unit a 复查 (review) or 复核 (recheck) body must be above (Art. 35-36): the unit that
    replied, or the unit of the reviewer who decided the 复查."""
    if level == "review":
        return case.reply_unit
    reviewer = directory.actor(case.review_by) if case.review_by else None
    return reviewer.unit if reviewer is not None else None


def _need_higher_body(case: CaseState, level: str, signer: Actor, directory: Directory,
                      what: str) -> None:
    lower = _reviewing_unit(case, level, directory)
    if not is_above(directory, signer.unit, lower):
        body = "replying unit" if level == "review" else "复查 (review) body's unit"
        raise forbid(f"{signer.actor} ({signer.unit or 'no unit'}) is not of a unit above the "
                     f"{body} ({lower or 'unknown'}); {what} (Art. 35-36)")


def _review_decide_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                         directory: Directory, lookup: CaseLookup) -> None:
    level = data["level"]
    if case.review_stage != f"{level}_requested":
        raise CaseViolation(f"there is no pending {level} request")
    if directory.policy.rules < RULES_2022:
        return
    _need_higher_body(case, level, signer, directory,
                      "a 复查 is decided by the next higher body of the one that replied, a 复核 "
                      "by the next higher body of the 复查's")
    served = data.get("served_at")
    if served is not None and business_date(moment(served)) < business_date(at):
        raise CaseViolation(f"the written decision cannot be served ({served}) before it was "
                            "decided")


def _review_decide_effect(case: CaseState, f: Fact) -> None:
    level, decision = f.data["level"], f.data["decision"]
    case.review_stage = f"{level}_decided"
    case.review_date = f.day
    served = f.data.get("served_at")
    case.review_served = business_date(moment(served)) if served else None
    case.review_changed = decision in ("changed", "revoked")
    if level == "review":
        case.review_by = f.actor
    else:
        case.rechecked = True
        case.final = decision == "upheld"   # Art. 36; rules 1-2 read ``rechecked``


def _hearing_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                   directory: Directory, lookup: CaseLookup) -> None:
    # Art. 36: 复核机关、单位可以...举行听证; 听证所需时间不计算在前款规定的期限内
    if case.review_stage != "recheck_requested":
        raise CaseViolation("a hearing (听证) is held during a pending 复核 (re-review)")
    _need_higher_body(case, "recheck", signer, directory,
                      "the 复核 body holds the hearing")
    start, end = moment(data["start"]), moment(data["end"])
    assert case.review_date is not None
    if business_date(start) < case.review_date:
        raise CaseViolation(f"the hearing starts ({data['start']}) before the 复核 was "
                            f"requested ({case.review_date.isoformat()})")
    if end > at:
        raise CaseViolation("a hearing is recorded once it has ended (its end is after the "
                            "business time)")


def _reopen_check(case: CaseState, data: dict[str, Any], signer: Actor, at: datetime,
                  directory: Directory, lookup: CaseLookup) -> None:
    if not case.closed and not case.review_changed:
        raise CaseViolation("only a closed case or one whose review changed the decision "
                            "can be reopened")


def _reopen_effect(case: CaseState, f: Fact) -> None:
    case.closed_at = None
    case.replied = False
    case.reply_served = None
    case.attest = case.consent = case.petition = case.refusal = None
    case.review_changed = False
    case.extension_days = case.extension_count = 0
    case.extensions = ()
    case.handling_start = f.day


# ---- reverse-checks (倒查) -------------------------------------------------------------------

def _reverse_check_open_check(case: CaseState, data: dict[str, Any], signer: Actor,
                              at: datetime, directory: Directory, lookup: CaseLookup) -> None:
    if case.reverse_check_open:
        raise CaseViolation("a reverse-check (倒查) is already open on this case")


def _need_reverse_check(case: CaseState) -> None:
    if not case.reverse_check_open:
        raise CaseViolation("open a reverse-check (倒查) first")


def _reverse_check_finding_check(case: CaseState, data: dict[str, Any], signer: Actor,
                                 at: datetime, directory: Directory,
                                 lookup: CaseLookup) -> None:
    _need_reverse_check(case)
    if directory.actor(data["actor"]) is None:
        raise CaseViolation(f"finding names {data['actor']}, who is not in the directory")


def _reverse_check_conclude_check(case: CaseState, data: dict[str, Any], signer: Actor,
                                  at: datetime, directory: Directory,
                                  lookup: CaseLookup) -> None:
    _need_reverse_check(case)
    if directory.policy.rules >= RULES_2022 and not isinstance(data["measures"], list):
        raise CaseViolation("measures are coded (criticism, admonition, circulated_criticism, "
                            "written_examination, reassignment, discipline_referral, other); "
                            "put free text in note")


def _reverse_check_open_effect(case: CaseState, f: Fact) -> None:
    case.reverse_check_open = True


def _reverse_check_conclude_effect(case: CaseState, f: Fact) -> None:
    case.reverse_check_open = False


# ---- the registry, in the order of a case's life --------------------------------------------

_TIME = "2025-03-02 09:30 is Beijing time; a date alone is 00:00 that day"

ACTIONS: tuple[Action, ...] = (
    Action(
        "register", "登记", "register", "Register a petition (登记); prints the case number.",
        'xinfang case register --as registrar-01 --channel letter --source petition_bureau '
        '--category household_registration --petitioner pet-0001 --summary "户口迁移不予办理" '
        '--received-at 2025-03-01 --at 2025-03-02T09:30:00+08:00',
        ("registrar", "leader"),
        "a registrar; a leader only for reception-day (接待日) petitions they received",
        {"channel": F("渠道", "channel", "Channel (渠道)."),
         "source": F("来源", "source", "Source (来源)."),
         "ref": F("来文编号", "referral no.", "Referral document number."),
         "category": F("内容分类", "category", "Content category (内容分类), code or label.",
                       choices="category"),
         "petitioner": F("信访人", "petitioner", "Petitioner actor id."),
         "persons": F("人数", "persons", "Number of persons (集体访 if a group)."),
         "summary": F("信访事项", "summary", "Summary of the matter."),
         "repeat_of": F("原信访件", "repeat of", "Earlier case of the same matter (repeatable)."),
         "reception_day": F("接待日", "reception day", "Received on a reception day (接待日)."),
         "received_by": F("接待领导", "received by", "Leader who received it."),
         "received_at": F("收到时间", "received at", "When the petition was received (收到); "
                          "the periods run from it (default: the registration time)."),
         "new_facts": F("新的事实和理由", "new facts", "A repeat petition's new facts or reasons: "
                        "after a final 复核 it may then be accepted again.")},
        _register_check, create=_register_create, article="Art. 23, 36, 44"),
    Action(
        "accept", "受理决定", "acceptance decision", "Record the acceptance decision (受理).",
        "xinfang case accept XF-2025-000001 --as office-01",
        ("petition_office",), "the petition office, once per case",
        {"decision": F("受理决定", "decision", "Decision.", default="accepted"),
         "reason": F("理由", "reason", "Reason (required unless accepted)."),
         "notice_served_at": F("告知书送达时间", "notice served at",
                               "When the written notice (告知书) was served."),
         "ground": F("不予受理依据", "ground", "Why not accepted (required for not_accepted).")},
        _accept_check, _accept_effect, article="Art. 19-23, 36"),
    Action(
        "assign", "交办", "assign", "Assign or transfer to a unit and handler (交办/转办).",
        "xinfang case assign XF-2025-000001 --unit station-03 --handler officer-07 "
        "--as office-01",
        ("petition_office",), "the petition office; the handler must belong to the unit",
        {"unit": F("承办单位", "unit", "Handling unit."),
         "handler": F("承办人", "handler", "Handler actor id."),
         "due": F("办理期限", "due", "Handling due date (YYYY-MM-DD).")},
        _assign_check, _assign_effect),
    Action(
        "supervise", "督办", "supervise", "List the case for supervision (督办).",
        "xinfang case supervise XF-2025-000001 --authority leader --due 2025-04-30 "
        "--form letter --as leader-01",
        ("leader", "supervisor"), "a leader or supervisor, on an open case",
        {"authority": F("督办机关", "authority", "Supervising authority."),
         "due": F("回告期限", "due", "Report-back due date (YYYY-MM-DD)."),
         "form": F("督办形式", "form", "Form of supervision.")},
        _supervise_check, _supervise_effect, article="Art. 39-40"),
    Action(
        "remind", "催办", "remind", "Send a reminder (催办) on a supervised case.",
        "xinfang case remind XF-2025-000001 --note 请加快办理 --as supervisor-01",
        ("supervisor",), "a supervisor, on an open supervised case",
        {"note": F("催办内容", "note", "Reminder text.")},
        _remind_check, _nothing, article="Art. 39-40"),
    Action(
        "package", "领导包案", "leader package", "A leader takes personal charge (领导包案).",
        "xinfang case package XF-2025-000001 --leader leader-01 --as leader-01",
        ("leader",), "a leader, naming a leader",
        {"leader": F("包案领导", "leader", "The leader in charge.")},
        _package_check, _package_effect),
    Action(
        "progress", "进展报告", "progress report",
        "Report progress or a follow-up visit (进展/回访).",
        'xinfang case progress XF-2025-000001 --note "已约谈信访人" --as officer-07',
        ("handler",), "the assigned handler",
        {"note": F("进展情况", "note", "What was done."),
         "follow_up": F("回访", "follow-up", "This was a follow-up visit (回访).")},
        _progress_check, _nothing),
    Action(
        "extend", "延期", "extension",
        "Approve an extension (延期): once, while the handling period runs, by the head of the "
        "accepting organ.",
        'xinfang case extend XF-2025-000001 --days 30 --reason "需补充调查" '
        "--notified-at 2025-04-21 --as leader-01",
        ("leader",),
        "a leader of the unit that accepted the case or of a unit above it, while the period "
        "runs, once, at most 30 days (rules 1-2: the handling unit's leader)",
        {"days": F("延长天数", "days", "Days of extension."),
         "reason": F("延期理由", "reason", "Reason told to the petitioner."),
         "notified_at": F("告知信访人时间", "notified at",
                          "When the petitioner was told why.")},
        _extend_check, _extend_effect, article="Art. 34", legacy_roles=("unit_leader",)),
    Action(
        "reply", "答复", "reply", "Record the reply to the petitioner (答复).",
        "xinfang case reply XF-2025-000001 --outcome support --resolution problem_solved "
        '--served-at 2025-04-01T10:00:00+08:00 --text "已办理落户" --as officer-07',
        ("handler",), "the assigned handler, once per handling cycle",
        {"outcome": F("处理意见", "outcome", "Outcome."),
         "resolution": F("三到位一处理", "resolution", "三到位一处理 kind."),
         "served_at": F("送达时间", "served at", "When the reply was served."),
         "text": F("答复内容", "text", "Reply text.")},
        _reply_check, _reply_effect, article="Art. 34"),
    Action(
        "attest", "承办人确认化解", "handler attestation",
        "Handler attests the problem is resolved (三签 1/3).",
        "xinfang case attest XF-2025-000001 --evidence 答复书-001 --as officer-07",
        ("handler",), "the assigned handler, after the reply",
        {"evidence": F("证据材料", "evidence", "Evidence reference (repeatable).")},
        _attest_check, _attest_effect),
    Action(
        "consent", "单位负责人签字", "unit leader consent",
        "Handling unit leader signs consent (三签 2/3).",
        "xinfang case consent XF-2025-000001 --as leader-station-03",
        ("unit_leader",), "a leader of the handling unit, after the attestation",
        {}, _consent_check, _consent_effect),
    Action(
        "petitioner_sign", "信访人签字", "petitioner signature",
        "Petitioner's opinion (三签 3/3): own key, witnessed paper, or refusal (拒签).",
        "xinfang case petitioner-sign XF-2025-000001 --form witnessed --opinion satisfied "
        "--document scan.pdf --as registrar-01",
        ("registrar", "petitioner"),
        "the case's own petitioner with their key; a registrar for a witnessed paper signature "
        "or a refusal (with its reason)",
        {"opinion": F("信访人意见", "opinion", "Opinion."),
         "form": F("签字方式", "form", "How it was signed."),
         "document_sha256": F("签字文件摘要", "document SHA-256", "SHA-256 of the document.",
                              document=True),
         "reason": F("拒签理由", "refusal reason", "Why the petitioner refused (拒签).")},
        _petitioner_sign_check, _petitioner_sign_effect),
    Action(
        "close", "办结", "close", "Close the case (办结); needs the three signatures.",
        "xinfang case close XF-2025-000001 --as office-01",
        ("petition_office",), "the petition office, with the three signatures standing",
        {"override_reason": F("强行办结理由", "override reason",
                              "Close without all three signatures (a reverse-check trigger).")},
        _close_check, _close_effect),
    Action(
        "desist", "停访息诉", "desist",
        "Record the petitioner's undertaking to desist (停访息诉).",
        "xinfang case desist XF-2025-000001 --document undertaking.pdf --as registrar-01",
        ("registrar",), "a registrar, once",
        {"document_sha256": F("承诺书摘要", "document SHA-256", "SHA-256 of the document.",
                              document=True)},
        _desist_check, _desist_effect),
    Action(
        "review_request", "复查/复核申请", "review request",
        "Record a review request (复查/复核).",
        "xinfang case review-request XF-2025-000001 --level review --as registrar-01",
        ("registrar",),
        "a registrar, within 30 days of the served reply (复查) or of the served 复查 decision "
        "(复核)",
        {"level": F("层级", "level", "review (复查) or recheck (复核).")},
        _review_request_check, _review_request_effect, article="Art. 35-36"),
    Action(
        "review_decide", "复查/复核决定", "review decision",
        "Record a review decision (higher body).",
        "xinfang case review-decide XF-2025-000001 --level review --decision upheld "
        "--served-at 2025-05-10 --as reviewer-01",
        ("reviewer",),
        "a reviewer of a unit above the unit that replied (复查), or above the 复查 "
        "reviewer's unit (复核)",
        {"level": F("层级", "level", "review or recheck."),
         "decision": F("复查复核意见", "decision", "Decision."),
         "served_at": F("书面意见送达时间", "served at",
                        "When the written decision was served; the 复核 window runs from it.")},
        _review_decide_check, _review_decide_effect, article="Art. 35-36"),
    Action(
        "hearing", "听证", "hearing",
        "Record a hearing (听证) held during a 复核; its time is not counted in the decision "
        "period.",
        'xinfang case hearing XF-2025-000001 --start "2025-06-10 09:00" '
        '--end "2025-06-12 17:00" --as reviewer-02',
        ("reviewer",), "a reviewer of the 复核 body (above the 复查 reviewer's unit), during a "
        "pending 复核",
        {"start": F("听证开始", "start", "When the hearing started."),
         "end": F("听证结束", "end", "When it ended.")},
        _hearing_check, _nothing, article="Art. 36", since_rules=RULES_2022),
    Action(
        "report_back", "回告", "report back",
        "Record the handling body's written report (回告) to the supervising authority.",
        'xinfang case report-back XF-2025-000001 --text "已按期办结，书面回告" '
        "--served-at 2025-04-28 --as lead-03",
        ("handler", "unit_leader", "petition_office"),
        "the handling body (the assigned handler, a leader of the handling unit) or the "
        "petition office, on a supervised case",
        {"text": F("回告内容", "text", "What was reported."),
         "served_at": F("回告送达时间", "served at",
                        "When the report reached the supervising authority.")},
        _report_back_check, _nothing, article="Art. 39-40", since_rules=RULES_2022),
    Action(
        "reopen", "重新办理", "reopen", "Reopen the matter (重新办理).",
        'xinfang case reopen XF-2025-000001 --reason "复查变更" --as office-01',
        ("petition_office",),
        "the petition office, on a closed case or after a review changed or revoked the "
        "decision",
        {"reason": F("重新办理理由", "reason", "Why.")},
        _reopen_check, _reopen_effect, article="Art. 35-36"),
    Action(
        "reverse_check_open", "启动倒查", "open reverse-check",
        "Open a reverse-check (倒查) on a case.",
        'xinfang reverse-check open XF-2025-000123 --reason "结而不息" --as inspector-01',
        ("inspector",), "an inspector, one open reverse-check per case",
        {"reason": F("启动理由", "reason", "Why.")},
        _reverse_check_open_check, _reverse_check_open_effect, group="reverse-check",
        command="open", custody=False),
    Action(
        "reverse_check_finding", "倒查认定", "reverse-check finding",
        "Record a finding: who, what fault, which events prove it.",
        "xinfang reverse-check finding XF-2025-000123 --actor officer-07 --fault late_reply "
        "--evidence XF-2025-000123#5 --responsibility direct --as inspector-01",
        ("inspector",), "an inspector, in an open reverse-check",
        {"actor": F("责任人", "actor", "Responsible actor."),
         "fault": F("过错", "fault", "Fault code, e.g. late_reply."),
         "evidence": F("证据事件", "evidence", "Event reference STREAM#SEQ[:HASH] (repeatable)."),
         "responsibility": F("责任类别", "responsibility",
                             "Direct (直接责任) or leadership (领导责任) responsibility.")},
        _reverse_check_finding_check, _nothing, group="reverse-check", command="finding",
        custody=False),
    Action(
        "reverse_check_conclude", "倒查结论", "conclude reverse-check",
        "Conclude with coded measures (处理措施) and a note.",
        'xinfang reverse-check conclude XF-2025-000123 --measures admonition '
        '--note "责令书面检查并通报" --as inspector-01',
        ("inspector",), "an inspector, closing the open reverse-check; measures coded (rules 3)",
        {"measures": F("处理措施", "measures", "Measure taken (repeatable)."),
         "note": F("说明", "note", "Free text beside the coded measures.")},
        _reverse_check_conclude_check, _reverse_check_conclude_effect, group="reverse-check",
        command="conclude", custody=False),
    # ---- the directory stream (commands under `xinfang unit` / `xinfang actor`) ----------
    Action("unit.add", "新增单位", "add unit", "Add a unit to the unit tree.",
           "xinfang unit add station-03 --name 城关派出所 --parent county-01 --as admin-01",
           ("admin",), "an admin",
           {"unit": F("单位编号", "unit", "Unit id."), "name": F("名称", "name", "Name."),
            "parent": F("上级单位", "parent", "The unit above it.")},
           stream="directory", group=None, custody=False, read_model=False),
    Action("actor.add", "新增人员", "add actor", "Register a person with roles and a key.",
           "xinfang actor add officer-07 --name 张三 --unit station-03 --role handler "
           "--as admin-01",
           ("admin",), "an admin",
           {"actor": F("人员编号", "actor", "Actor id."), "name": F("姓名", "name", "Name."),
            "unit": F("所在单位", "unit", "Unit."), "roles": F("角色", "roles", "Roles."),
            "keyless": F("无密钥", "keyless", "A petitioner without a key.")},
           stream="directory", group=None, custody=False, read_model=False),
    Action("actor.rotate_key", "更换密钥", "rotate key", "Replace an actor's key.",
           "xinfang actor rotate-key officer-07 --as admin-01",
           ("admin",), "an admin", {"actor": F("人员编号", "actor", "Actor id.")},
           stream="directory", group=None, custody=False, read_model=False),
    Action("actor.revoke_key", "吊销密钥", "revoke key", "Revoke an actor's key.",
           "xinfang actor revoke-key officer-07 --reason 离职 --as admin-01",
           ("admin",), "an admin",
           {"actor": F("人员编号", "actor", "Actor id."), "key": F("密钥", "key", "Key id."),
            "reason": F("理由", "reason", "Why.")},
           stream="directory", group=None, custody=False, read_model=False),
)

REGISTRY: dict[str, Action] = {a.name: a for a in ACTIONS}
CASE_ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in ACTIONS if a.stream == "case")


def action(name: str) -> Action:
    return REGISTRY[name]


def permissions_for(rules: int) -> dict[str, tuple[str, ...]]:
    """The default role grants under a rules version: role → actions, every role listed."""
    return {role.value: tuple(a.name for a in ACTIONS if role.value in a.roles_under(rules))
            for role in Role}


def custody_steps() -> tuple[str, ...]:
    """The steps of a case's chain of custody, in the order of a case's life."""
    return tuple(a.name for a in ACTIONS if a.custody)


def cli_actions(group: str) -> tuple[Action, ...]:
    return tuple(a for a in ACTIONS if a.group == group)


# ---- fields, derived from the models ----------------------------------------------------------

@dataclass(frozen=True)
class FieldInfo:
    """One field of an action as forms and the command line need it.

    ``kind``: ``text``, ``int``, ``flag`` (true/false), ``time`` (a business time), ``date``,
    ``code`` (one of ``choices``), ``codes`` (several), ``texts`` (several texts) or ``refs``
    (event references ``STREAM#SEQ[:HASH]``). ``choices`` are the codes allowed (None: an open
    code list of ``label_kind``, e.g. the policy's categories)."""

    name: str
    kind: str
    required: bool
    spec: FieldSpec
    choices: tuple[str, ...] | None = None
    label_kind: str | None = None
    default: Any = None

    @property
    def multiple(self) -> bool:
        return self.kind in ("codes", "texts", "refs")

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or type(annotation).__name__ == "UnionType":
            options = [a for a in get_args(annotation) if a is not type(None)]
            # a union of a coded list and legacy free text (measures): forms offer the list
            listed = [a for a in options if get_origin(_unwrap(a)) is list]
            annotation = (listed or options)[0]
        else:
            return annotation


def _field_kind(annotation: Any) -> tuple[str, type[StrEnum] | None]:
    base = _unwrap(annotation)
    if get_origin(base) is list:
        item = _unwrap(get_args(base)[0])
        if isinstance(item, type) and issubclass(item, StrEnum):
            return "codes", item
        if isinstance(item, type) and issubclass(item, EventRef):
            return "refs", None
        return "texts", None
    if base is bool:
        return "flag", None
    if base is int:
        return "int", None
    if base is datetime:
        return "time", None
    if base is date:
        return "date", None
    if isinstance(base, type) and issubclass(base, StrEnum):
        return "code", base
    return "text", None


def fields_of(definition: Action) -> list[FieldInfo]:
    """The action's fields in the model's order, each with its kind, choices and labels."""
    out = []
    for name, info in definition.model.model_fields.items():
        spec = definition.fields[name]
        kind, enum = _field_kind(info.annotation)
        choices = tuple(e.value for e in enum) if enum is not None else None
        label_kind = ENUM_KINDS[enum] if enum is not None else spec.choices
        if spec.choices is not None and kind == "text":
            kind = "code"
        out.append(FieldInfo(name, kind, info.is_required() and spec.default is None, spec,
                             choices, label_kind, spec.default))
    return out


def code_label(kind: str | None, code: str, lang: str = "zh") -> str:
    pair = CODE_LABELS.get(kind or "", {}).get(code)
    return code if pair is None else pair[0 if lang == "zh" else 1]


# ---- the catalogue, the import schema and the docs table -------------------------------------

def catalogue(rules: int | None = None) -> list[dict[str, Any]]:
    """Every action as JSON for generated forms: name, labels, help, example, stream, the
    command, roles (under ``rules``, default the newest) and scope, article, and its fields
    with kind, labels, help, required, default and choices with their labels."""
    version = RULES_2022 if rules is None else rules
    out = []
    for a in ACTIONS:
        fields = []
        for f in fields_of(a):
            choices = None
            codes = f.choices if f.choices is not None else (
                tuple(CODE_LABELS.get(f.label_kind, {})) if f.label_kind else None)
            if codes is not None:
                choices = [{"code": c, "zh": code_label(f.label_kind, c, "zh"),
                            "en": code_label(f.label_kind, c, "en")} for c in codes]
            fields.append({"name": f.name, "type": f.kind, "multiple": f.multiple,
                           "label": {"zh": f.spec.zh, "en": f.spec.en}, "help": f.spec.help,
                           "required": f.required, "default": f.default,
                           "choices": choices, "open_choices": f.choices is None
                           and f.label_kind is not None, "option": f.flag,
                           "document": f.spec.document})
        out.append({"name": a.name, "label": {"zh": a.zh, "en": a.en}, "help": a.help,
                    "example": a.example, "stream": a.stream, "command": (
                        None if a.group is None else [a.group, a.cli_name]),
                    "roles": list(a.roles_under(version)), "scope": a.scope,
                    "article": a.article or None, "since_rules": a.since_rules,
                    "custody": a.custody, "fields": fields})
    return out


def import_schema() -> dict[str, Any]:
    """The JSON Schema of an import line (``xinfang schema``): the models' schema, each action
    and field with its labels and help from this registry."""
    schema = import_line_schema()
    defs = schema.get("$defs", {})
    for a in ACTIONS:
        sub = defs.get(a.model.__name__)
        if sub is None:
            continue
        sub["title"] = f"{a.name} — {a.zh}"
        sub["description"] = f"{a.help} Who: {a.scope}." + (
            f" 信访工作条例 (2022) {a.article}." if a.article else "")
        for name, prop in sub.get("properties", {}).items():
            spec = a.fields.get(name)
            if spec is not None:
                prop["title"] = f"{spec.zh} ({spec.en})"
                prop["description"] = spec.help
    return schema


REGENERATE = ('.venv/bin/python -c "from ledger.domain.actions import markdown; '
              'print(markdown(), end=\'\')" > docs/actions.md')


def markdown() -> str:
    """docs/actions.md: the registry as tables (tests/test_registry.py keeps the file equal)."""
    lines = ["# Actions", "",
             "Generated from the action registry (`ledger/domain/actions.py`); do not edit by "
             "hand (tests/test_registry.py compares). To regenerate:", "",
             "```sh", REGENERATE, "```", "",
             "Roles are the defaults of a new ledger (rules version "
             f"{RULES_2022}); a ledger's policy may grant otherwise. Fields: `?` optional, "
             "`[]` repeatable; codes are listed once below the table.", "",
             "| action | 中文 | command | who | fields | 条例 (2022) |",
             "|---|---|---|---|---|---|"]
    kinds: dict[str, list[str]] = {}
    for a in ACTIONS:
        parts = []
        for f in fields_of(a):
            parts.append(f"`{f.name}`" + ("[]" if f.multiple else "")
                         + ("" if f.required else "?"))
            if f.label_kind is not None:
                known = kinds.setdefault(f.label_kind, [])
                known += [c for c in f.choices or CODE_LABELS.get(f.label_kind, {})
                          if c not in known]
        command = f"`{a.group} {a.cli_name}`" if a.group else "—"
        roles = "/".join(a.roles)
        since = f" (rules {a.since_rules}+)" if a.since_rules > 1 else ""
        lines.append(f"| `{a.name}` | {a.zh} | {command} | {roles}: {a.scope}{since} | "
                     f"{', '.join(parts) or '—'} | {a.article or '—'} |")
    lines += ["", "## Codes", ""]
    for kind, codes in kinds.items():
        lines.append(f"* **{kind}**: " + ", ".join(
            f"`{c}` {code_label(kind, c)}" for c in codes))
    lines += ["", "## Fields", ""]
    for a in ACTIONS:
        described = fields_of(a)
        if described:
            lines.append(f"* `{a.name}` ({a.zh}): {a.help}")
            lines += [f"  * `{f.name}` {f.spec.zh} — {f.spec.help}" for f in described]
    return "\n".join(lines) + "\n"

