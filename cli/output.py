"""The one output interface: every command that prints returns a ``Report``; ``render`` writes it.

A registry of formats (``FORMATS``), one writer each: ``text`` (aligned tables and verdict lines
for people at a terminal), ``json`` (the document whose keys the CLI contract fixes), ``csv``
and ``xlsx`` (``projections.export``'s writers, from the same sheets as the text). A command
declares the formats it offers in one place, ``@renders(*RESULT)`` or ``@renders(*REPORT)``,
which makes its ``--format`` (and ``--out``) option, renders what it returns and then exits
with the report's exit code; tests/test_output_formats.py runs every advertised format of
every command, found in the click tree. The print-ready PDF (issue 17) is one more ``Format``
(file-only, from the sheets) added to ``FORMATS`` and to ``REPORT``.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import click

from ledger import Check, EnvironmentProblem, InputError
from projections import (
    CSV_ENCODING,
    Report,
    Sheet,
    cell_text,
    display_width,
    write_csv,
    write_xlsx,
)

from .context import handle_errors

# ---- text helpers -----------------------------------------------------------------------------


def pad(text: str, width: int, align: str = "<") -> str:
    gap = max(0, width - display_width(text))
    return (" " * gap + text) if align == ">" else (text + " " * gap)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
          align: Sequence[str] | None = None) -> str:
    """An aligned table that respects CJK double-width characters."""
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


def clip(text: str, width: int | None) -> str:
    if width is None or display_width(text) <= width:
        return text
    while display_width(text) > width - 1:
        text = text[:-1]
    return text + "…"


def sheets_text(sheets: Sequence[Sheet]) -> str:
    """Sheets as aligned tables under their titles; flagged (overdue) rows marked ⚠ and red
    (colours are dropped when the output is no terminal)."""
    lines: list[str] = []
    for n, sheet in enumerate(sheets):
        if n:
            lines.append("")
        lines.append(sheet.title)
        rows = [[clip(cell_text(c, "—"), sheet.clip) for c in row] for row in sheet.rows]
        headers = list(sheet.headers)
        if sheet.flagged:
            headers.append("")
            for i, row in enumerate(rows):
                row.append("⚠" if i in sheet.flagged else "")
        align = [">" if j in sheet.numeric else "<" for j in range(len(headers))]
        for i, line in enumerate(table(headers, rows, align).split("\n")):
            flagged = i >= 2 and i - 2 in sheet.flagged
            lines.append(click.style(line, fg="red") if flagged else line)
        lines.extend(sheet.notes)
    return "\n".join(lines)


def failure_lines(failures: Sequence[Any], names: dict[int, str],
                  where: Callable[[Any], str], limit: int = 50, lang: str = "en") -> list[str]:
    """One line per verification failure (check number, its title in ``lang``, where, why),
    capped. ``names`` gives the titles of numbers that are no ``Check`` (bundle checks)."""
    zh = lang == "zh"

    def title(number: int) -> str:
        try:
            return Check(number).label(lang)
        except ValueError:
            return names.get(number, str(number))

    lines = [(f"  检查 {failure.check}（{title(failure.check)}）于 {where(failure)}："
              if zh else f"  check {failure.check} ({title(failure.check)}) at {where(failure)}: ")
             + str(failure.reason) for failure in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"  … 另有 {len(failures) - limit} 处（用 --format json 查看全部）" if zh
                     else f"  … and {len(failures) - limit} more (use --format json)")
    return lines


#: The verdict word of verify and verify-bundle, by language.
VERDICT = {("zh", True): "通过", ("zh", False): "未通过", ("en", True): "PASS",
           ("en", False): "FAIL"}


def json_text(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, default=str)


# ---- the formats ------------------------------------------------------------------------------

@contextmanager
def _destination(out: str | None, encoding: str) -> Iterator[IO[str] | None]:
    """The file ``--out`` names (None: standard output)."""
    if out is None:
        yield None
        return
    try:
        handle = open(out, "w", encoding=encoding, newline="")  # noqa: SIM115
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {out}: {exc.strerror or exc}",
                                 "Check that the directory exists and is writable.") from None
    with handle:
        yield handle


def _write_text(report: Report, out: str | None) -> None:
    text = report.text if report.text is not None else sheets_text(report.sheets)
    with _destination(out, "utf-8") as handle:
        click.echo(text, file=handle)


def _write_json(report: Report, out: str | None) -> None:
    with _destination(out, "utf-8") as handle:
        click.echo(json_text(report.document), file=handle)


def _write_csv(report: Report, out: str | None) -> None:
    # A file gets a byte-order mark so that spreadsheet programs read the Chinese labels.
    with _destination(out, CSV_ENCODING) as handle:
        write_csv(report.sheets, handle if handle is not None else sys.stdout)


def _write_xlsx(report: Report, out: str | None) -> None:
    assert out is not None   # file_only: checked before the command ran
    write_xlsx(report.sheets, out)
    click.echo(f"wrote {out}", err=True)


@dataclass(frozen=True)
class Format:
    name: str
    write: Callable[[Report, str | None], None]
    from_sheets: bool = False   # lays out the report's sheets (a report without any cannot)
    file_only: bool = False     # binary: written to the --out file only
    suffix: str = ""            # the usual file name ending, for help and examples


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("text", _write_text, suffix=".txt"),
    Format("json", _write_json, suffix=".json"),
    Format("csv", _write_csv, from_sheets=True, suffix=".csv"),
    Format("xlsx", _write_xlsx, from_sheets=True, file_only=True, suffix=".xlsx"),
)}

#: What a command offers, by kind (the one place --format choices come from).
RESULT = ("text", "json")                    # receipts, verdicts, listings, summaries
REPORT = ("text", "json", "csv", "xlsx")     # the tables an office files (issue 17 adds pdf)


def check_destination(fmt: str, out: str | None) -> None:
    """Refuse a file-only format without --out before any work is done."""
    if FORMATS[fmt].file_only and not out:
        raise InputError(f"--format {fmt} writes a file",
                         f"Give --out FILE, e.g. report{FORMATS[fmt].suffix}.")


def render(report: Report, fmt: str, out: str | None = None) -> None:
    """Write ``report`` in format ``fmt`` to ``out`` (None: standard output)."""
    spec = FORMATS[fmt]
    check_destination(fmt, out)
    if spec.from_sheets and not report.sheets:
        raise TypeError(f"{fmt} needs sheets, and this report has none")   # a programming error
    spec.write(report, out)


class FormatOption(click.Option):
    """The --format option made by ``renders``: the test of every format finds it by type."""

    def __init__(self, formats: Sequence[str]) -> None:
        super().__init__(["--format", "fmt"], type=click.Choice(list(formats)),
                         default=formats[0], show_default=True, help="Output format.")
        self.formats = tuple(formats)


def renders(*formats: str) -> Callable[[Callable[..., Report]], Callable[..., None]]:
    """Make a command that returns a ``Report`` print it in one of ``formats``.

    Adds ``--format`` (the first format is the default) and, when a format lays out sheets,
    ``--out FILE``; passes ``fmt`` on to the command if it takes that parameter (to show a
    progress bar only to people, say); renders the report; exits with its exit code. Errors
    are handled as by ``handle_errors``.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown output formats {unknown}; known: {sorted(FORMATS)}")
    files = any(FORMATS[f].from_sheets for f in formats)

    def decorate(func: Callable[..., Report]) -> Callable[..., None]:
        wants_fmt = "fmt" in inspect.signature(func).parameters

        @functools.wraps(func)
        def command(*args: Any, fmt: str, out: str | None = None, **kwargs: Any) -> None:
            check_destination(fmt, out)
            report = func(*args, **kwargs, **({"fmt": fmt} if wants_fmt else {}))
            render(report, fmt, out)
            if report.exit_code:
                sys.exit(report.exit_code)

        wrapped: Any = handle_errors(command)
        if files:
            needs = [f for f in formats if FORMATS[f].file_only]
            wrapped = click.option(
                "--out", "out", type=click.Path(dir_okay=False), metavar="FILE",
                help="Write to FILE (default: standard output"
                     + (f"; required for {', '.join(needs)}" if needs else "") + ").")(wrapped)
        click_params = wrapped.__dict__.setdefault("__click_params__", [])
        click_params.append(FormatOption(formats))
        return wrapped   # type: ignore[no-any-return]

    return decorate


def echo_json(document: Any) -> None:
    """JSON on standard output, for commands whose only output is a document (``schema``)."""
    click.echo(json_text(document))
