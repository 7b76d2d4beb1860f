"""Reports laid out as labelled tables ("sheets"), the one layout every output format renders.

Text, CSV and XLSX all print the same sheets, so the formats cannot drift apart. Cells are typed:
``int``; ``float`` is a ratio (0.907), shown as a percentage; ``date``; ``str``; ``None`` is
empty. Labels come from ``projections.labels`` in Chinese or English.

A :class:`Report` is what a command shows, in the one form every output format takes as input:
the JSON document, the sheets, and (where prose says it better than a table) the terminal text.
The writers are ``projections.export`` (CSV, XLSX; the print-ready PDF of issue 17 joins them)
and the CLI's text and JSON writers (``cli/output.py``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from .labels import label
from .reports import CHANNELS, UNASSIGNED

if TYPE_CHECKING:
    from ledger import ClosureRecord, ClosureSignature

Cell = str | int | float | date | None

#: Display columns a text cell gets in a terminal table (files always get the full text).
CLIP = 24


@dataclass(frozen=True)
class Sheet:
    name: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    numeric: frozenset[int] = frozenset()   # column indexes holding figures (right-aligned)
    flagged: frozenset[int] = frozenset()   # row indexes to highlight (overdue)
    notes: list[str] = field(default_factory=list)
    clip: int | None = CLIP   # terminal cell width; None: short enough to show whole


@dataclass(frozen=True)
class Report:
    """One command's result, in the form every output format renders.

    ``document`` is the JSON document (its keys are the CLI contract, docs cli.md); ``sheets``
    the labelled tables that text, CSV and XLSX lay out (empty for a result that is no table,
    such as a receipt or a verdict: such a report offers text and JSON only); ``text`` the
    terminal rendering where prose says it better than the sheets (None: the sheets as aligned
    tables); ``exit_code`` 1 when what was checked failed, applied after the output is written;
    ``title`` names the report (a file's heading); ``lang`` the language its labels were made
    in, so a writer adds its own words (page footers, say) in the same language.
    """

    document: Any
    sheets: tuple[Sheet, ...] = ()
    text: str | None = None
    title: str = ""
    lang: str = "zh"
    exit_code: int = 0


def display_width(text: str) -> int:
    """Terminal columns of ``text``: CJK wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def labeller(kind: str, lang: str) -> Callable[[str], str]:
    """``label`` of one kind in one language, as a one-argument function."""
    return lambda code: label(kind, code, lang)


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
    r = labeller("report", lang)
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
    r = labeller("report", lang)
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
    r = labeller("report", lang)
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
    r = labeller("report", lang)
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


# ---- closure records (三签结案记录) --------------------------------------------------------------

CLOSURE_ROLES = ("handler", "unit_leader", "petitioner")


def _time(text: str | None) -> str:
    return text[:16].replace("T", " ") if text else "—"


def closure_mark(sig: ClosureSignature, lang: str) -> str:
    """Whether one signature counts: verified, bad, missing or refused."""
    if not sig.present:
        return label("closure", "missing", lang)
    if sig.form == "refused":
        return label("form", "refused", lang)
    return label("field", "ok" if sig.verified else "bad", lang)


def closure_how(sig: ClosureSignature, lang: str) -> str:
    """The petitioner's opinion and form of signing, e.g. 满意 / 见证纸质签名."""
    if sig.role != "petitioner" or not sig.present or sig.form == "refused":
        return ""
    return f"{label('opinion', sig.opinion, lang)} / {label('form', sig.form, lang)}"


def _closure_who(sig: ClosureSignature, lang: str) -> str:
    if not sig.present:
        return label("closure", "missing", lang)
    return " ".join(part for part in (sig.actor or "?", closure_mark(sig, lang),
                                      closure_how(sig, lang)) if part)


def _closure_verdict(record: ClosureRecord, lang: str) -> str:
    return label("closure", "valid" if record.valid else "invalid", lang)


def closure_problem_text(problem: Any, lang: str) -> str:
    return f"{label('closure', problem.code, lang)}: {problem.detail}"


def closure_sheets(records: Sequence[ClosureRecord], lang: str = "zh") -> list[Sheet]:
    """The closure records: one row per closed case, its problems spelled out below."""
    c = labeller("closure", lang)
    headers = [label("field", "case", lang), c("closed_at"), c("handler"), c("unit_leader"),
               c("petitioner"), c("verdict"), c("problems")]
    rows: list[list[Cell]] = [
        [r.case, _time(r.closed_at), *(_closure_who(r.signatures[role], lang)
                                       for role in CLOSURE_ROLES),
         _closure_verdict(r, lang), "; ".join(label("closure", p.code, lang) for p in r.problems)]
        for r in records]
    notes = [f"  {r.case}: {closure_problem_text(p, lang)}" for r in records for p in r.problems]
    return [Sheet(c("records"), c("records"), headers, rows, notes=notes, clip=None)]


def closure_record_sheets(record: ClosureRecord, lang: str = "zh") -> list[Sheet]:
    """One case's closure record: who signed what, when, with which key, and whether it counts."""
    c = labeller("closure", lang)
    heading = (f"{label('field', 'case', lang)} {record.case}    {c('closed_at')}: "
               f"{_time(record.closed_at)}    {c('closed_by')}: {record.closed_by or '—'}    "
               f"{c('verdict')}: {_closure_verdict(record, lang)}")
    rows: list[list[Cell]] = []
    for role in CLOSURE_ROLES:
        sig = record.signatures[role]
        rows.append([c(role), sig.actor or "—", _time(sig.at), sig.key or "—",
                     closure_mark(sig, lang), closure_how(sig, lang)])
    headers = [c("signature"), c("signer"), label("field", "at", lang), c("key"), c("verified"),
               label("field", "details", lang)]
    notes = [f"  - {closure_problem_text(p, lang)}" for p in record.problems]
    return [Sheet(record.case, heading, headers, rows, notes=notes, clip=None)]
