"""With ``--server``: the read commands that ask the ledger server what only it may tell.

Writes need nothing here: ``settings().open()`` returns the server's client, which offers the
``Ledger`` methods the commands call. Readers who may read the whole log (``verify``,
``case history`` for inspectors …) get the local mirror from ``settings().store()`` and run
the unchanged local code on it. What remains are the commands whose answer depends on who
asks — the case list, a case's history for a reader who may not read the raw log, closure
records, the reports, export — and ``checkpoint``: in server mode their callbacks are routed
to the functions below, which render the server's JSON documents with the same sheets, in
every format the command offers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ledger import (
    InputError,
    VerificationError,
    closure_record_from_document,
    history_from_document,
    parse_checkpoint,
    verify_bundle,
)
from projections import (
    Report,
    accountability_sheets,
    case_list_sheets,
    closure_record_sheets,
    closure_sheets,
    history_sheets,
    statistics_sheets,
    supervision_sheets,
)

from .context import handle_errors, parse_as_of, settings
from .output import REPORT, renders, sheets_text
from .report_commands import parse_day


def _route(command: click.Command | None, remote: Callable[..., Any]) -> None:
    """Send ``command`` to ``remote`` when a server is given (``remote`` also gets the local
    callback, to fall back on where the mirror serves)."""
    if command is None or command.callback is None:
        return
    local = command.callback

    @functools.wraps(local)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        if settings().server is None:
            return local(*args, **kwargs)
        return remote(local, *args, **kwargs)

    command.callback = dispatch


def _day(value: str | None, option: str) -> str | None:
    day = parse_day(value, option)
    return day.isoformat() if day else None


def _as_of(value: str | None) -> str | None:
    day = parse_as_of(value)
    return day.isoformat() if day else None


def _get(path: str, params: dict[str, Any] | None = None) -> Any:
    with settings().client() as client:
        return client.call("GET", path, params={k: v for k, v in (params or {}).items()
                                                if v is not None})


# ---- cases ------------------------------------------------------------------------------------

@renders(*REPORT)
def _case_list(**options: Any) -> Report:
    lang = options.get("lang", "zh")
    document = _get("/v1/cases", {
        "petitioner": options.get("petitioner"), "unit": options.get("unit"),
        "handler": options.get("handler"), "status": options.get("status"),
        "overdue": "true" if options.get("overdue") else None,
        "category": options.get("category"), "from": _day(options.get("date_from"), "--from"),
        "to": _day(options.get("date_to"), "--to"),
        "supervised": "true" if options.get("supervised") else None,
        "trigger": options.get("trigger"), "as_of": _as_of(options.get("as_of"))})
    sheets = case_list_sheets(document, lang)
    return Report(document, tuple(sheets), title=sheets[0].title, lang=lang)


def case_list(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
    return _case_list(*args, **options)


@renders(*REPORT)
def _history(case_no: str, **options: Any) -> Report:
    """A case's history as the server judged it (for readers who may not read the log)."""
    from .read_commands import history_lines

    lang = options.get("lang", "zh")
    document = _get(f"/v1/cases/{case_no}/history")
    history = history_from_document(document)
    names, units = document.get("names", {}), document.get("units", {})
    status = document.get("status")
    lines = history_lines(history.case, status, history.deadlines, history.events, lang,
                          names, units)
    lines.append("（以上判定由服务器作出；可导出证据包自行验证：xinfang export）"
                 if lang == "zh" else
                 "(verdicts as the server judged them; check them yourself: xinfang export)")
    sheets = history_sheets(history.case, status, history.deadlines, history.events, lang,
                            names, units)
    document["judged_by"] = "server"
    return Report(document, tuple(sheets), text="\n".join(lines), lang=lang,
                  title=sheets[0].title, exit_code=0 if history.ok else 1)


def case_history(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
    with settings().client() as client:
        may_read_log = bool(client.whoami().get("log"))
    if may_read_log:   # the mirror: every verdict judged here, under the pinned keys
        return local(*args, **options)
    return _history(*args, **options)


@renders(*REPORT)
def _closure(case_no: str, **options: Any) -> Report:
    lang = options.get("lang", "zh")
    record = closure_record_from_document(_get(f"/v1/cases/{case_no}/closure"))
    names = _names()
    sheets = closure_record_sheets(record, lang, names)
    return Report(record.to_json(), tuple(sheets), title=sheets[0].title, lang=lang,
                  exit_code=0 if record.valid else 1)


def verify_closure(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
    return _closure(*args, **options)


def _names() -> dict[str, str]:
    with settings().client() as client:
        return {a.actor: a.name for a in client.directory().actors.values()}


# ---- reports ----------------------------------------------------------------------------------

def _report(name: str, params: dict[str, Any]) -> tuple[Any, str | None]:
    answer = _get(f"/v1/reports/{name}", params)
    return answer["report"], answer.get("organization")


@renders(*REPORT)
def _statistics(**options: Any) -> Report:
    lang = options.get("lang", "zh")
    document, org = _report("statistics", {
        "from": _day(options.get("date_from"), "--from"),
        "to": _day(options.get("date_to"), "--to"), "as_of": _as_of(options.get("as_of")),
        "compare": options.get("compare")})
    sheets = statistics_sheets(document, lang, organization=org)
    return Report(document, tuple(sheets), title=sheets[0].title, lang=lang)


@renders(*REPORT)
def _supervision(**options: Any) -> Report:
    lang = options.get("lang", "zh")
    document, org = _report("supervision", {
        "as_of": _as_of(options.get("as_of")), "from": _day(options.get("date_from"), "--from"),
        "to": _day(options.get("date_to"), "--to")})
    sheets = supervision_sheets(document, lang, organization=org)
    return Report(document, tuple(sheets), title=sheets[0].title, lang=lang)


@renders(*REPORT)
def _accountability(**options: Any) -> Report:
    lang = options.get("lang", "zh")
    document, org = _report("accountability", {
        "as_of": _as_of(options.get("as_of")), "unit": options.get("unit"),
        "integrity": "false" if options.get("integrity") is False else "true"})
    sheets = accountability_sheets(document, lang, organization=org)
    text = sheets_text(accountability_sheets(document, lang, with_custody=False))
    return Report(document, tuple(sheets), text=text, title=sheets[0].title, lang=lang)


@renders(*REPORT)
def _closures(**options: Any) -> Report:
    lang = options.get("lang", "zh")
    document, org = _report("closures", {})
    records = [closure_record_from_document(doc) for doc in document["cases"]]
    sheets = closure_sheets(records, lang, organization=org, names=_names())
    return Report({"cases": [r.to_json() for r in records]}, tuple(sheets),
                  title=sheets[0].title, lang=lang,
                  exit_code=0 if all(r.valid for r in records) else 1)


def _remote(render: Callable[..., Any]) -> Callable[..., Any]:
    def remote(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
        return render(*args, **options)
    return remote


# ---- export and checkpoint --------------------------------------------------------------------

@handle_errors
def _export(cases: tuple[str, ...] = (), all_closed: bool = False, out: str | None = None,
            **options: Any) -> None:
    """The server's bundle of the cases, verified here under the pinned keys first."""
    with settings().client() as client:
        data = client.call("POST", "/v1/export", raw=True,
                           json_body={"cases": list(cases), "all_closed": all_closed})
        log_key, admin_key = client.log_key, client.admin_key
    if log_key is None or admin_key is None:
        click.echo("warning: no log.pub and admin.pub in the keystore, so the bundle was not "
                   "verified here; run `xinfang verify-bundle` with the ledger's keys", err=True)
    else:
        report = verify_bundle(data, log_key=log_key, admin_key=admin_key)
        if not report.ok:
            first = report.first_failure
            raise VerificationError(f"the server's bundle does not verify under the pinned keys"
                                    f": {first.reason if first else 'failed'}; nothing written",
                                    "The server may not be the ledger you trust.")
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    Path(out).write_bytes(data)
    import json

    bundle = json.loads(data)
    size = parse_checkpoint(bundle["checkpoint"]).checkpoint.size
    click.echo(f"exported {len(bundle['cases'])} case(s) and {len(bundle['events'])} events "
               f"proven against checkpoint size {size} to {out}")


def export(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
    return _export(*args, **options)


@handle_errors
def _checkpoint(reanchor: bool = False, witnesses: tuple[str, ...] = (),
                quorum: int | None = None, **options: Any) -> None:
    with settings().client() as client:
        if reanchor:
            client.reanchor()
        if witnesses or quorum is not None:
            raise InputError("with --server the server has its checkpoints cosigned",
                             "Its operator names the witnesses: `xinfang serve --witness "
                             "URL=WITNESS.pub`.")
        click.echo(client.checkpoint(), nl=False)


def checkpoint(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
    return _checkpoint(*args, **options)


@handle_errors
def _refuse_init(**options: Any) -> None:
    raise InputError("`init` makes a ledger on this machine, not through a server",
                     "Initialize on the server host (without --server), then move the log key "
                     "to the server's keystore (docs/operations.md).")


def init(local: Callable[..., Any], *args: Any, **options: Any) -> Any:
    return _refuse_init(**options)


def route_through_server(cli: click.Group) -> None:
    """Route the commands above when ``--server`` is given (local behaviour otherwise)."""
    case = cli.commands.get("case")
    report = cli.commands.get("report")
    if isinstance(case, click.Group):
        _route(case.commands.get("list"), case_list)
        _route(case.commands.get("history"), case_history)
        _route(case.commands.get("verify-closure"), verify_closure)
    if isinstance(report, click.Group):
        for name, render in (("statistics", _statistics), ("supervision", _supervision),
                             ("accountability", _accountability), ("closures", _closures)):
            _route(report.commands.get(name), _remote(render))
    _route(cli.commands.get("export"), export)
    _route(cli.commands.get("checkpoint"), checkpoint)
    _route(cli.commands.get("init"), init)


__all__ = ["route_through_server"]
