"""Write report sheets as CSV or XLSX files: the file writers behind the CLI's one output
interface (``cli/output.py`` registers them beside its text and JSON writers; the print-ready
PDF of issue 17 is one more writer here, taking the same sheets).

CSV is UTF-8 with a byte-order mark, so spreadsheet programs open the Chinese labels correctly;
each sheet is a title line, a header row and its rows, separated by an empty line. XLSX has one
worksheet per sheet, real dates and numbers, percentages formatted, overdue rows highlighted.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from ledger.errors import EnvironmentProblem

from .sheets import Cell, Sheet, cell_text, display_width

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
    """``width`` measures text for column widths (CJK characters count double)."""
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError

    book = xlsxwriter.Workbook(str(path))
    formats = _Formats(book)
    for sheet in sheets:
        ws = book.add_worksheet(_sheet_name(sheet.name, book))
        ws.write(0, 0, sheet.title, formats.get("title"))
        ws.write_row(1, 0, sheet.headers, formats.get("header"))
        widths = [width(h) for h in sheet.headers]
        for i, row in enumerate(sheet.rows):
            flag = i in sheet.flagged
            for j, value in enumerate(row):
                _write(ws, i + 2, j, value, formats, flag)
                widths[j] = max(widths[j], width(cell_text(value)))
        for k, note in enumerate(sheet.notes):
            ws.write(len(sheet.rows) + 3 + k, 0, note, formats.get("note"))
        for j, chars in enumerate(widths):
            ws.set_column(j, j, min(chars + 2, 60))
        ws.freeze_panes(2, 0)
        if sheet.rows:
            ws.autofilter(1, 0, len(sheet.rows) + 1, len(sheet.headers) - 1)
    try:
        book.close()
    except (FileCreateError, OSError) as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc}",
                                 "Check that the directory exists and is writable.") from None


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

    SPECS: dict[str, dict[str, Any]] = {
        "title": {"bold": True, "font_size": 13}, "header": {"bold": True, "bg_color": "#D9E1F2",
                                                              "border": 1, "text_wrap": True},
        "note": {"italic": True, "font_color": "#595959"}, "text": {}, "int": {},
        "date": {"num_format": "yyyy-mm-dd"}, "ratio": {"num_format": "0.0%"},
    }

    def __init__(self, book: Any) -> None:
        self.book = book
        self.cache: dict[tuple[str, bool], Any] = {}

    def get(self, kind: str, flagged: bool = False) -> Any:
        key = (kind, flagged)
        if key not in self.cache:
            spec = dict(self.SPECS[kind])
            if flagged:
                spec.update({"bg_color": "#FFC7CE", "font_color": "#9C0006"})
            self.cache[key] = self.book.add_format(spec)
        return self.cache[key]


def _write(ws: Any, row: int, col: int, value: Cell, formats: _Formats, flagged: bool) -> None:
    if value is None:
        ws.write_blank(row, col, None, formats.get("text", flagged))
    elif isinstance(value, float):
        ws.write_number(row, col, value, formats.get("ratio", flagged))
    elif isinstance(value, int):
        ws.write_number(row, col, value, formats.get("int", flagged))
    elif isinstance(value, date):
        ws.write_datetime(row, col, datetime.combine(value, time()), formats.get("date", flagged))
    else:
        ws.write_string(row, col, value, formats.get("text", flagged))
