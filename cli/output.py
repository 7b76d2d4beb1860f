"""Small text-output helpers: aligned tables that respect CJK double-width characters."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import click


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(text: str, width: int, align: str = "<") -> str:
    gap = max(0, width - display_width(text))
    return (" " * gap + text) if align == ">" else (text + " " * gap)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
          align: Sequence[str] | None = None) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    align = align or ["<"] * len(headers)
    lines = ["  ".join(pad(h, widths[i], align[i]) for i, h in enumerate(headers)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for row in cells:
        lines.append("  ".join(pad(c, widths[i], align[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)


def echo_failures(failures: Sequence[Any], names: dict[int, str],
                  where: Callable[[Any], str], limit: int = 50) -> None:
    """One line per verification failure (check number, its name, where, why), capped."""
    for failure in failures[:limit]:
        click.echo(f"  check {failure.check} ({names[failure.check]}) at {where(failure)}: "
                   f"{failure.reason}")
    if len(failures) > limit:
        click.echo(f"  … and {len(failures) - limit} more (use --format json)")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def is_tty() -> bool:
    return sys.stderr.isatty()
