"""Reading report files back in tests."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any


def csv_blocks(text: str) -> list[list[list[str]]]:
    """The tables of a multi-table CSV report (tables are separated by an empty row)."""
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


@dataclass
class Printed:
    """One print-ready worksheet: the heading, the lines above the header rows, the header
    rows (the rows each printed page repeats), the data rows and the sign-off cells."""

    heading: Any
    meta: list[Any]
    headers: list[list[Any]]
    rows: list[tuple[Any, ...]]
    signoff: list[str]
    first_row: int   # 1-based worksheet row of rows[0]


def printed(ws: Any) -> Printed:
    """Read a worksheet laid out by projections.export: the header rows are found from its
    print titles (``print_title_rows``), the data rows run to the first empty row."""
    titles = re.fullmatch(r"\$?(\d+):\$?(\d+)", ws.print_title_rows or "")
    assert titles, f"no repeated header rows in {ws.title}"
    top, end = int(titles[1]), int(titles[2])
    values = [tuple(c.value for c in row) for row in ws.iter_rows()]
    rows: list[tuple[Any, ...]] = []
    for row in values[end:]:
        if all(v is None for v in row):
            break
        rows.append(row)
    signoff = [v for row in values for v in row
               if isinstance(v, str) and re.match(r"(制表人|审核人|制表日期|Prepared by|"
                                                  r"Reviewed by|Date)", v)]
    return Printed(values[0][0], [r[0] for r in values[1:top - 1]],
                   [list(r) for r in values[top - 1:end]], rows, signoff, end + 1)
