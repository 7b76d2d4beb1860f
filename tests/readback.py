"""Reading report files back in tests."""

from __future__ import annotations

import csv
import io


def csv_blocks(text: str) -> list[list[list[str]]]:
    """The tables of a multi-table CSV report (tables are separated by an empty row)."""
    blocks: list[list[list[str]]] = [[]]
    for row in csv.reader(io.StringIO(text)):
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks
