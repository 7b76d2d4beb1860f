"""Write report sheets as CSV or XLSX files: the file writers behind the CLI's one output
interface (``cli/output.py`` registers them beside its text and JSON writers; the print-ready
PDF with the same layout is ``projections.pdf``, taking the same sheets).

CSV is UTF-8 with a byte-order mark, so spreadsheet programs open the Chinese labels correctly;
each sheet is a title line, a header row and its rows, separated by an empty line. XLSX has one
print-ready worksheet per sheet (its ``Page``: heading, unit and period lines, sign-off line,
A4 landscape, repeated header rows, page-numbered footer), real dates and numbers, ratios as
the exact quotient formatted as a percentage, totals rows bold, overdue rows highlighted.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from ledger.errors import EnvironmentProblem

from .sheets import Cell, Page, Ratio, Sheet, cell_text, display_width, wrap_balanced

CSV_ENCODING = "utf-8-sig"


def write_csv(sheets: Sequence[Sheet], handle: IO[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    for n, sheet in enumerate(sheets):
        if n:
            writer.writerow([])
        writer.writerow([sheet.title])
        writer.writerow(sheet.headers)
        for row in sheet.rows:
            writer.writerow([cell_text(c) for c in row])
        for note in sheet.notes:
            writer.writerow([note])


def write_xlsx(sheets: Sequence[Sheet], path: str | Path,
               width: Callable[[str], int] = display_width) -> None:
    """One print-ready worksheet per sheet, laid out from the sheet's own ``page``, header
    rows, totals and column widths (``width`` measures text: CJK characters count double):

    heading (merged, large) · meta lines (unit, period, as-of) · [group header row] · header
    row · rows (totals rows bold) · notes · the sign-off line (制表人/审核人/制表日期). A4
    landscape, one page wide, header rows repeated on every page (tall enough for their
    wrapped text), panes frozen below them, the footer ``第 &P 页 共 &N 页``.
    """
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError

    book = xlsxwriter.Workbook(str(path))
    formats = _Formats(book)
    for sheet in sheets:
        ws = book.add_worksheet(_sheet_name(sheet.name, book))
        _write_sheet(ws, sheet, formats, width)
    try:
        book.close()
    except (FileCreateError, OSError) as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc}",
                                 "Check that the directory exists and is writable.") from None


def _write_sheet(ws: Any, sheet: Sheet, formats: _Formats, width: Callable[[str], int]) -> None:
    last = max(len(sheet.headers) - 1, 0)
    page = sheet.page or Page(sheet.title)

    def line(row: int, text: str, kind: str) -> None:
        if last:
            ws.merge_range(row, 0, row, last, text, formats.get(kind))
        else:
            ws.write_string(row, 0, text, formats.get(kind))

    line(0, page.heading, "heading")
    ws.set_row(0, 24)
    row = 1
    for text in page.meta:
        line(row, text, "meta")
        row += 1
    header_top = row
    for cells in sheet.header_rows():
        col = 0
        for text, span in cells:
            if span > 1:
                ws.merge_range(row, col, row, col + span - 1, text, formats.get("header"))
            else:
                ws.write_string(row, col, text, formats.get("header"))
            col += span
        row += 1
    header_end = row - 1
    widths = sheet.column_widths(width)
    for k, cells in enumerate(sheet.header_rows()):
        # tall enough for headers wrapped in their columns (Excel does not grow a row for
        # merged or wrapped cells by itself when the file is printed unopened)
        col, lines = 0, 1
        for text, span in cells:
            room = sum(widths[col:col + span]) + 2 * (span - 1)
            lines = max(lines, len(wrap_balanced(text, room, width)))
            col += span
        ws.set_row(header_top + k, 15 * lines + 3)
    for i, values in enumerate(sheet.rows):
        flag, total = i in sheet.flagged, i in sheet.totals
        for j, value in enumerate(values):
            _write(ws, row, j, value, formats, flag, total)
        row += 1
    if sheet.rows and not sheet.totals and not sheet.groups:
        ws.autofilter(header_end, 0, row - 1, last)
    row += 1
    for note in sheet.notes:
        ws.write_string(row, 0, note, formats.get("note"))
        row += 1
    if page.signoff:
        row += 1
        step = max(1, (last + 1) // len(page.signoff))
        for k, text in enumerate(page.signoff):
            ws.write_string(row, min(k * step, last), text, formats.get("signoff"))
    for j, chars in enumerate(widths):
        ws.set_column(j, j, chars + 2)
    ws.freeze_panes(header_end + 1, 0)
    ws.repeat_rows(header_top, header_end)
    if page.landscape:
        ws.set_landscape()
    ws.set_paper(PAPER[page.paper])
    ws.fit_to_pages(1, 0)      # one page wide, as many pages tall as needed
    ws.center_horizontally()
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.7)
    if page.footer:
        ws.set_footer(f"&C{page.footer}")


#: xlsxwriter paper codes (``set_paper``).
PAPER = {"A4": 9, "A3": 8}


def _sheet_name(name: str, book: Any) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\ , unique."""
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:31]
    taken = {ws.get_name() for ws in book.worksheets()}
    candidate, n = clean, 2
    while candidate in taken:
        candidate, n = f"{clean[:28]}-{n}", n + 1
    return candidate


class _Formats:
    """xlsxwriter formats, made once per (kind, highlighted)."""

    CELL = {"border": 1, "valign": "top"}
    SPECS: dict[str, dict[str, Any]] = {
        "heading": {"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"},
        "meta": {"align": "left"},
        "header": {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True,
                   "align": "center", "valign": "vcenter"},
        "note": {"italic": True, "font_color": "#595959"}, "signoff": {},
        "text": {**CELL, "text_wrap": True}, "int": CELL,
        "date": {**CELL, "num_format": "yyyy-mm-dd"},
        "ratio": {**CELL, "num_format": "0.0%"},
    }

    def __init__(self, book: Any) -> None:
        self.book = book
        self.cache: dict[tuple[str, bool, bool], Any] = {}

    def get(self, kind: str, flagged: bool = False, total: bool = False) -> Any:
        key = (kind, flagged, total)
        if key not in self.cache:
            spec = dict(self.SPECS[kind])
            if flagged:
                spec.update({"bg_color": "#FFC7CE", "font_color": "#9C0006"})
            if total:
                spec.update({"bold": True, "top": 2, "bg_color": "#F2F2F2"})
            self.cache[key] = self.book.add_format(spec)
        return self.cache[key]


def _write(ws: Any, row: int, col: int, value: Cell, formats: _Formats, flagged: bool,
           total: bool = False) -> None:
    def fmt(kind: str) -> Any:
        return formats.get(kind, flagged, total)

    if isinstance(value, Ratio):
        # the exact quotient of the counts; the cell's 0.0% rounds it once, for display
        value = value.value
    if value is None:
        ws.write_blank(row, col, None, fmt("text"))
    elif isinstance(value, float):
        ws.write_number(row, col, value, fmt("ratio"))
    elif isinstance(value, int):
        ws.write_number(row, col, value, fmt("int"))
    elif isinstance(value, date):
        ws.write_datetime(row, col, datetime.combine(value, time()), fmt("date"))
    else:
        ws.write_string(row, col, value, fmt("text"))
