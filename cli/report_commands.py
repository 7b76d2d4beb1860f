"""Report commands (supervision ledger, statistics) and the read model's upkeep (projections).

A thin shell: the figures come from ``projections.reports``, the layout from
``projections.sheets``; this module parses options and returns a ``Report`` that
``cli/output.py`` renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import click

from ledger import InputError
from projections import (
    COMPARE_MODES,
    Report,
    catch_up,
    rebuild,
    statistics,
    statistics_sheets,
    status,
    supervision,
    supervision_sheets,
)

from .context import lang_option, parse_as_of, settings
from .output import REPORT, RESULT, renders

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


def as_of_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--as-of", "as_of", metavar="DATE|TIME",
                        help="Judge open/closed/overdue at the end of this day, YYYY-MM-DD, "
                             "or of the Beijing day of a moment such as 2025-12-31 18:00 "
                             "(default: today, Asia/Shanghai).")(func)


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
@renders(*REPORT)
@lang_option
def supervision_cmd(as_of: str | None, date_from: str | None, date_to: str | None,
                    lang: str) -> Report:
    """The supervision ledger (督办台账): one row per supervised case, totals per unit.

    Status, closing date, on time and days overdue are judged at the end of --as-of.

    \b
    Examples:
      xinfang report supervision
      xinfang report supervision --as-of 2025-12-25 --lang en
      xinfang report supervision --format xlsx --out 督办台账.xlsx
    """
    day = parse_as_of(as_of)
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    with settings().store() as store:
        report = supervision(store, day, date_from=start, date_to=end)
    sheets = supervision_sheets(report, lang)
    return Report(report, tuple(sheets), title=sheets[0].title, lang=lang)


@report_group.command("statistics")
@click.option("--from", "date_from", required=True, metavar="DATE",
              help="First registration day of the period (YYYY-MM-DD).")
@click.option("--to", "date_to", required=True, metavar="DATE",
              help="Last registration day of the period (inclusive).")
@as_of_option
@click.option("--compare", type=click.Choice(COMPARE_MODES), default="previous",
              show_default=True,
              help="Compare with the previous period of equal length, or a year earlier.")
@renders(*REPORT)
@lang_option
def statistics_cmd(date_from: str, date_to: str, as_of: str | None, compare: str,
                   lang: str) -> Report:
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
    with settings().store() as store:
        report = statistics(store, start, end, parse_as_of(as_of), compare=compare)
    sheets = statistics_sheets(report, lang)
    return Report(report, tuple(sheets), title=sheets[0].title, lang=lang)


# ---- projections ------------------------------------------------------------------------------

@click.group("projections")
def projections_group() -> None:
    """The read model (rm_* tables) the reports use: status, catch-up, rebuild.

    \b
    Examples:
      xinfang projections status
      xinfang projections rebuild
    """


def _progress_report(result: dict[str, Any], verb: str, lang: str) -> Report:
    if lang == "zh":
        return Report(result, lang=lang, text=f"{verb}：应用 {result['applied']} 条日志；读模型位于"
                      f"日志位置 {result['position']}（跳过无法读取的事件 {result['skipped']} 个）")
    return Report(result, lang=lang, text=f"{verb}: {result['applied']} log entries applied; "
                  f"read model at position {result['position']} (skipped unreadable events: "
                  f"{result['skipped']})")


@projections_group.command("status")
@renders(*RESULT)
@lang_option
def status_cmd(lang: str) -> Report:
    """Where the read model stands against the ledger (does not catch up)."""
    with settings().store() as store:
        result = status(store)
    if lang == "zh":
        return Report(result, lang=lang, text=f"读模型位于日志位置 {result['position']}／"
                      f"{result['head']}（落后 {result['behind']}），版本 {result['version']}"
                      f"（代码 {result['current_version']}），跳过 {result['skipped']}")
    return Report(result, lang=lang, text=f"read model at position {result['position']} of "
                  f"{result['head']} ({result['behind']} behind), version {result['version']} "
                  f"(code {result['current_version']}), skipped {result['skipped']}")


@projections_group.command("catch-up")
@renders(*RESULT)
@lang_option
def catch_up_cmd(lang: str) -> Report:
    """Apply the events written since the last catch-up (reports do this themselves)."""
    with settings().store() as store:
        result = catch_up(store)
    return _progress_report(vars(result), "已追平" if lang == "zh" else "caught up", lang)


@projections_group.command("rebuild")
@renders(*RESULT)
@lang_option
def rebuild_cmd(lang: str) -> Report:
    """Drop the read-model tables and replay the whole ledger into them."""
    with settings().store() as store:
        result = rebuild(store)
    return _progress_report(vars(result), "已重建" if lang == "zh" else "rebuilt", lang)


def register_report_commands(cli: click.Group) -> None:
    """Add ``report`` and ``projections``; other report commands join ``report_group``."""
    cli.add_command(report_group)
    cli.add_command(projections_group)
