"""The read-model tables (``rm_*``) in the ledger's own database, and the SQL that reads and
writes them: the read side's one storage module (the ledger's own tables are read only through
:class:`ledger.storage.store.Store` methods, and backend differences come from the store).
Column lists come from the fold's row classes, so a new field is one edit plus a
``PROJECTION_VERSION`` bump (which makes the next catch-up rebuild).

The tables are ordinary, mutable tables: the ledger's append-only triggers protect only the
ledger's own tables, and everything here can be dropped and replayed from the log.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from typing import Any, NamedTuple

from ledger.errors import StorageError
from ledger.storage.store import AppendConflict, Store, driver_errors

from .fold import ActorRow, AssignmentRow, CaseRow, UnitRow

PROJECTION = "cases"
PROJECTION_VERSION = 3
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
        return self._values(row)

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
TRACKING = "rm_tracking"      # (name, position, version, skipped, leaves, frontier)
FAILURES = "rm_failures"      # events the checked log judged failing: never folded
ALL_TABLES = (*(t.name for t in TABLES), REPEATS, TRACKING, FAILURES)


def create_tables(cur: Any, store: Store) -> None:
    for table in TABLES:
        for statement in table.ddl(store):
            cur.execute(statement)
    cur.execute(f"CREATE TABLE IF NOT EXISTS {store.t(REPEATS)} (case_no TEXT NOT NULL, "
                "earlier TEXT NOT NULL, PRIMARY KEY (case_no, earlier))")
    cur.execute(f"CREATE INDEX IF NOT EXISTS {REPEATS}_earlier ON {store.t(REPEATS)} (earlier)")
    blob = store.blob_type
    cur.execute(f"CREATE TABLE IF NOT EXISTS {store.t(TRACKING)} (name TEXT PRIMARY KEY, "
                "position BIGINT NOT NULL, version INTEGER NOT NULL, skipped BIGINT NOT NULL, "
                f"leaves BIGINT NOT NULL, frontier {blob} NOT NULL)")
    cur.execute(f"CREATE TABLE IF NOT EXISTS {store.t(FAILURES)} (position BIGINT NOT NULL, "
                "check_no INTEGER NOT NULL, stream TEXT, seq BIGINT, reason TEXT NOT NULL, "
                "PRIMARY KEY (position, check_no))")


def drop_tables(cur: Any, store: Store) -> None:
    for name in ALL_TABLES:
        cur.execute(f"DROP TABLE IF EXISTS {store.t(name)}")


def tables_exist(store: Store) -> bool:
    return store.table_exists(TRACKING)


REBUILD_HINT = "Run `xinfang projections rebuild` to recreate the read model from the ledger."


def _driver_errors() -> tuple[type[BaseException], ...]:
    return (*driver_errors(), AppendConflict)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn driver errors raised by read-model SQL into the project's StorageError."""
    try:
        yield
    except _driver_errors() as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"read-model database error: {first}", REBUILD_HINT) from None


# ---- tracking ------------------------------------------------------------------------------

class Tracking(NamedTuple):
    """Where the read model stands: the last log position folded (judged by the checked
    log), the projection version, how many events failed and were not folded, and the Merkle
    tree recomputed up to there (leaf count and frontier), so the next catch-up resumes."""

    position: int
    version: int
    skipped: int
    leaves: int
    frontier: bytes


def tracked_version(cur: Any, store: Store, *, lock: bool = False) -> int | None:
    """The projection version the tables were built by (a query every version answers)."""
    suffix = store.for_update if lock else ""
    cur.execute(store.sql(f"SELECT version FROM {store.t(TRACKING)} WHERE name=?{suffix}"),
                (PROJECTION,))
    row = cur.fetchone()
    return int(row[0]) if row else None


def read_tracking(cur: Any, store: Store, *, lock: bool = False) -> Tracking | None:
    """The projection's tracking row; ``lock`` holds it until commit (where the write
    transaction does not hold the whole database already)."""
    suffix = store.for_update if lock else ""
    cur.execute(store.sql(f"SELECT position, version, skipped, leaves, frontier "
                          f"FROM {store.t(TRACKING)} WHERE name=?{suffix}"), (PROJECTION,))
    row = cur.fetchone()
    return Tracking(int(row[0]), int(row[1]), int(row[2]), int(row[3]), bytes(row[4])) \
        if row else None


def write_tracking(cur: Any, store: Store, position: int, skipped: int, leaves: int = 0,
                   frontier: bytes = b"") -> None:
    cur.execute(store.sql(f"INSERT INTO {store.t(TRACKING)} (name, position, version, skipped, "
                          "leaves, frontier) VALUES (?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE "
                          "SET position=excluded.position, version=excluded.version, "
                          "skipped=excluded.skipped, leaves=excluded.leaves, "
                          "frontier=excluded.frontier"),
                (PROJECTION, position, PROJECTION_VERSION, skipped, leaves, frontier))


def save_failures(cur: Any, store: Store,
                  failures: Sequence[tuple[int, int, str | None, int | None, str]]) -> None:
    """Record failing events (position, check, stream, seq, reason), once each."""
    if failures:
        cur.executemany(store.sql(
            f"INSERT INTO {store.t(FAILURES)} (position, check_no, stream, seq, reason) "
            "VALUES (?,?,?,?,?) ON CONFLICT (position, check_no) DO NOTHING"), failures)


def failures(store: Store) -> list[tuple[int, int, str | None, int | None, str]]:
    """Every recorded failure, by position."""
    return [(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in store.query(
        f"SELECT position, check_no, stream, seq, reason FROM {store.t(FAILURES)} "
        "ORDER BY position, check_no")]


def counted_events(store: Store, case_nos: Sequence[str]) -> list[tuple[Any, ...]]:
    """The stored events of these cases that the checked log has judged and accepted, as
    (position, stream, seq, topic, state), by case and seq: rows at a position no leaf
    covers (planted outside the log), beyond what was judged, or judged failing, are left
    out, so every read-side fold sees exactly the events the reports were built from."""
    with store.cursor() as cur:
        tracked = read_tracking(cur, store)
    if tracked is None:
        return []
    records = store.logged_events_of(case_nos, through=tracked.position, leaves=tracked.leaves)
    failed = failed_positions(store, [r.position for r in records])
    return [(r.position, r.stream, r.seq, r.type, r.state) for r in records
            if r.position not in failed]


def failed_positions(store: Store, positions: Sequence[int]) -> set[int]:
    """Which of these log positions hold an event recorded in ``rm_failures``."""
    found: set[int] = set()
    for chunk in _chunks(sorted(set(positions))):
        marks = ",".join("?" * len(chunk))
        found.update(int(p) for (p,) in store.query(
            f"SELECT DISTINCT position FROM {store.t(FAILURES)} WHERE position IN ({marks})",
            chunk))
    return found


# ---- batch I/O -------------------------------------------------------------------------------

def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
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
    if not store.supports_copy or len(rows) < 50:
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


def cases_registered_by(store: Store, day: str) -> list[CaseRow]:
    """Cases whose registration business date is on or before ``day`` (ISO date)."""
    return cases_where(store, "registered_on <= ?", (day,))


def cases_assigned_to(store: Store, unit: str, day: str) -> list[str]:
    """Case numbers ever assigned to ``unit`` on or before ``day`` (ISO date), sorted."""
    rows = store.query(f"SELECT DISTINCT case_no FROM {store.t(ASSIGNMENTS.name)} "
                       "WHERE unit = ? AND assigned_on <= ? ORDER BY case_no", (unit, day))
    return [case_no for (case_no,) in rows]


def actors(store: Store) -> list[ActorRow]:
    """Every actor row (unit and roles)."""
    return [ACTORS.decode(values) for values in store.query(ACTORS.select(store))]


def units(store: Store) -> list[UnitRow]:
    """Every unit row (name and parent)."""
    return [UNITS.decode(values) for values in store.query(UNITS.select(store))]


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


def cases_to_list(store: Store, through: str, *, petitioner: str | None = None,
                  category: str | None = None, registered_from: str | None = None,
                  registered_to: str | None = None) -> list[CaseRow]:
    """Cases registered on or before ``through`` (ISO date), narrowed in SQL by the fields a
    later event never changes (petitioner, category, registration date); ``case list``
    judges the fields that do change after refolding as of its date."""
    clauses, params = ["registered_on <= ?"], [through]
    for column, op, value in (("petitioner", "=", petitioner), ("category", "=", category),
                              ("registered_on", ">=", registered_from),
                              ("registered_on", "<=", registered_to)):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    return cases_where(store, " AND ".join(clauses), params)
