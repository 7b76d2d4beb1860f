"""Pydantic models of every action's data and of one import line.

These models are the input contract (``xinfang schema`` prints their JSON Schema). All are frozen
and reject unknown fields, so a typo is an error, never silently ignored data.

Two ways in: writers call :func:`parse_data` (lax: ``"persons": "2"`` from a form or an import
file becomes the integer 2 before anything is signed); verifiers call :func:`data_problem`
(strict: the signed data must already be exactly the canonical form, JSON types included, or
check 1 fails — docs/integrity.md, issue 9 "Strict canonical bytes").
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from schemas.bounds import MAX_INT, date_problem, time_problem

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CASE_NO_TEXT = r"^XF-\d{4}-\d{6}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
CaseNo = Annotated[str, StringConstraints(pattern=CASE_NO_TEXT)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
CASE_NO_PATTERN = re.compile(r"^XF-(\d{4})-(\d{6})$")
PUBLIC_KEY_PATTERN = re.compile(r"^[0-9a-f]{64}$")   # raw Ed25519 public key, lowercase hex


def _bounded_time(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2025-03-02T09:30:00+08:00")
    problem = time_problem(moment)
    if problem is not None:
        raise ValueError(problem)
    return moment


def _bounded_date(day: date) -> date:
    problem = date_problem(day)
    if problem is not None:
        raise ValueError(problem)
    return day


#: The business time zone (cli.md: "times without an offset mean Asia/Shanghai"); the same
#: fixed +08:00 offset as ``ledger.SHANGHAI`` (schemas imports nothing of ledger).
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def local_time(value: Any) -> Any:
    """A time as people write it, made explicit: ``2025-12-26 10:00`` is Beijing time and a
    date alone is 00:00 that day (cli.md). Anything else is left for pydantic to judge."""
    if isinstance(value, str):
        text = value.strip()
        if _DATE_ONLY.match(text):
            text += "T00:00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return value
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=SHANGHAI)
    return value


# Times and dates within schemas/bounds.py, so deadline arithmetic on them cannot overflow.
Time = Annotated[datetime, AfterValidator(_bounded_time)]
Day = Annotated[date, AfterValidator(_bounded_date)]


class Channel(StrEnum):
    letter = "letter"
    visit = "visit"
    call = "call"
    online = "online"
    fax = "fax"
    mailbox = "mailbox"


class Source(StrEnum):
    direct = "direct"
    petition_bureau = "petition_bureau"
    higher_police = "higher_police"
    congress = "congress"
    political_legal_committee = "political_legal_committee"
    procuratorate = "procuratorate"
    government = "government"
    leader = "leader"
    self_initiated = "self_initiated"


class Decision(StrEnum):
    accepted = "accepted"
    not_accepted = "not_accepted"
    not_reaccepted = "not_reaccepted"


class SupervisionForm(StrEnum):
    letter = "letter"          # 函
    interview = "interview"    # 约谈
    onsite = "onsite"          # 实地
    listed = "listed"          # 挂牌
    notice = "notice"          # 通报 (信访工作条例 2022, Art. 39-40)


class NotAcceptedGround(StrEnum):
    """Why a petition is not accepted (信访工作条例 2022, Art. 19-22)."""

    outside_remit = "outside_remit"            # 不属于公安机关职权范围
    legal_procedure = "legal_procedure"        # 涉法涉诉: 导入诉讼、仲裁、行政复议等法定途径
    handled_elsewhere = "handled_elsewhere"    # 已由其他机关受理、正在办理
    final_recheck = "final_recheck"            # 复核终结后同一事实和理由 (Art. 36)
    other = "other"


class Measure(StrEnum):
    """Measures a reverse-check (倒查) concludes with."""

    criticism = "criticism"                          # 批评教育
    admonition = "admonition"                        # 诫勉谈话
    circulated_criticism = "circulated_criticism"    # 通报批评
    written_examination = "written_examination"      # 书面检查
    reassignment = "reassignment"                    # 调离岗位
    discipline_referral = "discipline_referral"      # 移送纪检监察
    other = "other"


class Responsibility(StrEnum):
    direct = "direct"              # 直接责任 (the handler or signer)
    leadership = "leadership"      # 领导责任 (the unit leader, the package leader)


class Outcome(StrEnum):
    support = "support"
    explain = "explain"
    not_support = "not_support"


class Resolution(StrEnum):
    problem_solved = "problem_solved"
    educated = "educated"
    aided = "aided"
    lawfully_handled = "lawfully_handled"


class Opinion(StrEnum):
    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    dissatisfied = "dissatisfied"


class SignForm(StrEnum):
    key = "key"
    witnessed = "witnessed"
    refused = "refused"


class ReviewLevel(StrEnum):
    review = "review"      # 复查
    recheck = "recheck"    # 复核


class ReviewDecision(StrEnum):
    upheld = "upheld"
    changed = "changed"
    revoked = "revoked"


class Role(StrEnum):
    admin = "admin"
    registrar = "registrar"
    petition_office = "petition_office"
    handler = "handler"
    unit_leader = "unit_leader"
    leader = "leader"
    supervisor = "supervisor"
    inspector = "inspector"
    reviewer = "reviewer"
    petitioner = "petitioner"


#: The vocabulary's labels (domain.md "Vocabulary"): kind → code → (中文, English). The kinds
#: name the code lists above (``ENUM_KINDS``) and the default content categories; one source
#: for the CLI's coded options, the action catalogue and every report's labels.
CODE_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "channel": {"letter": ("来信", "letter"), "visit": ("来访", "visit"), "call": ("来电", "call"),
                "online": ("网上信访", "online"), "fax": ("传真", "fax"),
                "mailbox": ("局长信箱", "director's mailbox")},
    "source": {
        "direct": ("直接来信来访", "direct"),
        "petition_bureau": ("信访局转交办", "petition bureau"),
        "higher_police": ("上级公安机关转办", "higher police organ"),
        "congress": ("人大交办", "people's congress"),
        "political_legal_committee": ("政法委交办", "political-legal committee"),
        "procuratorate": ("检察院转来", "procuratorate"), "government": ("政府交办", "government"),
        "leader": ("领导交办", "leader"), "self_initiated": ("自立", "self-initiated"),
    },
    "category": {
        "file_case": ("要求立案查处", "file a case"),
        "police_misconduct": ("举报民警违法违纪", "police misconduct"),
        "household_registration": ("户口问题", "household registration"),
        "solve_case": ("要求破案结案", "solve a case"),
        "improper_handling": ("反映办案不规范", "improper case handling"),
        "perform_duty": ("要求履行管理职责", "perform duties"),
        "consultation_or_non_police": ("咨询及不属公安业务", "consultation / non-police"),
        "mental_health": ("精神异常", "mental health"), "appeal": ("不服处理决定申诉", "appeal"),
        "compensation": ("损失赔偿", "compensation"), "criminal": ("刑事案件", "criminal case"),
        "public_order": ("治安问题", "public order"), "help": ("求助", "help"),
        "other": ("其他", "other"),
    },
    "role": {
        "admin": ("管理员", "admin"), "registrar": ("登记员", "registrar"),
        "petition_office": ("信访部门", "petition office"), "handler": ("承办人", "handler"),
        "unit_leader": ("承办单位负责人", "unit leader"), "leader": ("局领导", "leader"),
        "supervisor": ("督办人", "supervisor"), "inspector": ("督察", "inspector"),
        "reviewer": ("复查复核机关", "reviewer"), "petitioner": ("信访人", "petitioner"),
    },
    "opinion": {"satisfied": ("满意", "satisfied"),
                "basically_satisfied": ("基本满意", "basically satisfied"),
                "dissatisfied": ("不满意", "dissatisfied")},
    "decision": {"accepted": ("受理", "accepted"), "not_accepted": ("不予受理", "not accepted"),
                 "not_reaccepted": ("不再受理", "not re-accepted"), "upheld": ("维持", "upheld"),
                 "changed": ("变更", "changed"), "revoked": ("撤销", "revoked")},
    "outcome": {"support": ("支持", "support"), "explain": ("解释", "explain"),
                "not_support": ("不予支持", "not supported")},
    "resolution": {"problem_solved": ("解决问题到位", "problem solved"),
                   "educated": ("思想教育到位", "educated"), "aided": ("帮扶救助到位", "aided"),
                   "lawfully_handled": ("依法处理", "handled by law")},
    "form": {"key": ("本人密钥签名", "own key"), "witnessed": ("见证纸质签名", "witnessed paper"),
             "refused": ("拒签", "refused")},
    "level": {"review": ("复查", "review"), "recheck": ("复核", "re-review")},
    "supervision_form": {"letter": ("函督", "by letter"), "interview": ("约谈", "interview"),
                         "onsite": ("实地督办", "on site"), "listed": ("挂牌督办", "listed"),
                         "notice": ("通报", "circulated notice")},
    "ground": {"outside_remit": ("不属于公安机关职权范围", "outside the police remit"),
               "legal_procedure": ("涉法涉诉，导入法定途径", "belongs to a legal procedure"),
               "handled_elsewhere": ("已由其他机关受理办理", "being handled by another body"),
               "final_recheck": ("复核终结，同一事实和理由", "same facts after a final re-review"),
               "other": ("其他", "other")},
    "measure": {"criticism": ("批评教育", "criticism and education"),
                "admonition": ("诫勉谈话", "admonishment talk"),
                "circulated_criticism": ("通报批评", "circulated criticism"),
                "written_examination": ("书面检查", "written self-examination"),
                "reassignment": ("调离岗位", "removal from the post"),
                "discipline_referral": ("移送纪检监察", "referral to discipline inspection"),
                "other": ("其他", "other")},
    "responsibility": {"direct": ("直接责任", "direct"),
                       "leadership": ("领导责任", "leadership")},
}

#: Which label kind each code list's codes are shown by.
ENUM_KINDS: dict[type[StrEnum], str] = {
    Channel: "channel", Source: "source", Decision: "decision",
    SupervisionForm: "supervision_form", Outcome: "outcome", Resolution: "resolution",
    Opinion: "opinion", SignForm: "form", ReviewLevel: "level", ReviewDecision: "decision",
    NotAcceptedGround: "ground", Measure: "measure", Responsibility: "responsibility",
    Role: "role",
}


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=True)


# ---- directory -------------------------------------------------------------------------------

class UnitAdd(Model):
    unit: Id
    name: ShortText
    parent: Id | None = None


class ActorAdd(Model):
    actor: Id
    name: ShortText
    unit: Id | None = None
    roles: list[Role] = Field(min_length=1)
    keyless: bool = False

    @model_validator(mode="after")
    def _keyless_only_for_petitioners(self) -> ActorAdd:
        if self.keyless and set(self.roles) != {Role.petitioner.value}:
            raise ValueError("only petitioners may be registered without a key")
        return self


class ActorRotateKey(Model):
    actor: Id


class ActorRevokeKey(Model):
    actor: Id
    key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] | None = None
    reason: ShortText | None = None


# ---- case actions ----------------------------------------------------------------------------

class Register(Model):
    channel: Channel
    source: Source
    ref: ShortText | None = None
    category: Code
    petitioner: Id
    persons: int = Field(default=1, ge=1, le=100000)
    summary: Text
    repeat_of: list[CaseNo] = Field(default_factory=list, max_length=50)
    reception_day: bool = False
    received_by: Id | None = None
    received_at: Time | None = None        # receipt (收到); default: the registration's time
    new_facts: ShortText | None = None     # a repeat petition's new facts or reasons

    @model_validator(mode="after")
    def _reception(self) -> Register:
        if self.received_by and not self.reception_day:
            raise ValueError("received_by is only given for reception-day (接待日) petitions")
        if len(set(self.repeat_of)) != len(self.repeat_of):
            raise ValueError("repeat_of lists a case twice")
        if self.new_facts and not self.repeat_of:
            raise ValueError("new_facts is given for a repeat petition (repeat_of) only")
        return self


class Accept(Model):
    decision: Decision
    reason: ShortText | None = None
    notice_served_at: Time | None = None
    ground: NotAcceptedGround | None = None

    @model_validator(mode="after")
    def _reason_for_refusals(self) -> Accept:
        if self.decision != Decision.accepted.value and not self.reason:
            raise ValueError("a not_accepted / not_reaccepted decision needs a reason")
        if self.ground is not None:
            if self.decision == Decision.accepted.value:
                raise ValueError("a ground is given only when the petition is not accepted")
            if (self.ground == NotAcceptedGround.final_recheck.value) != \
                    (self.decision == Decision.not_reaccepted.value):
                raise ValueError("the ground final_recheck goes with not_reaccepted, and only "
                                 "with it")
        if self.notice_served_at is not None and self.notice_served_at.tzinfo is None:
            raise ValueError("notice_served_at needs a UTC offset")
        return self


class Assign(Model):
    unit: Id
    handler: Id
    due: Day | None = None


class Supervise(Model):
    authority: Source
    due: Day
    form: SupervisionForm | None = None


class Remind(Model):
    note: ShortText | None = None


class Package(Model):
    leader: Id


class Progress(Model):
    note: Text
    follow_up: bool = False


class Extend(Model):
    days: int = Field(ge=1, le=366)
    reason: ShortText
    notified_at: Time | None = None    # when the petitioner was told why (Art. 34)


class Reply(Model):
    outcome: Outcome
    resolution: Resolution
    served_at: Time
    text: Text

    @model_validator(mode="after")
    def _aware(self) -> Reply:
        if self.served_at.tzinfo is None:
            raise ValueError("served_at needs a UTC offset")
        return self


class Attest(Model):
    evidence: list[ShortText] = Field(min_length=1, max_length=50)


class Consent(Model):
    pass


class PetitionerSign(Model):
    opinion: Opinion | None = None
    form: SignForm
    document_sha256: Sha256Hex | None = None
    reason: ShortText | None = None    # why the petitioner refused (拒签), as recorded

    @model_validator(mode="after")
    def _form_rules(self) -> PetitionerSign:
        if self.form == SignForm.refused.value:
            if self.opinion is not None:
                raise ValueError("a refusal to sign (拒签) carries no opinion")
        elif self.opinion is None:
            raise ValueError("an opinion is required unless the form is 'refused'")
        elif self.reason is not None:
            raise ValueError("a reason is recorded for a refusal to sign (拒签) only")
        if self.form == SignForm.witnessed.value and not self.document_sha256:
            raise ValueError("a witnessed signature needs the scanned document's document_sha256")
        return self


class Close(Model):
    override_reason: ShortText | None = None


class Desist(Model):
    document_sha256: Sha256Hex


class ReviewRequest(Model):
    level: ReviewLevel


class ReviewDecide(Model):
    level: ReviewLevel
    decision: ReviewDecision
    served_at: Time | None = None      # the written decision served (Art. 35-36)


class Hearing(Model):
    """A hearing (听证) held during a 复核 (Art. 36): its time is not counted in the 复核's
    decision period."""

    start: Time
    end: Time

    @model_validator(mode="after")
    def _in_order(self) -> Hearing:
        if self.end < self.start:
            raise ValueError("the hearing ends before it starts")
        return self


class ReportBack(Model):
    """The handling body's written report (回告) to the supervising authority (Art. 39-40)."""

    text: Text
    served_at: Time | None = None


class Reopen(Model):
    reason: ShortText


class EventRef(Model):
    stream: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    seq: int = Field(ge=1, le=MAX_INT)
    hash: Sha256Hex


class ReverseCheckOpen(Model):
    reason: ShortText


class ReverseCheckFinding(Model):
    actor: Id
    fault: Code
    evidence: list[EventRef] = Field(default_factory=list, max_length=100)
    responsibility: Responsibility | None = None


class ReverseCheckConclude(Model):
    # Coded measures (rules 3); ledgers of rules 1-2 recorded them as free text.
    measures: Annotated[list[Measure], Field(min_length=1, max_length=20)] | ShortText
    note: Text | None = None

    @model_validator(mode="after")
    def _distinct(self) -> ReverseCheckConclude:
        if isinstance(self.measures, list) and len(set(self.measures)) != len(self.measures):
            raise ValueError("measures lists a measure twice")
        return self


DIRECTORY_ACTIONS: dict[str, type[Model]] = {
    "unit.add": UnitAdd, "actor.add": ActorAdd, "actor.rotate_key": ActorRotateKey,
    "actor.revoke_key": ActorRevokeKey,
}

CASE_ACTIONS: dict[str, type[Model]] = {
    "register": Register, "accept": Accept, "assign": Assign, "supervise": Supervise,
    "remind": Remind, "package": Package, "progress": Progress, "extend": Extend,
    "reply": Reply, "attest": Attest, "consent": Consent, "petitioner_sign": PetitionerSign,
    "close": Close, "desist": Desist, "review_request": ReviewRequest,
    "review_decide": ReviewDecide, "reopen": Reopen, "hearing": Hearing,
    "report_back": ReportBack,
    "reverse_check_open": ReverseCheckOpen, "reverse_check_finding": ReverseCheckFinding,
    "reverse_check_conclude": ReverseCheckConclude,
}

ACTION_MODELS: dict[str, type[Model]] = {**DIRECTORY_ACTIONS, **CASE_ACTIONS}


class ImportLine(Model):
    """One line of an import file (JSON Lines)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    action: Literal[tuple(ACTION_MODELS)]  # type: ignore[valid-type]
    case: CaseNo | None = None
    actor: Id
    at: Time
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> ImportLine:
        if self.at.tzinfo is None:
            raise ValueError("'at' needs a UTC offset, e.g. 2025-01-03T09:00:00+08:00")
        if self.action in DIRECTORY_ACTIONS and self.case is not None:
            raise ValueError(f"a {self.action} line has no 'case'")
        if self.action in CASE_ACTIONS and self.case is None:
            raise ValueError(f"a {self.action} line needs 'case'")
        return self


def parse_data(action: str, data: dict[str, Any]) -> dict[str, Any]:
    """Validate an action's data and return its JSON-ready canonical form (no None values).

    For writers: lax, so typed CLI options and JSON import lines are accepted as users give
    them; what is signed is always the canonical form this returns."""
    model = ACTION_MODELS[action]
    return model.model_validate(local_times(model, data)).model_dump(mode="json",
                                                                      exclude_none=True)


def local_times(model: type[BaseModel], data: Any) -> Any:
    """``data`` with the model's time fields normalized by :func:`local_time`: writers only
    (parse_data, the importer), before validation, so what is signed always carries an
    explicit offset. Verifiers never call this: stored bytes are judged exactly as before."""
    if not isinstance(data, dict):
        return data
    fields = [name for name, info in model.model_fields.items() if _is_time(info.annotation)]
    return {key: (local_time(value) if key in fields else value) for key, value in data.items()}


def _is_time(annotation: Any) -> bool:
    if annotation is datetime:
        return True
    if get_origin(annotation) is Annotated:
        return _is_time(get_args(annotation)[0])
    return any(_is_time(arg) for arg in get_args(annotation))


def data_problem(action: str, data: Any) -> str | None:
    """Why signed ``data`` is not exactly the canonical data of ``action``, or None.

    For verifiers (check 1): ``data`` must validate in pydantic's strict JSON mode (no 2.0
    for an integer, no 0 for false, no number for a time) and must equal, type for type, what
    :func:`parse_data` would have signed. ``init`` data has no schema here; the directory
    checks it when it applies the event. Directory events may carry the actor's
    ``public_key``, which is checked here for form only (the directory checks the rest)."""
    if action == "init":
        return None
    model = ACTION_MODELS.get(action)
    if model is None:
        return f"unknown event type {action!r:.80}"
    if type(data) is not dict:
        return f"{action} data is not a JSON object"
    payload = dict(data)
    if action in ("actor.add", "actor.rotate_key") and "public_key" in payload:
        public = payload.pop("public_key")
        if type(public) is not str or not PUBLIC_KEY_PATTERN.match(public):
            return f"data does not match the {action} schema: public_key is not 64 hex digits"
    try:
        # Strict JSON mode on the data's own JSON: the parsed bytes were JSON, so this is
        # the exact-type reading; enums and dates arrive as JSON strings.
        parsed = model.model_validate_json(json.dumps(payload), strict=True)
    except (ValidationError, ValueError, TypeError) as exc:
        return f"data does not match the {action} schema: {_first_error(exc)}"
    if not json_identical(parsed.model_dump(mode="json", exclude_none=True), payload):
        return f"data is not in the canonical {action} form"
    return None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "invalid"))
        return f"{where}: {message}"[:200] if where else message[:200]
    return str(exc)[:200]


_TIME_EXAMPLE = ("write e.g. 2025-03-02 09:30 (Beijing time), 2025-03-02, or "
                 "2025-03-02T09:30:00+08:00")
_PATTERN_SENTENCES = {
    ID_PATTERN: "must be an id of letters, digits, '.', '_' or '-' "
                                "(up to 64, e.g. officer-07)",
    CODE_PATTERN: "must be a code in lowercase letters, digits and '_' "
                                  "(e.g. household_registration)",
    CASE_NO_TEXT: "must be a case number like XF-2025-000001",
    SHA256_PATTERN: "must be a SHA-256: 64 lowercase hex digits",
}


def plain_errors(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """Each of pydantic's errors as (field path, a plain sentence), for messages that name the
    option or import field in the user's terms instead of pydantic's wording (issue 17)."""
    found = []
    for error in exc.errors():
        kind = error.get("type", "")
        ctx = error.get("ctx") or {}
        msg = str(error.get("msg", "invalid"))
        if kind == "missing":
            sentence = "is required"
        elif kind == "extra_forbidden":
            sentence = "is not a field of this action (`xinfang schema` lists the fields)"
        elif kind == "string_pattern_mismatch":
            sentence = _PATTERN_SENTENCES.get(str(ctx.get("pattern")), "has the wrong form")
        elif kind in ("enum", "literal_error"):
            sentence = f"must be one of {ctx.get('expected', '')}"
        elif kind.startswith("datetime") or kind.startswith("timezone"):
            sentence = f"is not a time; {_TIME_EXAMPLE}"
        elif kind.startswith("date"):
            sentence = "is not a date; write YYYY-MM-DD, e.g. 2025-12-31"
        elif kind.startswith("int") or kind == "float_parsing":
            sentence = "must be a whole number"
        elif kind.startswith("bool"):
            sentence = "must be true or false"
        elif kind in ("greater_than_equal", "greater_than"):
            sentence = f"must be at least {ctx.get('ge', ctx.get('gt'))}"
        elif kind in ("less_than_equal", "less_than"):
            sentence = f"must be at most {ctx.get('le', ctx.get('lt'))}"
        elif kind == "string_too_short":
            sentence = "must not be empty"
        elif kind == "string_too_long":
            sentence = f"is too long (at most {ctx.get('max_length')} characters)"
        elif kind == "too_short":
            sentence = f"needs at least {ctx.get('min_length')} item(s)"
        elif kind == "too_long":
            sentence = f"holds too many items (at most {ctx.get('max_length')})"
        elif kind in ("string_type", "list_type", "dict_type", "model_type"):
            wanted = {"string_type": "text", "list_type": "a list"}.get(kind, "a JSON object")
            sentence = f"must be {wanted}"
        elif kind in ("value_error", "assertion_error"):
            sentence = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        else:
            sentence = msg
        found.append((tuple(error.get("loc", ())), sentence))
    return found


def field_name(loc: tuple[str | int, ...]) -> str:
    """``("evidence", 0, "hash")`` as people read it: ``evidence[1].hash``."""
    text = ""
    for part in loc:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def json_identical(a: Any, b: Any) -> bool:
    """JSON equality that also compares types: ``true`` is not ``1``, ``2.0`` is not ``2``
    (Python's ``==`` says both are). Iterative, so deep values cannot exhaust the stack."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if type(x) is dict:
            if x.keys() != y.keys():
                return False
            stack.extend((x[key], y[key]) for key in x)
        elif type(x) is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif x != y:
            return False
    return True


def import_line_schema() -> dict[str, Any]:
    """JSON Schema of an import line, with each action's data schema under ``$defs``."""
    schema = ImportLine.model_json_schema()
    defs = schema.setdefault("$defs", {})
    variants = []
    for action, model in ACTION_MODELS.items():
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        name = model.__name__
        defs[name] = sub
        variants.append({"if": {"properties": {"action": {"const": action}}},
                         "then": {"properties": {"data": {"$ref": f"#/$defs/{name}"}}}})
    schema["allOf"] = variants
    schema["title"] = "xinfang import line"
    return schema
