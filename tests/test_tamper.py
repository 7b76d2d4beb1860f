"""The tamper matrix (docs/integrity.md): every change is detected and the right event is named.

Each test runs on SQLite and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from ledger.log.keys import Signer
from ledger.log.statement import Envelope
from ledger.verification.verify import VerifyReport, verify_ledger
from tests.tamper import events_table, forge, position_column, superuser
from tests.world import World, t


def backup(source, target) -> None:  # noqa: ANN001
    """Copy an SQLite database consistently (WAL included), as a DBA's backup would."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def check(world: World, kept: str | None = None) -> VerifyReport:
    return verify_ledger(world.ledger.store, kept_checkpoint=kept, workers=1)


def first(report: VerifyReport):  # noqa: ANN201
    assert not report.ok, "tampering went undetected"
    return report.failures[0]


def record(world: World, case: str, seq: int):  # noqa: ANN201
    rec = world.ledger.store.event_at(case, seq)
    assert rec is not None
    return rec


def test_clean_ledger_passes(world: World) -> None:
    world.closed_case()
    assert check(world).ok


def test_flip_one_byte_of_payload(world: World) -> None:
    case = world.closed_case()
    target = record(world, case, 4)
    state = bytearray(target.state)
    index = state.index("已约谈".encode())
    state[index + 1] ^= 0x01
    with superuser(world.ledger.store) as db:
        db.execute(f"UPDATE {events_table(world.ledger.store)} SET state=? WHERE "
                   "originator_id=? AND originator_version=?", (bytes(state), case, 4))
    failure = first(check(world))
    assert (failure.position, failure.stream, failure.seq) == (target.position, case, 4)
    assert failure.check in (1, 2)


def test_replace_signature_with_another_valid_signature(world: World) -> None:
    case = world.closed_case()
    victim, donor = record(world, case, 5), record(world, case, 4)
    stolen = Envelope.from_bytes(donor.state).signature
    env = Envelope.from_bytes(victim.state)
    forged = Envelope(env.recorded_at_us, stolen, env.signed).to_bytes()
    with superuser(world.ledger.store) as db:
        db.execute(f"UPDATE {events_table(world.ledger.store)} SET state=? WHERE "
                   "originator_id=? AND originator_version=?", (forged, case, 5))
    failure = first(check(world))
    assert (failure.check, failure.stream, failure.seq, failure.position) == \
        (2, case, 5, victim.position)


def test_delete_event_inside_case(world: World) -> None:
    case = world.closed_case()
    gone = record(world, case, 4)
    with superuser(world.ledger.store) as db:
        db.execute(f"DELETE FROM {events_table(world.ledger.store)} WHERE originator_id=? "
                   "AND originator_version=?", (case, 4))
    report = check(world)
    failure = first(report)
    assert failure.position == gone.position and failure.check == 7
    assert any(f.check == 5 and f.stream == case and f.seq == 5 for f in report.failures)


def test_delete_whole_case(world: World) -> None:
    kept = world.closed_case("2025-03-02")
    doomed = world.closed_case("2025-04-02")
    world.closed_case("2025-05-02")
    first_doomed = record(world, doomed, 1)
    with superuser(world.ledger.store) as db:
        db.execute(f"DELETE FROM {events_table(world.ledger.store)} WHERE originator_id=?",
                   (doomed,))
    report = check(world)
    failure = first(report)
    assert failure.check == 7 and failure.position == first_doomed.position
    assert all(f.stream != kept for f in report.failures)


def test_truncate_tail(world: World) -> None:
    case = world.closed_case()
    last_two = [record(world, case, 7), record(world, case, 8)]
    store = world.ledger.store
    with superuser(store) as db:
        db.execute(f"DELETE FROM {events_table(store)} WHERE originator_id=? AND "
                   "originator_version>=7", (case,))
    failure = first(check(world))
    assert failure.check == 7 and failure.position == last_two[0].position


def test_swap_two_events_positions(world: World) -> None:
    a = world.closed_case("2025-03-02")
    b = world.closed_case("2025-04-02")
    store = world.ledger.store
    ra, rb = record(world, a, 3), record(world, b, 3)
    col, table = position_column(store), events_table(store)
    with superuser(store) as db:
        db.execute(f"UPDATE {table} SET {col}=? WHERE {col}=?", (-1, ra.position))
        db.execute(f"UPDATE {table} SET {col}=? WHERE {col}=?", (ra.position, rb.position))
        db.execute(f"UPDATE {table} SET {col}=? WHERE {col}=?", (rb.position, -1))
    report = check(world)
    assert first(report).position == ra.position
    moved = {f.position for f in report.failures if f.check == 7}
    assert moved >= {ra.position, rb.position}


def test_move_event_to_another_case(world: World) -> None:
    a = world.closed_case("2025-03-02")
    b = world.accepted_case("2025-04-02")
    moved = record(world, a, 8)
    store = world.ledger.store
    with superuser(store) as db:
        db.execute(f"UPDATE {events_table(store)} SET originator_id=?, originator_version=? "
                   "WHERE originator_id=? AND originator_version=?", (b, 4, a, 8))
    failure = first(check(world))
    assert (failure.check, failure.position, failure.stream) == (1, moved.position, b)


def test_event_signed_by_revoked_key(world: World) -> None:
    case = world.accepted_case()
    led = world.ledger
    old = led.keystore.load("officer-07")
    led.revoke_key("officer-07", as_actor="admin-01", reason="lost", at=t("2025-03-04"))
    position = forge(led.store, old, stream=case, action="progress", actor="officer-07",
                     at=t("2025-03-05"), data={"note": "伪造进展", "follow_up": False},
                     log_signer=led._checkpoint_signer())
    failure = first(check(world))
    assert (failure.check, failure.position, failure.stream) == (3, position, case)
    assert "revoked" in failure.reason


def test_event_signed_by_unregistered_key(world: World) -> None:
    case = world.accepted_case()
    led = world.ledger
    stranger = Signer.generate("officer-07")
    position = forge(led.store, stranger, stream=case, action="progress", actor="officer-07",
                     at=t("2025-03-05"), data={"note": "伪造进展", "follow_up": False},
                     log_signer=led._checkpoint_signer())
    failure = first(check(world))
    assert (failure.check, failure.position) == (3, position)
    assert "not registered" in failure.reason


def test_well_signed_event_by_actor_without_role(world: World) -> None:
    case = world.accepted_case()
    led = world.ledger
    registrar = led.keystore.load("registrar-01")
    position = forge(led.store, registrar, stream=case, action="close", actor="registrar-01",
                     at=t("2025-03-05"), data={"override_reason": "自行办结"},
                     log_signer=led._checkpoint_signer())
    failure = first(check(world))
    assert (failure.check, failure.position, failure.stream) == (4, position, case)


def test_handler_of_another_case_is_refused_by_verify(world: World) -> None:
    case = world.accepted_case(handler="officer-07")
    led = world.ledger
    other = led.keystore.load("officer-08")
    position = forge(led.store, other, stream=case, action="progress", actor="officer-08",
                     at=t("2025-03-05"), data={"note": "越权", "follow_up": False},
                     log_signer=led._checkpoint_signer())
    failure = first(check(world))
    assert (failure.check, failure.position) == (4, position)


def test_change_registered_public_key(world: World) -> None:
    world.closed_case()
    store = world.ledger.store
    target = next(r for r in store.stream("directory")
                  if b'"actor":"officer-07"' in r.state and r.type == "actor.add")
    env = Envelope.from_bytes(target.state)
    old_hex = world.ledger.keystore.load("officer-07").public.hex()
    new_hex = Signer.generate("x").public.hex()
    signed = env.signed.replace(old_hex.encode(), new_hex.encode())
    assert signed != env.signed
    with superuser(store) as db:
        db.execute(f"UPDATE {events_table(store)} SET state=? WHERE originator_id=? AND "
                   "originator_version=?", (Envelope(env.recorded_at_us, env.signature,
                                                     signed).to_bytes(), "directory",
                                            target.seq))
    failure = first(check(world))
    assert (failure.position, failure.stream, failure.seq) == \
        (target.position, "directory", target.seq)


def test_backdated_recording_beyond_tolerance(world: World) -> None:
    case = world.accepted_case()
    led = world.ledger
    handler = led.keystore.load("officer-07")
    at = t("2025-03-05")
    recorded = int((at - timedelta(days=2)).timestamp() * 1_000_000)
    position = forge(led.store, handler, stream=case, action="progress", actor="officer-07",
                     at=at, data={"note": "进展", "follow_up": False},
                     log_signer=led._checkpoint_signer(), recorded_at_us=recorded)
    report = check(world)
    failure = first(report)
    assert (failure.check, failure.position, failure.stream) == (6, position, case)
    assert [f.check for f in report.failures] == [6]


def test_rollback_caught_against_kept_checkpoint(world: World, tmp_path) -> None:  # noqa: ANN001
    led = world.ledger
    store = led.store
    world.closed_case("2025-03-02")
    early_note = led.checkpoint()
    early_size = store.leaf_count()
    if store.backend == "sqlite":
        backup(store.location.path, tmp_path / "old.db")
    world.closed_case("2025-04-02")
    kept = led.checkpoint()
    first_lost = store.iter_log(after=0)
    lost_position = [n.id for n in first_lost][early_size]
    assert check(world, kept).ok
    if store.backend == "sqlite":
        store.close()
        for suffix in ("", "-wal", "-shm"):
            p = store.location.path.with_name(store.location.path.name + suffix)
            if p.exists():
                p.unlink()
        backup(tmp_path / "old.db", store.location.path)
        from ledger.storage.store import Store
        world.ledger.store = Store(store.location)
        store = world.ledger.store
    else:
        with superuser(store) as db:
            db.execute(f"DELETE FROM {events_table(store)} WHERE notification_id>=?",
                       (lost_position,))
            db.execute("DELETE FROM xf_leaves WHERE idx>=?", (early_size,))
            db.execute("DELETE FROM xf_nodes WHERE (idx + 1) * power(2, level) > ?",
                       (early_size,))
            db.execute("DELETE FROM xf_checkpoints WHERE size>?", (early_size,))
    assert store.latest_checkpoint().note == early_note
    assert check(world).ok, "a rolled-back copy is self-consistent; only a kept checkpoint " \
        "can tell"
    failure = first(check(world, kept))
    assert failure.check == 8
    assert "rolled back" in failure.reason


def test_edit_latest_checkpoint(world: World) -> None:
    world.closed_case()
    store = world.ledger.store
    latest = store.latest_checkpoint()
    lines = latest.note.split("\n")
    lines[1] = str(int(lines[1]) - 1)   # claim a smaller tree under the old signature
    with superuser(store) as db:
        db.execute("UPDATE " + store.t("xf_checkpoints").split(".")[-1] +
                   " SET note=? WHERE size=?", ("\n".join(lines), latest.size))
    failure = first(check(world))
    assert failure.check == 7
    assert failure.position == store.max_position()


def test_edit_older_checkpoint_signature(world: World) -> None:
    world.closed_case()
    store = world.ledger.store
    older = next(iter(store.iter_checkpoints()))
    sig_line = older.note.rstrip("\n").split("\n")[-1]
    name, blob = sig_line.rsplit(" ", 1)
    flipped = blob[:10] + ("A" if blob[10] != "A" else "B") + blob[11:]
    with superuser(store) as db:
        db.execute("UPDATE xf_checkpoints SET note=? WHERE size=?",
                   (older.note.replace(blob, flipped), older.size))
    failure = first(check(world))
    assert failure.check == 7 and f"size {older.size}" in failure.reason


@pytest.mark.parametrize("column", ["hash"])
def test_merkle_side_table_edit_is_caught(world: World, column: str) -> None:
    world.closed_case()
    store = world.ledger.store
    with superuser(store) as db:
        db.execute(f"UPDATE xf_leaves SET {column}=? WHERE idx=?", (b"\x00" * 32, 3))
    failure = first(check(world))
    assert failure.check == 7
    assert failure.position == store.query("SELECT position FROM " + store.t("xf_leaves") +
                                           " WHERE idx=3")[0][0]


def test_evicted_case_states_are_rebuilt(world: World) -> None:
    cases = [world.accepted_case(f"2025-03-0{d}") for d in range(1, 5)]
    for n, case in enumerate(cases):
        world.do("progress", case, {"note": f"进展{n}"}, by="officer-07", at=t("2025-03-10"))
    tiny = verify_ledger(world.ledger.store, case_cache=2, workers=1)
    assert tiny.ok, tiny.failures
    target = record(world, cases[0], 4)
    with superuser(world.ledger.store) as db:
        db.execute(f"DELETE FROM {events_table(world.ledger.store)} WHERE originator_id=? "
                   "AND originator_version=?", (cases[0], 3))
    report = verify_ledger(world.ledger.store, case_cache=2, workers=1)
    assert any(f.check == 5 and f.position == target.position for f in report.failures)


def test_history_reports_an_unreadable_event_instead_of_failing(world: World) -> None:
    from ledger.verification.history import case_history

    case = world.closed_case()
    with superuser(world.ledger.store) as db:
        db.execute(f"UPDATE {events_table(world.ledger.store)} SET state=? WHERE "
                   "originator_id=? AND originator_version=?", (b"XFE1" + bytes(80), case, 4))
    history = case_history(world.ledger.store, case)
    bad = [e for e in history.events if not (e.signature_ok and e.authorized and e.chain_ok)]
    assert bad and bad[0].seq == 4 and not history.ok
