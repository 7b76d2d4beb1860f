"""xinfang-ledger write side: signed, chained events in one Merkle log (see docs/integrity.md)."""

from ledger.domain.policy import Policy, load_policy_file
from ledger.errors import (
    ConflictError,
    EnvironmentProblem,
    ForbiddenError,
    InputError,
    KeyUnavailableError,
    LedgerError,
    StorageError,
    TransitionError,
    VerificationError,
)
from ledger.writing.service import Command, Ledger, Receipt

__all__ = [
    "Command", "ConflictError", "EnvironmentProblem", "ForbiddenError", "InputError",
    "KeyUnavailableError", "Ledger", "LedgerError", "Policy", "Receipt", "StorageError",
    "TransitionError", "VerificationError", "load_policy_file",
]
