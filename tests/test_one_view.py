"""One verified view (issue classes 1, 2 and 7): every reader gives one verdict per event.

An insider with database access plants rows the Merkle log does not cover (at position zero or
below, beyond the last leaf, in a PostgreSQL id gap) or forges events that fail one check; every
reader — verify, case history, closure records, the write path — names the planted event and
never counts it. Each test runs on SQLite and on PostgreSQL unless it says otherwise.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.errors import VerificationError
from ledger.log.keys import Signer
from ledger.log.statement import Envelope, Statement, format_time, now_us
from ledger.storage.store import Store
from ledger.verification.closure import closure_record, closure_report
from ledger.verification.history import case_history
from ledger.verification.verify import verify_ledger
from tests.tamper import events_table, forge, position_column, superuser
from tests.world import World, t


def plant(store: Store, signer: Signer, *, stream: str, action: str, actor: str,
          at: datetime, data: dict[str, Any], position: int) -> None:
    """A well-signed event chained to the stream's head, inserted as a superuser would at
    ``position``, with no leaf and no checkpoint (the triggers are left in place)."""
    head = store.stream_head(stream)
    seq = head.seq + 1 if head else 1
    prev = Envelope.from_bytes(head.state).hash if head else "0" * 64
    origin = Statement.from_signed_bytes(Envelope.from_bytes(
        store.stream("directory")[0].state).signed).origin
    statement = Statement(origin=origin, stream=stream, seq=seq, prev=prev, type=action,
                          at=format_time(at), actor=actor, key=signer.key_id, data=data)
    signed = statement.signed_bytes()
    state = Envelope(now_us(), signer.sign(signed), signed).to_bytes()
    with superuser(store) as db:
        db.execute(f"INSERT INTO {events_table(store)} ({position_column(store)}, originator_id, "
                   "originator_version, topic, state) VALUES (?,?,?,?,?)",
                   (position, stream, seq, action, state))


def replied_case(world: World) -> str:
    """A case replied and signed by handler and unit leader: only the petitioner's signature
    and the close are missing."""
    case = world.accepted_case()
    world.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                             "served_at": t("2025-03-12").isoformat(), "text": "已办理"},
             by="officer-07", at=t("2025-03-12"))
    world.do("attest", case, {"evidence": ["答复书-001"]}, by="officer-07", at=t("2025-03-13"))
    world.do("consent", case, {}, by="lead-03", at=t("2025-03-13", 10))
    return case


def verify(world: World) -> Any:
    return verify_ledger(world.ledger.store, workers=1)


@pytest.mark.parametrize("position", [0, -5])
def test_rows_at_or_below_position_zero_are_outside_the_log(world: World,
                                                            position: int) -> None:
    case = replied_case(world)
    led = world.ledger
    registrar, office = led.keystore.load("registrar-01"), led.keystore.load("office-01")
    # The attack of the issue: a forged witnessed petitioner signature and a close, planted
    # below the log. Both are well signed by real keys of authorized people.
    plant(led.store, registrar, stream=case, action="petitioner_sign", actor="registrar-01",
          at=t("2025-03-14"), data={"form": "witnessed", "opinion": "satisfied",
                                     "document_sha256": "ab" * 32}, position=position)
    plant(led.store, office, stream=case, action="close", actor="office-01",
          at=t("2025-03-15"), data={}, position=position - 1)

    report = verify(world)
    assert not report.ok
    named = {(f.position, f.check) for f in report.failures}
    assert (position, 7) in named and (position - 1, 7) in named
    assert report.failures[0].position == position - 1   # the planted rows, not an honest one

    history = case_history(led.view, case)
    planted = [e for e in history.events if e.position in (position, position - 1)]
    assert len(planted) == 2 and all(not e.ok and e.failures[0][0] == 7 for e in planted)
    assert all(e.ok for e in history.events if e not in planted)
    assert history.state is not None and not history.state.closed   # never counted

    record = closure_record(led.store, case)
    assert not record.valid
    assert case not in {r.case for r in closure_report(led.store) if r.valid}

    before = led.store.leaf_count()
    with pytest.raises(VerificationError, match=f"position {position - 1}"):
        world.do("progress", case, {"note": "继续办理"}, by="officer-07", at=t("2025-03-16"))
    assert led.store.leaf_count() == before


def test_row_beyond_the_last_leaf_is_outside_the_log(world: World) -> None:
    case = replied_case(world)
    led = world.ledger
    position = led.store.max_position() + 7
    plant(led.store, led.keystore.load("registrar-01"), stream=case, action="petitioner_sign",
          actor="registrar-01", at=t("2025-03-14"),
          data={"form": "witnessed", "opinion": "satisfied", "document_sha256": "cd" * 32},
          position=position)
    report = verify(world)
    assert report.failures[0].position == position and report.failures[0].check == 7
    event = case_history(led.view, case).events[-1]
    assert event.position == position and not event.ok


def test_row_in_a_postgresql_id_gap_is_outside_the_log(pg_url: str, keystore: Any) -> None:
    from tests.world import build_world

    world = build_world(pg_url, keystore)
    try:
        case = replied_case(world)
        led = world.ledger
        # A rolled-back write leaves a gap in the id sequence; the insider fills it.
        with superuser(led.store) as db:
            db.execute(f"SELECT nextval(pg_get_serial_sequence('{events_table(led.store)}', "
                       "'notification_id'))")
        world.do("progress", case, {"note": "继续"}, by="officer-07", at=t("2025-03-14"))
        positions = [r.position for r in led.store.stream(case)]
        gap = positions[-1] - 1
        assert gap not in positions
        plant(led.store, led.keystore.load("registrar-01"), stream=case,
              action="petitioner_sign", actor="registrar-01", at=t("2025-03-14", 10),
              data={"form": "witnessed", "opinion": "satisfied", "document_sha256": "ef" * 32},
              position=gap)
        report = verify(world)
        assert (report.failures[0].position, report.failures[0].check) == (gap, 7)
        assert not [e for e in case_history(led.view, case).events if e.position == gap][0].ok
    finally:
        world.ledger.close()


def test_history_shows_every_failed_check_as_verify_does(world: World) -> None:
    """Class 2: an event failing check 6 (business time after recorded time) or check 1
    (stored columns differ from the signed bytes) shows as failing in the case history."""
    case = world.accepted_case()
    led = world.ledger
    handler = led.keystore.load("officer-07")
    recorded = int((t("2025-03-05") - timedelta(days=1)).timestamp() * 1_000_000)
    position = forge(led.store, handler, stream=case, action="progress", actor="officer-07",
                     at=t("2025-03-05"), data={"note": "补记", "follow_up": False},
                     log_signer=led._checkpoint_signer(), recorded_at_us=recorded)
    failure = verify(world).failures[0]
    assert (failure.position, failure.check) == (position, 6)
    event = [e for e in case_history(led.view, case).events if e.position == position][0]
    assert not event.ok and event.failures[0][0] == 6
    assert event.to_json()["ok"] is False


def test_deleted_directory_is_reported_as_tampering(world: World, tmp_path: Any) -> None:
    """Class 7: deleting the directory stream makes verify fail (exit 1), naming the first
    event, instead of saying the ledger is not initialized."""
    world.accepted_case()
    store = world.ledger.store
    with superuser(store) as db:
        db.execute(f"DELETE FROM {events_table(store)} WHERE originator_id='directory'")
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "verify", "--format", "json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert not report["ok"] and report["failures"][0]["position"] == 1


def test_verify_requires_both_anchors(world: World, tmp_path: Any) -> None:
    world.accepted_case()
    (world.keystore / "admin.pub").rename(tmp_path / "admin.pub")
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "verify", "--format", "json"])
    assert result.exit_code == 1
    reasons = [f["reason"] for f in json.loads(result.output)["failures"]]
    assert any("no trusted admin key" in r for r in reasons)
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "verify", "--admin-key", str(tmp_path / "admin.pub")])
    assert result.exit_code == 0, result.output


def test_a_write_never_builds_on_a_forged_event(world: World) -> None:
    """Class 3: a write on top of an event that fails a check is refused, nothing written."""
    case = world.accepted_case()
    led = world.ledger
    stranger = Signer.generate("officer-07")   # not the registered key
    forge(led.store, stranger, stream=case, action="progress", actor="officer-07",
          at=t("2025-03-05"), data={"note": "伪造进展", "follow_up": False},
          log_signer=led._checkpoint_signer())
    fresh = type(led).open(world.url, world.keystore)   # a new process: nothing cached
    try:
        before = fresh.store.leaf_count()
        with pytest.raises(VerificationError, match="fails check 3"):
            fresh.execute("progress", case, {"note": "继续"}, as_actor="officer-07",
                          at=t("2025-03-06"))
        assert fresh.store.leaf_count() == before
    finally:
        fresh.close()


def test_a_forged_directory_event_stops_every_write(world: World) -> None:
    led = world.ledger
    intruder = Signer.generate("admin-01")
    forge(led.store, intruder, stream="directory", action="unit.add", actor="admin-01",
          at=t("2025-01-02"), data={"unit": "ghost", "name": "虚构单位"},
          log_signer=led._checkpoint_signer())
    fresh = type(led).open(world.url, world.keystore)
    try:
        with pytest.raises(VerificationError, match="the directory"):
            fresh.execute(
                "register", None, {"channel": "letter", "source": "direct",
                                   "category": "household_registration",
                                   "petitioner": "pet-0001", "summary": "测试"},
                as_actor="registrar-01", at=t("2025-03-02"))
        assert "ghost" not in fresh.directory().units   # a failing event changes nothing
    finally:
        fresh.close()


def test_reports_never_fold_a_planted_or_failing_event(world: World) -> None:
    """Class 1 on the read side: the read model folds only what the checked log accepts."""
    from projections import readmodel as rm
    from projections.runner import catch_up, rebuild

    case = replied_case(world)
    led = world.ledger
    store = led.store
    catch_up(store)
    plant(store, led.keystore.load("office-01"), stream=case, action="close",
          actor="office-01", at=t("2025-03-15"), data={"override_reason": "伪造"}, position=0)
    other = world.accepted_case("2025-04-01")
    stranger = Signer.generate("officer-07")
    forged = forge(store, stranger, stream=other, action="progress", actor="officer-07",
                   at=t("2025-04-05"), data={"note": "伪造进展", "follow_up": False},
                   log_signer=led._checkpoint_signer())
    for refresh in (catch_up, rebuild):
        refresh(store)
        rows = {row.case_no: row for row in rm.cases_where(store)}
        assert rows[case].closed_on is None
        assert rows[other].progress_count == 0
        failed = {position for position, *_ in rm.failures(store)}
        assert forged in failed
    assert 0 in {position for position, *_ in rm.failures(store)}   # seen by the rebuild


def test_export_never_attests_a_stream_with_a_failing_event(world: World, tmp_path: Any) -> None:
    """The log key signs stream heads only for streams the checked view passes."""
    case = world.accepted_case()
    led = world.ledger
    forge(led.store, Signer.generate("officer-07"), stream=case, action="progress",
          actor="officer-07", at=t("2025-03-05"), data={"note": "伪造", "follow_up": False},
          log_signer=led._checkpoint_signer())
    base = ["--ledger", world.url, "--keystore", str(world.keystore)]
    out = tmp_path / "case.bundle.json"
    result = CliRunner().invoke(cli, [*base, "export", case, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "未通过检查 3" in result.output
    english = CliRunner().invoke(cli, [*base, "export", case, "--out", str(out), "--lang", "en"])
    assert english.exit_code == 0 and "fails check 3" in english.output
    bundle = json.loads(out.read_text(encoding="utf-8"))
    assert bundle.get("stream_heads") is None
    verified = CliRunner().invoke(cli, ["verify-bundle", str(out), "--format", "json",
                                        "--log-key", str(world.keystore / "log.pub"),
                                        "--admin-key", str(world.keystore / "admin.pub")])
    assert verified.exit_code == 1 and json.loads(verified.output)["complete"] is False
