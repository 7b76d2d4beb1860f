"""JSON Lines import: a year of paper records, or thousands of commands, in one go.

The whole file is parsed and checked (schema, transitions, authorization, keys) before anything
is written; the first bad line is reported by number and nothing is written. Lines whose ``id``
is already recorded are skipped, so re-running an interrupted import completes it.

``migration`` marks every event of the import as one migration batch (迁移补录 of paper records),
signed into each statement: the accountability report then lists the batch once instead of a
``late_entry`` trigger per event. A file with no command at all is a no-op, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from ledger.errors import InputError, LedgerError
from ledger.writing.commands import Command
from ledger.writing.service import Ledger
from ledger.writing.session import migration_name, validation_message
from schemas.actions import ImportLine


@dataclass(frozen=True)
class ImportResult:
    lines: int
    written: int
    skipped: int
    first_position: int | None
    last_position: int | None
    migration: str | None = None

    @property
    def empty(self) -> bool:
        """The file held no command (no line, or only blank lines): nothing was done."""
        return self.lines == 0


def parse_lines(lines: Iterable[str], *, migration: str | None = None
                ) -> tuple[list[Command], list[int]]:
    """Parse import lines into commands (each marked with ``migration``, if given); returns the
    commands and their 1-based line numbers."""
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
                                line.id, migration))
        numbers.append(number)
    return commands, numbers


def import_file(ledger: Ledger, path: str | Path, *, batch_size: int = 1000,
                progress: Callable[[str, int, int], None] | None = None,
                migration: str | None = None) -> ImportResult:
    migration = migration_name(migration)   # refused before the file is read
    try:
        with open(path, encoding="utf-8") as handle:
            commands, numbers = parse_lines(handle, migration=migration)
    except FileNotFoundError:
        raise InputError(f"import file {path} not found") from None
    except UnicodeDecodeError:
        raise InputError(f"import file {path} is not UTF-8 text") from None
    except IsADirectoryError:
        raise InputError(f"import file {path} is a directory") from None
    return import_commands(ledger, commands, numbers, batch_size=batch_size, progress=progress,
                           migration=migration)


def import_commands(ledger: Ledger, commands: list[Command], numbers: list[int], *,
                    batch_size: int = 1000,
                    progress: Callable[[str, int, int], None] | None = None,
                    migration: str | None = None) -> ImportResult:
    """Write parsed commands; ``migration`` (if given) marks every one of them."""
    if migration is not None:
        name = migration_name(migration)
        commands = [c if c.migration == name else replace(c, migration=name)
                    for c in commands]
    if not commands:   # an empty file: nothing to check, nothing to write
        return ImportResult(0, 0, 0, None, None, migration)
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
                        last_position=written[-1].position if written else None,
                        migration=migration or commands[0].migration)
