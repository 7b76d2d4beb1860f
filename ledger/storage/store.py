"""Event storage on the ``eventsourcing`` recorders (SQLite file or PostgreSQL), plus the Merkle
log's side tables, written in the same transaction as the events they cover.

Tables (besides eventsourcing's own events table):

* ``xf_leaves(idx, position, hash)``   — leaf hash of every event, by leaf index and log position
* ``xf_nodes(level, idx, hash)``       — every complete perfect subtree, for O(log n) proofs
* ``xf_checkpoints(size, root, note, frontier)`` — the signed checkpoint after each write
* ``xf_commands(cmd, position)``       — command ids already recorded (idempotent import)
* ``xf_cosignatures(size, witness, line, note)`` — witness cosignatures of the checkpoint of
  ``size`` (docs/witness.md), one per witness key; created on first use in older ledgers

All of them, and the events table, reject UPDATE and DELETE (and TRUNCATE on PostgreSQL) by trigger.

One interface, two backends. :class:`Store` holds every query the write side, verification,
closures and the read side make of these tables, in portable SQL with ``?`` parameters.
:class:`ledger.storage.sqlite.SQLiteStore` and :class:`ledger.storage.postgres.PostgresStore`
hold everything that differs: connections and transactions, the writers' lock, the event
insert, the append-only triggers, type names. ``Store(location)`` (or :func:`open_store`)
returns the one the location names. No other module writes SQL against these tables; the read
model's own ``rm_*`` tables have theirs in ``projections.readmodel``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlparse

from eventsourcing.persistence import IntegrityError, Notification, PersistenceError

from ledger.errors import EnvironmentProblem, InputError, StorageError
from ledger.log.log_signer import LeafReader, LeafRow, LogSigner, SignedTree, UnprovenTreeError

SIDE_TABLES = ("xf_leaves", "xf_nodes", "xf_checkpoints", "xf_commands")
CATCH_UP_BATCH = 5000   # leaves per query when the log signer recomputes stored leaves
IN_CHUNK = 500          # values per ``IN (…)`` list: far below either backend's parameter limit
APPEND_ONLY_MESSAGE = "xinfang ledger tables are append-only"

#: The backend class for each ``LedgerLocation.backend`` (imported on first use).
BACKENDS = {"sqlite": ("ledger.storage.sqlite", "SQLiteStore"),
            "postgresql": ("ledger.storage.postgres", "PostgresStore")}


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


def backend_class(backend: str) -> type[Store]:
    """The :class:`Store` subclass for a location's backend name."""
    if backend not in BACKENDS:
        raise InputError(f"unsupported ledger backend {backend!r}",
                         "Use sqlite:///path/ledger.db or postgresql://user@host:port/dbname.")
    module, name = BACKENDS[backend]
    cls: type[Store] = getattr(importlib.import_module(module), name)
    return cls


def open_store(location: LedgerLocation | str, *, create: bool = False) -> Store:
    """The store at ``location`` (a URL or a parsed location), on its backend's class."""
    if isinstance(location, str):
        location = parse_location(location)
    return backend_class(location.backend)(location, create=create)


def driver_errors() -> tuple[type[BaseException], ...]:
    """Every backend driver's own error classes (sqlite3, psycopg): what SQL run through
    :meth:`Store.cursor` may raise besides the project's errors."""
    return tuple(error for backend in BACKENDS for error in backend_class(backend).driver_errors)


class Store:
    """Append-only access to one ledger's tables, on either backend, through one interface.

    ``Store(location)`` constructs the backend's subclass. The methods marked *backend* below
    are all a subclass provides; every query is written once, here.
    """

    backend: ClassVar[str] = ""
    #: The events table's log-position column (eventsourcing's notification id).
    position_column: ClassVar[str] = ""
    #: The column type for raw bytes.
    blob_type: ClassVar[str] = ""
    #: Appended to a SELECT in a write transaction to hold the rows until commit ("" where the
    #: write transaction already holds the whole database).
    for_update: ClassVar[str] = ""
    #: Whether cursors take ``COPY … FROM STDIN`` (``cursor.copy``) for bulk loads.
    supports_copy: ClassVar[bool] = False
    #: The driver's unique-violation errors, as raised inside a cursor's transaction.
    duplicate_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    #: The driver's own error classes (see :func:`driver_errors`).
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __new__(cls, location: LedgerLocation, *, create: bool = False) -> Store:
        chosen = backend_class(location.backend) if cls is Store else cls
        if chosen.backend != location.backend:
            raise InputError(f"a {chosen.backend} store cannot open {location.display}")
        return object.__new__(chosen)

    def __init__(self, location: LedgerLocation, *, create: bool = False) -> None:
        self.location = location
        self.factory: Any = None    # eventsourcing's infrastructure factory for the backend
        self.recorder: Any = None   # eventsourcing's SQLite or PostgreSQL application recorder
        self.events_table = ""      # qualified name of eventsourcing's events table
        self.schema_prefix = ""     # qualifies the side tables' names
        try:
            self._open(create)
        except PersistenceError as exc:
            raise StorageError(f"cannot open the ledger at {location.display}: {exc}",
                               "Check that the database server is running and reachable."
                               ) from None
        if create:
            self._create_side_tables()

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

    # ---- backend -------------------------------------------------------------------------------

    def _open(self, create: bool) -> None:
        """Build the eventsourcing factory and recorder; set ``events_table`` and
        ``schema_prefix``; EnvironmentProblem when there is no ledger and not ``create``."""
        raise NotImplementedError

    def cursor(self, *, commit: bool = False) -> AbstractContextManager[Any]:
        """A DB-API cursor in one transaction, committed at exit when ``commit`` (a write
        transaction holds the backend's write lock where it has one) and rolled back otherwise.
        Unique violations become AppendConflict, refusals and failures StorageError."""
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        """A ``?``-parameter statement in the driver's parameter style."""
        return statement

    def table_exists(self, name: str) -> bool:
        """Whether a table of this (unqualified) name exists where the ledger's tables are."""
        raise NotImplementedError

    def _insert_events(self, cur: Any, events: Sequence[PendingEvent]) -> list[int]:
        """Insert events into eventsourcing's table in ``cur``'s transaction, holding the
        writers' lock until commit; their log positions, in order."""
        raise NotImplementedError

    def _lock_writers(self, cur: Any) -> None:
        """Take the lock the event insert takes, so no writer moves until commit."""
        raise NotImplementedError

    def _append_only_triggers(self, tables: Sequence[str]) -> list[str]:
        """Statements that make ``tables`` reject UPDATE and DELETE (and TRUNCATE)."""
        raise NotImplementedError

    # ---- low-level SQL -------------------------------------------------------------------------

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.cursor() as cur:
            cur.execute(self.sql(statement), tuple(params))
            return [tuple(row) for row in cur.fetchall()]

    def _query_in(self, statement: str, values: Sequence[Any],
                  params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of ``statement`` whose ``{marks}`` is filled with ``IN_CHUNK`` of ``values`` at
        a time (then ``params``); one query per chunk."""
        values = list(values)
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start:start + IN_CHUNK]
            yield from self.query(statement.format(marks=",".join("?" * len(chunk))),
                                  (*chunk, *params))

    def _records(self, rows: Iterable[tuple[Any, ...]]) -> list[StoredRecord]:
        """(position, stream, seq, topic, state) rows as records, whatever the cells hold."""
        return [StoredRecord(r[0], str(r[1]), _int(r[2]), str(r[3]), _blob(r[4])) for r in rows]

    # ---- schema --------------------------------------------------------------------------------

    def _create_side_tables(self) -> None:
        blob = self.blob_type
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
        statements += self._append_only_triggers(
            [self.events_table, *(self.t(name) for name in SIDE_TABLES)])
        with self.cursor(commit=True) as cur:
            for statement in statements:
                cur.execute(statement)
        self._create_cosignatures_table()

    # ---- writing -------------------------------------------------------------------------------

    def append(self, events: Sequence[PendingEvent], log_signer: LogSigner) -> list[int]:
        """Insert events, their leaves, new tree nodes, command ids and a checkpoint signed by
        ``log_signer`` in one transaction; the signer's own state advances after the commit.
        Raises AppendConflict if a (stream, seq) or command id is taken, and UnprovenTreeError
        (nothing written) if the stored log is not the tree the signer last signed."""
        try:
            with self.cursor(commit=True) as cur:
                positions = self._insert_events(cur, events)
                signed = self._extend_log(cur, events, positions, log_signer)
        except IntegrityError as exc:
            raise AppendConflict(str(exc)) from None
        except PersistenceError as exc:
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise AppendConflict(str(exc)) from None
            raise StorageError(f"database error: {exc}") from None
        log_signer.advance(signed.tree)   # after the commit: the state never runs ahead
        return positions

    def _extend_log(self, cur: Any, events: Sequence[PendingEvent], positions: list[int],
                    log_signer: LogSigner) -> SignedTree:
        # The write lock is held (see _insert_events). The tree to extend is the signer's own,
        # proven against the latest checkpoint row; the frontier column and xf_nodes are never
        # read for signing.
        tree = log_signer.proven_tree(self._latest_checkpoint_row(cur), self._leaf_reader(cur))
        signed = log_signer.extend_and_sign(
            tree, [(p, e.state) for e, p in zip(events, positions, strict=True)])
        try:
            cur.executemany(self.sql(f"INSERT INTO {self.t('xf_leaves')} VALUES (?,?,?)"),
                            signed.leaves)
            if signed.nodes:
                cur.executemany(self.sql(f"INSERT INTO {self.t('xf_nodes')} VALUES (?,?,?)"),
                                signed.nodes)
        except self.duplicate_errors:
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

    def _latest_checkpoint_row(self, cur: Any) -> StoredCheckpoint | None:
        cur.execute(self.sql(f"SELECT size, root, note, frontier FROM "
                             f"{self.t('xf_checkpoints')} ORDER BY size DESC LIMIT 1"))
        row = cur.fetchone()
        if row is None:
            return None
        size, root, note, frontier = row[0], _bytes_or_none(row[1]), row[2], \
            _bytes_or_none(row[3])
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
                    yield idx, position, _blob(digest), None if state is None else _blob(state)

        return read

    def write_checkpoint(self, log_signer: LogSigner) -> StoredCheckpoint:
        """The latest checkpoint, proven to be the tree ``log_signer`` last signed or a proven
        extension of it (the signer's state catches up). Every write signs its own checkpoint,
        so leaves beyond the latest one were put there by someone else: refused, as is a
        latest note that does not verify."""
        with self.cursor(commit=True) as cur:
            self._lock_writers(cur)   # nothing moves meanwhile
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

    # ---- reading -------------------------------------------------------------------------------

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

    def _event_columns(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + column for column in (
            self.position_column, "originator_id", "originator_version", "topic", "state"))

    def stream(self, stream: str, *, after_seq: int = 0) -> list[StoredRecord]:
        return self._records(self.query(
            f"SELECT {self._event_columns()} FROM {self.events_table} WHERE originator_id=? "
            "AND originator_version>? ORDER BY originator_version", (stream, after_seq)))

    def stream_head(self, stream: str) -> StoredRecord | None:
        rows = self._records(self.query(
            f"SELECT {self._event_columns()} FROM {self.events_table} WHERE originator_id=? "
            "ORDER BY originator_version DESC LIMIT 1", (stream,)))
        return rows[0] if rows else None

    def event_at(self, stream: str, seq: int) -> StoredRecord | None:
        rows = self.query(
            f"SELECT {self.position_column}, topic, state FROM {self.events_table} "
            "WHERE originator_id=? AND originator_version=?", (stream, seq))
        return StoredRecord(rows[0][0], stream, seq, str(rows[0][1]), _blob(rows[0][2])) \
            if rows else None

    def events_of(self, streams: Sequence[str]) -> list[StoredRecord]:
        """Every stored event of these streams, grouped by stream, each stream's in seq order
        (``IN_CHUNK`` streams a query)."""
        return self._records(self._query_in(
            f"SELECT {self._event_columns()} FROM {self.events_table} "
            "WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version",
            streams))

    def logged_events_of(self, streams: Sequence[str], *, through: int,
                         leaves: int) -> list[StoredRecord]:
        """The stored events of these streams that one of the first ``leaves`` leaves covers,
        at log positions up to ``through``, grouped by stream, each stream's in seq order: a
        row planted where no leaf points, or beyond that point of the log, is left out."""
        return self._records(self._query_in(
            f"SELECT {self._event_columns('e')} FROM {self.events_table} e "
            f"JOIN {self.t('xf_leaves')} l ON l.position = e.{self.position_column} "
            f"WHERE e.originator_id IN ({{marks}}) AND e.{self.position_column} <= ? "
            "AND l.idx >= 0 AND l.idx < ? ORDER BY e.originator_id, e.originator_version",
            streams, (through, leaves)))

    def latest_seqs_of_types(self, types: Sequence[str]) -> dict[str, dict[str, int]]:
        """For each stream holding events of these types, the highest seq of each, read from
        the stored type column (one aggregate, no replay): {stream: {type: seq}}."""
        found: dict[str, dict[str, int]] = {}
        for stream, topic, seq in self._query_in(
                f"SELECT originator_id, topic, MAX(originator_version) FROM {self.events_table} "
                "WHERE topic IN ({marks}) GROUP BY originator_id, topic", types):
            found.setdefault(str(stream), {})[str(topic)] = _int(seq)
        return found

    def max_case_number(self, prefix: str) -> str | None:
        """Largest stream id starting with ``prefix`` (an index range scan on the primary key)."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self.query(f"SELECT MAX(originator_id) FROM {self.events_table} "
                          "WHERE originator_id>=? AND originator_id<? AND originator_version=1",
                          (prefix, upper))
        return rows[0][0] if rows and rows[0][0] else None

    def recorded_commands(self, ids: Sequence[str]) -> dict[str, int]:
        """The log position of each of these command ids already recorded."""
        return {cmd: position for cmd, position in self._query_in(
            f"SELECT cmd, position FROM {self.t('xf_commands')} WHERE cmd IN ({{marks}})", ids)}

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self.query(f"SELECT size, root, note, frontier FROM {self.t('xf_checkpoints')} "
                          "ORDER BY size DESC LIMIT 1")
        return _checkpoint(rows[0]) if rows else None

    def iter_checkpoints(self, after: int = -1) -> Iterator[StoredCheckpoint]:
        """Stored checkpoints of a size above ``after``, by size."""
        last = after
        while True:
            rows = self.query(f"SELECT size, root, note, frontier FROM "
                              f"{self.t('xf_checkpoints')} WHERE size>? ORDER BY size LIMIT 1000",
                              (last,))
            for row in rows:
                yield _checkpoint(row)
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
        return _blob(rows[0][0])

    def root_at(self, size: int) -> bytes:
        from ledger.log.merkle import root_at

        return root_at(size, self.get_node)

    def max_position(self) -> int:
        try:
            return int(self.recorder.max_notification_id() or 0)
        except PersistenceError as exc:
            raise StorageError(f"database error: {exc}") from None

    # ---- reading for verification: every row, wherever it sits ---------------------------------

    def iter_rows(self, batch: int = 2000, after: int = -(2**63)
                  ) -> Iterator[list[tuple[int, str, int, str, bytes]]]:
        """Every stored event row as (position, stream, seq, topic, state), in position order,
        ``batch`` rows per query — including rows at positions zero or below, which
        eventsourcing's notification log never reads (verification must see them)."""
        statement = (f"SELECT {self._event_columns()} FROM {self.events_table} "
                     f"WHERE {self.position_column} > ? ORDER BY {self.position_column} LIMIT ?")
        while True:
            # what _records makes of each cell, straight into tuples (this reads every row)
            rows = [(r[0], str(r[1]), _int(r[2]), str(r[3]), _blob(r[4]))
                    for r in self.query(statement, (after, batch))]
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
                yield idx, position, _blob(digest)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def leaves_at(self, positions: Sequence[int]) -> dict[int, tuple[int, bytes]]:
        """Leaf index and stored leaf hash of each given log position that has a leaf."""
        return {position: (idx, _blob(digest)) for idx, position, digest in self._query_in(
            f"SELECT idx, position, hash FROM {self.t('xf_leaves')} WHERE position IN ({{marks}})",
            sorted(set(positions)))}

    def position_of_leaf(self, index: int) -> int | None:
        rows = self.query(f"SELECT position FROM {self.t('xf_leaves')} WHERE idx=?", (index,))
        return rows[0][0] if rows else None

    def has_log(self) -> bool:
        """Whether this database holds a ledger's log (leaves or checkpoints), initialized or
        not: a ledger whose directory was deleted is still a ledger to verify."""
        return bool(self.query(f"SELECT 1 FROM {self.t('xf_checkpoints')} LIMIT 1")) or \
            bool(self.query(f"SELECT 1 FROM {self.t('xf_leaves')} LIMIT 1"))

    # ---- witness cosignatures (issue 13) -------------------------------------------------------

    def _create_cosignatures_table(self) -> None:
        """``xf_cosignatures``: per (checkpoint size, witness key id) the witness's
        ``cosignature/v1`` line and the cosigned note it belongs to (the checkpoint, the log's
        signature, that line), kept whole so that it stays evidence whatever later happens to
        ``xf_checkpoints``. Append-only like the other side tables."""
        table = self.t("xf_cosignatures")
        statements = [f"CREATE TABLE IF NOT EXISTS {table} (size BIGINT NOT NULL, witness TEXT "
                      "NOT NULL, line TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (size, "
                      "witness))", *self._append_only_triggers([table])]
        with self.cursor(commit=True) as cur:
            for statement in statements:
                cur.execute(statement)

    def add_cosignatures(self, size: int, rows: Sequence[tuple[str, str, str]]) -> None:
        """Keep ``(witness key id, cosignature line, cosigned note)`` rows for the checkpoint of
        ``size``; a witness's first cosignature of a size is the one kept."""
        if not rows:
            return
        if not self.table_exists("xf_cosignatures"):
            self._create_cosignatures_table()
        with self.cursor(commit=True) as cur:
            cur.executemany(self.sql(f"INSERT INTO {self.t('xf_cosignatures')} (size, witness, "
                                     "line, note) VALUES (?,?,?,?) ON CONFLICT DO NOTHING"),
                            [(size, *row) for row in rows])

    def cosigned_sizes(self, witness: str | None = None) -> list[int]:
        """The checkpoint sizes with stored cosignatures (of one witness if given), ascending."""
        if not self.table_exists("xf_cosignatures"):
            return []
        where, params = ("WHERE witness=?", (witness,)) if witness is not None else ("", ())
        rows = self.query(f"SELECT DISTINCT size FROM {self.t('xf_cosignatures')} {where} "
                          "ORDER BY size", params)
        return [_int(r[0]) for r in rows]

    def cosignatures(self, size: int | None = None) -> list[tuple[int, str, str, str]]:
        """Stored ``(size, witness, line, note)`` rows, by size (of one size if given); cells
        of another type (a hostile SQLite row) read as text, for the verifier to reject."""
        if not self.table_exists("xf_cosignatures"):
            return []
        where, params = ("WHERE size=?", (size,)) if size is not None else ("", ())
        rows = self.query(f"SELECT size, witness, line, note FROM "
                          f"{self.t('xf_cosignatures')} {where} ORDER BY size, witness", params)
        return [(_int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    # ---- proofs and receipts (the ledger server) -----------------------------------------------

    def get_nodes(self, coords: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The stored Merkle nodes at these ``(level, index)`` coordinates (level 0: leaves),
        a few queries for all of them; missing ones are absent from the result."""
        wanted = sorted(set(coords))
        found: dict[tuple[int, int], bytes] = {}
        leaves = [idx for level, idx in wanted if level == 0]
        for idx, digest in self._query_in(
                f"SELECT idx, hash FROM {self.t('xf_leaves')} WHERE idx IN ({{marks}})", leaves):
            found[(0, _int(idx))] = _blob(digest)
        inner = [(level, idx) for level, idx in wanted if level > 0]
        for start in range(0, len(inner), IN_CHUNK // 2):
            chunk = inner[start:start + IN_CHUNK // 2]
            where = " OR ".join("(level=? AND idx=?)" for _ in chunk)
            for level, idx, digest in self.query(
                    f"SELECT level, idx, hash FROM {self.t('xf_nodes')} WHERE {where}",
                    [value for pair in chunk for value in pair]):
                found[(_int(level), _int(idx))] = _blob(digest)
        return found

    def checkpoint_of_size(self, size: int) -> StoredCheckpoint | None:
        """The stored checkpoint of a tree of ``size`` leaves, if there is one."""
        rows = self.query(f"SELECT size, root, note, frontier FROM {self.t('xf_checkpoints')} "
                          "WHERE size=?", (size,))
        return _checkpoint(rows[0]) if rows else None

    # ---- mirrors: a verifier's own copy of another ledger's rows -------------------------------

    def mirror_rows(self, events: Sequence[StoredRecord],
                    leaves: Sequence[tuple[int, int, bytes]],
                    nodes: Sequence[tuple[int, int, bytes]],
                    checkpoints: Sequence[StoredCheckpoint]) -> None:
        """Copy rows verbatim into this ledger's tables in one transaction: events at their
        own log positions, leaves ``(index, position, hash)``, tree nodes ``(level, index,
        hash)`` and checkpoints. A verifier's mirror of a served ledger (``verify --server``):
        nothing here judges the rows; the mirror is then verified like any ledger. A row whose
        key is already taken raises AppendConflict (nothing of the call is kept)."""
        with self.cursor(commit=True) as cur:
            if events:
                cur.executemany(self.sql(
                    f"INSERT INTO {self.events_table} ({self.position_column}, originator_id, "
                    "originator_version, topic, state) VALUES (?,?,?,?,?)"),
                    [(r.position, r.stream, r.seq, r.type, r.state) for r in events])
            if leaves:
                cur.executemany(self.sql(f"INSERT INTO {self.t('xf_leaves')} VALUES (?,?,?)"),
                                list(leaves))
            if nodes:
                cur.executemany(self.sql(f"INSERT INTO {self.t('xf_nodes')} VALUES (?,?,?)"),
                                list(nodes))
            if checkpoints:
                cur.executemany(
                    self.sql(f"INSERT INTO {self.t('xf_checkpoints')} VALUES (?,?,?,?)"),
                    [(c.size, c.root, c.note, c.frontier) for c in checkpoints])

    def max_row_position(self) -> int | None:
        """The highest log position of any stored event row (None when there is none)."""
        rows = self.query(f"SELECT MAX({self.position_column}) FROM {self.events_table}")
        return rows[0][0] if rows and rows[0][0] is not None else None


def _checkpoint(row: Sequence[Any]) -> StoredCheckpoint:
    return StoredCheckpoint(row[0], _blob(row[1]), row[2], _blob(row[3]))


def _bytes_or_none(value: Any) -> bytes | None:
    """A BLOB/BYTEA cell as bytes; None for anything else (a hostile SQLite cell)."""
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else None


def _blob(value: Any) -> bytes:
    """A stored bytes cell as bytes, whatever a superuser put there (SQLite cells are
    untyped): the verifier then fails the row instead of crashing on it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return b"" if value is None else str(value).encode("utf-8", "surrogatepass")


def _int(value: Any) -> int:
    """A stored sequence number; a cell of another type reads as -1 (a failing row)."""
    return value if type(value) is int else -1


def default_ledger_url() -> str:
    return os.environ.get("XINFANG_LEDGER") or "sqlite:///./xinfang.db"
