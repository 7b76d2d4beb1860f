"""Closures agree (issue 9, "Closures agree"): ``close`` without an override is refused on write
exactly when ``case verify-closure`` would call the closure invalid, and an overridden one is
flagged by verify-closure, ``report closures`` and the accountability report alike. On SQLite
and PostgreSQL.

One rule (``ledger.domain.cases.closure_problems``, domain.md 9-10) is applied by the writer and
by ``ledger.verification.closure``; these tests hold the two to it from outside: each way a
closure can be wrong is refused with its reason and writes nothing, and a Hypothesis property
runs random sequences of the closure-related actions on one case.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cli.scenario import build_scenario
from ledger import Ledger
from ledger.errors import InputError, LedgerError, TransitionError, VerificationError
from ledger.verification.closure import closure_record, closure_report, judge_closure
from ledger.verification.history import CaseHistory, HistoryEvent, case_history
from projections.accountability import accountability_report
from tests.conftest import drop_schema
from tests.tamper import forge
from tests.world import CST, World, build_world, t

DIGEST = "cd" * 32
AS_OF = date(2025, 12, 31)


def day(n: int, hour: int = 9) -> datetime:
    """Business time n days after 2025-03-02 (the day the test cases are registered)."""
    return t((datetime(2025, 3, 2) + timedelta(days=n)).date().isoformat(), hour)


@pytest.fixture
def staffed(world: World) -> World:
    """The test world plus a second handler of station-03, to reassign within the unit."""
    world.ledger.add_actor("officer-09", "王五", roles=["handler"], unit="station-03",
                           as_actor="admin-01", at=t("2025-01-01", 8))
    return world


def replied(world: World) -> str:
    case = world.accepted_case("2025-03-02")
    world.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                             "served_at": day(10).isoformat(), "text": "已办理"},
             by="officer-07", at=day(10))
    return case


def attest(w: World, case: str, by: str = "officer-07", at: datetime | None = None) -> None:
    w.do("attest", case, {"evidence": ["答复书-001"]}, by=by, at=at or day(11))


def consent(w: World, case: str, by: str = "lead-03", at: datetime | None = None) -> None:
    w.do("consent", case, {}, by=by, at=at or day(11, 10))


def sign(w: World, case: str, at: datetime | None = None) -> None:
    w.do("petitioner_sign", case, {"form": "key", "opinion": "satisfied"}, by="pet-0001",
         at=at or day(12))


def close(w: World, case: str, override: str | None = None, at: datetime | None = None) -> Any:
    return w.do("close", case, {"override_reason": override} if override else {},
                by="office-01", at=at or day(13))


def forge_event(w: World, case: str, action: str, data: dict[str, Any], *, by: str,
                at: datetime) -> int:
    return forge(w.ledger.store, w.ledger.keystore.load(by), stream=case, action=action,
                 actor=by, at=at, data=data, log_signer=w.ledger._checkpoint_signer())


def codes_of(record: Any) -> list[str]:
    return [p.code for p in record.problems]


def unsigned_triggers(w: World, case: str, *, integrity: bool = True) -> list[dict[str, Any]]:
    report = accountability_report(w.ledger.store, AS_OF, integrity=integrity)
    entries = [c for c in report["cases"] if c["case"] == case]
    return [tr for c in entries for tr in c["triggers"] if tr["code"] == "unsigned_closure"]


# ---- each way a closure can be wrong ------------------------------------------------------
# Each setup leaves a replied case that the writer must not close; it returns the problem code
# the refusal names and the text the reason must contain.

def _refused_only(w: World) -> tuple[str, str, str]:
    case = replied(w)
    attest(w, case)
    consent(w, case)
    w.do("petitioner_sign", case, {"form": "refused", "reason": "拒绝签字"}, by="registrar-01",
         at=day(12))
    return case, "refused", "拒签"


def _reassigned_after_attest(w: World) -> tuple[str, str, str]:
    case = replied(w)
    attest(w, case)
    consent(w, case)
    sign(w, case)
    w.do("assign", case, {"unit": "station-03", "handler": "officer-09"}, by="office-01",
         at=day(12, 14))
    return case, "missing_attest", "now assigned to officer-09"


def _consent_of_another_unit(w: World) -> tuple[str, str, str]:
    """lead-03 consented for station-03; the case then went to county-01."""
    case = replied(w)
    attest(w, case)
    consent(w, case)
    w.do("assign", case, {"unit": "county-01", "handler": "officer-08"}, by="office-01",
         at=day(11, 14))
    attest(w, case, by="officer-08", at=day(11, 15))
    return case, "missing_consent", "now handled by county-01"


def _before_the_latest_reply(w: World) -> tuple[str, str, str]:
    """All three signed, closed, reopened and replied again: the old signatures are spent."""
    case = replied(w)
    attest(w, case)
    consent(w, case)
    sign(w, case)
    close(w, case)
    w.do("reopen", case, {"reason": "结而不息"}, by="office-01", at=day(20))
    w.do("reply", case, {"outcome": "support", "resolution": "aided",
                         "served_at": day(30).isoformat(), "text": "再次答复"},
         by="officer-07", at=day(30))
    return case, "missing_attest", "since the latest reply"


def _dated_after_the_close(w: World) -> tuple[str, str, str]:
    case = replied(w)
    attest(w, case)
    consent(w, case)
    sign(w, case, at=day(14))
    return case, "after_close", "after the closing"


def _attest_missing_so_out_of_order(w: World) -> tuple[str, str, str]:
    """The consent and the petitioner's signature would come before any attestation: both
    are refused as out of order, so the closing lacks all three."""
    case = replied(w)
    with pytest.raises(TransitionError, match="attest → consent → petitioner"):
        consent(w, case)
    with pytest.raises(TransitionError, match="attest → consent → petitioner"):
        sign(w, case)
    attest(w, case, at=day(12))
    with pytest.raises(TransitionError, match="before the handler attestation"):
        consent(w, case, at=day(11))          # dated before the attestation
    return case, "missing_consent", "no unit leader consent"


def _witnessed_without_document(w: World) -> tuple[str, str, str]:
    case = replied(w)
    attest(w, case)
    consent(w, case)
    with pytest.raises(InputError, match="document_sha256"):
        w.do("petitioner_sign", case, {"form": "witnessed", "opinion": "satisfied"},
             by="registrar-01", at=day(12))
    return case, "missing_petitioner", "no petitioner signature"


WRONG: dict[str, Callable[[World], tuple[str, str, str]]] = {
    "refused_only": _refused_only,
    "reassigned_after_attest": _reassigned_after_attest,
    "consent_of_another_unit": _consent_of_another_unit,
    "before_the_latest_reply": _before_the_latest_reply,
    "dated_after_the_close": _dated_after_the_close,
    "out_of_order": _attest_missing_so_out_of_order,
    "witnessed_without_document": _witnessed_without_document,
}


@pytest.mark.parametrize("way", sorted(WRONG))
def test_wrong_closure_is_refused_then_flagged_when_overridden(staffed: World, way: str) -> None:
    w = staffed
    case, code, reason = WRONG[way](w)
    close_at = day(32) if way == "before_the_latest_reply" else day(13)
    before = w.ledger.store.max_position()
    with pytest.raises(TransitionError) as refused:
        close(w, case, at=close_at)
    message = str(refused.value)
    assert "三签" in message and f"{code}: " in message and reason in message, message
    assert "override_reason" in message
    assert w.ledger.store.max_position() == before            # nothing written
    # What the writer refused, verify-closure would have called invalid (the rule is one).
    probe = judge_closure(_with_close(case_history(w.ledger.store, case), close_at))
    assert not probe.valid and code in codes_of(probe)

    close(w, case, override="经集体研究办结", at=close_at)
    history = case_history(w.ledger.store, case)
    assert history.ok                                        # the override closing is lawful
    record = closure_record(w.ledger.store, case)
    assert not record.valid
    assert code in codes_of(record) and codes_of(record)[-1] == "override"
    assert [r.valid for r in closure_report(w.ledger.store) if r.case == case] == [False]
    found = unsigned_triggers(w, case)
    # a recorded refusal with the other two signatures standing is no staff fault by itself
    # (rules 3): shown as such, apart from a closing that skipped a signature
    expected = "refused" if way == "refused_only" else "override"
    assert [tr["variant"] for tr in found][-1:] == [expected]
    assert any(e["type"] == "close" and e["seq"] == record.close_seq
               for e in found[-1]["evidence"])


def test_forged_out_of_order_signatures_are_never_built_on(staffed: World) -> None:
    """Signatures forged out of order fail verification; the writer then refuses to close on
    top of them (override or not), and verify-closure names the unauthorized events."""
    w = staffed
    case = replied(w)
    forge_event(w, case, "petitioner_sign", {"form": "key", "opinion": "satisfied"},
                by="pet-0001", at=day(11))
    forge_event(w, case, "consent", {}, by="lead-03", at=day(11, 10))
    before = w.ledger.store.max_position()
    for override in (None, "强行办结"):
        with pytest.raises((VerificationError, TransitionError)):
            close(w, case, override=override)
    assert w.ledger.store.max_position() == before
    forge_event(w, case, "close", {"override_reason": "强行办结"}, by="office-01", at=day(13))
    record = closure_record(w.ledger.store, case)
    assert not record.valid and "unauthorized" in codes_of(record)
    assert unsigned_triggers(w, case)


def test_reassigned_case_closes_once_signed_again_in_order(staffed: World) -> None:
    w = staffed
    case, _, _ = _reassigned_after_attest(w)
    with pytest.raises(TransitionError, match="already consented|attest → consent"):
        sign(w, case, at=day(12, 16))              # the consent no longer stands either
    attest(w, case, by="officer-09", at=day(12, 15))
    consent(w, case, at=day(12, 16))
    sign(w, case, at=day(12, 17))
    with pytest.raises(TransitionError, match="already signed"):
        sign(w, case, at=day(12, 18))
    close(w, case)
    record = closure_record(w.ledger.store, case)
    assert record.valid, record.problems
    assert record.signatures["handler"].actor == "officer-09"
    assert not unsigned_triggers(w, case)


def test_valid_closure_has_no_trigger_and_verifies(staffed: World) -> None:
    w = staffed
    case = w.closed_case()
    assert closure_record(w.ledger.store, case).valid
    assert case_history(w.ledger.store, case).ok
    assert not unsigned_triggers(w, case)


# ---- the demo year ----------------------------------------------------------------------------

def test_demo_scenario_closures_agree(ledger_url: str, tmp_path: Path) -> None:
    """The demo's year is written through the checked write path; every closing it makes
    without an override is valid, every override closing is invalid, and the accountability
    report flags exactly the invalid ones."""
    scenario = build_scenario(11, cases=30, petitioners=30)
    with Ledger.init(ledger_url, tmp_path / "demo-keys", origin="demo.example/ledger",
                     admin="admin-01", at=datetime(scenario.year, 1, 2, 8, 0, tzinfo=CST)
                     ) as led:
        led.execute_many(scenario.commands)
        records = closure_report(led.store)
        assert records and any(r.override_reason for r in records)
        for record in records:
            assert record.valid == (record.override_reason is None), record
        report = accountability_report(led.store, date(scenario.year, 12, 31))
        flagged = {c["case"] for c in report["cases"]
                   if any(tr["code"] == "unsigned_closure" for tr in c["triggers"])}
        assert flagged == {r.case for r in records if not r.valid}


# ---- the property -----------------------------------------------------------------------------

HANDLERS = {"officer-07": "station-03", "officer-09": "station-03", "officer-08": "county-01"}
LEADERS = {"station-03": "lead-03", "county-01": "lead-01"}
STEPS = st.lists(st.tuples(
    st.sampled_from(["attest", "consent", "key", "witnessed", "refused", "assign", "reply",
                     "three", "three", "close", "close", "override", "reopen"]),
    st.integers(0, 2),        # 0-1: the signer the case has now, 2: someone else; assign: whom
    st.sampled_from([-90, 0, 30, 60, 24 * 60])),         # minutes to move business time
    min_size=4, max_size=18)


def _with_close(history: CaseHistory, at: datetime) -> CaseHistory:
    """``history`` plus a lawful-looking close at ``at``: what verify-closure would say of the
    closing the writer was asked for."""
    last = history.events[-1]
    close = HistoryEvent(last.seq + 1, last.position + 1, "close", at.isoformat(), "",
                         "office-01", "petition_office", "city", {}, "", "", True, True, True)
    return CaseHistory(history.case, [*history.events, close], None)


def _attempt(w: World, case: str, action: str, whom: int, at: datetime,
             now: dict[str, str]) -> str | None:
    """Perform one step; the error text if the writer refused it (always as input). ``now``
    holds the handler and unit the case is assigned to (updated by a written assign).
    ``three`` is attest, consent and the petitioner's key signature in a row."""
    if action == "three":
        for one, minutes in (("attest", 0), ("consent", 10), ("key", 20)):
            _attempt(w, case, one, whom, at + timedelta(minutes=minutes), now)
        return None
    handler, unit = now["handler"], now["unit"]
    other_handler = next(h for h in sorted(HANDLERS) if h != handler)
    data: dict[str, Any]
    if action in ("attest", "reply"):
        by = handler if whom < 2 else other_handler
        data = {"evidence": ["证据"]} if action == "attest" else {
            "outcome": "explain", "resolution": "educated", "served_at": at.isoformat(),
            "text": "答复"}
        name = action
    elif action == "consent":
        name, by, data = "consent", LEADERS[unit] if whom < 2 else next(
            leader for u, leader in LEADERS.items() if u != unit), {}
    elif action in ("key", "witnessed", "refused"):
        name = "petitioner_sign"
        by = "pet-0001" if action == "key" else "registrar-01"
        data = {"form": action, **({"opinion": "satisfied"} if action != "refused" else
                                   {"reason": "拒绝签字"}),
                **({"document_sha256": DIGEST} if action == "witnessed" else {})}
    elif action == "assign":
        target = sorted(HANDLERS)[whom]
        name, by, data = "assign", "office-01", {"unit": HANDLERS[target], "handler": target}
    elif action == "reopen":
        name, by, data = "reopen", "office-01", {"reason": "回流"}
    else:
        name, by = "close", "office-01"
        data = {"override_reason": "测试"} if action == "override" else {}
    try:
        w.do(name, case, data, by=by, at=at)
    except LedgerError as exc:
        assert exc.exit_code == 2, exc       # refused as input, never a crash
        return str(exc)
    if name == "assign":
        now.update(handler=data["handler"], unit=data["unit"])
    return None


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
@example(steps=[("three", 0, 60), ("close", 0, 60)])
@example(steps=[("three", 0, 60), ("assign", 2, 60), ("close", 0, 60), ("three", 0, 60),
                ("close", 0, 60)])                     # reassigned within the unit, re-signed
@example(steps=[("three", 0, 60), ("close", 0, 60), ("reopen", 0, 60), ("close", 0, 60),
                ("reply", 0, 60), ("three", 0, 60), ("close", 0, 24 * 60)])
def test_close_succeeds_iff_the_closure_is_valid(ledger_url: str, tmp_path_factory: Any,
                                                 steps: list[tuple[str, int, int]]) -> None:
    for w in _fresh_world(ledger_url, tmp_path_factory):
        w.ledger.add_actor("officer-09", "王五", roles=["handler"], unit="station-03",
                           as_actor="admin-01", at=t("2025-01-01", 8))
        case = replied(w)
        store = w.ledger.store
        at = day(10, 10)
        now = {"handler": "officer-07", "unit": "station-03"}
        for action, whom, minutes in steps:
            at += timedelta(minutes=minutes)
            if action not in ("close", "override"):
                _attempt(w, case, action, whom, at, now)
                continue
            history = case_history(store, case)
            state = history.state
            assert state is not None
            refusal = _attempt(w, case, action, whom, at, now)
            event(f"{action} {'refused' if refusal else 'written'}")
            after = case_history(store, case)
            if refusal is None:
                record = judge_closure(after)
                assert record.valid == (action == "close"), record.problems
                assert after.events[-1].type == "close" and after.events[-1].ok
            elif not state.closed and action == "close":
                # Refused: verify-closure would have judged that closing invalid, for the
                # same rule-level reasons the refusal names.
                assert len(after.events) == len(history.events)
                probe = judge_closure(_with_close(history, at))
                assert not probe.valid
                rule = [c for c in codes_of(probe) if c not in ("override", "bad_close")]
                assert rule and all(f"{c}: " in refusal for c in rule) or \
                    "no reply" in refusal, (refusal, probe.problems)
        # Every closing of the case: invalid exactly when the accountability report flags it.
        events = case_history(store, case).events
        invalid = {e.seq for i, e in enumerate(events) if e.type == "close" and
                   not judge_closure(CaseHistory(case, events[:i + 1], None)).valid}
        flagged = {e["seq"] for tr in unsigned_triggers(w, case, integrity=False)
                   for e in tr["evidence"] if e["type"] == "close"}   # every event is honest
        assert flagged == invalid


def _fresh_world(ledger_url: str, tmp_path_factory: Any) -> Iterator[World]:
    """A new ledger per Hypothesis example (the fixture's is shared by all of them)."""
    if ledger_url.startswith("sqlite"):
        url = ledger_url.replace("ledger.db", f"l{uuid.uuid4().hex}.db")
    else:
        url = ledger_url.replace(ledger_url.split("schema=")[1], f"t_{uuid.uuid4().hex[:12]}")
    w = build_world(url, tmp_path_factory.mktemp("keys"))
    try:
        yield w
    finally:
        w.ledger.close()
        if url.startswith("postgresql"):
            drop_schema(url.split("schema=")[1])


def test_history_view_agrees_for_a_mixed_case(staffed: World) -> None:
    """Case history shows the refused-order events nowhere (they were never written) and the
    override closing as a lawful event; verify-closure and the report call it invalid."""
    w = staffed
    case, _, _ = _refused_only(w)
    close(w, case, override="信访人拒签")
    history = case_history(w.ledger.store, case)
    assert [e.type for e in history.events][-4:] == ["attest", "consent", "petitioner_sign",
                                                      "close"]
    assert all(e.ok for e in history.events)
    record = closure_record(w.ledger.store, case)
    assert codes_of(record) == ["refused", "override"]
    (trigger,) = unsigned_triggers(w, case)
    assert trigger["facts"]["missing"] == ["refused"]
    assert replace(record, problems=()).valid   # only the problems make it invalid
