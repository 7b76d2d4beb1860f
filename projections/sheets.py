"""Reports laid out as labelled tables ("sheets"), the one layout every output format renders.

Text, CSV and XLSX all print the same sheets, so the formats cannot drift apart. Cells are typed:
``int``; ``float`` is a ratio (0.907), shown as a percentage; ``date``; ``str``; ``None`` is
empty. Labels come from ``projections.labels`` in Chinese or English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .labels import label
from .reports import CHANNELS, UNASSIGNED

Cell = str | int | float | date | None


@dataclass(frozen=True)
class Sheet:
    name: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    numeric: frozenset[int] = frozenset()   # column indexes holding figures (right-aligned)
    flagged: frozenset[int] = frozenset()   # row indexes to highlight (overdue)
    notes: list[str] = field(default_factory=list)


def cell_text(value: Cell, empty: str = "") -> str:
    """A cell as text: ratios as percentages with one decimal, dates as ISO."""
    if value is None:
        return empty
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _unit_label(unit: str, names: dict[str, str], lang: str) -> str:
    if unit == UNASSIGNED:
        return label("report", "unassigned", lang)
    return names.get(unit, unit)


# ---- supervision ledger ---------------------------------------------------------------------

SUPERVISION_COLUMNS = ("case", "authority", "supervised_at", "form", "petitioner", "summary",
                       "leader", "unit", "handler", "due", "progress_reports", "reminders",
                       "status", "closed_at", "on_time", "overdue_days", "opinion")


def supervision_sheets(report: dict[str, Any], lang: str = "zh") -> list[Sheet]:
    r = lambda key: label("report", key, lang)  # noqa: E731
    rows: list[list[Cell]] = []
    flagged = set()
    for i, row in enumerate(report["rows"]):
        opinion = label("form", "refused", lang) if row.get("sign_form") == "refused" \
            else (label("opinion", row["opinion"], lang) if row["opinion"] else None)
        on_time = None if row["on_time"] is None else \
            label("field", "yes" if row["on_time"] else "no", lang)
        rows.append([
            row["case"], label("source", row["authority"], lang), _day(row["supervised_at"]),
            label("supervision_form", row["form"], lang) if row["form"] else None,
            row.get("petitioner_name") or row["petitioner"], row.get("summary"),
            row.get("leader_name") or row["leader"], row.get("unit_name") or row["unit"],
            row.get("handler_name") or row["handler"], _day(row["due"]),
            row["progress_reports"], row.get("reminders"), label("status", row["status"], lang),
            _day(row["closed_at"]), on_time, row["overdue_days"], opinion,
        ])
        if row["overdue_days"] > 0:
            flagged.add(i)
    title = f"{r('supervision')}（{r('as_of')} {report['as_of']}）" if lang == "zh" else \
        f"{r('supervision')} ({r('as_of')} {report['as_of']})"
    period = report.get("period") or {}
    notes = [f"{r('supervised_at')}: {period.get('from') or '…'} – {period.get('to') or '…'}"] \
        if period.get("from") or period.get("to") else []
    figures = frozenset(SUPERVISION_COLUMNS.index(c)
                        for c in ("progress_reports", "reminders", "overdue_days"))
    main = Sheet(r("supervision"), title, [r(c) for c in SUPERVISION_COLUMNS], rows,
                 figures, frozenset(flagged), notes)
    unit_cols = ("supervised", "closed", "closed_on_time", "overdue")
    unit_rows: list[list[Cell]] = [
        [_unit_label(unit, report.get("unit_names", {}), lang), *(t[c] for c in unit_cols)]
        for unit, t in report["by_unit"].items()]
    unit_rows.append([r("totals"), *(report["totals"][c] for c in unit_cols)])
    by_unit = Sheet(r("by_unit"), f"{r('supervision')} · {r('by_unit')}",
                    [r("unit"), *(r(c) for c in unit_cols)], unit_rows,
                    frozenset(range(1, len(unit_cols) + 1)))
    return [main, by_unit]


# ---- statistics -------------------------------------------------------------------------------

def statistics_sheets(report: dict[str, Any], lang: str = "zh") -> list[Sheet]:
    r = lambda key: label("report", key, lang)  # noqa: E731
    previous = report["previous"]
    compare = r("compare_year" if report.get("compare") == "year" else "compare_previous")
    period = f"{report['period']['from']} {r('to')} {report['period']['to']}"
    title = f"{r('statistics')} {period}（{r('as_of')} {report['as_of']}）" if lang == "zh" \
        else f"{r('statistics')} {period} ({r('as_of')} {report['as_of']})"
    compared = f"{previous['period']['from']} {r('to')} {previous['period']['to']}"
    notes = [f"{r('previous')}：{compare} {compared}（{r('as_of')} {previous['as_of']}）"
             if lang == "zh" else
             f"{r('previous')}: {compare} {compared} ({r('as_of')} {previous['as_of']})"]
    figures = Sheet(r("statistics"), title,
                    [r("figure"), r("current"), r("previous"), r("delta"), r("pct")],
                    _figure_rows(report, lang), frozenset({1, 2, 3, 4}), notes=notes)
    return [figures, _unit_sheet(report, lang)]


def _get(data: dict[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if data != {} else None


def _figure_rows(report: dict[str, Any], lang: str) -> list[list[Cell]]:
    r = lambda key: label("report", key, lang)  # noqa: E731
    rows: list[list[Cell]] = []

    def add(name: str, path: Sequence[str], indent: int = 0) -> None:
        current, before = _get(report, path), _get(report["previous"], path)
        moved = _get(report["change"], path) or {}
        text = "　" * indent + name
        if path[-1].endswith(("_rate", "_share")):
            delta = moved.get("delta")
            shown = None if delta is None else f"{delta * 100:+.1f}{r('points')}"
            rows.append([text, current, before, shown, None])
        else:
            pct = moved.get("pct")
            rows.append([text, current, before, moved.get("delta"),
                         None if pct is None else pct / 100])

    def heading(name: str, indent: int = 0) -> None:
        rows.append(["　" * indent + name, "", "", "", ""])

    def tally(group: Sequence[str], kind: str, indent: int, only_used: bool = False) -> None:
        for code in _get(report, group) or {}:
            used = _get(report, [*group, code]) or _get(report["previous"], [*group, code])
            if used or not only_used:
                add(label(kind, code, lang), [*group, code], indent)

    add(r("total"), ["total"])
    add(r("persons"), ["persons"])
    for group, kind in (("by_channel", "channel"), ("by_source", "source"),
                        ("by_category", "category")):
        heading(r(group))
        tally([group], kind, 1)
    add(r("first_time"), ["first_time"])
    add(r("of_which_closed"), ["first_time_closed"], 1)
    add(r("repeat"), ["repeat"])
    add(r("of_which_closed"), ["repeat_closed"], 1)
    add(r("repeat_share"), ["repeat_share"])
    add(r("group_batches"), ["group", "batches"])
    add(r("group_persons"), ["group", "persons"])
    add(r("accepted"), ["accepted"])
    add(r("not_accepted"), ["not_accepted"])
    add(r("undecided"), ["undecided"])
    add(r("closed_replied"), ["closed_replied"])
    add(r("in_handling"), ["in_handling"])
    add(r("reply_rate"), ["reply_rate"])
    heading(r("reception_day"))
    for name, key in (("reception_cases", "cases"), ("reception_persons", "persons"),
                      ("reception_repeat", "repeat"), ("answered_on_spot", "answered_on_spot"),
                      ("deadline_reply", "deadline_reply"), ("of_which_closed", "closed")):
        add(r(name), ["reception_day", key], 1)
    heading(r("by_category"), 1)
    tally(["reception_day", "by_category"], "category", 2, only_used=True)
    add(r("supervised"), ["supervised"])
    add(r("supervised_share"), ["supervised_share"])
    add(r("of_which_closed"), ["supervised_closed"], 1)
    add(r("supervised_close_rate"), ["supervised_close_rate"])
    heading(r("supervised_by_authority"))
    tally(["supervised_by_authority"], "source", 1, only_used=True)
    add(r("packaged"), ["packaged"])
    add(r("of_which_closed"), ["packaged_closed"], 1)
    add(r("packaged_desisted"), ["packaged_desisted"], 1)
    add(r("desisted"), ["desisted"])
    return rows


def _unit_sheet(report: dict[str, Any], lang: str) -> Sheet:
    r = lambda key: label("report", key, lang)  # noqa: E731
    channels = CHANNELS
    headers = [r("unit"), r("cases"), r("persons"),
               *(label("channel", c, lang) for c in channels), r("accepted"),
               r("closed_replied"), r("reply_rate"), r("supervised"), r("reception_cases"),
               r("reception_persons")]
    rows: list[list[Cell]] = []
    for unit, f in report["by_unit"].items():
        rows.append([_unit_label(unit, report.get("unit_names", {}), lang), f["cases"],
                     f["persons"], *(f["by_channel"].get(c, 0) for c in channels), f["accepted"],
                     f["closed_replied"], f["reply_rate"], f["supervised"],
                     f["reception_day"]["cases"], f["reception_day"]["persons"]])
    return Sheet(r("by_unit"), f"{r('statistics')} · {r('by_unit')}", headers, rows,
                 frozenset(range(1, len(headers))))
