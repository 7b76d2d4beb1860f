"""Storage contract, run on both backends: append-only tables, positions, idempotency."""

from __future__ import annotations

import pytest

from ledger import Ledger
from ledger.errors import EnvironmentProblem, KeyUnavailableError, StorageError
from ledger.storage.store import SIDE_TABLES, Store, parse_location
from tests.world import World, t


def _tables(store: Store) -> list[str]:
    return [store.events_table, *(store.t(name) for name in SIDE_TABLES)]


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
def test_database_rejects_changes(world: World, operation: str) -> None:
    case = world.closed_case()
    world.ledger.execute("desist", case, {"document_sha256": "ab" * 32},
                         as_actor="registrar-01", at=t("2025-04-01"), cmd="with-an-id")
    store = world.ledger.store
    for table in _tables(store):
        column = "position" if "leaves" in table or "commands" in table else \
            "size" if "checkpoints" in table else "level" if "nodes" in table else \
            "originator_version"
        sql = f"UPDATE {table} SET {column}={column}" if operation == "UPDATE" else \
            f"DELETE FROM {table}"
        with pytest.raises(StorageError, match="append-only|append.only"), \
                store.cursor(commit=True) as cur:
            cur.execute(sql)
    assert world.ledger.store.leaf_count() > 0


@pytest.mark.postgres
def test_postgres_rejects_truncate(pg_url: str, keystore) -> None:  # noqa: ANN001
    from tests.world import build_world

    world = build_world(pg_url, keystore)
    world.closed_case()
    store = world.ledger.store
    for table in _tables(store):
        with pytest.raises(StorageError, match="append-only"), store.cursor(commit=True) as cur:
            cur.execute(f"TRUNCATE {table}")


def test_positions_leaves_and_checkpoint_per_write(world: World) -> None:
    store = world.ledger.store
    before = store.leaf_count()
    receipt = world.do("register", None, {"channel": "visit", "source": "direct",
                                          "category": "help", "petitioner": "pet-0001",
                                          "summary": "求助"}, by="registrar-01",
                       at=t("2025-02-01"))
    assert receipt.stream == "XF-2025-000001"
    assert store.leaf_count() == before + 1
    assert store.leaf_index(receipt.position) == before
    assert store.latest_checkpoint().size == before + 1


def test_case_numbers_allocated_per_year(world: World) -> None:
    a = world.register(t("2025-02-01"))
    b = world.register(t("2025-02-02"))
    c = world.register(t("2024-12-30"))
    assert (a, b, c) == ("XF-2025-000001", "XF-2025-000002", "XF-2024-000001")


def test_commands_are_idempotent_by_id(world: World) -> None:
    data = {"channel": "visit", "source": "direct", "category": "help",
            "petitioner": "pet-0001", "summary": "求助"}
    led = world.ledger
    first = led.execute("register", None, data, as_actor="registrar-01", at=t("2025-02-01"),
                        cmd="line-1")
    again = led.execute("register", None, data, as_actor="registrar-01", at=t("2025-02-01"),
                        cmd="line-1")
    assert again.duplicate and again.position == first.position
    assert led.store.stream("XF-2025-000002") == []


def test_private_keys_never_stored_in_database(world: World) -> None:
    world.closed_case()
    led = world.ledger
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    # Read from the keystore files: a Signer never hands out its private key.
    keys = [load_pem_private_key((led.keystore.path / f"{name}.key").read_bytes(), None)
            for name in ("admin-01", "officer-07", "log")]
    secrets = [key.private_bytes_raw() for key in keys]
    for note in led.store.iter_log():
        for secret in secrets:
            assert secret not in note.state
    for table in _tables(led.store):
        for row in led.store.query(f"SELECT * FROM {table}"):
            for value in row:
                if isinstance(value, (bytes, memoryview)):
                    assert not any(s in bytes(value) for s in secrets)


def test_revoked_key_cannot_sign(world: World) -> None:
    case = world.accepted_case()
    world.ledger.revoke_key("officer-07", as_actor="admin-01", at=t("2025-03-04"))
    with pytest.raises(KeyUnavailableError, match="revoked"):
        world.do("progress", case, {"note": "x"}, by="officer-07", at=t("2025-03-05"))


def test_rotated_key_replaces_old_one(world: World) -> None:
    case = world.accepted_case()
    led = world.ledger
    old = led.keystore.load("officer-07").key_id
    led.rotate_key("officer-07", as_actor="admin-01", at=t("2025-03-04"))
    new = led.keystore.load("officer-07").key_id
    assert new != old and led.directory().actor("officer-07").key == new
    world.do("progress", case, {"note": "换钥后进展"}, by="officer-07", at=t("2025-03-05"))
    from ledger.verification.verify import verify_ledger

    assert verify_ledger(led.store).ok


def test_opening_missing_ledger_is_environment_error(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(EnvironmentProblem) as info:
        Ledger.open(f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "keys")
    assert info.value.exit_code == 3
    assert not (tmp_path / "none.db").exists()


def test_unreachable_postgres_is_storage_error() -> None:
    with pytest.raises(EnvironmentProblem):
        Store(parse_location("postgresql://postgres@127.0.0.1:1/nothing"))


@pytest.mark.postgres
def test_postgres_writer_role_can_append_but_not_change(pg_url: str, keystore) -> None:  # noqa: ANN001
    """The privileges of docs/operations.md: a writer role appends; UPDATE/DELETE are refused
    by privileges as well as by the triggers."""
    import psycopg

    from tests.conftest import PG_DSN
    from tests.world import build_world

    world = build_world(pg_url, keystore)
    schema = pg_url.split("schema=")[1]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname='xinfang_writer_t'")
        if not exists.fetchone():
            conn.execute("CREATE ROLE xinfang_writer_t LOGIN")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO xinfang_writer_t')
        tables = ", ".join(f'"{schema}".{t}' for t in ("xinfang_events", *SIDE_TABLES))
        conn.execute(f"GRANT SELECT, INSERT ON {tables} TO xinfang_writer_t")
        conn.execute(f'GRANT UPDATE ON "{schema}".xinfang_events TO xinfang_writer_t')
        conn.execute(f'GRANT USAGE ON SEQUENCE "{schema}".xinfang_events_notification_id_seq '
                     "TO xinfang_writer_t")
    writer_url = pg_url.replace("postgres@", "xinfang_writer_t@")
    writer = Ledger.open(writer_url, keystore)
    try:
        receipt = writer.execute("register", None, {
            "channel": "visit", "source": "direct", "category": "help",
            "petitioner": "pet-0001", "summary": "写入角色"}, as_actor="registrar-01",
            at=t("2025-02-01"))
        assert receipt.seq == 1
        for sql in (f"DELETE FROM {writer.store.events_table}",
                    f"UPDATE {writer.store.t('xf_checkpoints')} SET note=note",
                    f"TRUNCATE {writer.store.t('xf_leaves')}"):
            with pytest.raises(StorageError), writer.store.cursor(commit=True) as cur:
                cur.execute(sql)
    finally:
        writer.close()
        world.ledger.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM xinfang_writer_t')
            conn.execute(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{schema}" '
                         "FROM xinfang_writer_t")
            conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM xinfang_writer_t')
