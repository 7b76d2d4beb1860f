"""The PostgreSQL backend: eventsourcing's ``PostgresFactory`` recorder, in one schema.

Events are inserted by the recorder's ``_insert_stored_events`` inside this store's own
transaction: it takes the events table's ``EXCLUSIVE`` lock first (so commit order equals
``notification_id`` order and the Merkle side tables are extended by one writer at a time),
notifies the recorder's channel and returns the new ids. eventsourcing has no public method
that inserts into a transaction the caller holds, so this private one is used here and only
here; ``tests/test_store_contract.py`` pins it (name, call shape, the lock it takes) to the
installed eventsourcing version, so an upgrade that changes it fails there first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment
from psycopg.rows import tuple_row

from ledger.errors import EnvironmentProblem, StorageError
from ledger.storage.store import APPEND_ONLY_MESSAGE, AppendConflict, PendingEvent, Store


class PostgresStore(Store):
    backend: ClassVar[str] = "postgresql"
    position_column: ClassVar[str] = "notification_id"
    blob_type: ClassVar[str] = "BYTEA"
    for_update: ClassVar[str] = " FOR UPDATE"
    supports_copy: ClassVar[bool] = True
    duplicate_errors: ClassVar[tuple[type[BaseException], ...]] = (
        psycopg.errors.UniqueViolation,)
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error,)

    @property
    def schema(self) -> str:
        return (self.location.env or {}).get("POSTGRES_SCHEMA", "public")

    def _open(self, create: bool) -> None:
        assert self.location.env is not None
        env = dict(self.location.env)
        env["ORIGINATOR_ID_TYPE"] = "text"
        env["CREATE_TABLE"] = "true" if create else "false"
        schema = env["POSTGRES_SCHEMA"]
        self.factory = PostgresFactory(Environment("XINFANG", env))
        if create and schema != "public":
            with self.cursor(commit=True) as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.recorder = self.factory.application_recorder()
        self.events_table = f'"{schema}".{self.recorder.events_table_name}'
        self.schema_prefix = f'"{schema}".'
        if not create and not self.table_exists(self.recorder.events_table_name):
            raise EnvironmentProblem(f"no ledger at {self.location.display}",
                                     "Run `xinfang init` first, or pass --ledger.")

    @contextmanager
    def cursor(self, *, commit: bool = False) -> Iterator[Any]:
        try:
            with self.factory.datastore.get_connection() as conn:
                try:
                    with conn.transaction(force_rollback=not commit):
                        yield conn.cursor(row_factory=tuple_row)
                except psycopg.errors.UniqueViolation as exc:
                    # Before eventsourcing's wrapper turns it into a generic database error:
                    # a key another writer took first is a conflict, as on SQLite.
                    raise AppendConflict(str(exc)) from None
        except PersistenceError as exc:
            raise StorageError(f"database error: {exc}") from None

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_schema=? "
                               "AND table_name=?", (self.schema, name)))

    def _insert_events(self, cur: Any, events: Sequence[PendingEvent]) -> list[int]:
        stored = [StoredEvent(originator_id=e.stream, originator_version=e.seq, topic=e.type,
                              state=e.state) for e in events]
        # Takes the EXCLUSIVE table lock (held until commit), then INSERT … RETURNING.
        self.recorder._insert_stored_events(cur, stored)
        return [row[0] for row in cur.fetchall()]

    def _lock_writers(self, cur: Any) -> None:
        cur.execute(f"LOCK TABLE {self.events_table} IN EXCLUSIVE MODE")

    def _append_only_triggers(self, tables: Sequence[str]) -> list[str]:
        reject = self.t("xf_reject_change")
        statements = [
            f"CREATE OR REPLACE FUNCTION {reject}() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
            f"'{APPEND_ONLY_MESSAGE} (% refused on %)', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"]
        for table in tables:
            bare = table.split(".")[-1].strip('"')
            statements += [
                f"DROP TRIGGER IF EXISTS xf_no_change_{bare} ON {table}",
                f"CREATE TRIGGER xf_no_change_{bare} BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {reject}()",
                f"DROP TRIGGER IF EXISTS xf_no_truncate_{bare} ON {table}",
                f"CREATE TRIGGER xf_no_truncate_{bare} BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {reject}()",
            ]
        return statements
