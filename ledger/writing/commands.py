"""What a write takes and what it returns: :class:`Command` in, :class:`Receipt` out.

Kept apart from the service (``ledger.writing.service``) so that the session that prepares
commands (``ledger.writing.session``) and the importer need not import the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Command:
    """One command to sign and append (the unit of ``execute_many``)."""

    action: str
    case: str | None
    data: dict[str, Any]
    actor: str
    at: datetime
    cmd: str | None = None
    migration: str | None = None   # the migration batch this write belongs to (signed)


@dataclass(frozen=True)
class Receipt:
    """What a successful write returns: where the event landed and its hash."""

    stream: str
    seq: int
    position: int
    type: str
    hash: str
    duplicate: bool = False
