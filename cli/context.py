"""Where the CLI finds the ledger and keys, and how it turns library errors into exit codes."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import click

from ledger import (
    SHANGHAI,
    EnvironmentProblem,
    InputError,
    Keystore,
    Ledger,
    LedgerClient,
    LedgerError,
    Store,
    default_keystore,
    default_ledger_url,
    open_store,
    parse_time,
)
from projections import code_labels, code_of
from schemas import local_time

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    ledger_url: str
    keystore: str
    debug: bool = False
    server: str | None = None   # --server / XINFANG_SERVER: work through a ledger server

    def open(self) -> Any:
        """The ledger to write to: a local :class:`Ledger`, or with ``--server`` the
        :class:`LedgerClient` that signs here and submits (the same methods)."""
        if self.server:
            return self.client()
        return Ledger.open(self.ledger_url, self.keystore)

    def client(self, actor: str | None = None) -> LedgerClient:
        """A client of the ``--server`` ledger server, signing in as ``actor`` (default
        XINFANG_ACTOR, else the one actor whose key the keystore holds)."""
        if not self.server:
            raise InputError("this needs a ledger server", "Give --server URL or set "
                             "XINFANG_SERVER.")
        keystore = Keystore(self.keystore, os.environ.get("XINFANG_PASSPHRASE"))
        return LedgerClient(self.server, keystore,
                            actor=actor or os.environ.get("XINFANG_ACTOR") or None,
                            on_receipt=lambda path: click.echo(f"已保存回执 receipt kept: {path}",
                                                               err=True))

    @contextmanager
    def store(self, *, bare_log: bool = False) -> Iterator[Store]:
        """The ledger's tables alone, for commands that only read (no keystore needed).

        A ledger that was never initialized is an environment problem (exit 3), as for every
        other command; ``bare_log`` admits a log whose directory is gone (``verify`` then
        reports it failing, exit 1). With ``--server``: the local mirror of the server's raw
        log, synced first (for readers who may read the whole log), so that every reader
        runs its unchanged local code on it under the pinned keys.
        """
        if self.server:
            with self.client() as client:
                yield client.store
            return
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


#: How every time option reads its value (cli.md "Times without an offset mean Asia/Shanghai;
#: a date alone is accepted where a time is asked").
TIME_HELP = ("2025-03-02 09:30 is Beijing time, 2025-03-02 alone is 00:00 that day; "
             "ISO 8601 with an offset also works")


def parse_at(value: str | None, option: str = "--at") -> datetime:
    """A business time as people write it: no offset means Beijing time (Asia/Shanghai) and a
    date alone means 00:00 that day; signed with its explicit +08:00 offset."""
    if not value:
        return datetime.now(tz=UTC)
    normalized = local_time(value)
    if not isinstance(normalized, datetime):
        raise InputError(f"option {option}: {value!r} is not a time",
                         "Write e.g. 2025-03-02 09:30 (Beijing time), 2025-03-02 (00:00 that "
                         "day) or 2025-03-02T09:30:00+08:00.")
    try:
        return parse_time(normalized.isoformat())
    except InputError as exc:   # outside the bounds every verifier accepts
        raise InputError(f"option {option}: {exc.message}", exc.hint) from None


def local_time_text(value: str | None, option: str) -> str | None:
    """A time option of an action's data (``--served-at``…), normalized like ``--at``."""
    return None if value is None else parse_at(value, option).isoformat()


def parse_as_of(value: str | None, option: str = "--as-of") -> date | None:
    """``--as-of``: a date (judged at the end of that day) or a moment; the reports judge by
    business day in Asia/Shanghai, so a moment counts as the end of its Beijing day (the read
    model folds whole days)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = parse_at(text)
    except (ValueError, InputError):
        raise InputError(f"option {option}: {value!r} is neither a date nor a time",
                         "Use YYYY-MM-DD (the end of that day, Beijing time) or e.g. "
                         "2025-12-31 18:00.") from None
    return moment.astimezone(SHANGHAI).date()


def at_option(func: F) -> F:
    return click.option("--at", "at", metavar="TIME",
                        help=f"Business time (default: now); {TIME_HELP}.")(func)


class Coded(click.ParamType):
    """A coded option that takes the code or its Chinese (or English) label, e.g.
    ``--category 户口问题`` = ``household_registration``; ``--help`` lists the pairs.
    ``open_ended`` admits other well-formed codes (categories a policy file adds)."""

    name = "code"

    def __init__(self, kind: str, codes: Iterable[str] | None = None,
                 open_ended: bool = False) -> None:
        self.kind = kind
        self.codes = list(codes) if codes is not None else None
        self.open_ended = open_ended

    def pairs(self) -> str:
        return ", ".join(f"{code} {zh}" for code, zh in code_labels(self.kind, self.codes))

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "CODE"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        code = code_of(self.kind, str(value), self.codes)
        if code is not None:
            return code
        if self.open_ended:
            return str(value)   # the schema judges its form, the policy whether it exists
        name = param.opts[0] if param is not None and param.opts else "value"
        self.fail(f"{value!r} is not a code of {name}; use one of: {self.pairs()}", param, ctx)


def lang_option(func: F) -> F:
    return click.option("--lang", type=click.Choice(["zh", "en"]), default="zh",
                        show_default=True, help="Label language.")(func)


DEFAULTS = {"ledger": default_ledger_url, "keystore": default_keystore}
