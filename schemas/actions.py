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

    @model_validator(mode="after")
    def _reception(self) -> Register:
        if self.received_by and not self.reception_day:
            raise ValueError("received_by is only given for reception-day (接待日) petitions")
        if len(set(self.repeat_of)) != len(self.repeat_of):
            raise ValueError("repeat_of lists a case twice")
        return self


class Accept(Model):
    decision: Decision
    reason: ShortText | None = None
    notice_served_at: Time | None = None

    @model_validator(mode="after")
    def _reason_for_refusals(self) -> Accept:
        if self.decision != Decision.accepted.value and not self.reason:
            raise ValueError("a not_accepted / not_reaccepted decision needs a reason")
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

    @model_validator(mode="after")
    def _form_rules(self) -> PetitionerSign:
        if self.form == SignForm.refused.value:
            if self.opinion is not None:
                raise ValueError("a refusal to sign (拒签) carries no opinion")
        elif self.opinion is None:
            raise ValueError("an opinion is required unless the form is 'refused'")
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


class ReverseCheckConclude(Model):
    measures: ShortText


DIRECTORY_ACTIONS: dict[str, type[Model]] = {
    "unit.add": UnitAdd, "actor.add": ActorAdd, "actor.rotate_key": ActorRotateKey,
    "actor.revoke_key": ActorRevokeKey,
}

CASE_ACTIONS: dict[str, type[Model]] = {
    "register": Register, "accept": Accept, "assign": Assign, "supervise": Supervise,
    "remind": Remind, "package": Package, "progress": Progress, "extend": Extend,
    "reply": Reply, "attest": Attest, "consent": Consent, "petitioner_sign": PetitionerSign,
    "close": Close, "desist": Desist, "review_request": ReviewRequest,
    "review_decide": ReviewDecide, "reopen": Reopen,
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
