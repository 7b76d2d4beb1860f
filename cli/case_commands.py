"""One `case` subcommand per action, built from a declarative table (and `reverse-check`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ledger import InputError
from projections import STATUSES, Report, case_list, case_list_sheets, label
from schemas import (
    Channel,
    Decision,
    Opinion,
    Outcome,
    Resolution,
    ReviewDecision,
    ReviewLevel,
    SignForm,
    Source,
    SupervisionForm,
    parse_data,
    plain_errors,
)

from .context import (
    TIME_HELP,
    Coded,
    as_option,
    at_option,
    lang_option,
    local_time_text,
    parse_as_of,
    parse_at,
    settings,
)
from .output import REPORT, RESULT, renders
from .report_commands import as_of_option, parse_day

_KINDS = {Channel: "channel", Source: "source", Decision: "decision",
          SupervisionForm: "supervision_form", Outcome: "outcome", Resolution: "resolution",
          Opinion: "opinion", SignForm: "form", ReviewLevel: "level",
          ReviewDecision: "decision"}   # the label kinds of projections/labels.py


def _choice(enum: Any) -> Coded:
    """The enum's codes, each also accepted by its label (``--channel 来信``)."""
    return Coded(_KINDS[enum], [e.value for e in enum])


TIME = "time"   # an Opt type: a business time, normalized like --at (Beijing time by default)


@dataclass(frozen=True)
class Opt:
    flag: str
    field: str
    help: str
    type: Any = str
    required: bool = False
    multiple: bool = False
    is_flag: bool = False
    default: Any = None


@dataclass(frozen=True)
class ActionCommand:
    name: str
    action: str
    summary: str
    example: str
    options: tuple[Opt, ...] = ()
    takes_case: bool = True
    post: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None)


def _document_digest(data: dict[str, Any]) -> dict[str, Any]:
    """--document FILE is hashed here so the signed record carries its SHA-256."""
    path = data.pop("document", None)
    if path:
        if data.get("document_sha256"):
            raise InputError("give either --document or --document-sha256, not both")
        data["document_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return data


def _event_refs(data: dict[str, Any]) -> dict[str, Any]:
    refs = []
    for text in data.get("evidence", []):
        stream, _, rest = text.partition("#")
        seq, _, digest = rest.partition(":")
        if not stream or not seq.isdigit():
            raise InputError(f"evidence {text!r} is not an event reference",
                             "Write STREAM#SEQ or STREAM#SEQ:HASH, e.g. XF-2025-000123#5.")
        refs.append({"stream": stream, "seq": int(seq), "hash": digest or None})
    data["evidence"] = refs
    return data


DOCUMENT = Opt("--document", "document", "Scanned document; its SHA-256 is recorded.",
               click.Path(exists=True, dir_okay=False))

COMMANDS = [
    ActionCommand("register", "register", "Register a petition (登记); prints the case number.",
                  'xinfang case register --as registrar-01 --channel letter --source '
                  'petition_bureau --category household_registration --petitioner pet-0001 '
                  '--summary "户口迁移不予办理" --at 2025-03-02T09:30:00+08:00',
                  (Opt("--case", "_case", "Case number to use (default: next free number)."),
                   Opt("--channel", "channel", "Channel (渠道).", _choice(Channel), True),
                   Opt("--source", "source", "Source (来源).", _choice(Source), True),
                   Opt("--ref", "ref", "Referral document number."),
                   Opt("--category", "category", "Content category (内容分类), code or label.",
                       Coded("category", open_ended=True), True),
                   Opt("--petitioner", "petitioner", "Petitioner actor id.", str, True),
                   Opt("--persons", "persons", "Number of persons (集体访 if > 1).", int,
                       default=None),
                   Opt("--summary", "summary", "Summary of the matter.", str, True),
                   Opt("--repeat-of", "repeat_of", "Earlier case of the same matter (repeatable).",
                       multiple=True),
                   Opt("--reception-day", "reception_day", "Received on a reception day (接待日).",
                       is_flag=True),
                   Opt("--received-by", "received_by", "Leader who received it.")),
                  takes_case=False),
    ActionCommand("accept", "accept", "Record the acceptance decision (受理).",
                  "xinfang case accept XF-2025-000001 --as office-01",
                  (Opt("--decision", "decision", "Decision.", _choice(Decision),
                       default="accepted"),
                   Opt("--reason", "reason", "Reason (required unless accepted)."),
                   Opt("--notice-served-at", "notice_served_at", "When the 告知书 was served.",
                       TIME))),
    ActionCommand("assign", "assign", "Assign or transfer to a unit and handler (交办/转办).",
                  "xinfang case assign XF-2025-000001 --unit station-03 --handler officer-07 "
                  "--as office-01",
                  (Opt("--unit", "unit", "Handling unit.", str, True),
                   Opt("--handler", "handler", "Handler actor id.", str, True),
                   Opt("--due", "due", "Handling due date (YYYY-MM-DD)."))),
    ActionCommand("supervise", "supervise", "List the case for supervision (督办).",
                  "xinfang case supervise XF-2025-000001 --authority leader --due 2025-04-30 "
                  "--form letter --as leader-01",
                  (Opt("--authority", "authority", "Supervising authority.", _choice(Source),
                       True),
                   Opt("--due", "due", "Report-back due date (YYYY-MM-DD).", str, True),
                   Opt("--form", "form", "Form of supervision.", _choice(SupervisionForm)))),
    ActionCommand("remind", "remind", "Send a reminder (催办) on a supervised case.",
                  "xinfang case remind XF-2025-000001 --note 请加快办理 --as supervisor-01",
                  (Opt("--note", "note", "Reminder text."),)),
    ActionCommand("package", "package", "A leader takes personal charge (领导包案).",
                  "xinfang case package XF-2025-000001 --leader leader-01 --as leader-01",
                  (Opt("--leader", "leader", "The leader in charge.", str, True),)),
    ActionCommand("progress", "progress", "Report progress or a follow-up visit (进展/回访).",
                  'xinfang case progress XF-2025-000001 --note "已约谈信访人" --as officer-07',
                  (Opt("--note", "note", "What was done.", str, True),
                   Opt("--follow-up", "follow_up", "This was a follow-up visit (回访).",
                       is_flag=True))),
    ActionCommand("extend", "extend", "Approve an extension (延期, unit leader).",
                  'xinfang case extend XF-2025-000001 --days 30 --reason "需补充调查" '
                  "--as leader-station-03",
                  (Opt("--days", "days", "Days of extension.", int, True),
                   Opt("--reason", "reason", "Reason told to the petitioner.", str, True))),
    ActionCommand("reply", "reply", "Record the reply to the petitioner (答复).",
                  "xinfang case reply XF-2025-000001 --outcome support --resolution "
                  'problem_solved --served-at 2025-04-01T10:00:00+08:00 --text "已办理落户" '
                  "--as officer-07",
                  (Opt("--outcome", "outcome", "Outcome.", _choice(Outcome), True),
                   Opt("--resolution", "resolution", "三到位一处理 kind.", _choice(Resolution),
                       True),
                   Opt("--served-at", "served_at", "When the reply was served.", TIME, True),
                   Opt("--text", "text", "Reply text.", str, True))),
    ActionCommand("attest", "attest", "Handler attests the problem is resolved (三签 1/3).",
                  "xinfang case attest XF-2025-000001 --evidence 答复书-001 --as officer-07",
                  (Opt("--evidence", "evidence", "Evidence reference (repeatable).",
                       multiple=True, required=True),)),
    ActionCommand("consent", "consent", "Handling unit leader signs consent (三签 2/3).",
                  "xinfang case consent XF-2025-000001 --as leader-station-03"),
    ActionCommand("petitioner-sign", "petitioner_sign",
                  "Petitioner's opinion (三签 3/3): own key, witnessed paper, or refusal.",
                  "xinfang case petitioner-sign XF-2025-000001 --form witnessed --opinion "
                  "satisfied --document scan.pdf --as registrar-01",
                  (Opt("--opinion", "opinion", "Opinion.", _choice(Opinion)),
                   Opt("--form", "form", "How it was signed.", _choice(SignForm), True),
                   DOCUMENT,
                   Opt("--document-sha256", "document_sha256", "SHA-256 of the document."))),
    ActionCommand("close", "close", "Close the case (办结); needs the three signatures.",
                  "xinfang case close XF-2025-000001 --as office-01",
                  (Opt("--override-reason", "override_reason",
                       "Close without all three signatures (a reverse-check trigger)."),)),
    ActionCommand("desist", "desist", "Record the petitioner's undertaking to desist (停访息诉).",
                  "xinfang case desist XF-2025-000001 --document undertaking.pdf --as registrar-01",
                  (DOCUMENT,
                   Opt("--document-sha256", "document_sha256", "SHA-256 of the document."))),
    ActionCommand("review-request", "review_request", "Record a review request (复查/复核).",
                  "xinfang case review-request XF-2025-000001 --level review --as registrar-01",
                  (Opt("--level", "level", "review (复查) or recheck (复核).",
                       _choice(ReviewLevel), True),)),
    ActionCommand("review-decide", "review_decide", "Record a review decision (higher body).",
                  "xinfang case review-decide XF-2025-000001 --level review --decision upheld "
                  "--as reviewer-01",
                  (Opt("--level", "level", "review or recheck.", _choice(ReviewLevel), True),
                   Opt("--decision", "decision", "Decision.", _choice(ReviewDecision), True))),
    ActionCommand("reopen", "reopen", "Reopen the matter (重新办理).",
                  'xinfang case reopen XF-2025-000001 --reason "复查变更" --as office-01',
                  (Opt("--reason", "reason", "Why.", str, True),)),
]

REVERSE_CHECK_COMMANDS = [
    ActionCommand("open", "reverse_check_open", "Open a reverse-check (倒查) on a case.",
                  'xinfang reverse-check open XF-2025-000123 --reason "结而不息" --as inspector-01',
                  (Opt("--reason", "reason", "Why.", str, True),)),
    ActionCommand("finding", "reverse_check_finding",
                  "Record a finding: who, what fault, which events prove it.",
                  "xinfang reverse-check finding XF-2025-000123 --actor officer-07 --fault "
                  "late_reply --evidence XF-2025-000123#5 --as inspector-01",
                  (Opt("--actor", "actor", "Responsible actor.", str, True),
                   Opt("--fault", "fault", "Fault code, e.g. late_reply.", str, True),
                   Opt("--evidence", "evidence", "Event reference STREAM#SEQ[:HASH] "
                       "(repeatable).", multiple=True)),
                  post=_event_refs),
    ActionCommand("conclude", "reverse_check_conclude", "Conclude with measures (处理措施).",
                  'xinfang reverse-check conclude XF-2025-000123 --measures "诫勉谈话" '
                  "--as inspector-01",
                  (Opt("--measures", "measures", "Measures taken.", str, True),)),
]


def _build(spec: ActionCommand) -> click.Command:
    def callback(**kwargs: Any) -> Report:
        return _run(spec, kwargs)

    # click keeps a paragraph as written when a line holding only \b (the control character
    # itself, as in a plain docstring) precedes it; a literal backslash-b would be printed.
    callback.__doc__ = f"{spec.summary}\n\n\b\nExample:\n  {spec.example}"
    command: Any = renders(*RESULT)(callback)
    command = lang_option(command)
    command = at_option(command)
    command = as_option(command)
    for opt in reversed(spec.options):
        help_text = opt.help
        if isinstance(opt.type, Coded):
            help_text += f" One of: {opt.type.pairs()}."
        elif opt.type == TIME:
            help_text += f" {TIME_HELP[0].upper()}{TIME_HELP[1:]}."
        extra: dict[str, Any] = {"help": help_text}
        if opt.is_flag:
            extra["is_flag"] = True
        else:
            extra["type"] = str if opt.type == TIME else opt.type
            if opt.type == TIME:
                extra["metavar"] = "TIME"
            extra["multiple"] = opt.multiple
            extra["required"] = opt.required
            if opt.default is not None:
                extra["default"] = opt.default
                extra["show_default"] = True
        command = click.option(opt.flag, opt.field, **extra)(command)
    if spec.takes_case:
        command = click.argument("case_no", metavar="CASE")(command)
    return click.command(spec.name)(command)


def _run(spec: ActionCommand, kwargs: dict[str, Any]) -> Report:
    as_actor = kwargs.pop("as_actor")
    lang = kwargs.pop("lang", "zh")
    at = parse_at(kwargs.pop("at"))
    case_no = kwargs.pop("case_no", None) or kwargs.pop("_case", None)
    kwargs.pop("_case", None)
    data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()
            if v is not None and v != () and v is not False}
    data = _document_digest(data)
    flags = {opt.field: opt.flag for opt in spec.options}
    for opt in spec.options:
        if opt.type == TIME and opt.field in data:
            data[opt.field] = local_time_text(data[opt.field], opt.flag)
    if spec.post is None:
        _check_options(spec.action, data, flags)
    with settings().open() as led:
        if spec.post is not None:
            data = spec.post(data)
            for ref in data.get("evidence", []):
                if ref["hash"] is None:   # fill in the hash the inspector is citing
                    ref["hash"] = led.event_hash(ref["stream"], ref["seq"])
                    if ref["hash"] is None:
                        raise InputError(f"no event {ref['stream']}#{ref['seq']}")
        receipt = led.execute(spec.action, case_no, data, as_actor=as_actor, at=at)
    document = {"case": receipt.stream, "seq": receipt.seq, "position": receipt.position,
                "type": receipt.type, "hash": receipt.hash}
    if spec.action == "register":   # the new case number alone, for scripts to capture
        return Report(document, text=receipt.stream)
    if lang == "zh":
        return Report(document, lang=lang, text=f"{receipt.stream} #{receipt.seq} "
                      f"{label('action', spec.action, lang)}已记录，日志位置 {receipt.position}"
                      f"（{receipt.hash[:16]}）")
    return Report(document, lang=lang, text=f"{receipt.stream} #{receipt.seq} {spec.action} "
                  f"recorded at position {receipt.position} ({receipt.hash[:16]})")


def _check_options(action: str, data: dict[str, Any], flags: dict[str, str]) -> None:
    """Judge the options before the ledger is opened, so errors name them (``option
    --served-at: is not a time…``) instead of pydantic's fields and wording."""
    try:
        parse_data(action, data)
    except ValidationError as exc:
        lines = []
        for loc, sentence in plain_errors(exc)[:3]:
            if not loc:
                lines.append(sentence)
                continue
            flag = flags.get(str(loc[0]), "--" + str(loc[0]).replace("_", "-"))
            lines.append(f"option {flag}: {sentence}")
        raise InputError("; ".join(lines), "See --help for the options and their codes."
                         ) from None


@click.group("case")
def case_group() -> None:
    """Actions on petition cases, one signed event each; and `case history`."""


@click.group("reverse-check")
def reverse_check_group() -> None:
    """Accountability reverse-checks (倒查) by inspectors."""


for _spec in COMMANDS:
    case_group.add_command(_build(_spec))
for _spec in REVERSE_CHECK_COMMANDS:
    reverse_check_group.add_command(_build(_spec))


@case_group.command("list")
@click.option("--petitioner", metavar="ID", help="Only this petitioner's cases (actor id).")
@click.option("--unit", metavar="UNIT", help="Only cases the unit is handling (承办单位).")
@click.option("--handler", metavar="ID", help="Only cases this handler has (承办人).")
@click.option("--status", type=click.Choice(list(STATUSES)),
              help="open (未办结), closed (已办结) or desisted (停访息诉).")
@click.option("--overdue", is_flag=True,
              help="Only cases past the handling deadline at --as-of and not replied.")
@click.option("--category", type=Coded("category", open_ended=True),
              help="Content category (内容分类), code or label, e.g. 户口问题.")
@click.option("--from", "date_from", metavar="DATE", help="Registered on or after (YYYY-MM-DD).")
@click.option("--to", "date_to", metavar="DATE", help="Registered on or before (YYYY-MM-DD).")
@click.option("--supervised", is_flag=True, help="Only supervised cases (督办).")
@click.option("--trigger", type=Coded("trigger"),
              help="Only cases with this reverse-check trigger (倒查触发事项) at --as-of.")
@as_of_option
@renders(*REPORT)
@lang_option
def case_list_cmd(petitioner: str | None, unit: str | None, handler: str | None,
                  status: str | None, overdue: bool, category: str | None,
                  date_from: str | None, date_to: str | None, supervised: bool,
                  trigger: str | None, as_of: str | None, lang: str) -> Report:
    """List cases from the read model as they stood at the end of --as-of; filters combine
    (every one given must hold). Unit, handler and status are the case's at --as-of.

    \b
    Examples:
      xinfang case list --status open --unit station-03
      xinfang case list --overdue --as-of 2025-12-31 --lang en
      xinfang case list --category 户口问题 --from 2025-01-01 --to 2025-06-30 --format csv
      xinfang case list --trigger overdue_open --format json
      xinfang case list --supervised --format xlsx --out 案件列表.xlsx
    """
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    with settings().store() as store:
        report = case_list(store, parse_as_of(as_of), petitioner=petitioner, unit=unit,
                           handler=handler, status=status, overdue=overdue, category=category,
                           date_from=start, date_to=end, supervised=supervised,
                           trigger=trigger)
    sheets = case_list_sheets(report, lang)
    return Report(report, tuple(sheets), title=sheets[0].title, lang=lang)
