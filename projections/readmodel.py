"""The read-model tables (``rm_*``) in the ledger's own database, and the SQL that reads and
writes them. Column lists come from the fold's row classes, so a new field is one edit plus a
``PROJECTION_VERSION`` bump (which makes the next catch-up rebuild).

The tables are ordinary, mutable tables: the ledger's append-only triggers protect only the
ledger's own tables, and everything here can be dropped and replayed from the log.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from typing import Any

from ledger.errors import StorageError
from ledger.storage.store import AppendConflict, Store

from .fold import ActorRow, AssignmentRow, CaseRow, UnitRow

PROJECTION = "cases"
PROJECTION_VERSION = 1
"""Bump whenever a table's shape or a fold's meaning changes: catch-up then rebuilds."""

_SQL_TYPES = {"str": "TEXT", "Day": "TEXT", "int": "BIGINT", "bool": "BOOLEAN",
              "tuple[str, ...]": "TEXT"}


def _kind(annotation: Any) -> str:
    return str(annotation).replace(" | None", "")


def _encoder(kind: str) -> Callable[[Any], Any] | None:
    """How a field's value is stored (None: as it is)."""
    if kind == "tuple[str, ...]":   # case numbers never contain commas
        return ",".join
    return None


def _decoder(kind: str) -> Callable[[Any], Any]:
    if kind == "tuple[str, ...]":
        return lambda v: tuple(v.split(",")) if v else ()
    if kind == "bool":   # SQLite gives 0/1
        return lambda v: bool(v) if v is not None else None
    return lambda v: v


class Table:
    """One ``rm_`` table mapped to a row dataclass (columns = fields, in order)."""

    def __init__(self, name: str, row_type: type, key: Sequence[str],
                 indexes: Sequence[str] = ()) -> None:
        self.name = name
        self.row_type = row_type
        self.key = tuple(key)
        self.indexes = tuple(indexes)
        self.columns = [f.name for f in fields(row_type)]
        kinds = [_kind(f.type) for f in fields(row_type)]
        self.sql_types = [_SQL_TYPES[k] for k in kinds]
        self._values = operator.attrgetter(*self.columns)
        encoders = [_encoder(k) for k in kinds]
        self._encode = [(i, enc) for i, enc in enumerate(encoders) if enc is not None]
        self._decode = [_decoder(k) for k in kinds]

    def ddl(self, store: Store) -> list[str]:
        cols = ", ".join(f"{c} {t}" for c, t in zip(self.columns, self.sql_types, strict=True))
        out = [f"CREATE TABLE IF NOT EXISTS {store.t(self.name)} ({cols}, "
               f"PRIMARY KEY ({', '.join(self.key)}))"]
        for column in self.indexes:
            out.append(f"CREATE INDEX IF NOT EXISTS {self.name}_{column} "
                       f"ON {store.t(self.name)} ({column})")
        return out

    def values(self, row: Any) -> tuple[Any, ...]:
        """The row's field values, in column order."""
        return self._values(row)  # type: ignore[no-any-return]

    def encode(self, row: Any) -> list[Any]:
        values = list(self._values(row))
        for i, enc in self._encode:   # only lists need converting
            values[i] = enc(values[i])
        return values

    def decode(self, values: Sequence[Any]) -> Any:
        return self.row_type(*(dec(v) for dec, v in zip(self._decode, values, strict=True)))

    def select(self, store: Store, where: str = "", order: str = "") -> str:
        sql = f"SELECT {', '.join(self.columns)} FROM {store.t(self.name)}"
        return sql + (f" WHERE {where}" if where else "") + (f" ORDER BY {order}" if order else "")

    @property
    def updates(self) -> str:
        return ", ".join(f"{c}=excluded.{c}" for c in self.columns if c not in self.key)

    def upsert(self, store: Store) -> str:
        marks = ", ".join("?" * len(self.columns))
        return store.sql(f"INSERT INTO {store.t(self.name)} ({', '.join(self.columns)}) "
                         f"VALUES ({marks}) ON CONFLICT ({', '.join(self.key)}) "
                         f"DO UPDATE SET {self.updates}")

    def insert(self, store: Store) -> str:
        marks = ", ".join("?" * len(self.columns))
        return store.sql(f"INSERT INTO {store.t(self.name)} ({', '.join(self.columns)}) "
                         f"VALUES ({marks})")


# Only the indexes the reports query by: every index costs each of the many row writes.
CASES = Table("rm_cases", CaseRow, ["case_no"], indexes=["registered_on", "supervised_on"])
ASSIGNMENTS = Table("rm_assignments", AssignmentRow, ["case_no", "n"])
UNITS = Table("rm_units", UnitRow, ["unit"])
ACTORS = Table("rm_actors", ActorRow, ["actor"])
TABLES = (CASES, ASSIGNMENTS, UNITS, ACTORS)
REPEATS = "rm_repeats"        # (case_no, earlier): the later case names the earlier one
TRACKING = "rm_tracking"      # (name, position, version, skipped)
ALL_TABLES = (*(t.name for t in TABLES), REPEATS, TRACKING)


def create_tables(cur: Any, store: Store) -> None:
    for table in TABLES:
        for statement in table.ddl(store):
            cur.execute(statement)
    cur.execute(f"CREATE TABLE IF NOT EXISTS {store.t(REPEATS)} (case_no TEXT NOT NULL, "
                "earlier TEXT NOT NULL, PRIMARY KEY (case_no, earlier))")
    cur.execute(f"CREATE INDEX IF NOT EXISTS {REPEATS}_earlier ON {store.t(REPEATS)} (earlier)")
    cur.execute(f"CREATE TABLE IF NOT EXISTS {store.t(TRACKING)} (name TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL, version INTEGER NOT NULL, skipped BIGINT NOT NULL)")


def drop_tables(cur: Any, store: Store) -> None:
    for name in ALL_TABLES:
        cur.execute(f"DROP TABLE IF EXISTS {store.t(name)}")


def tables_exist(store: Store) -> bool:
    if store.backend == "sqlite":
        rows = store.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                           (TRACKING,))
    else:
        schema = (store.location.env or {}).get("POSTGRES_SCHEMA", "public")
        rows = store.query("SELECT 1 FROM information_schema.tables WHERE table_schema=? "
                           "AND table_name=?", (schema, TRACKING))
    return bool(rows)


REBUILD_HINT = "Run `xinfang projections rebuild` to recreate the read model from the ledger."


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.Error, AppendConflict]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(errors)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn driver errors raised by read-model SQL into the project's StorageError."""
    try:
        yield
    except _driver_errors() as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"read-model database error: {first}", REBUILD_HINT) from None


# ---- tracking ------------------------------------------------------------------------------

def read_tracking(cur: Any, store: Store, *, lock: bool = False) -> tuple[int, int, int] | None:
    """(position, version, skipped) of the projection; ``lock`` holds the row until commit."""
    suffix = " FOR UPDATE" if lock and store.backend == "postgresql" else ""
    cur.execute(store.sql(f"SELECT position, version, skipped FROM {store.t(TRACKING)} "
                          f"WHERE name=?{suffix}"), (PROJECTION,))
    row = cur.fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else None


def write_tracking(cur: Any, store: Store, position: int, skipped: int) -> None:
    cur.execute(store.sql(f"INSERT INTO {store.t(TRACKING)} (name, position, version, skipped) "
                          "VALUES (?,?,?,?) ON CONFLICT (name) DO UPDATE SET "
                          "position=excluded.position, version=excluded.version, "
                          "skipped=excluded.skipped"),
                (PROJECTION, position, PROJECTION_VERSION, skipped))


# ---- batch I/O -------------------------------------------------------------------------------

def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def load_cases(cur: Any, store: Store, case_nos: Sequence[str]) -> dict[str, CaseRow]:
    """The stored rows of these cases, in one query per 500 cases."""
    found: dict[str, CaseRow] = {}
    for chunk in _chunks(list(case_nos)):
        marks = ",".join("?" * len(chunk))
        cur.execute(store.sql(CASES.select(store, f"case_no IN ({marks})")), tuple(chunk))
        for values in cur.fetchall():
            row = CASES.decode(values)
            found[row.case_no] = row
    return found


def save_batch(cur: Any, store: Store, cases: Iterable[CaseRow],
               assignments: Sequence[AssignmentRow], repeats: Sequence[tuple[str, str]],
               names: Sequence[UnitRow | ActorRow]) -> None:
    """Write one batch's changes: each touched case once, new rows in bulk."""
    write_rows(cur, store, CASES, [CASES.encode(row) for row in cases], upsert=True)
    write_rows(cur, store, ASSIGNMENTS, [ASSIGNMENTS.encode(a) for a in assignments])
    if repeats:
        cur.executemany(store.sql(f"INSERT INTO {store.t(REPEATS)} (case_no, earlier) "
                                  "VALUES (?,?) ON CONFLICT DO NOTHING"), list(repeats))
    for table, kind in ((UNITS, UnitRow), (ACTORS, ActorRow)):
        write_rows(cur, store, table, [table.encode(n) for n in names if isinstance(n, kind)],
                   upsert=True)


def write_rows(cur: Any, store: Store, table: Table, rows: Sequence[Sequence[Any]], *,
               upsert: bool = False) -> None:
    """Insert (or upsert) encoded rows. PostgreSQL gets them by COPY into a temporary table
    and one INSERT … SELECT: half the cost of a pipelined executemany of wide rows."""
    if not rows:
        return
    if store.backend == "sqlite" or len(rows) < 50:
        cur.executemany(table.upsert(store) if upsert else table.insert(store), rows)
        return
    staging = f"{table.name}_in"
    columns = ", ".join(table.columns)
    cur.execute(f"CREATE TEMPORARY TABLE {staging} (LIKE {store.t(table.name)}) ON COMMIT DROP")
    with cur.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    sql = f"INSERT INTO {store.t(table.name)} ({columns}) SELECT {columns} FROM {staging}"
    if upsert:
        sql += f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {table.updates}"
    cur.execute(sql)


# ---- report queries ----------------------------------------------------------------------------

def cases_where(store: Store, where: str = "", params: Sequence[Any] = ()) -> list[CaseRow]:
    rows = store.query(CASES.select(store, where, "case_no"), params)
    return [CASES.decode(values) for values in rows]


def cases_registered(store: Store, start: date, end: date) -> list[CaseRow]:
    """Cases whose registration business date lies in [start, end]."""
    return cases_where(store, "registered_on >= ? AND registered_on <= ?",
                       (start.isoformat(), end.isoformat()))


def supervised_cases(store: Store) -> list[CaseRow]:
    """Cases ever supervised (whether by a given date is the report's question)."""
    return cases_where(store, "supervised_on IS NOT NULL")


def names(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    """Display names: ({unit: name}, {actor: name})."""
    units = dict(store.query(f"SELECT unit, name FROM {store.t(UNITS.name)}"))
    actors = dict(store.query(f"SELECT actor, name FROM {store.t(ACTORS.name)}"))
    return units, actors


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row, decoded and sorted: to compare a resumed catch-up with a rebuild."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        decoded = [table.values(table.decode(r)) for r in store.query(table.select(store))]
        out[table.name] = sorted(decoded, key=repr)
    out[REPEATS] = sorted(store.query(f"SELECT case_no, earlier FROM {store.t(REPEATS)}"))
    return out
