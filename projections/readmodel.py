"""The read-model tables (``rm_*``) in the ledger's own database, and the SQL that reads and
writes them. Column lists come from the fold's row classes, so a new field is one edit plus a
``PROJECTION_VERSION`` bump (which makes the next catch-up rebuild).

The tables are ordinary, mutable tables: the ledger's append-only triggers protect only the
ledger's own tables, and everything here can be dropped and replayed from the log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, fields
from datetime import date
from typing import Any

from ledger.errors import StorageError
from ledger.store import AppendConflict, Store

from .fold import ActorRow, AssignmentRow, CaseRow, UnitRow

PROJECTION = "cases"
PROJECTION_VERSION = 1
"""Bump whenever a table's shape or a fold's meaning changes: catch-up then rebuilds."""

_SQL_TYPES = {"str": "TEXT", "int": "BIGINT", "bool": "BOOLEAN", "date": "TEXT",
              "tuple[str, ...]": "TEXT"}


def _kind(annotation: Any) -> str:
    return str(annotation).replace(" | None", "")


def _encoder(kind: str) -> Callable[[Any], Any]:
    if kind == "date":
        return lambda v: v.isoformat() if v is not None else None
    if kind == "tuple[str, ...]":
        return lambda v: json.dumps(list(v), ensure_ascii=False)
    return lambda v: v


def _decoder(kind: str) -> Callable[[Any], Any]:
    if kind == "date":
        return lambda v: date.fromisoformat(v) if v is not None else None
    if kind == "tuple[str, ...]":
        return lambda v: tuple(json.loads(v)) if v else ()
    if kind == "bool":
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
        self._encode = [_encoder(k) for k in kinds]
        self._decode = [_decoder(k) for k in kinds]

    def ddl(self, store: Store) -> list[str]:
        cols = ", ".join(f"{c} {t}" for c, t in zip(self.columns, self.sql_types, strict=True))
        out = [f"CREATE TABLE IF NOT EXISTS {store.t(self.name)} ({cols}, "
               f"PRIMARY KEY ({', '.join(self.key)}))"]
        for column in self.indexes:
            out.append(f"CREATE INDEX IF NOT EXISTS {self.name}_{column} "
                       f"ON {store.t(self.name)} ({column})")
        return out

    def encode(self, row: Any) -> tuple[Any, ...]:
        return tuple(enc(v) for enc, v in zip(self._encode, astuple(row), strict=True))

    def decode(self, values: Sequence[Any]) -> Any:
        return self.row_type(*(dec(v) for dec, v in zip(self._decode, values, strict=True)))

    def select(self, store: Store, where: str = "", order: str = "") -> str:
        sql = f"SELECT {', '.join(self.columns)} FROM {store.t(self.name)}"
        return sql + (f" WHERE {where}" if where else "") + (f" ORDER BY {order}" if order else "")

    def upsert(self, store: Store) -> str:
        marks = ", ".join("?" * len(self.columns))
        updates = ", ".join(f"{c}=excluded.{c}" for c in self.columns if c not in self.key)
        return store.sql(f"INSERT INTO {store.t(self.name)} ({', '.join(self.columns)}) "
                         f"VALUES ({marks}) ON CONFLICT ({', '.join(self.key)}) "
                         f"DO UPDATE SET {updates}")

    def insert(self, store: Store) -> str:
        marks = ", ".join("?" * len(self.columns))
        return store.sql(f"INSERT INTO {store.t(self.name)} ({', '.join(self.columns)}) "
                         f"VALUES ({marks})")


CASES = Table("rm_cases", CaseRow, ["case_no"],
              indexes=["registered_on", "supervised_on", "unit", "petitioner"])
ASSIGNMENTS = Table("rm_assignments", AssignmentRow, ["case_no", "n"], indexes=["handler"])
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
    """Write one batch's changes: each touched case once, new rows by executemany."""
    case_rows = [CASES.encode(row) for row in cases]
    if case_rows:
        cur.executemany(CASES.upsert(store), case_rows)
    if assignments:
        cur.executemany(ASSIGNMENTS.insert(store), [ASSIGNMENTS.encode(a) for a in assignments])
    if repeats:
        cur.executemany(store.sql(f"INSERT INTO {store.t(REPEATS)} (case_no, earlier) "
                                  "VALUES (?,?) ON CONFLICT DO NOTHING"), list(repeats))
    for table, kind in ((UNITS, UnitRow), (ACTORS, ActorRow)):
        rows = [table.encode(n) for n in names if isinstance(n, kind)]
        if rows:
            cur.executemany(table.upsert(store), rows)


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
        decoded = [astuple(table.decode(r)) for r in store.query(table.select(store))]
        out[table.name] = sorted(decoded, key=repr)
    out[REPEATS] = sorted(store.query(f"SELECT case_no, earlier FROM {store.t(REPEATS)}"))
    return out
