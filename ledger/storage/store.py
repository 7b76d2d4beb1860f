"""Event storage on the ``eventsourcing`` recorders (SQLite file or PostgreSQL), plus the Merkle
log's side tables, written in the same transaction as the events they cover.

Tables (besides eventsourcing's own events table):

* ``xf_leaves(idx, position, hash)``   — leaf hash of every event, by leaf index and log position
* ``xf_nodes(level, idx, hash)``       — every complete perfect subtree, for O(log n) proofs
* ``xf_checkpoints(size, root, note, frontier)`` — the signed checkpoint after each write
* ``xf_commands(cmd, position)``       — command ids already recorded (idempotent import)

All of them, and the events table, reject UPDATE and DELETE (and TRUNCATE on PostgreSQL) by trigger.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from ledger.errors import EnvironmentProblem, InputError, StorageError
from ledger.log.merkle import CompactRange, leaf_hash
from ledger.log.statement import leaf_bytes

SIDE_TABLES = ("xf_leaves", "xf_nodes", "xf_checkpoints", "xf_commands")
APPEND_ONLY_MESSAGE = "xinfang ledger tables are append-only"


class AppendConflict(Exception):
    """Another writer appended to one of the streams (or recorded the command) first."""


@dataclass(frozen=True, slots=True)
class PendingEvent:
    stream: str
    seq: int
    type: str
    state: bytes
    cmd: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    position: int
    stream: str
    seq: int
    type: str
    state: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str
    frontier: bytes


@dataclass(frozen=True)
class LedgerLocation:
    """Where a ledger lives, parsed from ``sqlite:///path`` or ``postgresql://…`` URLs."""

    url: str
    backend: str
    path: Path | None = None
    env: dict[str, str] | None = None

    @property
    def display(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.path}"
        parsed = urlparse(self.url)
        netloc = parsed.hostname or ""
        if parsed.port:
            netloc += f":{parsed.port}"
        return f"postgresql://{parsed.username or ''}@{netloc}{parsed.path}"


def parse_location(url: str) -> LedgerLocation:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise InputError("the sqlite URL names no file", "Use e.g. sqlite:///./xinfang.db")
        return LedgerLocation(url, "sqlite", Path(path))
    if url.startswith(("postgresql://", "postgres://")):
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        dbname = parsed.path.lstrip("/")
        if not dbname:
            raise InputError("the PostgreSQL URL names no database",
                             "Use e.g. postgresql://postgres@127.0.0.1:5432/test")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(dbname),
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_SCHEMA": query.get("schema", ["public"])[0],
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "3",
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "30",
        }
        return LedgerLocation(url, "postgresql", env=env)
    if "://" not in url:
        return LedgerLocation(f"sqlite:///{url}", "sqlite", Path(url))
    raise InputError(f"unsupported ledger URL {url!r}",
                     "Use sqlite:///path/ledger.db or postgresql://user@host:port/dbname.")


class Store:
    """Append-only access to one ledger's tables, on either backend, through one interface."""

    def __init__(self, location: LedgerLocation, *, create: bool = False) -> None:
        self.location = location
        self.backend = location.backend
        self.factory: Any = None
        self.recorder: Any = None   # eventsourcing's SQLite or PostgreSQL application recorder
        try:
            if self.backend == "sqlite":
                self._open_sqlite(create)
            else:
                self._open_postgres(create)
        except PersistenceError as exc:
            raise StorageError(f"cannot open the ledger at {location.display}: {exc}",
                               "Check that the database server is running and reachable."
                               ) from None

    # ---- opening -----------------------------------------------------------------------------

    def _open_sqlite(self, create: bool) -> None:
        from eventsourcing.sqlite import SQLiteFactory

        assert self.location.path is not None
        path = self.location.path
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
        self.position_column = "rowid"
        self.schema_prefix = ""
        if create:
            self._create_side_tables()

    def _open_postgres(self, create: bool) -> None:
        from eventsourcing.postgres import PostgresFactory

        assert self.location.env is not None
        env = dict(self.location.env)
        env["ORIGINATOR_ID_TYPE"] = "text"
        env["CREATE_TABLE"] = "true" if create else "false"
        schema = env["POSTGRES_SCHEMA"]
        self.factory = PostgresFactory(Environment("XINFANG", env))
        if create and schema != "public":
            with self._pg_cursor(commit=True) as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.recorder = self.factory.application_recorder()
        self.events_table = f'"{schema}".{self.recorder.events_table_name}'
        self.position_column = "notification_id"
        self.schema_prefix = f'"{schema}".'
        if create:
            self._create_side_tables()
        elif not self._pg_table_exists(self.recorder.events_table_name):
            raise EnvironmentProblem(f"no ledger at {self.location.display}",
                                     "Run `xinfang init` first, or pass --ledger.")

    def close(self) -> None:
        with suppress(Exception):
            self.factory.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def t(self, name: str) -> str:
        """A side table's qualified name."""
        return self.schema_prefix + name

    # ---- low-level SQL -----------------------------------------------------------------------

    @contextmanager
    def _pg_cursor(self, *, commit: bool) -> Iterator[Any]:
        from psycopg.rows import tuple_row

        datastore = self.factory.datastore
        try:
            with datastore.get_connection() as conn, conn.transaction(force_rollback=not commit):
                yield conn.cursor(row_factory=tuple_row)
        except PersistenceError as exc:
            raise StorageError(f"database error: {exc}") from None

    @contextmanager
    def _sqlite_cursor(self, *, commit: bool, immediate: bool = False) -> Iterator[Any]:
        pool = self.factory.datastore.pool
        conn = pool.get_connection(is_writer=commit)
        raw: sqlite3.Connection = conn._sqlite_conn
        cur = raw.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield cur
            except BaseException:
                raw.rollback()
                raise
            if commit:
                raw.commit()
            else:
                raw.rollback()
        except sqlite3.IntegrityError as exc:
            if APPEND_ONLY_MESSAGE in str(exc):
                raise StorageError(f"refused: {exc}") from None
            raise AppendConflict(str(exc)) from None
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database error: {exc}",
                               "Another process may hold the ledger locked; try again.") from None
        finally:
            cur.close()
            pool.put_connection(conn)

    @contextmanager
    def cursor(self, *, commit: bool = False) -> Iterator[Any]:
        if self.backend == "sqlite":
            with self._sqlite_cursor(commit=commit, immediate=commit) as cur:
                yield cur
        else:
            with self._pg_cursor(commit=commit) as cur:
                yield cur

    def sql(self, statement: str) -> str:
        return statement if self.backend == "sqlite" else statement.replace("?", "%s")

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as cur:
            cur.execute(self.sql(statement), tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def _pg_table_exists(self, table: str) -> bool:
        schema = self.location.env["POSTGRES_SCHEMA"] if self.location.env else "public"
        rows = self.query("SELECT 1 FROM information_schema.tables WHERE table_schema=? "
                          "AND table_name=?", (schema, table))
        return bool(rows)

    # ---- schema ------------------------------------------------------------------------------

    def _create_side_tables(self) -> None:
        blob = "BLOB" if self.backend == "sqlite" else "BYTEA"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.t('xf_leaves')} (idx BIGINT PRIMARY KEY, "
            f"position BIGINT NOT NULL UNIQUE, hash {blob} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.t('xf_nodes')} (level INTEGER NOT NULL, "
            f"idx BIGINT NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
            f"CREATE TABLE IF NOT EXISTS {self.t('xf_checkpoints')} (size BIGINT PRIMARY KEY, "
            f"root {blob} NOT NULL, note TEXT NOT NULL, frontier {blob} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.t('xf_commands')} (cmd TEXT PRIMARY KEY, "
            "position BIGINT NOT NULL)",
        ]
        protected = [self.events_table, *(self.t(name) for name in SIDE_TABLES)]
        if self.backend == "sqlite":
            for table in protected:
                for op in ("UPDATE", "DELETE"):
                    statements.append(
                        f"CREATE TRIGGER IF NOT EXISTS xf_no_{op.lower()}_{table} BEFORE {op} "
                        f"ON {table} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END")
        else:
            statements.append(
                f"CREATE OR REPLACE FUNCTION {self.t('xf_reject_change')}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                f"'{APPEND_ONLY_MESSAGE} (% refused on %)', TG_OP, TG_TABLE_NAME "
                "USING ERRCODE = 'insufficient_privilege'; END $$")
            for table in protected:
                bare = table.split(".")[-1].strip('"')
                statements += [
                    f"DROP TRIGGER IF EXISTS xf_no_change_{bare} ON {table}",
                    f"CREATE TRIGGER xf_no_change_{bare} BEFORE UPDATE OR DELETE ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION {self.t('xf_reject_change')}()",
                    f"DROP TRIGGER IF EXISTS xf_no_truncate_{bare} ON {table}",
                    f"CREATE TRIGGER xf_no_truncate_{bare} BEFORE TRUNCATE ON {table} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION {self.t('xf_reject_change')}()",
                ]
        with self.cursor(commit=True) as cur:
            for statement in statements:
                cur.execute(statement)

    # ---- writing -----------------------------------------------------------------------------

    def append(self, events: Sequence[PendingEvent],
               sign_checkpoint: Callable[[int, bytes], str]) -> list[int]:
        """Insert events, their leaves, new tree nodes, command ids and a signed checkpoint in
        one transaction. Raises AppendConflict if a (stream, seq) or command id is taken."""
        stored = [StoredEvent(originator_id=e.stream, originator_version=e.seq, topic=e.type,
                              state=e.state) for e in events]
        try:
            with self.cursor(commit=True) as cur:
                positions = self._insert_events(cur, stored)
                self._extend_log(cur, events, positions, sign_checkpoint)
                return positions
        except IntegrityError as exc:
            raise AppendConflict(str(exc)) from None
        except PersistenceError as exc:
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise AppendConflict(str(exc)) from None
            raise StorageError(f"database error: {exc}") from None

    def _insert_events(self, cur: Any, stored: list[StoredEvent]) -> list[int]:
        if self.backend == "sqlite":
            positions = []
            statement = self.recorder.insert_events_statement
            for event in stored:
                cur.execute(statement, (event.originator_id, event.originator_version,
                                        event.topic, event.state))
                positions.append(cur.lastrowid)
            return positions
        import psycopg

        try:
            # Takes eventsourcing's EXCLUSIVE table lock: commit order equals position order,
            # and our Merkle side tables are extended by one writer at a time.
            self.recorder._insert_stored_events(cur, stored)
            return [row[0] for row in cur.fetchall()]
        except psycopg.errors.UniqueViolation as exc:
            raise AppendConflict(str(exc)) from None

    def _extend_log(self, cur: Any, events: Sequence[PendingEvent], positions: list[int],
                    sign_checkpoint: Callable[[int, bytes], str]) -> None:
        cur.execute(self.sql(f"SELECT size, frontier FROM {self.t('xf_checkpoints')} "
                             "ORDER BY size DESC LIMIT 1"))
        row = cur.fetchone()
        tree = CompactRange() if row is None else CompactRange.from_bytes(row[0], bytes(row[1]))
        leaves, nodes = [], []
        for event, position in zip(events, positions, strict=True):
            digest = leaf_hash(leaf_bytes(position, event.state))
            leaves.append((tree.size, position, digest))
            nodes.extend(tree.append(digest))
        cur.executemany(self.sql(f"INSERT INTO {self.t('xf_leaves')} VALUES (?,?,?)"), leaves)
        if nodes:
            cur.executemany(self.sql(f"INSERT INTO {self.t('xf_nodes')} VALUES (?,?,?)"), nodes)
        commands = [(e.cmd, p) for e, p in zip(events, positions, strict=True) if e.cmd]
        if commands:
            cur.executemany(self.sql(f"INSERT INTO {self.t('xf_commands')} VALUES (?,?)"),
                            commands)
        root = tree.root()
        note = sign_checkpoint(tree.size, root)
        cur.execute(self.sql(f"INSERT INTO {self.t('xf_checkpoints')} VALUES (?,?,?,?)"),
                    (tree.size, root, note, tree.to_bytes()))

    def write_checkpoint(self, sign_checkpoint: Callable[[int, bytes], str]) -> StoredCheckpoint:
        """Sign a checkpoint for the current tree if the latest one does not already cover it."""
        latest = self.latest_checkpoint()
        size = self.leaf_count()
        if latest is not None and latest.size == size:
            return latest
        if size == 0:
            raise EnvironmentProblem("the ledger is empty", "Run `xinfang init` first.")
        root = self.root_at(size)
        note = sign_checkpoint(size, root)
        blob = self._frontier_bytes(size)
        with self.cursor(commit=True) as cur:
            cur.execute(self.sql(f"INSERT INTO {self.t('xf_checkpoints')} VALUES (?,?,?,?)"),
                        (size, root, note, blob))
        return StoredCheckpoint(size, root, note, blob)

    def _frontier_bytes(self, size: int) -> bytes:
        hashes, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(self.get_node(level, start >> level))
                start += 1 << level
        return b"".join(hashes)

    # ---- reading -----------------------------------------------------------------------------

    def is_initialized(self) -> bool:
        return bool(self.query(f"SELECT 1 FROM {self.events_table} WHERE originator_id=? "
                               "AND originator_version=1", ("directory",)))

    def iter_log(self, after: int = 0, batch: int = 2000,
                 stop: int | None = None) -> Iterator[Notification]:
        """Stream every stored event in log order, ``batch`` rows per query."""
        position = after
        while True:
            try:
                rows = self.recorder.select_notifications(position, batch, stop=stop,
                                                          inclusive_of_start=False)
            except PersistenceError as exc:
                raise StorageError(f"database error: {exc}") from None
            if not rows:
                return
            yield from rows
            position = rows[-1].id
            if len(rows) < batch:
                return

    def stream(self, stream: str, *, after_seq: int = 0) -> list[StoredRecord]:
        rows = self.query(
            f"SELECT {self.position_column}, originator_version, topic, state FROM "
            f"{self.events_table} WHERE originator_id=? AND originator_version>? "
            "ORDER BY originator_version", (stream, after_seq))
        return [StoredRecord(r[0], stream, r[1], r[2], bytes(r[3])) for r in rows]

    def stream_head(self, stream: str) -> StoredRecord | None:
        rows = self.query(
            f"SELECT {self.position_column}, originator_version, topic, state FROM "
            f"{self.events_table} WHERE originator_id=? ORDER BY originator_version DESC "
            "LIMIT 1", (stream,))
        return StoredRecord(rows[0][0], stream, rows[0][1], rows[0][2], bytes(rows[0][3])) \
            if rows else None

    def event_at(self, stream: str, seq: int) -> StoredRecord | None:
        rows = self.query(
            f"SELECT {self.position_column}, topic, state FROM {self.events_table} "
            "WHERE originator_id=? AND originator_version=?", (stream, seq))
        return StoredRecord(rows[0][0], stream, seq, rows[0][1], bytes(rows[0][2])) \
            if rows else None

    def max_case_number(self, prefix: str) -> str | None:
        """Largest stream id starting with ``prefix`` (an index range scan on the primary key)."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self.query(f"SELECT MAX(originator_id) FROM {self.events_table} "
                          "WHERE originator_id>=? AND originator_id<? AND originator_version=1",
                          (prefix, upper))
        return rows[0][0] if rows and rows[0][0] else None

    def recorded_commands(self, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for cmd, position in self.query(
                    f"SELECT cmd, position FROM {self.t('xf_commands')} WHERE cmd IN ({marks})",
                    chunk):
                found[cmd] = position
        return found

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self.query(f"SELECT size, root, note, frontier FROM {self.t('xf_checkpoints')} "
                          "ORDER BY size DESC LIMIT 1")
        return StoredCheckpoint(rows[0][0], bytes(rows[0][1]), rows[0][2], bytes(rows[0][3])) \
            if rows else None

    def iter_checkpoints(self) -> Iterator[StoredCheckpoint]:
        last = -1
        while True:
            rows = self.query(f"SELECT size, root, note, frontier FROM "
                              f"{self.t('xf_checkpoints')} WHERE size>? ORDER BY size LIMIT 1000",
                              (last,))
            for row in rows:
                yield StoredCheckpoint(row[0], bytes(row[1]), row[2], bytes(row[3]))
            if len(rows) < 1000:
                return
            last = rows[-1][0]

    def leaf_count(self) -> int:
        rows = self.query(f"SELECT MAX(idx) FROM {self.t('xf_leaves')}")
        return 0 if rows[0][0] is None else rows[0][0] + 1

    def leaf_index(self, position: int) -> int | None:
        rows = self.query(f"SELECT idx FROM {self.t('xf_leaves')} WHERE position=?", (position,))
        return rows[0][0] if rows else None

    def get_node(self, level: int, idx: int) -> bytes:
        if level == 0:
            rows = self.query(f"SELECT hash FROM {self.t('xf_leaves')} WHERE idx=?", (idx,))
        else:
            rows = self.query(f"SELECT hash FROM {self.t('xf_nodes')} WHERE level=? AND idx=?",
                              (level, idx))
        if not rows:
            raise StorageError(f"the Merkle node ({level}, {idx}) is missing from the ledger",
                               "Run `xinfang verify` to find what was changed.")
        return bytes(rows[0][0])

    def root_at(self, size: int) -> bytes:
        from ledger.log.merkle import root_at

        return root_at(size, self.get_node)

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0


def default_ledger_url() -> str:
    return os.environ.get("XINFANG_LEDGER") or "sqlite:///./xinfang.db"
