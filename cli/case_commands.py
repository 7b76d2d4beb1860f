"""One `case` subcommand per case action, and `reverse-check`, built from the action registry.

Each command, its help and example, and its options — one per field of the action's model,
with the field's help and, for coded fields, the codes and their labels — come from the action's
definition (``ledger.ACTIONS``, docs/actions.md). What only a command line needs is added here:
``--case`` for a registration, ``--document FILE`` for a document digest, event references
written ``STREAM#SEQ[:HASH]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ledger import ACTIONS, Action, FieldInfo, InputError, fields_of
from projections import STATUSES, Report, case_list, case_list_sheets, label
from schemas import parse_data, plain_errors

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
CASE_OPTION = Opt("--case", "_case", "Case number to use (default: next free number).")
_TYPES: dict[str, Any] = {"text": str, "int": int, "time": TIME, "date": str, "texts": str,
                          "refs": str}


def _option(f: FieldInfo) -> Opt:
    """The option of one field: its flag, help, type and codes from the registry."""
    help_text = f.spec.help
    if f.kind == "date" and "YYYY-MM-DD" not in help_text:
        help_text += " (YYYY-MM-DD)"
    if f.kind == "flag":
        return Opt(f.flag, f.name, help_text, is_flag=True)
    kind: Any = _TYPES.get(f.kind)
    if f.kind in ("code", "codes"):
        kind = Coded(f.label_kind or f.name, f.choices, open_ended=f.choices is None)
    return Opt(f.flag, f.name, help_text, kind, f.required and f.default is None,
               f.multiple, default=f.default)


def command_for(definition: Action) -> ActionCommand:
    """A subcommand from an action's definition."""
    options: list[Opt] = []
    registers = definition.name == "register"
    if registers:
        options.append(CASE_OPTION)
    post = None
    for f in fields_of(definition):
        if f.spec.document:
            options.append(DOCUMENT)
        options.append(_option(f))
        if f.kind == "refs":
            post = _event_refs
    return ActionCommand(definition.cli_name, definition.name, definition.help,
                         definition.example, tuple(options), takes_case=not registers,
                         post=post)


COMMANDS = [command_for(a) for a in ACTIONS if a.group == "case"]
REVERSE_CHECK_COMMANDS = [command_for(a) for a in ACTIONS if a.group == "reverse-check"]


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
