"""One error root for the whole library; each subclass knows its CLI exit code.

The CLI prints ``str(error)`` (one or two plain lines: what was wrong, what to do) and exits
with ``error.exit_code``; other programs catch :class:`LedgerError`.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the library raises on purpose."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class InputError(LedgerError):
    """Bad option, schema violation, unknown case or actor (exit 2)."""

    exit_code = 2


class TransitionError(InputError):
    """The action is not legal in the case's current state (exit 2)."""


class ForbiddenError(InputError):
    """The actor is not authorized for the action (exit 2)."""


class ConflictError(InputError):
    """A concurrent writer won the race and retries were exhausted (exit 2)."""


class VerificationError(LedgerError):
    """A proof, signature, chain or bundle did not verify (exit 1)."""

    exit_code = 1


class EnvironmentProblem(LedgerError):
    """No ledger, database unreachable, key missing or locked (exit 3)."""

    exit_code = 3


class StorageError(EnvironmentProblem):
    """The database refused or failed an operation (exit 3)."""


class KeyUnavailableError(EnvironmentProblem):
    """A private key is missing from the keystore or cannot be unlocked (exit 3)."""
