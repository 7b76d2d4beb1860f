"""The SQLite backend: one database file, eventsourcing's ``SQLiteFactory`` recorder.

A write transaction is ``BEGIN IMMEDIATE``: it takes the database's write lock at once, so the
Merkle side tables are extended by one writer at a time and commit order equals rowid order.
eventsourcing's own transactions begin with a plain ``BEGIN``, so this class opens its own on a
connection of eventsourcing's pool, through that pool's public surface (``get_connection``,
``SQLiteConnection.cursor``/``commit``/``rollback``, ``SQLiteCursor.sqlite_cursor``), which
``tests/test_store_contract.py`` pins to the installed eventsourcing version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import Environment

from ledger.errors import EnvironmentProblem, StorageError
from ledger.storage.store import APPEND_ONLY_MESSAGE, AppendConflict, PendingEvent, Store


class SQLiteStore(Store):
    backend: ClassVar[str] = "sqlite"
    position_column: ClassVar[str] = "rowid"
    blob_type: ClassVar[str] = "BLOB"
    for_update: ClassVar[str] = ""   # BEGIN IMMEDIATE already holds the database
    supports_copy: ClassVar[bool] = False
    duplicate_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.IntegrityError,)
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)

    def _open(self, create: bool) -> None:
        path = self.location.path
        assert path is not None
        if not create and not path.exists():
            raise EnvironmentProblem(f"no ledger at {self.location.display}",
                                     "Run `xinfang init` first, or pass --ledger.")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        env = Environment("XINFANG", {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
            "ORIGINATOR_ID_TYPE": "text", "SQLITE_LOCK_TIMEOUT": "30",
            "CREATE_TABLE": "true" if create else "false",
        })
        self.factory = SQLiteFactory(env)
        self.recorder = self.factory.application_recorder()
        self.events_table = self.recorder.events_table_name
        self.schema_prefix = ""

    @contextmanager
    def cursor(self, *, commit: bool = False) -> Iterator[Any]:
        try:
            with self.factory.datastore.get_connection(commit=commit) as conn:
                cur: sqlite3.Cursor = conn.cursor().sqlite_cursor
                try:
                    cur.execute("BEGIN IMMEDIATE" if commit else "BEGIN")
                    try:
                        yield cur
                    except BaseException:
                        conn.rollback()
                        raise
                    if commit:
                        conn.commit()
                    else:
                        conn.rollback()
                finally:
                    cur.close()
        except sqlite3.IntegrityError as exc:
            if APPEND_ONLY_MESSAGE in str(exc):
                raise StorageError(f"refused: {exc}") from None
            raise AppendConflict(str(exc)) from None
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database error: {exc}",
                               "Another process may hold the ledger locked; try again.") from None

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                               (name,)))

    def _insert_events(self, cur: Any, events: Sequence[PendingEvent]) -> list[int]:
        # The transaction began IMMEDIATE: the write lock is already held.
        statement = (f"INSERT INTO {self.events_table} (originator_id, originator_version, "
                     "topic, state) VALUES (?,?,?,?)")
        positions = []
        for event in events:
            cur.execute(statement, (event.stream, event.seq, event.type, event.state))
            positions.append(cur.lastrowid)
        return positions

    def _lock_writers(self, cur: Any) -> None:
        pass   # BEGIN IMMEDIATE took it

    def _append_only_triggers(self, tables: Sequence[str]) -> list[str]:
        return [f"CREATE TRIGGER IF NOT EXISTS xf_no_{op.lower()}_{table} BEFORE {op} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
                for table in tables for op in ("UPDATE", "DELETE")]
