"""Where the CLI finds the ledger and keys, and how it turns library errors into exit codes."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ledger import (
    EnvironmentProblem,
    Ledger,
    LedgerError,
    Store,
    default_keystore,
    default_ledger_url,
    open_store,
    parse_time,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    ledger_url: str
    keystore: str
    debug: bool = False

    def open(self) -> Ledger:
        return Ledger.open(self.ledger_url, self.keystore)

    @contextmanager
    def store(self, *, bare_log: bool = False) -> Iterator[Store]:
        """The ledger's tables alone, for commands that only read (no keystore needed).

        A ledger that was never initialized is an environment problem (exit 3), as for every
        other command; ``bare_log`` admits a log whose directory is gone (``verify`` then
        reports it failing, exit 1).
        """
        with open_store(self.ledger_url) as store:
            if not store.is_initialized() and not (bare_log and store.has_log()):
                raise EnvironmentProblem(f"the ledger at {store.location.display} is not "
                                         "initialized", "Run `xinfang init` first.")
            yield store


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


def lang_option(func: F) -> F:
    return click.option("--lang", type=click.Choice(["zh", "en"]), default="zh",
                        show_default=True, help="Label language.")(func)


DEFAULTS = {"ledger": default_ledger_url, "keystore": default_keystore}
