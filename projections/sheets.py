"""Reports laid out as labelled tables ("sheets"), the one layout every output format renders.

Text, CSV, XLSX and PDF all print the same sheets, so the formats cannot drift apart. Cells
are typed: ``int``; :class:`Ratio` is an exact ratio (15/19), shown as a percentage rounded
once from its counts; ``float`` a ratio known only as a number; ``date``; ``str``; ``None`` is
empty. Labels come from ``projections.labels`` in Chinese or English.

How a sheet prints is part of the sheet, not of one writer (issue 17): :class:`Page` holds the
heading (``XX市公安局信访督办台账``), the unit and period lines, the sign-off line
(制表人/审核人/制表日期) and the page footer; a sheet names its group header row, its totals
rows (合计) and its wrapped columns, and ``column_widths`` measures what each column needs. The
XLSX writer (``projections.export``) and the PDF writer (``projections.pdf``) lay these out on
A4 landscape alike. ``wrap_text`` breaks text for all of them (CJK-aware, 避头尾), so text
output keeps within ``TEXT_WIDTH`` (120 columns) by wrapping, never cutting.

A case's history in people's terms (``history_text`` for terminals, ``history_sheets`` for
files): names with ids, unit names, each event's content with its fields labelled, business
and recorded time in Beijing time.

A :class:`Report` is what a command shows, in the one form every output format takes as input:
the JSON document, the sheets, and (where prose says it better than a table) the terminal text.
The writers are ``projections.export`` (CSV, XLSX), ``projections.pdf`` (PDF) and the CLI's
text and JSON writers (``cli/output.py``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ledger.domain.policy import SHANGHAI
from ledger.verification.checks import Check

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

#: Kept for callers that still name it; terminal tables now wrap every cell to fit
#: ``TEXT_WIDTH`` instead of cutting it (issue 17).
CLIP = 24
#: Widest column a file gives a text cell (display columns); longer text wraps.
WRAP = 40
#: The widest text output for a terminal or a text file (display columns, issue 17).
TEXT_WIDTH = 120


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
    clip: int | None = CLIP   # unused: text wraps cells to fit TEXT_WIDTH, never cuts them
    page: Page | None = None  # how it prints (None: its title heads it)
    groups: tuple[tuple[str, int], ...] = ()   # a header row above ``headers``: (label, span)
    totals: frozenset[int] = frozenset()       # row indexes that are totals rows (合计)
    header_lines: int = 2   # lines a header may wrap onto before it widens its column
    keys: int = 1           # leading columns a split table repeats (the row's name)

    @property
    def heading(self) -> str:
        return self.page.heading if self.page else self.title

    def header_rows(self) -> list[list[tuple[str, int]]]:
        """The rows a printed page repeats at its top: (label, span) cells."""
        rows = [list(self.groups)] if self.groups else []
        return [*rows, [(h, 1) for h in self.headers]]

    def column_widths(self, width: Callable[[str], int] | None = None) -> list[int]:
        """Display columns each column needs to show its content (CJK characters count
        double): the widest cell, at most ``WRAP`` (longer text wraps); headers wrap onto
        ``header_lines`` lines when their column is narrower (a whole CJK character a line)."""
        measure = width or display_width
        lines = max(1, self.header_lines)
        widths = [max(4, min(_even(-(-measure(h) // lines)), WRAP)) for h in self.headers]
        for row in self.rows:
            for j, value in enumerate(row):
                widths[j] = max(widths[j], min(measure(cell_text(value)), WRAP))
        return widths


def _even(n: int) -> int:
    """Round up to whole CJK characters (two display columns each)."""
    return n + (n % 2)


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


#: Characters a line does not start with (避头): they stay with what they close.
_NO_START = set("，。、；：！？）》」』】〕…·%,.;:!?)]}’”-—")
#: Characters a line does not end with (避尾): they go down with what they open.
_NO_END = set("（《「『【〔([{‘“")


def _tokens(text: str) -> list[str]:
    """Words of ASCII (kept whole where they fit), spaces, and single other characters
    (CJK text breaks between any two characters)."""
    out: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        out.append(" " if ch.isspace() else ch)
    if word:
        out.append(word)
    return out


def wrap_text(text: str, limit: float, width: Callable[[str], float] = display_width
              ) -> list[str]:
    """``text`` broken into lines no wider than ``limit`` as ``width`` measures them
    (display columns by default; a PDF writer passes its font's string width): at spaces,
    between CJK characters, never starting a line with closing punctuation; an ASCII word
    longer than a line is split. Newlines in ``text`` are kept. Never empty: "" → [""]."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current: list[str] = []
        for token in _tokens(paragraph):
            if width("".join(current) + token) <= limit:
                current.append(token)
                continue
            if token == " ":
                lines.append("".join(current).rstrip())
                current = []
                continue
            if token in _NO_START and len(current) > 1:
                carried = [current.pop()]   # the character before goes down with it
                while len(current) > 1 and current[-1] in _NO_END:
                    carried.insert(0, current.pop())
                lines.append("".join(current).rstrip())
                current = carried
                if width("".join(carried) + token) <= limit:
                    current.append(token)
                    continue
            if len(current) > 1 and current[-1] in _NO_END \
                    and width(current[-1] + token) <= limit:
                carried = current.pop()
                lines.append("".join(current).rstrip())
                current = [carried, token]
                continue
            if current:
                lines.append("".join(current).rstrip())
                current = []
            while width(token) > limit and len(token) > 1:   # a word wider than a line
                cut = len(token) - 1
                while cut > 1 and width(token[:cut]) > limit:
                    cut -= 1
                lines.append(token[:cut])
                token = token[cut:]
            current = [token]
        lines.append("".join(current).rstrip())
    return lines


def wrap_balanced(text: str, limit: float, width: Callable[[str], float] = display_width
                  ) -> list[str]:
    """``wrap_text`` with the lines as even as the same number of lines allows, for headers:
    信访人/意见 rather than 信访人意/见."""
    lines = wrap_text(text, limit, width)
    if len(lines) > 1:
        for factor in (1.0, 1.1, 1.2, 1.35, 1.5, 1.75):
            even = wrap_text(text, width(text) / len(lines) * factor, width)
            if len(even) == len(lines) and max(map(width, even)) <= limit:
                return even
    return lines


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
    grids = _grid_sheets(report, lang, printed)
    units = _unit_sheet(report, lang, printed(f"{p('statistics')}{_paren(r('by_unit'), lang)}"))
    return [figures, *grids, units]


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


def _grid_sheets(report: dict[str, Any], lang: str,
                 printed: Callable[[str], Page]) -> list[Sheet]:
    """信访统计表: one row per unit, the counts by channel, source and category, with a 合计
    column (the unit's cases) and a 合计 row (every column summed).

    Printed as two tables, each fitting A4 landscape at a readable size (issue 17): (一) by
    channel and source, (二) by content category; their headers wrap onto three lines so
    that the figure columns stay narrow."""
    r, p = labeller("report", lang), labeller("print", lang)
    categories = list(report["by_category"])
    parts = ((("by_channel", "channel", list(CHANNELS)), ("by_source", "source", list(SOURCES))),
             (("by_category", "category", categories),))
    names = report.get("unit_names", {})
    sheets = []
    for n, groups in enumerate(parts, 1):
        headers = [r("unit"), r("totals")]
        spans: list[tuple[str, int]] = [("", 2)]
        for key, kind, codes in groups:
            headers += [label(kind, c, lang) for c in codes]
            spans.append((r(key), len(codes)))
        rows: list[list[Cell]] = []
        for unit, f in report["by_unit"].items():
            row: list[Cell] = [_unit_label(unit, names, lang), f["cases"]]
            for key, _, codes in groups:
                row += [f.get(key, {}).get(c, 0) for c in codes]
            rows.append(row)
        rows.append([r("totals"), *(_column_sum(rows, j) for j in range(1, len(headers)))])
        part = f"（{'一二三'[n - 1]}）" if lang == "zh" else f" ({n})"
        name = f"{p('grid')}{part}"
        sheets.append(Sheet(
            name, f"{name} {report['period']['from']} {r('to')} {report['period']['to']}",
            headers, rows, frozenset(range(1, len(headers))), page=printed(name),
            groups=tuple(spans), totals=frozenset({len(rows) - 1}), header_lines=3))
    return sheets


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


def _closure_who(sig: ClosureSignature, lang: str, names: Mapping[str, str]) -> str:
    if not sig.present:
        return label("closure", "missing", lang)
    return " ".join(part for part in (named(sig.actor, names) if sig.actor else "?",
                                      closure_mark(sig, lang), closure_how(sig, lang)) if part)


def _closure_verdict(record: ClosureRecord, lang: str) -> str:
    return label("closure", "valid" if record.valid else "invalid", lang)


_REF = re.compile(r"#(\d+)")
_BY = re.compile(r"\bby ([A-Za-z0-9][A-Za-z0-9._-]*)")


def closure_problem_text(problem: Any, lang: str, names: Mapping[str, str] | None = None,
                         override: str | None = None) -> str:
    """A closure problem in one language: in English its label and the checker's sentence;
    in Chinese its label with the facts of that sentence (the events #N, who by name, the
    override reason), not the English sentence itself."""
    name = label("closure", problem.code, lang)
    if lang != "zh":
        return f"{name}: {problem.detail}"
    names = names or {}
    facts = [f"#{n}" for n in dict.fromkeys(_REF.findall(problem.detail))]
    facts += [named(actor, names) for actor in dict.fromkeys(_BY.findall(problem.detail))
              if actor in names or (not names and actor != "override")]
    if problem.code == "override" and override:
        facts.append(f"理由：{override}")
    return f"{name}（{'，'.join(facts)}）" if facts else name


def closure_sheets(records: Sequence[ClosureRecord], lang: str = "zh", *,
                   organization: str | None = None, prepared: date | None = None,
                   names: Mapping[str, str] | None = None) -> list[Sheet]:
    """The closure records: one row per closed case (signers by name with their id), its
    problems spelled out below."""
    names = names or {}
    c, p = labeller("closure", lang), labeller("print", lang)
    headers = [label("field", "case", lang), c("closed_at"), c("handler"), c("unit_leader"),
               c("petitioner"), c("verdict"), c("problems")]
    rows: list[list[Cell]] = [
        [r.case, _time(r.closed_at), *(_closure_who(r.signatures[role], lang, names)
                                       for role in CLOSURE_ROLES),
         _closure_verdict(r, lang), "; ".join(label("closure", p.code, lang) for p in r.problems)]
        for r in records]
    notes = [f"  {r.case}: {closure_problem_text(p, lang, names, r.override_reason)}"
             for r in records for p in r.problems]
    meta = [_meta(p("as_of_now"), (prepared or today()).isoformat(), lang)]
    printed = page(None, p("closures"), meta, lang, organization=organization,
                   prepared=prepared)
    return [Sheet(c("records"), c("records"), headers, rows, notes=notes, clip=None,
                  page=printed)]


def closure_record_sheets(record: ClosureRecord, lang: str = "zh",
                          names: Mapping[str, str] | None = None) -> list[Sheet]:
    """One case's closure record: who signed what (by name with the id), when, with which
    key, and whether it counts."""
    c = labeller("closure", lang)
    names = names or {}
    closer = named(record.closed_by, names) if record.closed_by else "—"
    heading = (f"{label('field', 'case', lang)} {record.case}    {c('closed_at')}: "
               f"{_time(record.closed_at)}    {c('closed_by')}: {closer}    "
               f"{c('verdict')}: {_closure_verdict(record, lang)}")
    rows: list[list[Cell]] = []
    for role in CLOSURE_ROLES:
        sig = record.signatures[role]
        rows.append([c(role), named(sig.actor, names), _time(sig.at), sig.key or "—",
                     closure_mark(sig, lang), closure_how(sig, lang)])
    headers = [c("signature"), c("signer"), label("field", "at", lang), c("key"), c("verified"),
               label("field", "details", lang)]
    notes = [f"  - {closure_problem_text(p, lang, names, record.override_reason)}"
             for p in record.problems]
    return [Sheet(record.case, heading, headers, rows, notes=notes, clip=None)]


# ---- verification reasons in the reader's language ------------------------------------------

#: Verification reasons in Chinese (the checkers word them in English, with the facts as
#: values): pattern → template. A reason matching none is shown as the checker wrote it.
REASONS_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), zh) for p, zh in (
    (r"^signature does not verify under the named key$", "签名无法用所署密钥验证"),
    (r"^stored state does not parse$", "存储的内容无法解析"),
    (r"^signed bytes: (?P<x>.+)$", "签名内容无法解析：{x}"),
    (r"^signed bytes say (?P<a>\S+) (?P<t>\S+), the stored columns say (?P<b>\S+) (?P<u>\S+)$",
     "签名内容为 {a}（{t}），存储列却为 {b}（{u}）"),
    (r"^origin (?P<o>.+) is not this ledger's \((?P<l>.+)\): an event of another ledger$",
     "日志名 {o} 不是本台账的（{l}）：其他台账的事件"),
    (r"^business time (?P<b>\S+) is after the recorded time (?P<r>.+) \(beyond the clock "
     r"tolerance\)$", "业务时间 {b} 晚于记录时间 {r}（超出时钟容差）"),
    (r"^init does not name an admin key and a log key$", "初始化事件未载明管理员密钥和日志密钥"),
    (r"^init names one key for both the log and the admin roles$",
     "初始化事件对日志和管理员使用同一密钥"),
    (r"^the ledger's admin key is not the trusted admin key$",
     "台账的管理员密钥不是受信任的管理员密钥"),
    (r"^the ledger's log key is not the trusted log key$", "台账的日志密钥不是受信任的日志密钥"),
    (r"^init is not signed by the admin key it registers$",
     "初始化事件不是由其登记的管理员密钥签名"),
    (r"^init's origin differs from the statement's origin$", "初始化事件的日志名与事件不一致"),
    (r"^sequence jumps from (?P<a>\d+) to (?P<b>\d+) \(events missing or reordered\)$",
     "序号从 {a} 跳到 {b}（事件缺失或顺序被改）"),
    (r"^previous-hash link does not match the stream's previous event$",
     "前一事件哈希链接与本流上一事件不符（哈希链断裂）"),
    (r"^data cannot be judged: (?P<x>.+)$", "数据无法判定：{x}"),
    (r"^data cannot be applied: (?P<x>.+)$", "数据无法应用：{x}"),
    (r"^(?P<a>\S+) is not in the directory at this position$", "{a} 在此日志位置不在人员目录中"),
    (r"^(?P<a>\S+) is not in the directory$", "{a} 不在人员目录中"),
    (r"^(?P<a>\S+) has no role that may (?P<x>\S+)$", "{a} 没有可执行 {x} 的角色"),
    (r"^leaf (?P<i>\d+) at position (?P<p>\d+) was recorded but its event is missing "
     r"\(deleted\)$", "默克尔日志第 {i} 叶（日志位置 {p}）已记录，但其事件缺失（被删除）"),
    (r"^stored at position (?P<p>\d+) \((?P<w>.+)\), which no leaf of the Merkle log covers: "
     r"a row outside the log$",
     "存于日志位置 {p}（{w}），默克尔日志没有覆盖它的叶：日志之外的记录"),
    (r"^position (?P<p>\d+) cannot be a leaf position$", "日志位置 {p} 不可能是叶的位置"),
    (r"^event bytes or position differ from the leaf recorded at write time$",
     "事件内容或位置与写入时记录的叶不符"),
    (r"^event is leaf (?P<a>\d+) but was recorded as leaf (?P<b>\d+)$",
     "事件是第 {a} 叶，记录时却是第 {b} 叶"),
    (r"^the ledger has no checkpoint$", "台账没有检查点"),
    (r"^key (?P<k>\S+) is not registered in the directory$", "密钥 {k} 未在人员目录中登记"),
    (r"^key (?P<k>\S+) belongs to (?P<a>\S+), not (?P<b>\S+)$", "密钥 {k} 属于 {a}，不属于 {b}"),
    (r"^key (?P<k>\S+) was not yet registered at position (?P<p>\d+)$",
     "密钥 {k} 在日志位置 {p} 时尚未登记"),
    (r"^key (?P<k>\S+) was revoked at position (?P<p>\d+)$", "密钥 {k} 已于日志位置 {p} 吊销"),
    (r"^stored checkpoint of size (?P<n>\d+) does not verify: (?P<x>.+)$",
     "大小为 {n} 的已存检查点验证失败：{x}"),
    (r"^stored checkpoint of size (?P<n>\d+): note and columns disagree$",
     "大小为 {n} 的已存检查点：签名注记与存储列不一致"),
    (r"^not covered by a signed checkpoint$", "未被已签名的检查点覆盖"),
))


def reason_text(reason: str, lang: str) -> str:
    """A verification reason (tamper evidence) in ``lang``: the checkers' English sentence,
    or its Chinese wording with the same facts; a sentence without a wording stays as is."""
    if lang != "zh":
        return reason
    for pattern, template in REASONS_ZH:
        found = pattern.match(reason)
        if found:
            return template.format(**found.groupdict())
    return reason


# ---- case history (办理经过): people, not codes ------------------------------------------------

#: Words the history needs that ``projections.labels`` does not hold yet (zh, en).
_WORDS: dict[str, tuple[str, str]] = {
    "history": ("信访案件办理经过", "Case history"),
    "beijing": ("时间均为北京时间", "all times are Beijing time"),
    "business": ("业务时间", "business time"), "recorded": ("记录时间", "recorded"),
    "late": ("补录，晚 {days} 天", "entered {days} days late"),
    "passed": ("通过", "verified"), "failed": ("未通过", "FAILED"),
    "unjudged": ("未判定", "not judged"), "checks": ("检查", "checks"),
    "by": ("操作人", "by"), "content": ("内容", "details"),
    "unjudged_note": ("证据包整体未通过验证，单个事件未作判定",
                      "the bundle as a whole failed, so its events were not judged"),
}

#: Labels of action data fields, and how a value of each is shown: ``actor`` and ``unit``
#: as names with the id, ``time`` in Beijing time, a label kind for codes, ``list``, ``ref``
#: (event references), ``digest`` (a SHA-256, shortened), ``text`` as written.
_DATA_FIELDS: dict[str, tuple[str, str, str]] = {
    "channel": ("渠道", "channel", "channel"), "source": ("来源", "source", "source"),
    "ref": ("来文编号", "reference", "text"), "category": ("内容分类", "category", "category"),
    "petitioner": ("信访人", "petitioner", "actor"), "persons": ("人数", "persons", "text"),
    "summary": ("信访事项", "summary", "text"),
    "repeat_of": ("重复信访，原件", "repeat of", "list"),
    "reception_day": ("局长接待日", "reception day", "bool"),
    "received_by": ("接待领导", "received by", "actor"),
    "received_at": ("接收时间", "received at", "time"),
    "decision": ("决定", "decision", "decision"), "reason": ("理由", "reason", "text"),
    "notice_served_at": ("告知书送达", "notice served", "time"),
    "unit": ("承办单位", "unit", "unit"), "handler": ("承办人", "handler", "actor"),
    "due": ("期限", "due", "text"), "authority": ("督办机关", "authority", "source"),
    "leader": ("包案领导", "leader", "actor"), "note": ("内容", "note", "text"),
    "follow_up": ("跟踪回访", "follow-up", "bool"), "days": ("延期天数", "days", "text"),
    "notified_at": ("告知信访人", "petitioner told", "time"),
    "outcome": ("答复意见", "outcome", "outcome"),
    "resolution": ("化解方式", "resolution", "resolution"),
    "served_at": ("送达时间", "served", "time"), "text": ("答复内容", "text", "text"),
    "evidence": ("证据", "evidence", "list"), "opinion": ("信访人意见", "opinion", "opinion"),
    "document_sha256": ("文件摘要", "document digest", "digest"),
    "override_reason": ("强行办结理由", "override reason", "text"),
    "level": ("层级", "level", "level"), "start": ("开始", "start", "time"),
    "end": ("结束", "end", "time"), "actor": ("责任人", "responsible", "actor"),
    "fault": ("过错", "fault", "trigger"), "measures": ("处理措施", "measures", "text"),
    "name": ("名称", "name", "text"), "parent": ("上级单位", "parent", "unit"),
    "roles": ("角色", "roles", "roles"), "keyless": ("无密钥", "keyless", "bool"),
    "key": ("密钥", "key", "text"), "ground": ("不予受理情形", "ground", "ground"),
    "responsibility": ("责任类型", "responsibility", "responsibility"),
}
#: Fields whose meaning depends on the action.
_DATA_FIELDS_BY_ACTION: dict[tuple[str, str], tuple[str, str, str]] = {
    ("supervise", "form"): ("督办形式", "form", "supervision_form"),
    ("petitioner_sign", "form"): ("签字方式", "form", "form"),
    ("supervise", "due"): ("回告期限", "report-back due", "text"),
    ("assign", "due"): ("办理期限", "due", "text"),
    ("progress", "note"): ("进展", "progress", "text"),
    ("remind", "note"): ("催办意见", "note", "text"),
    ("report_back", "text"): ("回告内容", "report", "text"),
    ("reverse_check_finding", "evidence"): ("证据事件", "evidence events", "refs"),
    ("reverse_check_open", "reason"): ("启动理由", "reason", "text"),
    ("reopen", "reason"): ("重新办理理由", "reason", "text"),
    ("extend", "reason"): ("延期理由", "reason", "text"),
    ("actor.add", "name"): ("姓名", "name", "text"),
    ("actor.revoke_key", "reason"): ("吊销理由", "reason", "text"),
    ("reverse_check_conclude", "measures"): ("处理措施", "measures", "measure"),
    ("reverse_check_conclude", "note"): ("说明", "note", "text"),
}
#: The order fields are shown in (the order a clerk reads a form in); others follow.
_ORDER = {key: n for n, key in enumerate((
    "channel", "source", "ref", "category", "petitioner", "persons", "repeat_of",
    "reception_day", "received_by", "received_at", "summary", "decision", "reason",
    "notice_served_at", "unit", "handler", "authority", "form", "due", "leader", "days",
    "notified_at", "outcome", "resolution", "served_at", "text", "opinion", "document_sha256",
    "evidence", "note", "follow_up", "override_reason", "level", "start", "end", "actor",
    "ground", "fault", "responsibility", "measures", "name", "parent", "roles", "keyless",
    "key"))}
#: Fields long enough to get a line of their own in the terminal history.
_OWN_LINE = frozenset({"summary", "text", "note", "evidence", "reason", "override_reason",
                       "measures"})


def _word(key: str, lang: str, **facts: Any) -> str:
    zh, en = _WORDS[key]
    return (zh if lang == "zh" else en).format(**facts)


def beijing_time(moment: str | None) -> str:
    """An ISO time as Beijing time to the minute (recorded times are stored in UTC)."""
    if not moment:
        return "—"
    try:
        return datetime.fromisoformat(moment).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    except (ValueError, TypeError, OverflowError):
        return str(moment)[:16].replace("T", " ")


def named(code: str | None, names: Mapping[str, str]) -> str:
    """A person or unit as people know them: the name, with the id in parentheses."""
    if not code:
        return "—"
    return f"{names[code]} ({code})" if names.get(code) else str(code)


def _field_value(how: str, value: Any, lang: str, names: Mapping[str, str],
                 units: Mapping[str, str]) -> str:
    sep = "、" if lang == "zh" else ", "
    if how == "actor":
        return named(str(value), names)
    if how == "unit":
        return named(str(value), units)
    if how == "time":
        return beijing_time(str(value))
    if how == "bool":
        return label("field", "yes" if value else "no", lang)
    if how == "digest":
        return f"{str(value)[:16]}…"
    if how == "roles" and isinstance(value, list):
        return sep.join(label("role", str(v), lang) for v in value)
    if how in ("list", "refs") and isinstance(value, list):
        return sep.join(f"{v.get('stream')}#{v.get('seq')}" if isinstance(v, dict) else str(v)
                        for v in value)
    if how in ("text", "list", "refs", "roles"):
        return str(value)
    return label(how, str(value), lang)   # a code of that label kind


def event_details(action: str, data: Mapping[str, Any], lang: str,
                  names: Mapping[str, str], units: Mapping[str, str]
                  ) -> list[tuple[str, str, str]]:
    """An event's content in people's terms: (field, label, shown value) for every field
    given, known fields first in the schema's order; people and units by name with the id,
    times in Beijing time, codes as labels. Unknown fields are shown as they are."""
    out = []
    for key, value in sorted(data.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))):
        if value in (None, "", [], False) and key != "persons":
            continue
        spec = _DATA_FIELDS_BY_ACTION.get((action, key)) or _DATA_FIELDS.get(key)
        if spec is None:
            out.append((key, key, value if isinstance(value, str) else
                        json.dumps(value, ensure_ascii=False, sort_keys=True)))
            continue
        zh, en, how = spec
        if key == "persons" and value == 1:
            continue
        out.append((key, zh if lang == "zh" else en,
                    _field_value(how, value, lang, names, units)))
    return out


def _verdict(event: Any, lang: str, judged: bool, symbols: bool) -> str:
    checks = sorted({c for c, _ in event.failures})
    if checks:
        word = f"{_word('failed', lang)}（{_word('checks', lang)} " \
            f"{','.join(str(c) for c in checks)}）" if lang == "zh" else \
            f"{_word('failed', lang)} ({_word('checks', lang)} " \
            f"{','.join(str(c) for c in checks)})"
        return f"✗ {word}" if symbols else word
    if not judged:
        return f"? {_word('unjudged', lang)}" if symbols else _word("unjudged", lang)
    return f"✓ {_word('passed', lang)}" if symbols else _word("passed", lang)


def _lag_text(seconds: int | None, lang: str) -> str:
    """The gap between business and recorded time, when over a day (a late entry, 补录)."""
    if seconds is None or seconds < 86400:
        return ""
    text = _word("late", lang, days=seconds // 86400)
    return f"（{text}）" if lang == "zh" else f" ({text})"


def _history_head(case: str, status: str | None, due: Mapping[str, Any],
                  lang: str) -> list[str]:
    f = labeller("field", lang)
    lines = [f"{f('case')} {case}    {f('status')}: {label('status', status, lang)}"]
    deadlines = [f"{label('deadline', k, lang)} {v.isoformat()}" for k, v in due.items()
                 if v is not None]
    if deadlines:
        lines.append(f"{f('deadlines')}: " + " · ".join(deadlines))
    return lines


def history_text(case: str, status: str | None, due: Mapping[str, Any], events: Sequence[Any],
                 lang: str, names: Mapping[str, str], units: Mapping[str, str], *,
                 judged: bool = True, width: int = TEXT_WIDTH) -> list[str]:
    """A case's events as a readable history for a terminal, at most ``width`` columns: per
    event its number, action and verdict, business and recorded time (Beijing time, the gap
    when it was entered late), who (name, id, role, unit), and its content (summary, reply
    text, evidence, findings) with people and units by name; then every failed check."""
    zh = lang == "zh"
    colon = "：" if zh else ": "
    lines = [*_history_head(case, status, due, lang), f"（{_word('beijing', lang)}）" if zh
             else f"({_word('beijing', lang)})"]
    indent = "    "

    def add(text: str, first: str = indent, rest: str = indent + "  ") -> None:
        for i, line in enumerate(wrap_text(text, width - display_width(first))):
            lines.append((first if i == 0 else rest) + line)

    for e in events:
        lines.append("")
        head = (f"#{e.seq}  {label('action', e.type, lang)}  {_verdict(e, lang, judged, True)}"
                f"    {_word('business', lang)} {beijing_time(e.at)}    "
                f"{_word('recorded', lang)} {beijing_time(e.recorded_at)}"
                f"{_lag_text(e.recorded_lag_seconds, lang)}")
        add(head, "", indent)
        who = [named(e.actor, names)]
        if e.role:
            who.append(label("role", e.role, lang))
        if e.unit:
            who.append(named(e.unit, units))
        add(f"{_word('by', lang)}{colon}" + ("，" if zh else ", ").join(who))
        details = event_details(e.type, e.data or {}, lang, names, units)
        short = [f"{name}{colon}{value}" for key, name, value in details if key not in _OWN_LINE]
        if short:
            add(("；" if zh else "; ").join(short))
        for key, name, value in details:
            if key in _OWN_LINE:
                add(f"{name}{colon}{value}")
        f = labeller("field", lang)
        for number, reason in e.failures:
            add(f"✗ {f('check')} {number} {_check_title(number, lang)}{colon}"
                f"{reason_text(reason, lang)}")
    if not judged:
        lines += ["", f"?{colon}{_word('unjudged_note', lang)}"]
    return lines


def _check_title(number: int, lang: str) -> str:
    try:
        return Check(number).label(lang)
    except ValueError:
        return str(number)


HISTORY_COLUMNS = ("seq", "business", "recorded", "type", "by", "role", "unit", "content",
                   "verdict")


def history_sheets(case: str, status: str | None, due: Mapping[str, Any],
                   events: Sequence[Any], lang: str, names: Mapping[str, str],
                   units: Mapping[str, str], *, judged: bool = True,
                   organization: str | None = None, prepared: date | None = None
                   ) -> list[Sheet]:
    """A case's history as one printable sheet: one row per event, the same people, times
    and content as the terminal history (:func:`history_text`)."""
    f = labeller("field", lang)
    zh = lang == "zh"
    colon = "：" if zh else ": "
    headers = [f("seq"), _word("business", lang), _word("recorded", lang), f("type"),
               f("actor"), f("role"), f("unit"), f("details"), f("verdict")]
    rows: list[list[Cell]] = []
    flagged = set()
    for i, e in enumerate(events):
        details = event_details(e.type, e.data or {}, lang, names, units)
        content = "\n".join(f"{name}{colon}{value}" for _, name, value in details)
        failures = [f"{f('check')} {n} {_check_title(n, lang)}{colon}{reason_text(reason, lang)}"
                    for n, reason in e.failures]
        rows.append([e.seq, beijing_time(e.at),
                     beijing_time(e.recorded_at) + _lag_text(e.recorded_lag_seconds, lang),
                     label("action", e.type, lang), named(e.actor, names),
                     label("role", e.role, lang) if e.role else None,
                     named(e.unit, units) if e.unit else None,
                     "\n".join([content, *failures]).strip() or None,
                     _verdict(e, lang, judged, False)])
        if e.failures:
            flagged.add(i)
    head = _history_head(case, status, due, lang)
    meta = [*head, _word("beijing", lang)]
    printed = page(None, _word("history", lang), meta, lang, organization=organization,
                   prepared=prepared)
    return [Sheet(case, head[0], headers, rows, frozenset({0}), frozenset(flagged),
                  page=printed)]
