"""JSON Lines import: a year of paper records, or thousands of commands, in one go.

The whole file is parsed and checked (schema, transitions, authorization, keys) before anything
is written; the first bad line is reported by number and nothing is written. Lines whose ``id``
is already recorded are skipped, so re-running an interrupted import completes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ledger.errors import InputError, LedgerError
from ledger.writing.service import Command, Ledger
from ledger.writing.session import validation_message
from schemas.actions import ImportLine


@dataclass(frozen=True)
class ImportResult:
    lines: int
    written: int
    skipped: int
    first_position: int | None
    last_position: int | None


def parse_lines(lines: Iterable[str]) -> tuple[list[Command], list[int]]:
    """Parse import lines into commands; returns the commands and their 1-based line numbers."""
    commands: list[Command] = []
    numbers: list[int] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {number}: not valid JSON ({exc.msg})") from None
        try:
            line = ImportLine.model_validate(obj)
        except ValidationError as exc:
            raise InputError(f"line {number}: {validation_message(exc)}",
                             "`xinfang schema` prints the JSON Schema of an import line."
                             ) from None
        if line.id in first_seen:
            raise InputError(f"line {number}: id {line.id!r} was already used on line "
                             f"{first_seen[line.id]}", "Every line needs its own id.")
        first_seen[line.id] = number
        commands.append(Command(line.action, line.case, dict(line.data), line.actor, line.at,
                                line.id))
        numbers.append(number)
    return commands, numbers


def import_file(ledger: Ledger, path: str | Path, *, batch_size: int = 1000,
                progress: Callable[[str, int, int], None] | None = None) -> ImportResult:
    try:
        with open(path, encoding="utf-8") as handle:
            commands, numbers = parse_lines(handle)
    except FileNotFoundError:
        raise InputError(f"import file {path} not found") from None
    except UnicodeDecodeError:
        raise InputError(f"import file {path} is not UTF-8 text") from None
    return import_commands(ledger, commands, numbers, batch_size=batch_size, progress=progress)


def import_commands(ledger: Ledger, commands: list[Command], numbers: list[int], *,
                    batch_size: int = 1000,
                    progress: Callable[[str, int, int], None] | None = None) -> ImportResult:
    try:
        receipts = ledger.execute_many(commands, batch_size=batch_size, progress=progress)
    except LedgerError as exc:
        index = getattr(exc, "index", None)
        if index is not None:
            exc.message = f"line {numbers[index]} ({commands[index].cmd}): {exc.message}"
            exc.args = (exc.message,)
            if exc.hint is None:
                exc.hint = "Nothing was written. Fix the line and import again."
        raise
    written = [r for r in receipts if not r.duplicate]
    return ImportResult(lines=len(commands), written=len(written),
                        skipped=len(receipts) - len(written),
                        first_position=written[0].position if written else None,
                        last_position=written[-1].position if written else None)
