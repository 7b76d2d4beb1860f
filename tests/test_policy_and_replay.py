"""Deadline policy (calendar and PRC working days) and replay properties."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.domain.cases import apply_action
from ledger.domain.policy import Policy, load_policy_file
from ledger.errors import InputError, LedgerError
from ledger.verification.history import case_history
from ledger.verification.verify import verify_ledger
from ledger.verification.view import LedgerView
from tests.world import World, build_world, t


def test_default_policy_numbers_are_domain_md() -> None:
    p = Policy()
    assert (p.acceptance_days, p.handling_days, p.max_extension_days, p.review_request_days,
            p.review_decision_days, p.day_counting) == (15, 60, 30, 30, 30, "calendar")
    assert p.add_days(date(2025, 3, 2), 15) == date(2025, 3, 17)


def test_working_days_follow_prc_holidays_and_adjusted_workdays() -> None:
    p = Policy(day_counting="working")
    # National Day 2025: Oct 1-8 off; Sat Oct 11 is an adjusted working day.
    assert p.add_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert p.add_days(date(2025, 10, 10), 1) == date(2025, 10, 11)
    # Sunday 2025-09-28 is an adjusted working day before the holiday.
    assert p.add_days(date(2025, 9, 27), 1) == date(2025, 9, 28)
    assert p.add_days(date(2025, 3, 3), 15) == date(2025, 3, 24)


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('day_counting = "working"\n[deadlines]\nhandling_days = 90\n'
                    'max_extension_days = 60\n', encoding="utf-8")
    policy = load_policy_file(path)
    assert (policy.handling_days, policy.max_extension_days, policy.acceptance_days,
            policy.day_counting) == (90, 60, 15, "working")
    path.write_text("[deadlines]\nhandling_dayz = 1\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown policy settings"):
        load_policy_file(path)


def test_policy_is_signed_into_the_ledger_and_used(ledger_url: str, tmp_path: Path) -> None:
    from ledger import Ledger

    led = Ledger.init(ledger_url, tmp_path / "k", origin="p.example/l", admin="admin-01",
                      policy=Policy(max_extension_days=45), at=t("2025-01-01", 8))
    reopened = Ledger.open(ledger_url, tmp_path / "k")
    assert reopened.policy.max_extension_days == 45
    led.close()
    reopened.close()


def test_history_shows_current_deadlines(world: World) -> None:
    case = world.accepted_case("2025-03-02")
    world.do("extend", case, {"days": 10, "reason": "x"}, by="leader-01", at=t("2025-04-01"))
    history = case_history(world.ledger.store, case)
    assert history.deadlines["acceptance"] == date(2025, 3, 17)
    assert history.deadlines["handling"] == date(2025, 3, 3) + timedelta(days=70)


ACTIONS = ["register", "accept", "assign", "supervise", "remind", "package", "progress",
           "extend", "reply", "attest", "consent", "petitioner_sign", "close", "desist",
           "review_request", "review_decide", "reopen", "reverse_check_open",
           "reverse_check_conclude"]
ACTORS = {"register": "registrar-01", "accept": "office-01", "assign": "office-01",
          "supervise": "leader-01", "remind": "supervisor-01", "package": "leader-01",
          "progress": "officer-07", "extend": "leader-01", "reply": "officer-07",
          "attest": "officer-07", "consent": "lead-03", "petitioner_sign": "pet-0001",
          "close": "office-01", "desist": "registrar-01", "review_request": "registrar-01",
          "review_decide": "reviewer-01", "reopen": "office-01",
          "reverse_check_open": "inspector-01", "reverse_check_conclude": "inspector-01"}


def _data(action: str, day: date, choice: int) -> dict:
    served = f"{day.isoformat()}T10:00:00+08:00"
    return {
        "register": {"channel": "visit", "source": "direct", "category": "help",
                     "petitioner": "pet-0001", "summary": "性质测试", "persons": 1 + choice % 3},
        "accept": {"decision": "accepted"},
        "assign": {"unit": "station-03", "handler": "officer-07"},
        "supervise": {"authority": "leader", "due": (day + timedelta(days=30)).isoformat()},
        "remind": {}, "package": {"leader": "leader-01"}, "progress": {"note": "进展"},
        "extend": {"days": 5 + choice % 20, "reason": "调查"},
        "reply": {"outcome": "support", "resolution": "educated", "served_at": served,
                  "text": "答复"},
        "attest": {"evidence": ["证据"]}, "consent": {},
        "petitioner_sign": {"form": "key", "opinion": ["satisfied", "dissatisfied"][choice % 2]},
        "close": {} if choice % 2 else {"override_reason": "测试"},
        "desist": {"document_sha256": "ab" * 32}, "review_request": {"level": "review"},
        "review_decide": {"level": "review", "decision": ["upheld", "changed"][choice % 2]},
        "reopen": {"reason": "回流"}, "reverse_check_open": {"reason": "倒查"},
        "reverse_check_conclude": {"measures": ["criticism"]},
    }[action]


steps = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2), st.integers(0, 3),
                           st.integers(0, 5)), min_size=5, max_size=30)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(script=steps)
def test_random_command_sequences_replay_and_verify(ledger_url: str, tmp_path_factory,  # noqa: ANN001
                                                    script: list) -> None:
    world = build_world(ledger_url.replace("ledger.db", f"l{uuid.uuid4().hex}.db")
                        if ledger_url.startswith("sqlite") else ledger_url,
                        tmp_path_factory.mktemp("keys"))
    try:
        _run_script(world, script)
    finally:
        world.ledger.close()
        if ledger_url.startswith("postgresql"):
            from tests.conftest import drop_schema

            schema = ledger_url.split("schema=")[1]
            drop_schema(schema)


def _run_script(world: World, script: list) -> None:
    day = date(2025, 2, 1)
    cases: list[str] = []
    model: dict[str, object] = {}
    for action, which, choice, advance in script:
        day += timedelta(days=advance)
        case = None if action == "register" else (cases[which % len(cases)] if cases else None)
        if action != "register" and case is None:
            continue
        at = t(day.isoformat(), 9 + len(model) % 8)
        data = _data(action, day, choice)
        try:
            receipt = world.do(action, case, data, by=ACTORS[action], at=at)
        except LedgerError as exc:
            assert exc.exit_code == 2, exc   # refused as input, never a crash
            continue
        if action == "register":
            cases.append(receipt.stream)
        stored = world.ledger.store.event_at(receipt.stream, receipt.seq)
        from ledger.log.statement import Envelope, Statement

        statement = Statement.from_signed_bytes(Envelope.from_bytes(stored.state).signed)
        model[receipt.stream] = apply_action(model.get(receipt.stream), receipt.stream, action,
                                             statement.data, at, seq=receipt.seq,
                                             actor=statement.actor)
        assert statement.data == {k: v for k, v in data.items()} or action == "register" \
            or set(data) <= set(statement.data)
    fresh = LedgerView(world.ledger.store)   # judges every event again, from the store
    for case in cases:
        assert fresh.stream(case).state == model[case]
        history = case_history(world.ledger.store, case)
        assert history.ok
    report = verify_ledger(world.ledger.store, workers=1)
    assert report.ok, report.failures[:3]
