"""The storage contract: one abstract test class, bound once per backend (as eventsourcing binds
its own recorder tests), so SQLite and PostgreSQL answer every Store method the same way.

Also pinned here: each eventsourcing name the backend classes rely on beyond the recorder's
documented interface, to the version pyproject.toml pins, so an upgrade that renames or
reshapes one fails in this file first (and nowhere else uses such a name); and the rule that
SQL against the ledger's tables lives only in ``ledger/storage`` (the read model's own tables:
``projections/readmodel.py``).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from ledger.errors import EnvironmentProblem, StorageError
from ledger.log.keys import Signer
from ledger.log.log_signer import LogSigner, UnprovenTreeError
from ledger.log.merkle import CompactRange, leaf_hash
from ledger.log.statement import Envelope, leaf_bytes
from ledger.storage import open_store
from ledger.storage.postgres import PostgresStore
from ledger.storage.sqlite import SQLiteStore
from ledger.storage.store import (
    SIDE_TABLES,
    AppendConflict,
    PendingEvent,
    Store,
    StoredRecord,
    parse_location,
)
from tests.conftest import scratch_ledger_url
from tests.tamper import events_table, superuser
from tests.world import World

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "contract.example/ledger"


def event(stream: str, seq: int, kind: str = "progress", cmd: str | None = None) -> PendingEvent:
    return PendingEvent(stream, seq, kind, f"{stream}#{seq}:{kind}".encode(), cmd)


def root_of(states: list[tuple[int, bytes]]) -> bytes:
    tree = CompactRange()
    for position, state in states:
        tree.append(leaf_hash(leaf_bytes(position, state)))
    return tree.root()


class StoreContract:
    """What every backend's Store does. Subclasses name the backend."""

    backend: str = ""
    store_class: type[Store] = Store

    @pytest.fixture
    def url(self, tmp_path: Path, pg_problem: str | None) -> Iterator[str]:
        yield from scratch_ledger_url(self.backend, tmp_path, pg_problem)

    @pytest.fixture
    def store(self, url: str) -> Iterator[Store]:
        store = Store(parse_location(url), create=True)
        yield store
        store.close()

    @pytest.fixture
    def signer(self, tmp_path: Path) -> LogSigner:
        keys = tmp_path / "keys"
        keys.mkdir()
        log = LogSigner(keys, ORIGIN, Signer.generate("log"))
        log.start()
        return log

    # ---- opening -------------------------------------------------------------------------------

    def test_location_opens_its_backend_class(self, store: Store, url: str) -> None:
        assert type(store) is self.store_class and store.backend == self.backend
        with Store(parse_location(url)) as again, open_store(url) as third:
            assert type(again) is type(third) is self.store_class
        assert store.table_exists("xf_leaves") and not store.table_exists("xf_no_such")
        assert not store.has_log() and not store.is_initialized()
        assert store.max_position() == 0 and store.leaf_count() == 0
        assert store.latest_checkpoint() is None and list(store.iter_checkpoints()) == []

    def test_missing_ledger_is_an_environment_problem(self, url: str) -> None:
        with pytest.raises(EnvironmentProblem, match="no ledger"):
            Store(parse_location(url))

    # ---- append and read back ------------------------------------------------------------------

    def test_append_and_read_back(self, store: Store, signer: LogSigner) -> None:
        first = store.append([event("directory", 1, "init"), event("XF-2025-000001", 1,
                                                                    "register", cmd="c-1")],
                             signer)
        second = store.append([event("XF-2025-000001", 2), event("XF-2025-000002", 1,
                                                                 "register", cmd="c-2")], signer)
        positions = first + second
        assert positions == sorted(positions) and len(set(positions)) == 4
        assert store.is_initialized() and store.has_log()
        assert store.max_position() == positions[-1]

        case = store.stream("XF-2025-000001")
        assert [(r.position, r.seq, r.type, r.state) for r in case] == [
            (positions[1], 1, "register", b"XF-2025-000001#1:register"),
            (positions[2], 2, "progress", b"XF-2025-000001#2:progress")]
        assert store.stream("XF-2025-000001", after_seq=1) == case[1:]
        assert store.stream("nobody") == [] and store.stream_head("nobody") is None
        assert store.stream_head("XF-2025-000001") == case[1]
        assert store.event_at("XF-2025-000001", 2) == case[1]
        assert store.event_at("XF-2025-000001", 3) is None
        assert store.max_case_number("XF-2025-") == "XF-2025-000002"
        assert store.max_case_number("XF-2024-") is None
        assert store.recorded_commands(["c-1", "c-2", "c-3"]) == {"c-1": positions[1],
                                                                  "c-2": positions[3]}
        grouped = store.events_of(["XF-2025-000002", "XF-2025-000001", "nobody"])
        assert sorted(grouped, key=lambda r: (r.stream, r.seq)) == [*case, store.stream(
            "XF-2025-000002")[0]]
        assert [n.id for n in store.iter_log()] == positions
        assert [n.id for n in store.iter_log(after=positions[1], batch=1)] == positions[2:]

    def test_the_log_side_tables(self, store: Store, signer: LogSigner) -> None:
        pending = [event("directory", 1, "init"), event("a", 1), event("b", 1), event("a", 2),
                   event("c", 1)]
        positions = store.append(pending[:2], signer) + store.append(pending[2:], signer)
        leaves = list(store.iter_leaves())
        assert [(i, p) for i, p, _ in leaves] == list(enumerate(positions))
        assert [d for _, _, d in leaves] == [leaf_hash(leaf_bytes(p, e.state))
                                              for p, e in zip(positions, pending, strict=True)]
        assert list(store.iter_leaves(batch=2, after=2)) == leaves[3:]
        assert store.leaves_at([positions[4], positions[0], 10**9]) == {
            positions[0]: (0, leaves[0][2]), positions[4]: (4, leaves[4][2])}
        assert [store.position_of_leaf(i) for i in range(5)] == positions
        assert store.position_of_leaf(5) is None and store.leaf_index(positions[3]) == 3
        assert store.leaf_count() == 5

        checkpoints = list(store.iter_checkpoints())
        assert [c.size for c in checkpoints] == [2, 5]
        assert [c.size for c in store.iter_checkpoints(after=2)] == [5]
        latest = store.latest_checkpoint()
        assert latest == checkpoints[-1]
        expected = root_of([(p, e.state) for p, e in zip(positions, pending, strict=True)])
        assert latest.root == expected == store.root_at(5)
        assert f"\n{5}\n" in latest.note and latest.note.startswith(ORIGIN + "\n")
        assert store.write_checkpoint(signer) == latest

    def test_iter_rows_reads_rows_the_notification_log_skips(self, store: Store,
                                                             signer: LogSigner) -> None:
        """A superuser can plant rows at positions zero or below, where eventsourcing's
        notification log never looks: verification reads every row."""
        positions = store.append([event("directory", 1, "init"), event("a", 1)], signer)
        with superuser(store) as db:
            for position, seq in ((0, 2), (-3, 3)):
                db.execute(f"INSERT INTO {events_table(store)} ({store.position_column}, "
                           "originator_id, originator_version, topic, state) VALUES (?,?,?,?,?)",
                           (position, "a", seq, "planted", b"x"))
        batches = list(store.iter_rows(batch=2))
        assert [len(b) for b in batches] == [2, 2]
        rows = [row for batch in batches for row in batch]
        assert [r[0] for r in rows] == [-3, 0, *positions]
        assert rows[0] == (-3, "a", 3, "planted", b"x")
        assert [r[0] for b in store.iter_rows(after=0) for r in b] == positions
        assert [n.id for n in store.iter_log()] == positions   # the notification log skips them
        # Only rows a leaf covers, up to the given point of the log:
        logged = store.logged_events_of(["a", "directory"], through=positions[-1], leaves=2)
        assert sorted(r.position for r in logged) == positions
        assert [r.position for r in store.logged_events_of(["a"], through=positions[0],
                                                           leaves=2)] == []
        assert [r.position for r in store.logged_events_of(["a"], through=positions[-1],
                                                           leaves=1)] == []
        assert {r.seq for r in store.events_of(["a"])} == {1, 2, 3}

    def test_latest_seqs_of_types(self, store: Store, signer: LogSigner) -> None:
        store.append([event("directory", 1, "init"), event("a", 1, "close"),
                      event("a", 2, "reopen"), event("a", 3, "close"), event("b", 1, "close"),
                      event("b", 2, "reopen"), event("c", 1, "progress")], signer)
        assert store.latest_seqs_of_types(("close", "reopen")) == {
            "a": {"close": 3, "reopen": 2}, "b": {"close": 1, "reopen": 2}}
        assert store.latest_seqs_of_types(()) == {}

    # ---- conflicts -----------------------------------------------------------------------------

    def test_taken_stream_seq_is_a_conflict_and_writes_nothing(self, store: Store,
                                                               signer: LogSigner) -> None:
        store.append([event("directory", 1, "init"), event("a", 1)], signer)
        before = (store.max_position(), store.leaf_count(), store.latest_checkpoint())
        with pytest.raises(AppendConflict):
            store.append([event("b", 1), event("a", 1)], signer)
        with pytest.raises(AppendConflict):
            store.append([event("c", 1), event("c", 1)], signer)
        assert store.stream("b") == [] and store.stream("c") == []
        assert (store.leaf_count(), store.latest_checkpoint()) == before[1:]
        assert store.append([event("b", 1)], signer)[0] > before[0]   # the signer is intact
        assert store.leaf_count() == 3

    def test_taken_command_id_is_a_conflict_and_writes_nothing(self, store: Store,
                                                               signer: LogSigner) -> None:
        store.append([event("directory", 1, "init"), event("a", 1, cmd="line-1")], signer)
        with pytest.raises(AppendConflict):
            store.append([event("b", 1, cmd="line-1")], signer)
        assert store.stream("b") == [] and store.leaf_count() == 2
        assert store.recorded_commands(["line-1"]) == {"line-1": store.stream("a")[0].position}

    # ---- append-only ---------------------------------------------------------------------------

    def tables(self, store: Store) -> list[str]:
        return [store.events_table, *(store.t(name) for name in SIDE_TABLES)]

    @pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
    def test_triggers_reject_changes(self, store: Store, signer: LogSigner,
                                     operation: str) -> None:
        store.append([event("directory", 1, "init", cmd="c"), event("a", 1), event("a", 2)],
                     signer)
        before = [store.query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in self.tables(store)]
        assert all(before)   # every table holds rows for the statement to touch
        for table in self.tables(store):
            column = {"xf_leaves": "position", "xf_nodes": "level", "xf_checkpoints": "size",
                      "xf_commands": "position"}.get(table.split(".")[-1], "originator_version")
            statement = f"UPDATE {table} SET {column}={column}" if operation == "UPDATE" \
                else f"DELETE FROM {table}"
            with pytest.raises(StorageError, match="append-only"), \
                    store.cursor(commit=True) as cur:
                cur.execute(statement)
        assert [store.query(f"SELECT COUNT(*) FROM {t}")[0][0]
                for t in self.tables(store)] == before

    # ---- transactions and errors ---------------------------------------------------------------

    def test_cursor_commits_only_when_asked(self, store: Store) -> None:
        with store.cursor(commit=True) as cur:
            cur.execute(f"CREATE TABLE {store.t('rm_contract')} (k TEXT PRIMARY KEY, "
                        f"v {store.blob_type})")
        with store.cursor() as cur:
            cur.execute(store.sql(f"INSERT INTO {store.t('rm_contract')} VALUES (?, ?)"),
                        ("dropped", b"\x00"))
        with pytest.raises(RuntimeError), store.cursor(commit=True) as cur:
            cur.execute(store.sql(f"INSERT INTO {store.t('rm_contract')} VALUES (?, ?)"),
                        ("failed", b"\x01"))
            raise RuntimeError("the caller failed mid-transaction")
        with store.cursor(commit=True) as cur:
            cur.execute(store.sql(f"INSERT INTO {store.t('rm_contract')} VALUES (?, ?)"),
                        ("kept", b"\x00\xff"))
        with store.cursor(commit=True) as cur:   # the write lock's row form, on every backend
            cur.execute(store.sql(f"SELECT v FROM {store.t('rm_contract')} WHERE k=?"
                                  f"{store.for_update}"), ("kept",))
            assert bytes(cur.fetchone()[0]) == b"\x00\xff"
        assert store.query(f"SELECT k FROM {store.t('rm_contract')}") == [("kept",)]
        assert store.table_exists("rm_contract")

    def test_unique_violation_in_a_cursor_is_a_conflict(self, store: Store) -> None:
        with store.cursor(commit=True) as cur:
            cur.execute(f"CREATE TABLE {store.t('rm_contract')} (k TEXT PRIMARY KEY)")
            cur.execute(store.sql(f"INSERT INTO {store.t('rm_contract')} VALUES (?)"), ("k",))
        with pytest.raises(AppendConflict), store.cursor(commit=True) as cur:
            cur.execute(store.sql(f"INSERT INTO {store.t('rm_contract')} VALUES (?)"), ("k",))

    def test_database_errors_are_storage_errors(self, store: Store) -> None:
        with pytest.raises(StorageError, match="database error"):
            store.query("SELECT * FROM xf_no_such_table")
        with pytest.raises(StorageError, match="database error"), \
                store.cursor(commit=True) as cur:
            cur.execute("THIS IS NOT SQL")

    def test_write_checkpoint_refuses_leaves_beyond_the_signed_tree(
            self, store: Store, signer: LogSigner) -> None:
        positions = store.append([event("directory", 1, "init"), event("a", 1)], signer)
        with superuser(store) as db:
            db.execute(f"INSERT INTO {store.t('xf_leaves').split('.')[-1]} VALUES (?,?,?)",
                       (2, positions[-1] + 100, b"\x00" * 32))
        with pytest.raises(UnprovenTreeError):
            store.write_checkpoint(signer)
        with pytest.raises(UnprovenTreeError):   # and no write signs past them
            store.append([event("a", 2)], signer)
        assert store.stream("a")[-1].seq == 1

    # ---- the eventsourcing names the backend relies on -----------------------------------------

    def test_events_table_is_eventsourcings(self, store: Store) -> None:
        name = store.recorder.events_table_name
        assert isinstance(name, str) and store.events_table.endswith(name)
        assert store.table_exists(name)


class TestSQLiteStore(StoreContract):
    backend = "sqlite"
    store_class = SQLiteStore

    def test_pinned_connection_surface(self, store: Store) -> None:
        """BEGIN IMMEDIATE needs the raw sqlite3 cursor of one of eventsourcing's pooled
        connections: reached through these names only."""
        from eventsourcing.sqlite import SQLiteConnection, SQLiteCursor, SQLiteDatastore

        assert params(SQLiteDatastore.get_connection) == ["self", "commit"]
        assert params(SQLiteCursor.__init__) == ["self", "sqlite_cursor"]
        for name in ("cursor", "commit", "rollback"):
            assert params(getattr(SQLiteConnection, name)) == ["self"]
        with store.factory.datastore.get_connection(commit=False) as conn:
            assert isinstance(conn, SQLiteConnection)
            assert isinstance(conn.cursor().sqlite_cursor, sqlite3.Cursor)
        assert store.recorder.events_table_name == "stored_events"

    def test_untyped_cells_read_as_failing_values(self, store: Store,
                                                  signer: LogSigner) -> None:
        """SQLite keeps any type in any column: readers get bytes and ints they can judge."""
        store.append([event("directory", 1, "init"), event("a", 1), event("a", 2)], signer)
        with superuser(store) as db:
            db.execute("UPDATE stored_events SET state=? WHERE originator_version=2", ("text",))
            db.execute("UPDATE stored_events SET originator_version=? WHERE "
                       "originator_id='a' AND originator_version=1", ("one",))
        rows = {r[2]: r for batch in store.iter_rows() for r in batch if r[1] == "a"}
        assert rows[2][4] == b"text" and -1 in rows
        assert store.event_at("a", 2) == StoredRecord(rows[2][0], "a", 2, "progress", b"text")

    def test_malformed_checkpoint_row_is_refused(self, store: Store, signer: LogSigner) -> None:
        store.append([event("directory", 1, "init")], signer)
        with superuser(store) as db:
            db.execute("UPDATE xf_checkpoints SET root=?", ("not bytes",))
        with pytest.raises(UnprovenTreeError, match="malformed"):
            store.append([event("a", 1)], signer)
        assert store.stream("a") == []


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    backend = "postgresql"
    store_class = PostgresStore

    def test_triggers_reject_truncate(self, store: Store, signer: LogSigner) -> None:
        store.append([event("directory", 1, "init", cmd="c")], signer)
        for table in self.tables(store):
            with pytest.raises(StorageError, match="append-only"), \
                    store.cursor(commit=True) as cur:
                cur.execute(f"TRUNCATE {table}")
        assert store.leaf_count() == 1 and store.is_initialized()

    def test_pinned_insert_takes_the_exclusive_lock(self, store: Store) -> None:
        """The one private eventsourcing method used: it must insert in the caller's
        transaction, hold the EXCLUSIVE table lock until commit and return the new ids."""
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        insert = PostgresApplicationRecorder._insert_stored_events
        assert params(insert) == ["self", "curs", "stored_events", "kwargs"]
        assert params(PostgresDatastore.get_connection) == ["self"]
        with store.cursor() as cur:   # rolled back
            store.recorder._insert_stored_events(cur, [
                StoredEvent(originator_id="pin", originator_version=v, topic="t", state=b"x")
                for v in (1, 2)])
            ids = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() "
                        "AND relation = %s::regclass", (store.events_table,))
            modes = {row[0] for row in cur.fetchall()}
        assert len(ids) == 2 and ids[0] < ids[1] and all(type(i) is int for i in ids)
        assert "ExclusiveLock" in modes
        assert store.stream("pin") == []
        assert store.recorder.events_table_name == "xinfang_events"


def params(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


# ---- the version, and where private names and SQL may appear ----------------------------------

def test_eventsourcing_is_the_pinned_version() -> None:
    """The names pinned above were checked against this release (it has no ``__version__``;
    the installed distribution's metadata is the authority)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("eventsourcing")]
    assert pins == ["eventsourcing==9.5.6"]
    assert importlib.metadata.version("eventsourcing") == pins[0].split("==")[1]


SOURCES = [p for top in ("ledger", "projections", "cli", "bench")
           for p in (ROOT / top).rglob("*.py")]
PRIVATE = re.compile(r"\b(?:recorder|factory|datastore|pool|conn|connection)\._[a-z]\w*|"
                     r"_sqlite_conn|_insert_stored_events")
SQL = re.compile(r"\b(?:SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|"
                 r"CREATE\s+(?:TABLE|INDEX|TRIGGER|TEMPORARY))\b")


def test_private_eventsourcing_names_only_where_pinned() -> None:
    found = {(str(p.relative_to(ROOT)), m.group(0)) for p in SOURCES
             for m in PRIVATE.finditer(p.read_text())}
    assert found == {("ledger/storage/postgres.py", "recorder._insert_stored_events"),
                     ("ledger/storage/postgres.py", "_insert_stored_events")}


def test_sql_only_in_the_store_and_the_read_model() -> None:
    allowed = {"ledger/storage/store.py", "ledger/storage/sqlite.py",
               "ledger/storage/postgres.py", "projections/readmodel.py"}
    found = sorted({str(p.relative_to(ROOT)) for p in SOURCES if SQL.search(p.read_text())})
    assert [name for name in found if name not in allowed] == []


# ---- the read side's queries of the ledger's tables -------------------------------------------

def test_counted_events_leave_out_what_the_checked_log_failed(world: World) -> None:
    """``readmodel.counted_events`` = the store's logged events of the cases minus the read
    model's recorded failures: a refold never sees an event the checked log rejected."""
    from projections import readmodel as rm
    from projections.runner import catch_up

    case = world.closed_case()
    store = world.ledger.store
    victim, donor = store.event_at(case, 5), store.event_at(case, 4)
    assert victim is not None and donor is not None
    stolen = Envelope.from_bytes(donor.state).signature
    envelope = Envelope.from_bytes(victim.state)
    with superuser(store) as db:
        db.execute(f"UPDATE {events_table(store)} SET state=? WHERE originator_id=? AND "
                   "originator_version=?", (Envelope(envelope.recorded_at_us, stolen,
                                                     envelope.signed).to_bytes(), case, 5))
    assert catch_up(store).skipped >= 1
    assert victim.position in {f[0] for f in rm.failures(store)}
    everything = [r.position for r in store.stream(case)]
    counted = [row[0] for row in rm.counted_events(store, [case])]
    assert victim.position in everything and victim.position not in counted
    assert counted == [p for p in everything if p not in rm.failed_positions(store, everything)]
    assert counted == everything[:4]   # the victim and the events chained after it fail
