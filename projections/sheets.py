"""Reports laid out as labelled tables ("sheets"), the one layout every output format renders.

Text, CSV and XLSX all print the same sheets, so the formats cannot drift apart. Cells are typed:
``int``; :class:`Ratio` is an exact ratio (15/19), shown as a percentage rounded once from its
counts; ``float`` a ratio known only as a number; ``date``; ``str``; ``None`` is empty. Labels
come from ``projections.labels`` in Chinese or English.

How a sheet prints is part of the sheet, not of one writer (issue 17): :class:`Page` holds the
heading (``XX市公安局信访督办台账``), the unit and period lines, the sign-off line
(制表人/审核人/制表日期) and the page footer; a sheet names its group header row, its totals
rows (合计) and its wrapped columns, and ``column_widths`` measures what each column needs. The
XLSX writer lays these out on A4 landscape; a PDF writer takes the same values.

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
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .labels import label
from .reports import CHANNELS, SOURCES, UNASSIGNED, today

if TYPE_CHECKING:
    from ledger import ClosureRecord, ClosureSignature

@dataclass(frozen=True)
class Ratio:
    """An exact ratio of two counts (15/19): shown rounded once, half up (四舍五入), from the
    counts themselves. An empty denominator has no ratio (shown empty)."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def fraction(self) -> Fraction | None:
        return Fraction(self.numerator, self.denominator) if self.denominator else None


Cell = str | int | float | Ratio | date | None

#: Display columns a text cell gets in a terminal table (files always get the full text).
CLIP = 24
#: Widest column a file gives a text cell (display columns); longer text wraps.
WRAP = 40


def percent(value: Fraction | float, places: int = 1, signed: bool = False) -> str:
    """``value`` (a ratio) as a percentage rounded once, half up: 15/19 → 78.9."""
    exact = Decimal(value.numerator) / Decimal(value.denominator) * 100 \
        if isinstance(value, Fraction) else Decimal(repr(value)) * 100
    shown = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{shown:+}" if signed and shown else f"{shown}"


def exact(document: dict[str, Any], key: str) -> Ratio | float | None:
    """The ratio ``key`` of a report document as a :class:`Ratio` from the counts it carries
    (``ratios``), or the plain number where a document has no counts."""
    counts = (document.get("ratios") or {}).get(key)
    if counts is not None:
        return Ratio(counts["numerator"], counts["denominator"]) if counts["denominator"] \
            else None
    value = document.get(key)
    return value if isinstance(value, float) else None


@dataclass(frozen=True)
class Page:
    """How a sheet prints: the heading, the lines under it (unit, period or as-of), the
    sign-off line (制表人/审核人/制表日期, blanks to sign on paper), the footer with page
    numbers (``&P``/``&N``: this page / pages), A4 landscape fitted to one page wide."""

    heading: str
    meta: tuple[str, ...] = ()
    signoff: tuple[str, ...] = ()
    footer: str = ""
    paper: str = "A4"
    landscape: bool = True


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
    page: Page | None = None  # how it prints (None: its title heads it)
    groups: tuple[tuple[str, int], ...] = ()   # a header row above ``headers``: (label, span)
    totals: frozenset[int] = frozenset()       # row indexes that are totals rows (合计)

    @property
    def heading(self) -> str:
        return self.page.heading if self.page else self.title

    def header_rows(self) -> list[list[tuple[str, int]]]:
        """The rows a printed page repeats at its top: (label, span) cells."""
        rows = [list(self.groups)] if self.groups else []
        return [*rows, [(h, 1) for h in self.headers]]

    def column_widths(self, width: Callable[[str], int] | None = None) -> list[int]:
        """Display columns each column needs to show its content (CJK characters count
        double): the widest cell, at most ``WRAP`` (longer text wraps); headers wrap onto two
        lines when their column is narrower."""
        measure = width or display_width
        widths = [max(4, min(-(-measure(h) // 2), WRAP)) for h in self.headers]
        for row in self.rows:
            for j, value in enumerate(row):
                widths[j] = max(widths[j], min(measure(cell_text(value)), WRAP))
        return widths


def _signoff(lang: str, prepared: date | None) -> tuple[str, ...]:
    p = labeller("print", lang)
    blank = "　" * 8 if lang == "zh" else "_" * 16
    sep = "：" if lang == "zh" else ": "
    return (f"{p('prepared_by')}{sep}{blank}", f"{p('reviewed_by')}{sep}{blank}",
            f"{p('prepared_on')}{sep}{(prepared or today()).isoformat()}")


def page(document: dict[str, Any] | None, name: str, meta: Sequence[str], lang: str, *,
         organization: str | None = None, prepared: date | None = None) -> Page:
    """The print layout of one sheet: ``name`` under the top unit's name (from the document's
    ``organization`` unless given), the unit line, then ``meta`` (period, as-of)."""
    p = labeller("print", lang)
    org = organization or ((document or {}).get("organization") or {}).get("name") or ""
    sep = "：" if lang == "zh" else ": "
    heading = f"{org}{name}" if lang == "zh" else (f"{org} — {name}" if org else name)
    lines = ((f"{p('unit')}{sep}{org}",) if org else ()) + tuple(meta)
    return Page(heading, lines, _signoff(lang, prepared), p("footer"))


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
    """A cell as text: ratios as percentages with one decimal (rounded once, half up), dates
    as ISO."""
    if value is None:
        return empty
    if isinstance(value, Ratio):
        exact_value = value.fraction()
        return empty if exact_value is None else f"{percent(exact_value)}%"
    if isinstance(value, float):
        return f"{percent(value)}%"
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


def supervision_sheets(report: dict[str, Any], lang: str = "zh", *,
                       organization: str | None = None,
                       prepared: date | None = None) -> list[Sheet]:
    r, p = labeller("report", lang), labeller("print", lang)
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
    meta = [_meta(r("as_of"), report["as_of"], lang), *notes]

    def printed(name: str) -> Page:
        return page(report, name, meta, lang, organization=organization, prepared=prepared)

    main = Sheet(r("supervision"), title, [r(c) for c in SUPERVISION_COLUMNS], rows,
                 figures, frozenset(flagged), notes, page=printed(p("supervision")))
    unit_cols = ("supervised", "closed", "closed_on_time", "overdue")
    unit_rows: list[list[Cell]] = [
        [_unit_label(unit, report.get("unit_names", {}), lang), *(t[c] for c in unit_cols)]
        for unit, t in report["by_unit"].items()]
    unit_rows.append([r("totals"), *(report["totals"][c] for c in unit_cols)])
    by_unit = Sheet(r("by_unit"), f"{r('supervision')} · {r('by_unit')}",
                    [r("unit"), *(r(c) for c in unit_cols)], unit_rows,
                    frozenset(range(1, len(unit_cols) + 1)),
                    page=printed(f"{p('supervision')}{_paren(r('by_unit'), lang)}"),
                    totals=frozenset({len(unit_rows) - 1}))
    return [main, by_unit]


def _meta(name: str, value: str, lang: str) -> str:
    return f"{name}{'：' if lang == 'zh' else ': '}{value}"


def _paren(text: str, lang: str) -> str:
    return f"（{text}）" if lang == "zh" else f" ({text})"


# ---- statistics -------------------------------------------------------------------------------

def statistics_sheets(report: dict[str, Any], lang: str = "zh", *,
                      organization: str | None = None,
                      prepared: date | None = None) -> list[Sheet]:
    """The figures against the comparison period, the usual grid (信访统计表: units × channel,
    source and category counts), and the per-unit figures."""
    r, p = labeller("report", lang), labeller("print", lang)
    previous = report["previous"]
    compare = r("compare_year" if report.get("compare") == "year" else "compare_previous")
    period = f"{report['period']['from']} {r('to')} {report['period']['to']}"
    title = f"{r('statistics')} {period}（{r('as_of')} {report['as_of']}）" if lang == "zh" \
        else f"{r('statistics')} {period} ({r('as_of')} {report['as_of']})"
    compared = f"{previous['period']['from']} {r('to')} {previous['period']['to']}"
    notes = [f"{r('previous')}：{compare} {compared}（{r('as_of')} {previous['as_of']}）"
             if lang == "zh" else
             f"{r('previous')}: {compare} {compared} ({r('as_of')} {previous['as_of']})"]
    meta = [_meta(r("period"), period, lang), _meta(r("as_of"), report["as_of"], lang)]

    def printed(name: str, extra: Sequence[str] = ()) -> Page:
        return page(report, name, [*meta, *extra], lang, organization=organization,
                    prepared=prepared)

    figures = Sheet(r("statistics"), title,
                    [r("figure"), r("current"), r("previous"), r("delta"), r("pct")],
                    _figure_rows(report, lang), frozenset({1, 2, 3, 4}), notes=notes,
                    page=printed(p("statistics"), notes))
    grid = _grid_sheet(report, lang, printed(p("grid")))
    units = _unit_sheet(report, lang, printed(f"{p('statistics')}{_paren(r('by_unit'), lang)}"))
    return [figures, grid, units]


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
            now, then = exact(report, path[-1]), exact(report["previous"], path[-1])
            rows.append([text, now, then, _points(now, then, r("points")), None])
        else:
            delta = moved.get("delta")
            base = before if isinstance(before, int) else 0
            rows.append([text, current, before, delta,
                         Ratio(delta, base) if base and delta is not None else None])

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


def _points(now: Ratio | float | None, then: Ratio | float | None, unit: str) -> str | None:
    """The change of a ratio in percentage points, rounded once from the exact ratios."""
    def value(x: Ratio | float | None) -> Fraction | None:
        if isinstance(x, Ratio):
            return x.fraction()
        return None if x is None else Fraction(x)
    a, b = value(now), value(then)
    if a is None or b is None:
        return None
    shown = percent(a - b, signed=True)
    return f"{shown if shown.startswith(('+', '-')) else '+' + shown}{unit}"


def _unit_sheet(report: dict[str, Any], lang: str, printed: Page | None = None) -> Sheet:
    """Per unit: cases, persons, channels, acceptance, replies, reply rate, …, and 合计."""
    r = labeller("report", lang)
    channels = CHANNELS
    headers = [r("unit"), r("cases"), r("persons"),
               *(label("channel", c, lang) for c in channels), r("accepted"),
               r("closed_replied"), r("reply_rate"), r("supervised"), r("reception_cases"),
               r("reception_persons")]
    rate = headers.index(r("reply_rate"))
    rows: list[list[Cell]] = []
    for unit, f in report["by_unit"].items():
        rows.append([_unit_label(unit, report.get("unit_names", {}), lang), f["cases"],
                     f["persons"], *(f["by_channel"].get(c, 0) for c in channels), f["accepted"],
                     f["closed_replied"], exact(f, "reply_rate"), f["supervised"],
                     f["reception_day"]["cases"], f["reception_day"]["persons"]])
    totals: list[Cell] = [r("totals"), *(_column_sum(rows, j) for j in range(1, len(headers)))]
    # the total rate is the rate of the totals, never a sum (or mean) of rates
    accepted, replied = (_column_sum(rows, headers.index(r(k)))
                         for k in ("accepted", "closed_replied"))
    totals[rate] = Ratio(replied, accepted) if accepted else None
    rows.append(totals)
    return Sheet(r("by_unit"), f"{r('statistics')} · {r('by_unit')}", headers, rows,
                 frozenset(range(1, len(headers))), page=printed,
                 totals=frozenset({len(rows) - 1}))


def _column_sum(rows: Sequence[Sequence[Cell]], j: int) -> int:
    return sum(v for row in rows if isinstance(v := row[j], int))


def _grid_sheet(report: dict[str, Any], lang: str, printed: Page) -> Sheet:
    """信访统计表: one row per unit, the counts by channel, source and category, with a 合计
    column (the unit's cases) and a 合计 row (every column summed)."""
    r, p = labeller("report", lang), labeller("print", lang)
    categories = list(report["by_category"])
    groups = (("by_channel", "channel", list(CHANNELS)), ("by_source", "source", list(SOURCES)),
              ("by_category", "category", categories))
    headers = [r("unit"), r("totals")]
    spans: list[tuple[str, int]] = [("", 2)]
    for key, kind, codes in groups:
        headers += [label(kind, c, lang) for c in codes]
        spans.append((r(key), len(codes)))
    rows: list[list[Cell]] = []
    for unit, f in report["by_unit"].items():
        row: list[Cell] = [_unit_label(unit, report.get("unit_names", {}), lang), f["cases"]]
        for key, _, codes in groups:
            row += [f.get(key, {}).get(c, 0) for c in codes]
        rows.append(row)
    rows.append([r("totals"), *(_column_sum(rows, j) for j in range(1, len(headers)))])
    return Sheet(p("grid"), f"{p('grid')} {report['period']['from']} {r('to')} "
                 f"{report['period']['to']}", headers, rows, frozenset(range(1, len(headers))),
                 page=printed, groups=tuple(spans), totals=frozenset({len(rows) - 1}))


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


def closure_sheets(records: Sequence[ClosureRecord], lang: str = "zh", *,
                   organization: str | None = None,
                   prepared: date | None = None) -> list[Sheet]:
    """The closure records: one row per closed case, its problems spelled out below."""
    c, p = labeller("closure", lang), labeller("print", lang)
    headers = [label("field", "case", lang), c("closed_at"), c("handler"), c("unit_leader"),
               c("petitioner"), c("verdict"), c("problems")]
    rows: list[list[Cell]] = [
        [r.case, _time(r.closed_at), *(_closure_who(r.signatures[role], lang)
                                       for role in CLOSURE_ROLES),
         _closure_verdict(r, lang), "; ".join(label("closure", p.code, lang) for p in r.problems)]
        for r in records]
    notes = [f"  {r.case}: {closure_problem_text(p, lang)}" for r in records for p in r.problems]
    meta = [_meta(p("as_of_now"), (prepared or today()).isoformat(), lang)]
    printed = page(None, p("closures"), meta, lang, organization=organization,
                   prepared=prepared)
    return [Sheet(c("records"), c("records"), headers, rows, notes=notes, clip=None,
                  page=printed)]


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
