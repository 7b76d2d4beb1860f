"""The read model: the fold's known answers, exactly-once catch-up, resume, rebuild, as-of.

Every test runs on SQLite and on PostgreSQL (the ``world`` fixture).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ledger.errors import StorageError
from ledger.log.statement import Envelope
from projections import readmodel as rm
from projections import runner
from projections.asof import as_of_rows
from projections.events import ledger_policy
from projections.fold import CaseRow
from projections.runner import catch_up, rebuild, status
from tests.world import World, t


def row_of(world: World, case: str) -> CaseRow:
    rows = rm.cases_where(world.ledger.store, "case_no = ?", (case,))
    assert len(rows) == 1
    return rows[0]


def busy_case(world: World) -> str:
    """A case through supervision, package, extension, reply, three signatures, closing,
    review, reopen and a reverse-check: every kind of field the read model keeps."""
    case = world.register(t("2025-03-02"), persons=2, reception_day=True,
                          received_by="leader-01", repeat_of=[world.register(t("2025-02-01"))])
    do = world.do
    do("accept", case, {"decision": "accepted", "notice_served_at": "2025-03-03T10:00:00+08:00"},
       by="office-01", at=t("2025-03-03"))
    do("assign", case, {"unit": "county-01", "handler": "officer-08", "due": "2025-04-01"},
       by="office-01", at=t("2025-03-03", 10))
    do("assign", case, {"unit": "station-03", "handler": "officer-07"}, by="office-01",
       at=t("2025-03-04"))
    do("supervise", case, {"authority": "congress", "due": "2025-04-15", "form": "listed"},
       by="leader-01", at=t("2025-03-05"))
    do("remind", case, {"note": "请加快"}, by="supervisor-01", at=t("2025-03-20"))
    do("package", case, {"leader": "leader-01"}, by="leader-01", at=t("2025-03-05", 11))
    do("progress", case, {"note": "已约谈"}, by="officer-07", at=t("2025-03-06"))
    do("progress", case, {"note": "回访", "follow_up": True}, by="officer-07", at=t("2025-03-07"))
    do("extend", case, {"days": 10, "reason": "需要补充调查"}, by="leader-01", at=t("2025-04-20"))
    do("reply", case, {"outcome": "explain", "resolution": "educated",
                       "served_at": "2025-04-25T15:00:00+08:00", "text": "已解释"},
       by="officer-07", at=t("2025-04-25"))
    do("attest", case, {"evidence": ["笔录-1"]}, by="officer-07", at=t("2025-04-26"))
    do("consent", case, {}, by="lead-03", at=t("2025-04-26", 10))
    do("petitioner_sign", case, {"form": "key", "opinion": "dissatisfied"}, by="pet-0001",
       at=t("2025-04-27"))
    do("close", case, {}, by="office-01", at=t("2025-04-28"))
    do("review_request", case, {"level": "review"}, by="registrar-01", at=t("2025-05-05"))
    do("review_decide", case, {"level": "review", "decision": "changed"}, by="reviewer-01",
       at=t("2025-05-20"))
    do("reopen", case, {"reason": "复查变更"}, by="office-01", at=t("2025-05-21"))
    do("reverse_check_open", case, {"reason": "复查变更"}, by="inspector-01", at=t("2025-05-22"))
    do("reverse_check_finding", case, {"actor": "officer-07", "fault": "late_reply",
                                       "evidence": []}, by="inspector-01", at=t("2025-05-23"))
    return case


def test_fold_keeps_what_reports_and_accountability_need(world: World) -> None:
    case = busy_case(world)
    earlier = "XF-2025-000001"
    result = catch_up(world.ledger.store)
    assert result.rebuilt and result.skipped == 0
    assert result.position == world.ledger.store.max_position()
    row = row_of(world, case)
    stored = {r.seq: r for r in world.ledger.store.stream(case)}

    def hash_of(seq: int) -> str:
        return Envelope.from_bytes(stored[seq].state).hash

    expected: dict[str, Any] = {
        "registered_at": "2025-03-02T09:00:00+08:00", "registered_on": "2025-03-02",
        "registered_by": "registrar-01", "register_hash": hash_of(1), "channel": "letter",
        "source": "direct", "category": "household_registration", "petitioner": "pet-0001",
        "persons": 2, "repeat_of": (earlier,), "reception_day": True,
        "received_by": "leader-01", "acceptance_due": "2025-03-17",
        "decision": "accepted", "decided_on": "2025-03-03", "decided_by": "office-01",
        "accept_seq": 2, "accept_hash": hash_of(2), "notice_served_on": "2025-03-03",
        "unit": "station-03", "handler": "officer-07", "assigned_on": "2025-03-04",
        "assign_due": None, "assign_count": 2,
        "supervised_on": "2025-03-05", "supervised_by": "leader-01",
        "supervision_authority": "congress", "supervision_due": "2025-04-15",
        "supervision_form": "listed", "supervise_count": 1, "remind_count": 1,
        "package_leader": "leader-01", "packaged_on": "2025-03-05",
        "progress_count": 2, "follow_up_count": 1, "last_progress_on": "2025-03-07",
        # reopened on 05-21: handling starts again, extension, reply, signatures and closing
        # are cleared (as on the write side); counts and the first reply's date remain
        "handling_start": "2025-05-21", "handling_due": "2025-07-20", "extension_days": 0,
        "replied_on": None, "reply_served_on": None, "first_reply_served_on": "2025-04-25",
        "reply_seq": None, "attested_by": None, "petitioner_opinion": None,
        "closed_on": None, "close_seq": None, "close_count": 1,
        "review_stage": "review_decided", "review_level": "review",
        "review_decision": "changed", "review_decided_on": "2025-05-20", "overturned_count": 1,
        "overturn_seq": 17, "overturn_hash": hash_of(17), "final": False,
        "reopen_count": 1, "reopened_on": "2025-05-21",
        "reverse_check": "open", "reverse_check_count": 1, "reverse_check_findings": 1,
        "last_seq": 20, "max_on": "2025-05-23",
    }
    assert {k: getattr(row, k) for k in expected} == expected
    assignments = world.ledger.store.query(
        f"SELECT n, seq, unit, handler, due, assigned_by, hash FROM "
        f"{world.ledger.store.t('rm_assignments')} WHERE case_no=? ORDER BY n", (case,))
    assert assignments == [(1, 3, "county-01", "officer-08", "2025-04-01", "office-01",
                            hash_of(3)),
                           (2, 4, "station-03", "officer-07", None, "office-01", hash_of(4))]
    assert world.ledger.store.query(
        f"SELECT case_no, earlier FROM {world.ledger.store.t('rm_repeats')}") == [(case, earlier)]
    units, actors = rm.names(world.ledger.store)
    assert units["station-03"] == "城关派出所" and actors["officer-07"] == "张三"


def test_fold_before_reopen_keeps_reply_signatures_and_closing(world: World) -> None:
    case = busy_case(world)
    catch_up(world.ledger.store)
    policy = ledger_policy(world.ledger.store)
    [row] = as_of_rows(world.ledger.store, [row_of(world, case)], date(2025, 4, 30), policy)
    expected = {
        "extension_days": 10, "handling_start": "2025-03-03",
        "handling_due": "2025-05-12",   # 03-03 + 60 days + 10 extension days
        "replied_on": "2025-04-25", "replied_by": "officer-07",
        "reply_served_on": "2025-04-25", "reply_outcome": "explain",
        "reply_resolution": "educated", "reply_seq": 11, "attested_by": "officer-07",
        "consented_by": "lead-03", "petitioner_form": "key",
        "petitioner_opinion": "dissatisfied", "petitioner_signed_by": "pet-0001",
        "petitioner_sign_seq": 14, "closed_on": "2025-04-28", "closed_by": "office-01",
        "close_seq": 15, "close_count": 1, "review_stage": None, "reopen_count": 0,
        "reverse_check": None, "max_on": "2025-04-28",
    }
    assert {k: getattr(row, k) for k in expected} == expected
    assert row.petitioner_signed and row.closed


def test_incremental_catch_up_applies_only_new_events(world: World) -> None:
    store = world.ledger.store
    case = world.accepted_case("2025-03-02")
    first = catch_up(store)
    assert first.applied == store.max_position() and first.rebuilt
    assert row_of(world, case).progress_count == 0
    assert catch_up(store).applied == 0
    world.do("progress", case, {"note": "已走访"}, by="officer-07", at=t("2025-03-05"))
    world.do("progress", case, {"note": "回访", "follow_up": True}, by="officer-07",
             at=t("2025-03-06"))
    second = catch_up(store)
    assert (second.applied, second.rebuilt) == (2, False)
    row = row_of(world, case)
    assert (row.progress_count, row.follow_up_count, row.last_seq) == (2, 1, 5)
    assert status(store)["behind"] == 0


def _cases(world: World, n: int) -> None:
    for i in range(n):
        case = world.accepted_case(f"2025-03-{i + 2:02d}")
        if i % 2:
            world.do("supervise", case, {"authority": "congress", "due": "2025-04-30"},
                     by="leader-01", at=t(f"2025-03-{i + 3:02d}"))


@pytest.mark.parametrize("limits", [(1, 5, 9), (17, 1000)])
def test_catch_up_stopped_midway_resumes_to_the_rebuilt_state(world: World,
                                                              limits: tuple[int, ...]) -> None:
    store = world.ledger.store
    _cases(world, 6)
    applied = 0
    for limit in limits:
        applied += catch_up(store, batch=4, limit=limit).applied
        assert status(store)["position"] == applied
    catch_up(store, batch=4)
    resumed = rm.snapshot(store)
    rebuild(store)
    assert rm.snapshot(store) == resumed


def test_crash_mid_catch_up_commits_whole_batches_only(world: World,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = world.ledger.store
    _cases(world, 6)
    real_save, calls = rm.save_batch, []

    def failing_save(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise StorageError("disk full (injected)")
        real_save(*args)

    monkeypatch.setattr(rm, "save_batch", failing_save)
    with pytest.raises(StorageError):
        catch_up(store, batch=10)
    position = status(store)["position"]
    assert position == 20    # two committed batches of 10 log entries
    registered = {r[0] for r in store.query(
        f"SELECT originator_id FROM {store.events_table} WHERE originator_version=1 "
        f"AND {store.position_column}<=? AND originator_id<>'directory'", (position,))}
    assert {r.case_no for r in rm.cases_where(store)} == registered
    monkeypatch.setattr(rm, "save_batch", real_save)
    assert catch_up(store, batch=10).position == store.max_position()
    resumed = rm.snapshot(store)
    rebuild(store)
    assert rm.snapshot(store) == resumed


def test_a_concurrent_runner_never_applies_an_event_twice(world: World,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = world.ledger.store
    _cases(world, 4)
    catch_up(store)
    _cases(world, 2)
    real_fold, raced = runner.fold_events, []

    def fold_then_race(*args: Any) -> None:
        real_fold(*args)
        if not raced:   # another runner commits while this one holds a folded batch
            raced.append(1)
            monkeypatch.setattr(runner, "fold_events", real_fold)
            catch_up(store)

    monkeypatch.setattr(runner, "fold_events", fold_then_race)
    result = catch_up(store)
    assert raced and result.applied == 0 and result.position == store.max_position()
    raced_rows = rm.snapshot(store)
    rebuild(store)
    assert rm.snapshot(store) == raced_rows


def test_tables_from_another_projection_version_are_rebuilt(world: World) -> None:
    store = world.ledger.store
    world.closed_case()
    catch_up(store)
    before = rm.snapshot(store)
    with store.cursor(commit=True) as cur:
        cur.execute(store.sql(f"UPDATE {store.t('rm_tracking')} SET version=0"))
        cur.execute(store.sql(f"DELETE FROM {store.t('rm_cases')}"))
    result = catch_up(store)
    assert result.rebuilt and result.applied == store.max_position()
    assert rm.snapshot(store) == before


def test_unreadable_event_is_skipped_and_counted(world: World) -> None:
    store = world.ledger.store
    case = world.accepted_case()
    with store.cursor(commit=True) as cur:   # a damaged row: only `verify` can say more
        cur.execute(store.sql(f"INSERT INTO {store.events_table} (originator_id, "
                              "originator_version, topic, state) VALUES (?,?,?,?)"),
                    (case, 99, "progress", b"not an envelope"))
    result = catch_up(store)
    assert result.skipped == 1 and result.position == store.max_position()
    assert row_of(world, case).progress_count == 0
    assert status(store)["skipped"] == 1


def test_as_of_rows_are_the_case_as_it_stood(world: World) -> None:
    store = world.ledger.store
    case = world.closed_case("2025-03-02")   # accepted 03-03, replied 03-12, closed 03-15
    catch_up(store)
    policy = ledger_policy(store)
    current = row_of(world, case)

    def at(day: str) -> CaseRow:
        return as_of_rows(store, [current], date.fromisoformat(day), policy)[0]

    assert at("2025-12-31") is current    # nothing after: the stored row itself
    assert (at("2025-03-02").decision, at("2025-03-02").unit) == (None, None)
    assert at("2025-03-03").decision == "accepted"
    assert at("2025-03-12").replied_on == "2025-03-12" and at("2025-03-12").closed_on is None
    assert at("2025-03-15").closed_on == "2025-03-15"
    assert at("2025-03-01").registered_on == "2025-03-02"   # registration always counts
