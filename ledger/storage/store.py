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
from collections.abc import Iterator, Sequence
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
from ledger.log.log_signer import LeafReader, LeafRow, LogSigner, SignedTree, UnprovenTreeError

SIDE_TABLES = ("xf_leaves", "xf_nodes", "xf_checkpoints", "xf_commands")
CATCH_UP_BATCH = 5000   # leaves per query when the log signer recomputes stored leaves
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

    def append(self, events: Sequence[PendingEvent], log_signer: LogSigner) -> list[int]:
        """Insert events, their leaves, new tree nodes, command ids and a checkpoint signed by
        ``log_signer`` in one transaction; the signer's own state advances after the commit.
        Raises AppendConflict if a (stream, seq) or command id is taken, and UnprovenTreeError
        (nothing written) if the stored log is not the tree the signer last signed."""
        stored = [StoredEvent(originator_id=e.stream, originator_version=e.seq, topic=e.type,
                              state=e.state) for e in events]
        try:
            with self.cursor(commit=True) as cur:
                positions = self._insert_events(cur, stored)
                signed = self._extend_log(cur, events, positions, log_signer)
        except IntegrityError as exc:
            raise AppendConflict(str(exc)) from None
        except PersistenceError as exc:
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise AppendConflict(str(exc)) from None
            raise StorageError(f"database error: {exc}") from None
        log_signer.advance(signed.tree)   # after the commit: the state never runs ahead
        return positions

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
                    log_signer: LogSigner) -> SignedTree:
        # The write lock is held (SQLite BEGIN IMMEDIATE; on PostgreSQL the events insert took
        # the EXCLUSIVE table lock). The tree to extend is the signer's own, proven against the
        # latest checkpoint row; the frontier column and xf_nodes are never read for signing.
        tree = log_signer.proven_tree(self._latest_checkpoint_row(cur), self._leaf_reader(cur))
        signed = log_signer.extend_and_sign(
            tree, [(p, e.state) for e, p in zip(events, positions, strict=True)])
        try:
            cur.executemany(self.sql(f"INSERT INTO {self.t('xf_leaves')} VALUES (?,?,?)"),
                            signed.leaves)
            if signed.nodes:
                cur.executemany(self.sql(f"INSERT INTO {self.t('xf_nodes')} VALUES (?,?,?)"),
                                signed.nodes)
        except self._duplicate_errors():
            # Impossible for an honest writer under the lock: rows beyond the signed tree.
            raise UnprovenTreeError(
                f"the ledger already holds leaves or tree nodes beyond the {tree.size} events "
                "this signer last signed") from None
        commands = [(e.cmd, p) for e, p in zip(events, positions, strict=True) if e.cmd]
        if commands:
            cur.executemany(self.sql(f"INSERT INTO {self.t('xf_commands')} VALUES (?,?)"),
                            commands)
        # The frontier column is still written, for readers of older releases.
        cur.execute(self.sql(f"INSERT INTO {self.t('xf_checkpoints')} VALUES (?,?,?,?)"),
                    (signed.tree.size, signed.root, signed.note, signed.tree.to_bytes()))
        return signed

    def _duplicate_errors(self) -> tuple[type[BaseException], ...]:
        if self.backend == "sqlite":
            return (sqlite3.IntegrityError,)
        import psycopg

        return (psycopg.errors.UniqueViolation,)

    def _latest_checkpoint_row(self, cur: Any) -> StoredCheckpoint | None:
        cur.execute(self.sql(f"SELECT size, root, note, frontier FROM "
                             f"{self.t('xf_checkpoints')} ORDER BY size DESC LIMIT 1"))
        row = cur.fetchone()
        if row is None:
            return None
        size, root, note, frontier = row[0], _blob(row[1]), row[2], _blob(row[3])
        if type(size) is not int or root is None or type(note) is not str or frontier is None:
            # Only a hostile SQLite cell can do this (columns are typed on PostgreSQL).
            raise UnprovenTreeError("the ledger's latest checkpoint row is malformed")
        return StoredCheckpoint(size, root, note, frontier)

    def _leaf_reader(self, cur: Any) -> LeafReader:
        """Stored leaves with the event row each names, for the signer to recompute (in the
        caller's transaction, ``CATCH_UP_BATCH`` leaves per query)."""
        statement = self.sql(
            f"SELECT l.idx, l.position, l.hash, e.state FROM {self.t('xf_leaves')} l "
            f"LEFT JOIN {self.events_table} e ON e.{self.position_column} = l.position "
            "WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx")

        def read(start: int, end: int) -> Iterator[LeafRow]:
            for low in range(start, end, CATCH_UP_BATCH):
                cur.execute(statement, (low, min(low + CATCH_UP_BATCH, end)))
                for idx, position, digest, state in cur.fetchall():
                    yield idx, position, _blob(digest) or b"", \
                        None if state is None else _blob(state) or state

        return read

    def write_checkpoint(self, log_signer: LogSigner) -> StoredCheckpoint:
        """The latest checkpoint, proven to be the tree ``log_signer`` last signed or a proven
        extension of it (the signer's state catches up). Every write signs its own checkpoint,
        so leaves beyond the latest one were put there by someone else: refused, as is a
        latest note that does not verify."""
        with self.cursor(commit=True) as cur:
            if self.backend == "postgresql":   # the writers' lock: nothing moves meanwhile
                cur.execute(f"LOCK TABLE {self.events_table} IN EXCLUSIVE MODE")
            latest = self._latest_checkpoint_row(cur)
            tree = log_signer.proven_tree(latest, self._leaf_reader(cur))
            cur.execute(f"SELECT MAX(idx) FROM {self.t('xf_leaves')}")
            top = cur.fetchone()[0]
        if latest is None:
            raise EnvironmentProblem("the ledger is empty", "Run `xinfang init` first.")
        leaves = 0 if top is None else top + 1
        if leaves != tree.size:
            raise UnprovenTreeError(f"the ledger holds {leaves} leaves, but the tree this signer "
                                    f"last signed has {tree.size}")
        log_signer.check_checkpoint(latest, tree)
        return latest

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
        return [StoredRecord(r[0], stream, _int(r[1]), str(r[2]), _blob(r[3])) for r in rows]

    def stream_head(self, stream: str) -> StoredRecord | None:
        rows = self.query(
            f"SELECT {self.position_column}, originator_version, topic, state FROM "
            f"{self.events_table} WHERE originator_id=? ORDER BY originator_version DESC "
            "LIMIT 1", (stream,))
        return StoredRecord(rows[0][0], stream, _int(rows[0][1]), str(rows[0][2]),
                            _blob(rows[0][3])) \
            if rows else None

    def event_at(self, stream: str, seq: int) -> StoredRecord | None:
        rows = self.query(
            f"SELECT {self.position_column}, topic, state FROM {self.events_table} "
            "WHERE originator_id=? AND originator_version=?", (stream, seq))
        return StoredRecord(rows[0][0], stream, seq, str(rows[0][1]), _blob(rows[0][2])) \
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

    def iter_checkpoints(self, after: int = -1) -> Iterator[StoredCheckpoint]:
        """Stored checkpoints of a size above ``after``, by size."""
        last = after
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

    # ---- reading for verification: every row, wherever it sits -----------------------------

    def iter_rows(self, batch: int = 2000, after: int = -(2**63)
                  ) -> Iterator[list[tuple[int, str, int, str, bytes]]]:
        """Every stored event row as (position, stream, seq, topic, state), in position order,
        ``batch`` rows per query — including rows at positions zero or below, which
        eventsourcing's notification log never reads (verification must see them)."""
        sql = self.sql(f"SELECT {self.position_column}, originator_id, originator_version, "
                       f"topic, state FROM {self.events_table} WHERE {self.position_column} > ? "
                       f"ORDER BY {self.position_column} LIMIT ?")
        while True:
            with self.cursor() as cur:
                cur.execute(sql, (after, batch))
                rows = [(r[0], str(r[1]), _int(r[2]), str(r[3]), _blob(r[4]))
                        for r in cur.fetchall()]
            if not rows:
                return
            yield rows
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def iter_leaves(self, batch: int = 2000, after: int = -1) -> Iterator[tuple[int, int, bytes]]:
        """The stored leaves of an index above ``after`` as (index, position, hash), in
        index order."""
        last = after
        table = self.t("xf_leaves")
        while True:
            rows = self.query(f"SELECT idx, position, hash FROM {table} WHERE idx>? "
                              "ORDER BY idx LIMIT ?", (last, batch))
            for idx, position, digest in rows:
                yield idx, position, bytes(digest)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def leaves_at(self, positions: Sequence[int]) -> dict[int, tuple[int, bytes]]:
        """Leaf index and stored leaf hash of each given log position that has a leaf."""
        found: dict[int, tuple[int, bytes]] = {}
        positions = sorted(set(positions))
        for start in range(0, len(positions), 500):
            chunk = positions[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for idx, position, digest in self.query(
                    f"SELECT idx, position, hash FROM {self.t('xf_leaves')} "
                    f"WHERE position IN ({marks})", chunk):
                found[position] = (idx, bytes(digest))
        return found

    def position_of_leaf(self, index: int) -> int | None:
        rows = self.query(f"SELECT position FROM {self.t('xf_leaves')} WHERE idx=?", (index,))
        return rows[0][0] if rows else None

    def has_log(self) -> bool:
        """Whether this database holds a ledger's log (leaves or checkpoints), initialized or
        not: a ledger whose directory was deleted is still a ledger to verify."""
        return bool(self.query(f"SELECT 1 FROM {self.t('xf_checkpoints')} LIMIT 1")) or \
            bool(self.query(f"SELECT 1 FROM {self.t('xf_leaves')} LIMIT 1"))


def _blob(value: Any) -> bytes | None:
    """A BLOB/BYTEA cell as bytes; None for anything else (a hostile SQLite cell)."""
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None


def _blob(value: Any) -> bytes:
    """A stored state cell as bytes, whatever a superuser put there (SQLite cells are
    untyped): the verifier then fails the row instead of crashing on it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return b"" if value is None else str(value).encode("utf-8", "surrogatepass")


def _int(value: Any) -> int:
    """A stored sequence number; a cell of another type reads as -1 (a failing row)."""
    return value if type(value) is int else -1


def default_ledger_url() -> str:
    return os.environ.get("XINFANG_LEDGER") or "sqlite:///./xinfang.db"
