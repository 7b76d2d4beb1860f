"""Storage: the ledger's tables behind one :class:`Store` interface, one class per backend
(:mod:`ledger.storage.sqlite`, :mod:`ledger.storage.postgres`). Every SQL statement against the
ledger's own tables lives in this package."""

from ledger.storage.store import (
    AppendConflict,
    LedgerLocation,
    PendingEvent,
    Store,
    StoredCheckpoint,
    StoredRecord,
    default_ledger_url,
    driver_errors,
    open_store,
    parse_location,
)

__all__ = ["AppendConflict", "LedgerLocation", "PendingEvent", "Store", "StoredCheckpoint",
           "StoredRecord", "default_ledger_url", "driver_errors", "open_store", "parse_location"]
