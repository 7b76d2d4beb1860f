"""The checkpoint signer never signs a tree it has not proven to extend the last tree it signed
(integrity.md), and `init` binds keys to one ledger. Every storage test runs on both backends.

The attacker here has the database only (superuser: triggers off); the signer's own state lives
in the keystore beside the log key (ledger/log/log_signer.py).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import EnvironmentProblem, InputError, KeyUnavailableError, Ledger, VerificationError
from ledger.log.checkpoint import Checkpoint, sign_checkpoint
from ledger.log.keys import Signer
from ledger.log.log_signer import STATE_FILE, LogSigner, UnprovenTreeError
from ledger.log.merkle import CompactRange, leaf_hash
from ledger.log.statement import leaf_bytes
from ledger.storage.store import Store, StoredCheckpoint
from ledger.verification.verify import verify_ledger
from tests.conftest import scratch_ledger_url
from tests.tamper import events_table, forge, superuser
from tests.world import ORIGIN, World, t

# ---- what a database-only attacker does ---------------------------------------------------------


def rebuild(store: Store, rows: list[tuple[int, bytes]], note: str | None = None,
            key: Signer | None = None) -> tuple[int, bytes]:
    """Replace xf_leaves, xf_nodes and xf_checkpoints with a tree consistent with ``rows``
    ((position, stored state), in log order) and one checkpoint for it, whose note is ``note``
    or one signed by ``key`` (an attacker's). Returns (size, root)."""
    tree, leaves, nodes = CompactRange(), [], []
    for position, state in rows:
        digest = leaf_hash(leaf_bytes(position, state))
        leaves.append((tree.size, position, digest))
        nodes.extend(tree.append(digest))
    root = tree.root()
    if note is None:
        assert key is not None
        note = sign_checkpoint(Checkpoint(ORIGIN, tree.size, root), ORIGIN, key)
    with superuser(store) as db:
        for table in ("xf_leaves", "xf_nodes", "xf_checkpoints"):
            db.execute(f"DELETE FROM {table}")
        for row in leaves:
            db.execute("INSERT INTO xf_leaves VALUES (?,?,?)", row)
        for row in nodes:
            db.execute("INSERT INTO xf_nodes VALUES (?,?,?)", row)
        db.execute("INSERT INTO xf_checkpoints VALUES (?,?,?,?)",
                   (tree.size, root, note, tree.to_bytes()))
    return tree.size, root


def log_rows(store: Store) -> list[tuple[int, str, bytes]]:
    return [(n.id, str(n.originator_id), bytes(n.state)) for n in store.iter_log()]


def delete_case(store: Store, case: str) -> list[tuple[int, bytes]]:
    """Delete a whole case's rows; return the log that is left, as (position, state)."""
    rest = [(p, s) for p, stream, s in log_rows(store) if stream != case]
    with superuser(store) as db:
        db.execute(f"DELETE FROM {events_table(store)} WHERE originator_id=?", (case,))
    return rest


def edit_event(store: Store, case: str, seq: int) -> list[tuple[int, bytes]]:
    """Flip one payload byte of an event; return the whole (edited) log."""
    record = store.event_at(case, seq)
    assert record is not None
    state = bytearray(record.state)
    state[-3] ^= 0x01
    with superuser(store) as db:
        db.execute(f"UPDATE {events_table(store)} SET state=? WHERE originator_id=? AND "
                   "originator_version=?", (bytes(state), case, seq))
    return [(p, bytes(state) if p == record.position else s) for p, _, s in log_rows(store)]


def roll_back(store: Store, size: int) -> None:
    """Restore the log as it was at ``size`` leaves (genuine rows and notes, newer ones gone),
    as restoring an older backup would."""
    position = store.position_of_leaf(size)
    nodes = store.query(f"SELECT level, idx FROM {store.t('xf_nodes')}")
    with superuser(store) as db:
        db.execute(f"DELETE FROM {events_table(store)} WHERE {store.position_column}>=?",
                   (position,))
        db.execute("DELETE FROM xf_leaves WHERE idx>=?", (size,))
        for level, idx in nodes:
            if (idx + 1) << level > size:
                db.execute("DELETE FROM xf_nodes WHERE level=? AND idx=?", (level, idx))
        db.execute("DELETE FROM xf_checkpoints WHERE size>?", (size,))


def latest_of(store: Store) -> StoredCheckpoint:
    latest = store.latest_checkpoint()
    assert latest is not None
    return latest


def counts(store: Store) -> tuple[int, int, int]:
    return (store.query(f"SELECT COUNT(*) FROM {store.events_table}")[0][0],
            store.query(f"SELECT COUNT(*) FROM {store.t('xf_leaves')}")[0][0],
            store.query(f"SELECT COUNT(*) FROM {store.t('xf_checkpoints')}")[0][0])


def state_entry(keystore: Path, origin: str = ORIGIN) -> dict:
    return json.loads((keystore / STATE_FILE).read_text())["logs"][origin]


def signer_append(world: World, case: str) -> None:
    """A well-signed event straight to the store, with the ledger's log signer: the signer's
    own proof, whatever the checked view above it would say."""
    forge(world.ledger.store, world.ledger.keystore.load("officer-07"), stream=case,
          action="progress", actor="officer-07", at=t("2025-06-01"),
          data={"note": "例行进展", "follow_up": False},
          log_signer=world.ledger._checkpoint_signer())


def assert_refused(world: World, case: str, reason: str) -> None:
    """An ordinary write and `checkpoint` are refused, say why, and write nothing."""
    store, state = world.ledger.store, (world.keystore / STATE_FILE).read_bytes()
    before = counts(store)
    with pytest.raises(VerificationError) as write:   # by the signer, or the view before it
        world.do("progress", case, {"note": "例行进展"}, by="officer-07", at=t("2025-06-01"))
    assert "xinfang verify" in str(write.value) and write.value.exit_code == 1
    with pytest.raises(UnprovenTreeError) as append:
        signer_append(world, case)
    with pytest.raises(UnprovenTreeError) as checkpoint:
        world.ledger.checkpoint()
    for refused in (append.value, checkpoint.value):
        what, hint = str(refused).split("\n")
        assert reason in what
        assert "run `xinfang verify`" in hint.lower() and refused.exit_code == 1
    assert counts(store) == before
    assert (world.keystore / STATE_FILE).read_bytes() == state
    assert not verify_ledger(store, workers=1).ok


# ---- never extend an unproven tree ---------------------------------------------------------------

@pytest.mark.parametrize("note", ["attacker_key", "old_note"])
def test_laundering_a_deleted_case_is_refused(world: World, note: str) -> None:
    kept = world.accepted_case("2025-03-02")
    doomed = world.closed_case("2025-04-02")
    world.closed_case("2025-05-02")
    store = world.ledger.store
    old_notes = {cp.size: cp.note for cp in store.iter_checkpoints()}
    signed_size = store.leaf_count()
    rest = delete_case(store, doomed)
    size, _ = rebuild(store, rest, note=old_notes[len(rest)] if note == "old_note" else None,
                      key=Signer.generate("attacker"))
    assert size == len(rest) < signed_size and store.leaf_count() == size
    assert_refused(world, kept, "rolled back")


def test_rewritten_log_of_the_same_size_is_refused(world: World) -> None:
    kept = world.accepted_case("2025-03-02")
    victim = world.closed_case("2025-04-02")
    store = world.ledger.store
    size = store.leaf_count()
    assert rebuild(store, edit_event(store, victim, 4), key=Signer.generate("x"))[0] == size
    assert_refused(world, kept, "another root")


def test_planted_checkpoint_beyond_the_leaves_is_refused(world: World) -> None:
    case = world.accepted_case()
    store = world.ledger.store
    latest = latest_of(store)
    forged = sign_checkpoint(Checkpoint(ORIGIN, latest.size + 1, latest.root), ORIGIN,
                             Signer.generate("x"))
    with superuser(store) as db:
        db.execute("INSERT INTO xf_checkpoints VALUES (?,?,?,?)",
                   (latest.size + 1, latest.root, forged, latest.frontier))
    assert_refused(world, case, f"leaf {latest.size} is missing")


def test_leaves_planted_beyond_the_signed_tree_are_refused(world: World) -> None:
    case = world.accepted_case()
    store = world.ledger.store
    size = store.leaf_count()
    with superuser(store) as db:
        db.execute("INSERT INTO xf_leaves VALUES (?,?,?)", (size, 10**9, b"\x11" * 32))
    assert_refused(world, case, "this signer last signed")


# ---- a lagging state catches up with a proof -----------------------------------------------------

def test_lagging_state_catches_up(world: World) -> None:
    case = world.accepted_case()
    store, state = world.ledger.store, world.keystore / STATE_FILE
    older = state.read_bytes()
    for n in range(3):
        world.do("progress", case, {"note": f"进展{n}"}, by="officer-07", at=t("2025-03-05"))
    state.write_bytes(older)            # a crash before the update, or a restored copy
    assert state_entry(world.keystore)["size"] == store.leaf_count() - 3
    world.do("progress", case, {"note": "追上"}, by="officer-07", at=t("2025-03-06"))
    latest = latest_of(store)
    entry = state_entry(world.keystore)
    assert (entry["size"], entry["root"]) == (latest.size, latest.root.hex())
    assert latest.size == store.leaf_count()
    state.write_bytes(older)
    assert world.ledger.checkpoint() == latest.note    # catches up without writing
    assert state_entry(world.keystore)["size"] == latest.size
    assert verify_ledger(store, workers=1).ok


@pytest.mark.parametrize("note", ["attacker_key", "old_note"])
def test_lagging_state_does_not_accept_a_rewritten_tail(world: World, note: str) -> None:
    case = world.accepted_case()
    store, state = world.ledger.store, world.keystore / STATE_FILE
    older = state.read_bytes()
    victim = world.accepted_case("2025-04-02")
    genuine = latest_of(store).note
    rebuild(store, edit_event(store, victim, 2), note=genuine if note == "old_note" else None,
            key=Signer.generate("x"))
    state.write_bytes(older)
    assert_refused(world, case, "not signed by this log key" if note == "attacker_key"
                   else "its signed note and its columns disagree")


def test_hostile_cells_are_refusals_not_crashes(world: World) -> None:
    case = world.accepted_case()
    store, state = world.ledger.store, world.keystore / STATE_FILE
    older = state.read_bytes()
    world.do("progress", case, {"note": "x"}, by="officer-07", at=t("2025-03-05"))
    size = store.leaf_count()
    state.write_bytes(older)                   # so the write must recompute leaf size-1
    with superuser(store) as db:
        db.execute("UPDATE xf_leaves SET position=? WHERE idx=?", (-5, size - 1))
    assert_refused(world, case, "log position -5")
    if store.backend == "sqlite":              # PostgreSQL's columns are typed
        with superuser(store) as db:
            db.execute("UPDATE xf_checkpoints SET size=? WHERE size=?", ("many", size))
        with pytest.raises(UnprovenTreeError, match="malformed"):
            signer_append(world, case)


def test_state_only_moves_forward_and_is_private(world: World) -> None:
    world.accepted_case()
    path = world.keystore / STATE_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    now = path.read_bytes()
    signer = LogSigner(world.keystore, ORIGIN, world.ledger._log_signer())
    signer.advance(CompactRange())        # an older tree never replaces a newer one
    assert path.read_bytes() == now


def test_unreadable_state_is_a_clear_error(world: World) -> None:
    case = world.accepted_case()
    (world.keystore / STATE_FILE).write_text('{"version": 1, "logs": {"' + ORIGIN + '": 5}}')
    before = counts(world.ledger.store)
    with pytest.raises(KeyUnavailableError, match="signer's state .* is unreadable"):
        world.do("progress", case, {"note": "x"}, by="officer-07", at=t("2025-03-05"))
    assert counts(world.ledger.store) == before


# ---- ledgers older than the state: trust on first use --------------------------------------------

def test_ledger_without_state_file_bootstraps(world: World) -> None:
    case = world.accepted_case()
    (world.keystore / STATE_FILE).unlink()      # as an earlier release left the keystore
    world.do("progress", case, {"note": "升级后"}, by="officer-07", at=t("2025-03-05"))
    latest = latest_of(world.ledger.store)
    assert state_entry(world.keystore)["root"] == latest.root.hex()
    assert verify_ledger(world.ledger.store, workers=1).ok


def test_bootstrap_refuses_a_tree_the_log_key_did_not_sign(world: World) -> None:
    kept = world.accepted_case("2025-03-02")
    doomed = world.accepted_case("2025-04-02")
    store = world.ledger.store
    (world.keystore / STATE_FILE).unlink()
    rebuild(store, delete_case(store, doomed), key=Signer.generate("x"))
    before = counts(store)
    with pytest.raises(UnprovenTreeError, match="not signed by this log key"):
        signer_append(world, kept)
    assert counts(store) == before and not (world.keystore / STATE_FILE).exists()


def test_rollback_is_refused_with_the_state_but_not_before_first_use(world: World) -> None:
    """What TOFU cannot catch (documented): a genuine older copy restored before first use."""
    case = world.accepted_case()
    store = world.ledger.store
    early = store.leaf_count()
    world.do("progress", case, {"note": "将被回滚"}, by="officer-07", at=t("2025-03-05"))
    roll_back(store, early)
    assert latest_of(store).size == early
    with pytest.raises(UnprovenTreeError, match="rolled back"):
        signer_append(world, case)
    (world.keystore / STATE_FILE).unlink()
    world.ledger.close()                        # a fresh process: nothing remembered
    world.ledger = Ledger.open(world.url, world.keystore)
    world.do("progress", case, {"note": "回滚后"}, by="officer-07", at=t("2025-03-06"))
    assert state_entry(world.keystore)["size"] == early + 1


# ---- several processes, one keystore -------------------------------------------------------------

def _writer(url: str, keystore: str, case: str, worker: int, out: mp.Queue) -> None:
    led = Ledger.open(url, keystore)
    for i in range(6):
        led.execute("progress", case, {"note": f"并发 {worker}-{i}"}, as_actor="officer-07",
                    at=t("2025-05-02"))
        if i == 3 and worker == 0:
            os.unlink(Path(keystore) / STATE_FILE)   # forces a bootstrap mid-run
    led.close()
    out.put(worker)


@pytest.mark.slow
def test_concurrent_writers_sharing_one_keystore(world: World) -> None:
    case = world.accepted_case()
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(world.url, str(world.keystore), case, w, out))
             for w in range(3)]
    for p in procs:
        p.start()
    assert sorted(out.get(timeout=240) for _ in procs) == [0, 1, 2]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    store = world.ledger.store
    assert len([r for r in store.stream(case) if r.type == "progress"]) == 18
    world.do("progress", case, {"note": "收尾"}, by="officer-07", at=t("2025-05-03"))
    latest = latest_of(store)
    entry = state_entry(world.keystore)
    assert (entry["size"], entry["root"]) == (latest.size, latest.root.hex())
    assert verify_ledger(store, workers=1).ok


# ---- init binds keys to one ledger ---------------------------------------------------------------

@pytest.fixture
def other_url(request: pytest.FixtureRequest, ledger_url: str, tmp_path: Path,
              pg_problem: str | None) -> Iterator[str]:
    """A second ledger on the same backend as ``ledger_url``."""
    backend = "sqlite" if ledger_url.startswith("sqlite") else "postgresql"
    (tmp_path / "other").mkdir()
    yield from scratch_ledger_url(backend, tmp_path / "other", pg_problem)


def test_second_init_on_a_used_keystore(ledger_url: str, other_url: str, keystore: Path) -> None:
    Ledger.init(ledger_url, keystore, origin="a.example/ledger", admin="admin-01").close()
    for admin in ("admin-01", "admin-02"):   # the admin's key, or just the log key
        with pytest.raises(InputError, match="(?s)already holds the key.*--reuse-keys"):
            Ledger.init(other_url, keystore, origin="b.example/ledger", admin=admin)
    with pytest.raises(EnvironmentProblem, match="not initialized"):
        Ledger.open(other_url, keystore)
    second = Ledger.init(other_url, keystore, origin="b.example/ledger", admin="admin-01",
                         reuse_keys=True)
    first = Ledger.open(ledger_url, keystore)
    assert first.directory().log_key == second.directory().log_key
    for led in (first, second):              # one signer state per origin: both keep writing
        led.add_unit("u-1", "单位", as_actor="admin-01")
        assert verify_ledger(led.store, workers=1).ok
        led.close()
    assert set(json.loads((keystore / STATE_FILE).read_text())["logs"]) == \
        {"a.example/ledger", "b.example/ledger"}


def test_reusing_keys_for_the_same_origin_abandons_the_earlier_ledger(
        ledger_url: str, other_url: str, keystore: Path) -> None:
    """Documented consequence of --reuse-keys: one origin, one signer state."""
    first = Ledger.init(ledger_url, keystore, origin=ORIGIN, admin="admin-01")
    first.add_unit("u-1", "单位", as_actor="admin-01")
    second = Ledger.init(other_url, keystore, origin=ORIGIN, admin="admin-01", reuse_keys=True)
    with pytest.raises(UnprovenTreeError):
        first.add_unit("u-2", "单位", as_actor="admin-01")
    second.add_unit("u-1", "单位", as_actor="admin-01")
    first.close()
    second.close()


def test_admin_key_must_differ_from_the_log_key(ledger_url: str, other_url: str,
                                                keystore: Path) -> None:
    with pytest.raises(InputError, match="the log key's name"):
        Ledger.init(ledger_url, keystore, origin="a.example/ledger", admin="log")
    Ledger.init(ledger_url, keystore, origin="a.example/ledger", admin="admin-01").close()
    shutil.copy(keystore / "log.key", keystore / "admin-09.key")
    with pytest.raises(InputError, match="is the log key"):
        Ledger.init(other_url, keystore, origin="b.example/ledger", admin="admin-09",
                    reuse_keys=True)


def test_cli_init_refuses_a_used_keystore_without_reuse_keys(ledger_url: str, other_url: str,
                                                             keystore: Path) -> None:
    def run(url: str, *args: str):  # noqa: ANN202
        return CliRunner().invoke(cli, ["--ledger", url, "--keystore", str(keystore), "init",
                                        "--admin", "admin-01", *args])

    assert run(ledger_url, "--origin", "a.example/ledger").exit_code == 0
    refused = run(other_url, "--origin", "b.example/ledger")
    assert refused.exit_code == 2 and "--reuse-keys" in refused.output
    assert run(other_url, "--origin", "b.example/ledger", "--reuse-keys").exit_code == 0
    assert "--reuse-keys" in CliRunner().invoke(cli, ["init", "--help"]).output


def test_cli_checkpoint_on_a_laundered_ledger(world: World) -> None:
    world.accepted_case("2025-03-02")
    doomed = world.accepted_case("2025-04-02")
    store = world.ledger.store
    rebuild(store, delete_case(store, doomed), key=Signer.generate("x"))
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "checkpoint"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "rolled back" in lines[0] and "xinfang verify" in lines[1]


def test_reanchor_after_restoring_an_older_backup(world: World) -> None:
    """The log key's holder lifts the rollback refusal explicitly, on a restored ledger whose
    latest checkpoint the log key signed; writes then continue on top of it."""
    case = world.accepted_case()
    store = world.ledger.store
    early = store.leaf_count()
    world.do("progress", case, {"note": "备份之后"}, by="officer-07", at=t("2025-03-05"))
    roll_back(store, early)
    with pytest.raises(UnprovenTreeError, match="rolled back"):
        world.ledger.checkpoint()
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "checkpoint", "--reanchor"])
    assert result.exit_code == 0, result.output
    assert f"\n{early}\n" in result.output   # the restored tree's size
    assert state_entry(world.keystore)["size"] == early
    world.ledger.close()
    world.ledger = Ledger.open(world.url, world.keystore)
    world.do("progress", case, {"note": "恢复后"}, by="officer-07", at=t("2025-03-06"))
    assert verify_ledger(world.ledger.store, workers=1).ok
