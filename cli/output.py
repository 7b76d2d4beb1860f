"""The one output interface: every command that prints returns a ``Report``; ``render`` writes it.

A registry of formats (``FORMATS``), one writer each: ``text`` (aligned tables and verdict lines
for people at a terminal), ``json`` (the document whose keys the CLI contract fixes), ``csv``
``xlsx`` and ``pdf`` (``projections``' file writers, from the same sheets as the text). A command
declares the formats it offers in one place, ``@renders(*RESULT)`` or ``@renders(*REPORT)``,
which makes its ``--format`` (and ``--out``) option, renders what it returns and then exits
with the report's exit code; tests/test_output_formats.py runs every advertised format of
every command, found in the click tree. ``xlsx`` and ``pdf`` are print-ready (issue 17: the
same page layout, from the same sheets) and go to files only. Text keeps within 120 columns
(``table_lines``: narrower columns whose cells wrap, never cut).
"""

from __future__ import annotations

import functools
import inspect
import json
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import click

from ledger import Check, EnvironmentProblem, InputError
from projections import (
    CSV_ENCODING,
    TEXT_WIDTH,
    Report,
    Sheet,
    cell_text,
    display_width,
    font_advice,
    reason_text,
    wrap_balanced,
    wrap_text,
    write_csv,
    write_pdf,
    write_xlsx,
)

from .context import handle_errors

# ---- text helpers -----------------------------------------------------------------------------


def pad(text: str, width: int, align: str = "<") -> str:
    gap = max(0, width - display_width(text))
    return (" " * gap + text) if align == ">" else (text + " " * gap)


def text_width() -> int:
    """Columns for text output: the terminal's, at most ``TEXT_WIDTH`` (120); 120 when the
    output is no terminal (a file, a pipe)."""
    if sys.stdout.isatty():
        return max(60, min(TEXT_WIDTH, shutil.get_terminal_size((TEXT_WIDTH, 24)).columns))
    return TEXT_WIDTH


def _column_limits(header: str, cells: Sequence[str], numeric: bool) -> tuple[int, int]:
    """(natural, least) display columns of a column: its widest cell or header unwrapped,
    and the least it can take: figures whole, words of up to 16 columns whole, at least
    8 for text, a header on up to three lines."""
    widest = max((display_width(c) for c in cells), default=0)
    natural = max(widest, display_width(header))
    third = -(-display_width(header) // 3)
    header_least = max(4, third + third % 2)
    if numeric:
        return natural, max(widest, header_least)
    word = max((display_width(w) for c in cells for w in c.split()), default=0)
    return natural, min(natural, max(8, header_least, min(word, 16)))


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                align: Sequence[str] | None = None, width: int | None = None,
                keys: int = 1) -> list[tuple[str, int | None]]:
    """An aligned table that respects CJK double-width characters and fits ``width``
    display columns (default 120): columns narrow and their cells wrap onto more lines
    (never cut); a table too wide even then continues below, its first ``keys`` columns
    repeated. Returns (line, row index or None for header and rule lines)."""
    width = width or TEXT_WIDTH
    cells = [[str(c) for c in row] for row in rows]
    align = list(align or ["<"] * len(headers))
    limits = [_column_limits(h, [row[j] for row in cells if j < len(row)], align[j] == ">")
              for j, h in enumerate(headers)]
    widths = [natural for natural, _ in limits]

    def total(columns: Sequence[int]) -> int:
        return sum(widths[j] for j in columns) + 2 * max(0, len(columns) - 1)

    everything = list(range(len(headers)))
    while total(everything) > width:
        slack = [(widths[j], widths[j] - limits[j][1], j) for j in everything
                 if widths[j] > limits[j][1]]
        if not slack:
            break
        widths[max(slack)[2]] -= 1    # the widest column that can still narrow
    head = list(range(min(keys, len(headers))))
    parts: list[list[int]] = []
    current = list(head)
    for j in everything[len(head):]:
        if len(current) > len(head) and total([*current, j]) > width:
            parts.append(current)
            current = list(head)
        current.append(j)
    parts.append(current)

    out: list[tuple[str, int | None]] = []

    def physical(values: Sequence[str], index: int | None, columns: Sequence[int]) -> None:
        wrap = wrap_balanced if index is None else wrap_text   # headers: even lines
        wrapped = [wrap(values[j] if j < len(values) else "", widths[j]) for j in columns]
        for i in range(max(len(w) for w in wrapped)):
            line = "  ".join(pad(w[i] if i < len(w) else "", widths[j], align[j])
                             for w, j in zip(wrapped, columns, strict=True))
            out.append((line.rstrip(), index))

    for n, columns in enumerate(parts):
        if n:
            out.append(("", None))
        physical(list(headers), None, columns)
        out.append(("  ".join("-" * widths[j] for j in columns), None))
        for index, row in enumerate(cells):
            physical(row, index, columns)
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
          align: Sequence[str] | None = None, width: int | None = None) -> str:
    """An aligned table within ``width`` columns (``table_lines``), as text."""
    return "\n".join(line for line, _ in table_lines(headers, rows, align,
                                                     width or text_width()))


def sheets_text(sheets: Sequence[Sheet], width: int | None = None) -> str:
    """Sheets as aligned tables under their titles, within ``width`` columns (wrapping, never
    cutting); flagged (overdue) rows marked ⚠ and red (colours are dropped when the output
    is no terminal)."""
    width = width or text_width()
    lines: list[str] = []
    for n, sheet in enumerate(sheets):
        if n:
            lines.append("")
        lines += wrap_text(sheet.title, width)
        rows = [[cell_text(c, "—") for c in row] for row in sheet.rows]
        headers = list(sheet.headers)
        if sheet.flagged:
            headers.append("")
            for i, row in enumerate(rows):
                row.append("⚠" if i in sheet.flagged else "")
        align = [">" if j in sheet.numeric else "<" for j in range(len(headers))]
        for line, index in table_lines(headers, rows, align, width, sheet.keys):
            flagged = index is not None and index in sheet.flagged
            lines.append(click.style(line, fg="red") if flagged else line)
        for note in sheet.notes:
            lines += wrap_text(note, width)
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
             + reason_text(str(failure.reason), lang) for failure in failures[:limit]]
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
    click.echo(f"已写入 {out}" if report.lang == "zh" else f"wrote {out}", err=True)


def _write_pdf(report: Report, out: str | None) -> None:
    assert out is not None   # file_only: checked before the command ran
    result = write_pdf(report.sheets, out, report.lang)
    zh = report.lang == "zh"
    click.echo(f"已写入 {out}（{result.pages} 页）" if zh else
               f"wrote {out} ({result.pages} pages)", err=True)
    advice = font_advice(result)
    if advice:
        click.echo(f"warning: {advice}", err=True)


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
    Format("pdf", _write_pdf, from_sheets=True, file_only=True, suffix=".pdf"),
)}

#: What a command offers, by kind (the one place --format choices come from).
RESULT = ("text", "json")                    # receipts, verdicts, listings, summaries
REPORT = ("text", "json", "csv", "xlsx", "pdf")   # the tables an office files and prints


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
