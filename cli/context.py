"""Where the CLI finds the ledger and keys, and how it turns library errors into exit codes."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ledger import Ledger, LedgerError
from ledger.log.statement import parse_time
from ledger.storage.store import default_ledger_url
from ledger.writing.service import default_keystore

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    ledger_url: str
    keystore: str
    debug: bool = False

    def open(self) -> Ledger:
        return Ledger.open(self.ledger_url, self.keystore)


def settings() -> Settings:
    return click.get_current_context().find_object(Settings)  # type: ignore[return-value]


def handle_errors(func: F) -> F:
    """Print LedgerErrors as one or two plain lines on stderr and exit with their code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LedgerError as exc:
            if settings_debug():
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing half-written was committed", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def settings_debug() -> bool:
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(Settings) if ctx else None
    return bool(found and found.debug) or bool(os.environ.get("XINFANG_DEBUG"))


def as_option(func: F) -> F:
    return click.option("--as", "as_actor", envvar="XINFANG_ACTOR", required=True,
                        metavar="ACTOR", help="Who signs this write (or XINFANG_ACTOR).")(func)


def parse_at(value: str | None) -> datetime:
    if not value:
        return datetime.now(tz=UTC)
    return parse_time(value)


def at_option(func: F) -> F:
    return click.option("--at", "at", metavar="TIME",
                        help="Business time, ISO 8601 with offset (default: now).")(func)


def format_option(*choices: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        return click.option("--format", "fmt", type=click.Choice(list(choices)),
                            default=choices[0], show_default=True,
                            help="Output format.")(func)
    return decorate


def lang_option(func: F) -> F:
    return click.option("--lang", type=click.Choice(["zh", "en"]), default="zh",
                        show_default=True, help="Label language.")(func)


DEFAULTS = {"ledger": default_ledger_url, "keystore": default_keystore}
