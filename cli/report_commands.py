"""Report commands (supervision ledger, statistics) and the read model's upkeep (projections).

A thin shell: the figures come from ``projections.reports``, the layout from
``projections.sheets``; this module parses options and picks the output format.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import date
from typing import Any

import click

from ledger.errors import EnvironmentProblem, InputError
from ledger.storage.store import Store, parse_location
from projections.export import CSV_ENCODING, write_csv, write_xlsx
from projections.reports import COMPARE_MODES, statistics, supervision
from projections.runner import catch_up, rebuild, status
from projections.sheets import Sheet, cell_text, statistics_sheets, supervision_sheets

from .context import format_option, handle_errors, lang_option, settings
from .output import display_width, emit_json, table

REPORT_FORMATS = ("text", "json", "csv", "xlsx")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLIP = 24   # display columns of a text cell in the terminal (files get the full text)


def parse_day(value: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option value (a business date in Asia/Shanghai)."""
    if value is None:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date",
                         "Use YYYY-MM-DD (a business date in Asia/Shanghai), "
                         "e.g. 2025-12-31.") from None


@contextmanager
def open_store() -> Iterator[Store]:
    """The ledger's store (no keys needed: reports only read)."""
    with Store(parse_location(settings().ledger_url)) as store:
        if not store.is_initialized():
            raise EnvironmentProblem(f"the ledger at {store.location.display} is not "
                                     "initialized", "Run `xinfang init` first.")
        yield store


def out_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--out", "out", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Write to FILE (required for xlsx; default stdout).")(func)


def as_of_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as-of", "as_of", metavar="DATE",
                        help="Judge open/closed/overdue at the end of this day, YYYY-MM-DD "
                             "(default: today, Asia/Shanghai).")(func)


# ---- output -----------------------------------------------------------------------------------

def emit_report(report: dict[str, Any], sheets: Callable[[], list[Sheet]], fmt: str,
                out: str | None) -> None:
    """Print or write a report in one of ``REPORT_FORMATS``."""
    if fmt == "xlsx":
        if not out:
            raise InputError("--format xlsx writes a file", "Give --out FILE, e.g. report.xlsx.")
        write_xlsx(sheets(), out, width=display_width)
        click.echo(f"wrote {out}", err=True)
        return
    with _destination(out, CSV_ENCODING if fmt == "csv" else "utf-8"):
        if fmt == "json":
            emit_json(report)
        elif fmt == "csv":
            write_csv(sheets(), sys.stdout)
        else:
            echo_sheets(sheets())


@contextmanager
def _destination(out: str | None, encoding: str) -> Iterator[None]:
    if out is None:
        yield
        return
    try:
        handle = open(out, "w", encoding=encoding, newline="")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    with handle, redirect_stdout(handle):
        yield


def echo_sheets(sheets: list[Sheet]) -> None:
    """Aligned tables; overdue rows marked ⚠ (and red on a terminal)."""
    for n, sheet in enumerate(sheets):
        if n:
            click.echo()
        click.echo(sheet.title)
        rows = [[_clip(cell_text(c, "—")) for c in row] for row in sheet.rows]
        headers = list(sheet.headers)
        if sheet.flagged:
            headers.append("")
            for i, row in enumerate(rows):
                row.append("⚠" if i in sheet.flagged else "")
        align = [">" if j in sheet.numeric else "<" for j in range(len(headers))]
        for i, line in enumerate(table(headers, rows, align).split("\n")):
            flagged = i >= 2 and i - 2 in sheet.flagged
            click.echo(click.style(line, fg="red") if flagged else line)
        for note in sheet.notes:
            click.echo(note)


def _clip(text: str, width: int = _CLIP) -> str:
    if display_width(text) <= width:
        return text
    while display_width(text) > width - 1:
        text = text[:-1]
    return text + "…"


# ---- report -----------------------------------------------------------------------------------

@click.group("report")
def report_group() -> None:
    """Reports from the read model, caught up with the ledger first.

    \b
    Examples:
      xinfang report supervision
      xinfang report supervision --as-of 2025-12-25 --format xlsx --out 督办台账.xlsx
      xinfang report statistics --from 2025-01-01 --to 2025-12-31
      xinfang report statistics --from 2025-01-01 --to 2025-12-31 --format json
      xinfang report statistics --from 2025-07-01 --to 2025-09-30 --compare year \\
          --format csv --out q3.csv
    """


@report_group.command("supervision")
@as_of_option
@click.option("--from", "date_from", metavar="DATE", help="Only cases supervised on or after.")
@click.option("--to", "date_to", metavar="DATE", help="Only cases supervised on or before.")
@format_option(*REPORT_FORMATS)
@out_option
@lang_option
@handle_errors
def supervision_cmd(as_of: str | None, date_from: str | None, date_to: str | None, fmt: str,
                    out: str | None, lang: str) -> None:
    """The supervision ledger (督办台账): one row per supervised case, totals per unit.

    Status, closing date, on time and days overdue are judged at the end of --as-of.

    \b
    Examples:
      xinfang report supervision
      xinfang report supervision --as-of 2025-12-25 --lang en
      xinfang report supervision --format xlsx --out 督办台账.xlsx
    """
    day = parse_day(as_of, "--as-of")
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    with open_store() as store:
        report = supervision(store, day, date_from=start, date_to=end)
    emit_report(report, lambda: supervision_sheets(report, lang), fmt, out)


@report_group.command("statistics")
@click.option("--from", "date_from", required=True, metavar="DATE",
              help="First registration day of the period (YYYY-MM-DD).")
@click.option("--to", "date_to", required=True, metavar="DATE",
              help="Last registration day of the period (inclusive).")
@as_of_option
@click.option("--compare", type=click.Choice(COMPARE_MODES), default="previous",
              show_default=True,
              help="Compare with the previous period of equal length, or a year earlier.")
@format_option(*REPORT_FORMATS)
@out_option
@lang_option
@handle_errors
def statistics_cmd(date_from: str, date_to: str, as_of: str | None, compare: str, fmt: str,
                   out: str | None, lang: str) -> None:
    """Petition statistics (信访工作统计) of the cases registered in a period.

    Totals by channel, source and category; first and repeat petitions; group petitions;
    acceptance; closed with reply and the reply rate; reception days; supervision; leader
    packages; per unit; and the change against the comparison period.

    \b
    Examples:
      xinfang report statistics --from 2025-01-01 --to 2025-12-31
      xinfang report statistics --from 2025-01-01 --to 2025-12-31 --as-of 2025-12-25
      xinfang report statistics --from 2025-01-01 --to 2025-06-30 --format xlsx --out h1.xlsx
    """
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    assert start is not None and end is not None
    with open_store() as store:
        report = statistics(store, start, end, parse_day(as_of, "--as-of"), compare=compare)
    emit_report(report, lambda: statistics_sheets(report, lang), fmt, out)


# ---- projections ------------------------------------------------------------------------------

@click.group("projections")
def projections_group() -> None:
    """The read model (rm_* tables) the reports use: status, catch-up, rebuild.

    \b
    Examples:
      xinfang projections status
      xinfang projections rebuild
    """


def _echo_progress(result: dict[str, Any], fmt: str, verb: str) -> None:
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(f"{verb}: {result['applied']} log entries applied; read model at position "
                   f"{result['position']} (skipped unreadable events: {result['skipped']})")


@projections_group.command("status")
@format_option("text", "json")
@handle_errors
def status_cmd(fmt: str) -> None:
    """Where the read model stands against the ledger (does not catch up)."""
    with open_store() as store:
        result = status(store)
    if fmt == "json":
        emit_json(result)
    else:
        click.echo(f"read model at position {result['position']} of {result['head']} "
                   f"({result['behind']} behind), version {result['version']} "
                   f"(code {result['current_version']}), skipped {result['skipped']}")


@projections_group.command("catch-up")
@format_option("text", "json")
@handle_errors
def catch_up_cmd(fmt: str) -> None:
    """Apply the events written since the last catch-up (reports do this themselves)."""
    with open_store() as store:
        result = catch_up(store)
    _echo_progress(vars(result), fmt, "caught up")


@projections_group.command("rebuild")
@format_option("text", "json")
@handle_errors
def rebuild_cmd(fmt: str) -> None:
    """Drop the read-model tables and replay the whole ledger into them."""
    with open_store() as store:
        result = rebuild(store)
    _echo_progress(vars(result), fmt, "rebuilt")


def register_report_commands(cli: click.Group) -> None:
    """Add ``report`` and ``projections``; other report commands join ``report_group``."""
    cli.add_command(report_group)
    cli.add_command(projections_group)
