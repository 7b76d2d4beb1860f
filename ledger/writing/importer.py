"""JSON Lines import: a year of paper records, or thousands of commands, in one go.

The whole file is parsed and checked (schema, transitions, authorization, keys) before anything
is written; every bad line (up to :data:`MAX_REPORTED`) is reported by number, in the user's
terms (``import line 3, field served_at: …``), and nothing is written. ``dry_run`` checks the
same way and says what would be written, writing nothing (issue 17). Lines whose ``id``
is already recorded are skipped, so re-running an interrupted import completes it.

Coded fields take their code or its Chinese or English label (``"channel": "来信"``), as the
command line's options do; labels become codes before validation, so only codes are signed.

``migration`` marks every event of the import as one migration batch (迁移补录 of paper records),
signed into each statement: the accountability report then lists the batch once instead of a
``late_entry`` trigger per event. A file with no command at all is a no-op, not an error.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ValidationError

from ledger.errors import InputError, LedgerError
from ledger.writing.commands import Command
from ledger.writing.service import Ledger
from ledger.writing.session import WriteSession, migration_name
from schemas.actions import (
    ACTION_MODELS,
    CODE_LABELS,
    ENUM_KINDS,
    ImportLine,
    field_name,
    local_times,
    plain_errors,
)

MAX_REPORTED = 50   # bad lines listed before the import gives up (issue 17)


@dataclass(frozen=True)
class ImportResult:
    lines: int
    written: int
    skipped: int
    first_position: int | None
    last_position: int | None
    migration: str | None = None
    dry_run: bool = False
    #: For a dry run: how many events of each action would be written, and the cases touched.
    actions: dict[str, int] = field(default_factory=dict)
    cases: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """The file held no command (no line, or only blank lines): nothing was done."""
        return self.lines == 0


def _line_problems(number: int, exc: ValidationError) -> list[str]:
    return [f"import line {number}, field {field_name(loc)}: {sentence}" if loc
            else f"import line {number}: {sentence}" for loc, sentence in plain_errors(exc)]


def _refuse(problems: list[str], first: LedgerError | None = None) -> LedgerError:
    """One error listing every bad line; it keeps the first error's kind (and exit code)."""
    shown = problems[:MAX_REPORTED]
    head = ("1 bad line" if len(problems) == 1 else f"{len(problems)} bad lines"
            if len(problems) <= MAX_REPORTED else f"more than {MAX_REPORTED} bad lines "
            f"(the first {MAX_REPORTED} shown)")
    error = first if first is not None else InputError("")
    error.message = f"{head}; nothing was written:\n" + "\n".join(shown)
    error.args = (error.message,)
    error.hint = ("Fix the lines and import again (`xinfang schema` prints the format; "
                  "`--dry-run` checks without writing).")
    return error


def _enum_of(annotation: Any) -> type[StrEnum] | None:
    """The code list (StrEnum) a field's annotation takes, through Optional, list, Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return annotation
    origin = get_origin(annotation)
    if origin in (Union, UnionType, list, Annotated):
        for arg in get_args(annotation):
            found = _enum_of(arg)
            if found is not None:
                return found
    return None


@cache
def _coded_fields(action: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Field → (label kind, allowed codes) of an action's coded fields: its code lists and the
    content category (the default categories' labels; a policy's own categories by code)."""
    model = ACTION_MODELS.get(action)
    if model is None:
        return {}
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for name, info in model.model_fields.items():
        enum = _enum_of(info.annotation)
        if enum is not None and enum in ENUM_KINDS:
            out[name] = (ENUM_KINDS[enum], frozenset(e.value for e in enum))
        elif name == "category":
            out[name] = ("category", frozenset(CODE_LABELS.get("category", {})))
    return out


def _code(kind: str, allowed: frozenset[str], value: Any) -> Any:
    if not isinstance(value, str) or value in allowed:
        return value
    wanted = value.strip()
    for code, (zh, en) in CODE_LABELS.get(kind, {}).items():
        if code in allowed and (wanted == zh or wanted.casefold() == en.casefold()):
            return code
    return value   # not a label either: validation says what the field takes


def codes_for_labels(action: str, data: Any) -> Any:
    """``data`` with every coded field given by its Chinese or English label (``来信``,
    ``户口问题``, ``受理``, ``承办人``) turned into its code, as the command line's options take
    them (issue 17): before validation, so what is signed is always the code. Values that are
    neither stay as given, and validation names the field."""
    fields = _coded_fields(action)
    if not isinstance(data, dict) or not fields:
        return data
    out = dict(data)
    for name, (kind, allowed) in fields.items():
        if name in out:
            value = out[name]
            out[name] = [_code(kind, allowed, v) for v in value] if isinstance(value, list) \
                else _code(kind, allowed, value)
    return out


def parse_lines(lines: Iterable[str], *, migration: str | None = None
                ) -> tuple[list[Command], list[int]]:
    """Parse import lines into commands (each marked with ``migration``, if given); returns the
    commands and their 1-based line numbers. Every malformed line is reported at once."""
    commands: list[Command] = []
    numbers: list[int] = []
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        if len(problems) >= MAX_REPORTED:
            problems.append("…")   # one past the limit: _refuse says there are more
            break
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"import line {number}: not valid JSON ({exc.msg})")
            continue
        try:
            line = ImportLine.model_validate(local_times(ImportLine, obj))
        except ValidationError as exc:
            problems.extend(_line_problems(number, exc))
            continue
        if line.id in first_seen:
            problems.append(f"import line {number}: id {line.id!r} was already used on line "
                            f"{first_seen[line.id]} (every line needs its own id)")
            continue
        first_seen[line.id] = number
        commands.append(Command(line.action, line.case,
                                codes_for_labels(line.action, dict(line.data)), line.actor,
                                line.at, line.id, migration))
        numbers.append(number)
    if problems:
        raise _refuse(problems)
    return commands, numbers


def check_commands(ledger: Ledger, commands: list[Command], numbers: list[int]
                   ) -> tuple[list[str], LedgerError | None, list[Any], int]:
    """Judge every command against the ledger as it will be, going on past bad ones.

    Returns the problems (one line each, up to :data:`MAX_REPORTED`), the first error, the
    statements that would be written and how many lines are already recorded. A line after a
    bad one is judged as if the bad one were not in the file (so a refused ``register`` also
    refuses that case's later lines)."""
    session = WriteSession(ledger, simulate=True)
    ids = [c.cmd for c in commands if c.cmd]
    done = ledger.store.recorded_commands(ids) if ids else {}
    problems: list[str] = []
    first: LedgerError | None = None
    statements: list[Any] = []
    skipped = 0
    for number, command in zip(numbers, commands, strict=True):
        if command.cmd is not None and command.cmd in done:
            skipped += 1
            continue
        try:
            statements.append(session.prepare(command).statement)
        except LedgerError as exc:
            first = first or exc
            invalid = getattr(exc, "validation", None)
            problems.extend(_line_problems(number, invalid) if invalid is not None
                            else [f"import line {number} ({command.cmd}): {exc.message}"])
            if len(problems) > MAX_REPORTED:
                break
    return problems, first, statements, skipped


def read_import_file(path: str | os.PathLike[str], migration: str | None
                     ) -> tuple[list[Command], list[int]]:
    """The commands of an import file and their line numbers; InputError for a file that is
    missing, not UTF-8 or a directory (shared by local and served imports)."""
    try:
        with open(path, encoding="utf-8") as handle:
            commands, numbers = parse_lines(handle, migration=migration)
    except FileNotFoundError:
        raise InputError(f"import file {path} not found") from None
    except UnicodeDecodeError:
        raise InputError(f"import file {path} is not UTF-8 text") from None
    except IsADirectoryError:
        raise InputError(f"import file {path} is a directory") from None
    return commands, numbers


def import_file(ledger: Ledger, path: str | Path, *, batch_size: int = 1000,
                progress: Callable[[str, int, int], None] | None = None,
                migration: str | None = None, dry_run: bool = False) -> ImportResult:
    migration = migration_name(migration)   # refused before the file is read
    commands, numbers = read_import_file(path, migration)
    return import_commands(ledger, commands, numbers, batch_size=batch_size, progress=progress,
                           migration=migration, dry_run=dry_run)


def import_commands(ledger: Ledger, commands: list[Command], numbers: list[int], *,
                    batch_size: int = 1000,
                    progress: Callable[[str, int, int], None] | None = None,
                    migration: str | None = None, dry_run: bool = False) -> ImportResult:
    """Write parsed commands; ``migration`` (if given) marks every one of them; ``dry_run``
    checks them all and reports what would be written, writing nothing."""
    if migration is not None:
        name = migration_name(migration)
        commands = [c if c.migration == name else replace(c, migration=name)
                    for c in commands]
    if not commands:   # an empty file: nothing to check, nothing to write
        return ImportResult(0, 0, 0, None, None, migration, dry_run)
    if dry_run:
        problems, first, statements, skipped = check_commands(ledger, commands, numbers)
        if problems:
            raise _refuse(problems, first)
        return ImportResult(len(commands), 0, skipped, None, None,
                            migration or commands[0].migration, True,
                            dict(Counter(s.type for s in statements)),
                            tuple(dict.fromkeys(s.stream for s in statements
                                                if s.stream.startswith("XF-"))))
    try:
        receipts = ledger.execute_many(commands, batch_size=batch_size, progress=progress)
    except LedgerError as exc:
        if getattr(exc, "index", None) is None:
            raise
        # Nothing was written (every command is checked first): now find every bad line,
        # so the user fixes them in one go; the fast path above pays nothing for this.
        problems, first, _, _ = check_commands(ledger, commands, numbers)
        index: int = exc.index  # type: ignore[attr-defined]
        raise _refuse(problems or [f"import line {numbers[index]}: {exc.message}"],
                      first or exc) from None
    written = [r for r in receipts if not r.duplicate]
    return ImportResult(lines=len(commands), written=len(written),
                        skipped=len(receipts) - len(written),
                        first_position=written[0].position if written else None,
                        last_position=written[-1].position if written else None,
                        migration=migration or commands[0].migration)
