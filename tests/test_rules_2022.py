"""The petition rules as the 信访工作条例 (2022) states them (rules version 3, issue 11).

Each rule: refused on write (nothing written), a forged-but-signed event that breaks it fails
``verify`` (check 4, at that event), and its consequence in the reports. Both backends.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from ledger.domain.policy import RULES_VERSION, Policy, PolicyError
from ledger.errors import ForbiddenError, InputError, TransitionError
from ledger.verification.closure import closure_record
from ledger.verification.verify import VerifyReport, verify_ledger
from projections import accountability_report, statistics, supervision
from projections.events import ledger_policy
from projections.readmodel import cases_where
from projections.runner import catch_up
from tests.tamper import forge
from tests.test_rules_version import staffed
from tests.world import World, t

END = date(2025, 12, 31)
REPLY = {"outcome": "support", "resolution": "problem_solved", "text": "已办理"}


def refused(world: World, exc: type[Exception], match: str, action: str, case: str | None,
            data: dict[str, Any], by: str, at: datetime) -> None:
    before = world.ledger.store.leaf_count()
    with pytest.raises(exc, match=match):
        world.do(action, case, data, by=by, at=at)
    assert world.ledger.store.leaf_count() == before, "a refused write wrote something"


def forged(world: World, case: str, action: str, data: dict[str, Any], *, by: str,
           at: datetime) -> int:
    """Signed with ``by``'s own key, appended without the write path's checks."""
    return forge(world.ledger.store, world.ledger.keystore.load(by), stream=case,
                 action=action, actor=by, at=at, data=data,
                 log_signer=world.ledger._checkpoint_signer())


def caught(world: World, position: int, match: str) -> VerifyReport:
    report = verify_ledger(world.ledger.store, workers=1)
    assert not report.ok
    failure = next(f for f in report.failures if f.position == position)
    assert failure.check == 4, failure
    assert match in failure.reason, failure.reason
    return report


def triggers(world: World, case: str, verified: VerifyReport | None = None,
             as_of: date = END) -> list[dict[str, Any]]:
    report = accountability_report(world.ledger.store, as_of, verified=verified,
                                   integrity=verified is not None)
    entry = next((c for c in report["cases"] if c["case"] == case), None)
    return entry["triggers"] if entry else []


def codes(found: list[dict[str, Any]]) -> list[str]:
    return [trigger["code"] for trigger in found]


def row(world: World, case: str) -> Any:
    catch_up(world.ledger.store)
    return cases_where(world.ledger.store, "case_no = ?", [case])[0]


def add_actor(world: World, actor: str, unit: str, role: str) -> None:
    world.ledger.add_actor(actor, actor, roles=[role], unit=unit, as_actor="admin-01",
                           at=t("2025-01-01", 8))


def replied(world: World, day: str = "2025-03-02", served: str = "2025-03-12") -> str:
    case = world.accepted_case(day)
    world.do("reply", case, {**REPLY, "served_at": t(served).isoformat()}, by="officer-07",
             at=t(served))
    return case


def test_new_ledgers_record_rules_3() -> None:
    assert RULES_VERSION == 3 and Policy().rules == 3
    assert Policy.recorded({k: v for k, v in Policy().to_data().items()
                            if k not in ("rules", "permissions")}).rules == 1


# ---- 1. extension (延期), Art. 34 --------

def test_rule_1_extension_while_running_once_by_the_accepting_organs_head(world: World) -> None:
    case = world.accepted_case("2025-03-02")          # accepted 03-03 by office-01 (city)
    add_actor(world, "leader-09", "county-01", "leader")
    days = {"days": 30, "reason": "需调取档案"}
    refused(world, ForbiddenError, "needs the role leader", "extend", case, days, "lead-03",
            t("2025-04-20"))                           # a handling unit's head: no longer
    refused(world, ForbiddenError, "accepted", "extend", case, days, "leader-09",
            t("2025-04-20"))                           # a leader of another branch
    refused(world, TransitionError, "ended on 2025-05-02", "extend", case, days, "leader-01",
            t("2025-05-03"))                           # the period is over
    refused(world, TransitionError, "at most 30 days", "extend", case, {**days, "days": 31},
            "leader-01", t("2025-04-20"))
    world.do("extend", case, {**days, "notified_at": t("2025-04-21").isoformat()},
             by="leader-01", at=t("2025-04-20"))
    refused(world, TransitionError, "extended once", "extend", case, {**days, "days": 5},
            "leader-01", t("2025-04-25"))
    assert row(world, case).handling_due == "2025-06-01"
    assert row(world, case).extension_notified_on == "2025-04-21"


def test_rule_1_a_forged_late_extension_fails_and_never_moves_the_deadline(world: World
                                                                          ) -> None:
    case = world.accepted_case("2025-03-02")          # handling due 2025-05-02
    position = forged(world, case, "extend", {"days": 30, "reason": "补批延期"},
                      by="leader-01", at=t("2025-05-10"))
    # (the write path refuses to build on a failing event: the reply is appended the same way,
    # and is itself a valid event)
    forged(world, case, "reply", {**REPLY, "served_at": t("2025-05-20").isoformat()},
           by="officer-07", at=t("2025-05-20"))
    verified = caught(world, position, "ended on 2025-05-02")
    assert [f.position for f in verified.failures] == [position]
    late = [x for x in triggers(world, case, verified) if x["code"] == "late_reply"]
    assert [(x["due"], x["days_late"]) for x in late] == [("2025-05-02", 18)]
    assert "integrity" in codes(triggers(world, case, verified))
    assert row(world, case).handling_due == "2025-05-02"


def test_rule_1_rules_2_ledgers_keep_the_unit_leaders_extension(ledger_url: str,
                                                                keystore: Path) -> None:
    world = staffed(ledger_url, keystore, Policy(rules=2))
    try:
        case = world.accepted_case("2025-03-02")
        world.do("extend", case, {"days": 20, "reason": "x"}, by="lead-03", at=t("2025-05-20"))
        world.do("extend", case, {"days": 10, "reason": "y"}, by="lead-03", at=t("2025-05-21"))
        assert verify_ledger(world.ledger.store, workers=1).ok
        # written late under rules 2, they are recorded but do not move the deadline
        late = row(world, case)
        assert (late.handling_due, late.extension_days, late.late_extension_days) == \
            ("2025-05-02", 0, 30)
    finally:
        world.ledger.close()


# ---- 2. the 复核's outcome, Art. 36 --------

def rechecked(world: World, decision: str, day: str = "2025-03-02") -> str:
    """A closed case (reply by station-03 on day+10), its 复查 upheld by the county bureau's
    reviewer and its 复核 decided by the city bureau's."""
    case = world.closed_case(day)
    world.do("review_request", case, {"level": "review"}, by="registrar-01", at=t("2025-03-20"))
    world.do("review_decide", case, {"level": "review", "decision": "upheld"},
             by="reviewer-02", at=t("2025-04-01"))
    world.do("review_request", case, {"level": "recheck"}, by="registrar-01",
             at=t("2025-04-10"))
    world.do("review_decide", case, {"level": "recheck", "decision": decision},
             by="reviewer-01", at=t("2025-04-30"))
    return case


def test_rule_2_a_changed_recheck_is_handled_again_an_upheld_one_is_final(world: World
                                                                         ) -> None:
    changed = rechecked(world, "changed")
    world.do("reopen", changed, {"reason": "复核变更"}, by="office-01", at=t("2025-05-02"))
    final = rechecked(world, "upheld", "2025-03-03")
    refused(world, TransitionError, "final", "reopen", final, {"reason": "再办"}, "office-01",
            t("2025-05-02"))
    same = world.register(t("2025-06-01"), repeat_of=[final])
    refused(world, TransitionError, "new_facts", "accept", same, {"decision": "accepted"},
            "office-01", t("2025-06-02"))
    world.do("accept", same, {"decision": "not_reaccepted", "reason": "同一事实和理由",
                              "ground": "final_recheck"}, by="office-01", at=t("2025-06-02"))
    new = world.register(t("2025-06-03"), repeat_of=[final], new_facts="新的书证")
    world.do("accept", new, {"decision": "accepted"}, by="office-01", at=t("2025-06-04"))
    assert (row(world, changed).final, row(world, final).final) == (False, True)
    assert "overturned" in codes(triggers(world, changed))
    stats = statistics(world.ledger.store, date(2025, 1, 1), END, END)
    assert stats["not_accepted_by_ground"]["final_recheck"] == 1
    assert verify_ledger(world.ledger.store, workers=1).ok


def test_rule_2_forged_handling_of_a_final_matter_fails(world: World) -> None:
    final = rechecked(world, "upheld")
    same = world.register(t("2025-06-01"), repeat_of=[final])
    position = forged(world, same, "accept", {"decision": "accepted"}, by="office-01",
                      at=t("2025-06-02"))
    caught(world, position, "final after 复核")
    reopened = forged(world, final, "reopen", {"reason": "再办"}, by="office-01",
                      at=t("2025-06-03"))
    caught(world, reopened, "final")
    assert row(world, final).reopen_count == 0 and row(world, same).decision is None


# ---- 3. review levels, Art. 35-36 --------

def test_rule_3_reviews_are_decided_by_a_higher_body(world: World) -> None:
    case = world.closed_case("2025-03-02")              # replied by station-03
    add_actor(world, "reviewer-st", "station-03", "reviewer")
    world.do("review_request", case, {"level": "review"}, by="registrar-01", at=t("2025-03-20"))
    decision = {"level": "review", "decision": "changed"}
    refused(world, ForbiddenError, "not of a unit above the replying unit", "review_decide",
            case, decision, "reviewer-st", t("2025-04-01"))
    world.do("review_decide", case, {**decision, "decision": "upheld"}, by="reviewer-02",
             at=t("2025-04-01"))                         # county-01, above station-03
    world.do("review_request", case, {"level": "recheck"}, by="registrar-01",
             at=t("2025-04-10"))
    refused(world, ForbiddenError, "body's unit", "review_decide", case,
            {"level": "recheck", "decision": "upheld"}, "reviewer-02", t("2025-04-20"))
    world.do("review_decide", case, {"level": "recheck", "decision": "upheld"},
             by="reviewer-01", at=t("2025-04-20"))       # city, above county-01


def test_rule_3_a_same_level_decision_fails_verify_and_counts_for_nothing(world: World
                                                                         ) -> None:
    case = world.closed_case("2025-03-02")
    add_actor(world, "reviewer-st", "station-03", "reviewer")
    world.do("review_request", case, {"level": "review"}, by="registrar-01", at=t("2025-03-20"))
    position = forged(world, case, "review_decide", {"level": "review", "decision": "revoked"},
                      by="reviewer-st", at=t("2025-04-01"))
    verified = caught(world, position, "not of a unit above")
    found = codes(triggers(world, case, verified))
    assert "integrity" in found and "overturned" not in found
    assert row(world, case).review_decision is None


# ---- 4. review windows from the served decision, Art. 35-36 --------

def test_rule_4_the_recheck_window_runs_from_the_served_review_decision(world: World) -> None:
    served = world.closed_case("2025-03-02")
    bare = world.closed_case("2025-03-03")
    for case in (served, bare):
        world.do("review_request", case, {"level": "review"}, by="registrar-01",
                 at=t("2025-03-20"))
    world.do("review_decide", served, {"level": "review", "decision": "upheld",
                                       "served_at": t("2025-05-20").isoformat()},
             by="reviewer-02", at=t("2025-05-01"))
    world.do("review_decide", bare, {"level": "review", "decision": "upheld"},
             by="reviewer-02", at=t("2025-05-01"))
    recheck = {"level": "recheck"}
    refused(world, TransitionError, "window closed on 2025-05-31", "review_request", bare,
            recheck, "registrar-01", t("2025-06-05"))   # 35 days after the decision
    refused(world, TransitionError, "window closed on 2025-06-19", "review_request", served,
            recheck, "registrar-01", t("2025-06-25"))
    world.do("review_request", served, recheck, by="registrar-01", at=t("2025-06-15"))
    position = forged(world, bare, "review_request", recheck, by="registrar-01",
                      at=t("2025-06-10"))
    caught(world, position, "window closed on 2025-05-31")
    assert row(world, served).review_served_on == "2025-05-20"
    assert row(world, served).review_stage == "recheck_requested"
    assert row(world, bare).review_stage == "review_decided"   # the forged request: nothing


def test_rule_4_rules_2_windows_run_from_the_decision_date(ledger_url: str,
                                                           keystore: Path) -> None:
    world = staffed(ledger_url, keystore, Policy(rules=2))
    try:
        case = world.closed_case("2025-03-02")
        world.do("review_request", case, {"level": "review"}, by="registrar-01",
                 at=t("2025-03-20"))
        world.do("review_decide", case, {"level": "review", "decision": "upheld",
                                         "served_at": t("2025-05-20").isoformat()},
                 by="reviewer-01", at=t("2025-05-01"))   # rules 2: any reviewer
        refused(world, TransitionError, "window closed on 2025-05-31", "review_request", case,
                {"level": "recheck"}, "registrar-01", t("2025-06-15"))
    finally:
        world.ledger.close()


# ---- 5. hearings (听证), Art. 36 --------

def in_recheck(world: World, day: str) -> str:
    case = world.closed_case(day)
    world.do("review_request", case, {"level": "review"}, by="registrar-01", at=t("2025-03-20"))
    world.do("review_decide", case, {"level": "review", "decision": "upheld"},
             by="reviewer-02", at=t("2025-04-01"))
    world.do("review_request", case, {"level": "recheck"}, by="registrar-01",
             at=t("2025-04-20"))
    return case


def test_rule_5_a_hearing_is_not_counted_in_the_recheck_period(world: World) -> None:
    heard, plain = in_recheck(world, "2025-03-02"), in_recheck(world, "2025-03-03")
    hearing = {"start": t("2025-04-28").isoformat(), "end": t("2025-05-02", 17).isoformat()}
    refused(world, TransitionError, "pending 复核", "hearing", world.closed_case("2025-03-04"),
            hearing, "reviewer-01", t("2025-05-03"))
    refused(world, ForbiddenError, "the 复核 body holds the hearing", "hearing", heard, hearing,
            "reviewer-02", t("2025-05-03"))
    refused(world, TransitionError, "once it has ended", "hearing", heard, hearing,
            "reviewer-01", t("2025-05-02", 12))
    refused(world, TransitionError, "before the 复核 was requested", "hearing", heard,
            {**hearing, "start": t("2025-04-18").isoformat()}, "reviewer-01", t("2025-05-03"))
    world.do("hearing", heard, hearing, by="reviewer-01", at=t("2025-05-03"))
    for case in (heard, plain):   # 33 days after the request: 5 hearing days are not counted
        world.do("review_decide", case, {"level": "recheck", "decision": "upheld"},
                 by="reviewer-01", at=t("2025-05-23"))
    late = {case: [x for x in triggers(world, case) if x["code"] == "late_review_decision"]
            for case in (heard, plain)}
    assert late[heard] == []
    assert [(x["due"], x["days_late"]) for x in late[plain]] == [("2025-05-20", 3)]
    assert row(world, heard).hearing_days == 5


def test_rule_5_a_forged_hearing_outside_a_recheck_fails(world: World) -> None:
    case = world.closed_case("2025-03-02")
    position = forged(world, case, "hearing", {"start": t("2025-04-01").isoformat(),
                                               "end": t("2025-04-01", 17).isoformat()},
                      by="reviewer-01", at=t("2025-04-02"))
    caught(world, position, "pending 复核")
    assert row(world, case).hearing_days == 0


# ---- 6. receipt and registration, Art. 23, 44 --------

def test_rule_6_periods_run_from_receipt_and_late_registration_is_a_fault(world: World
                                                                         ) -> None:
    refused(world, TransitionError, "after the registration", "register", None,
            {"channel": "letter", "source": "direct", "category": "help",
             "petitioner": "pet-0001", "summary": "求助",
             "received_at": t("2025-03-13").isoformat()}, "registrar-01", t("2025-03-12"))
    # received Saturday 03-01: registration due 03-07 (5 working days), notice due 03-16
    late = world.register(t("2025-03-12"), received_at=t("2025-03-01").isoformat())
    refused(world, TransitionError, "before the petition was received", "accept", late,
            {"decision": "accepted", "notice_served_at": t("2025-02-28").isoformat()},
            "office-01", t("2025-03-20"))
    world.do("accept", late, {"decision": "accepted"}, by="office-01", at=t("2025-03-20"))
    found = {x["code"]: x for x in triggers(world, late)}
    assert (found["late_registration"]["due"], found["late_registration"]["days_late"]) == \
        ("2025-03-07", 5)
    # 15 days from receipt, not from the registration (which would be 03-27)
    assert (found["late_acceptance"]["due"], found["late_acceptance"]["days_late"]) == \
        ("2025-03-16", 4)
    assert found["late_notice"]["variant"] == "missing"   # no notice served by the deadline
    assert row(world, late).received_on == "2025-03-01"
    prompt = world.register(t("2025-03-03"))                 # received when registered
    world.do("accept", prompt, {"decision": "accepted",
                                "notice_served_at": t("2025-03-04").isoformat()},
             by="office-01", at=t("2025-03-04"))
    assert not {"late_registration", "late_acceptance", "late_notice"} & set(
        codes(triggers(world, prompt)))


def test_rule_6_a_forged_registration_received_after_it_fails(world: World) -> None:
    data = {"channel": "letter", "source": "direct", "category": "help",
            "petitioner": "pet-0001", "summary": "求助", "persons": 1, "repeat_of": [],
            "reception_day": False, "received_at": t("2025-03-20").isoformat()}
    position = forged(world, "XF-2025-000077", "register", data, by="registrar-01",
                      at=t("2025-03-12"))
    caught(world, position, "receipt comes first")
    catch_up(world.ledger.store)
    assert cases_where(world.ledger.store, "case_no = ?", ["XF-2025-000077"]) == []


# ---- 7. day counting --------

def test_rule_7_days_are_calendar_days_rolled_past_holidays_working_days_for_5_day_rules(
) -> None:
    calendar, rolled = Policy(), Policy(roll_holidays=True)
    assert calendar.add_days(date(2025, 9, 16), 15) == date(2025, 10, 1)   # 国庆节
    assert rolled.add_days(date(2025, 9, 16), 15) == date(2025, 10, 9)
    assert rolled.add_days(date(2025, 3, 1), 15) == date(2025, 3, 17)      # Sunday → Monday
    # 工作日: 2025-09-28 (a Sunday) is an adjusted working day, 10-01..10-08 are holidays
    assert calendar.add_working_days(date(2025, 9, 26), 5) == date(2025, 10, 10)
    assert Policy(day_counting="working").add_days(date(2025, 9, 26), 5) == date(2025, 10, 10)
    assert rolled.handling_due(date(2025, 8, 2)) == date(2025, 10, 9)
    with pytest.raises(PolicyError, match="true or false"):
        Policy.from_data({"roll_holidays": 1})


def test_rule_7_a_rolled_window_on_write_verify_and_reports(ledger_url: str,
                                                            keystore: Path) -> None:
    world = staffed(ledger_url, keystore, Policy(roll_holidays=True))
    try:
        case = world.accepted_case("2025-08-01")         # accepted 08-02: due 10-01 → 10-09
        world.do("reply", case, {**REPLY, "served_at": t("2025-09-01").isoformat()},
                 by="officer-07", at=t("2025-09-01"))   # review window 10-01 → 10-09
        other = world.accepted_case("2025-08-01")
        world.do("reply", other, {**REPLY, "served_at": t("2025-10-08").isoformat()},
                 by="officer-07", at=t("2025-10-08"))
        refused(world, TransitionError, "window closed on 2025-10-09", "review_request", case,
                {"level": "review"}, "registrar-01", t("2025-10-10"))
        position = forged(world, case, "review_request", {"level": "review"},
                          by="registrar-01", at=t("2025-10-11"))
        caught(world, position, "window closed on 2025-10-09")
        assert row(world, other).handling_due == "2025-10-09"
        assert "late_reply" not in codes(triggers(world, other))   # served 10-08: in time
    finally:
        world.ledger.close()


# ---- 8. coded grounds for not accepting, Art. 19-22 --------

def test_rule_8_not_accepted_names_a_coded_ground_counted_in_statistics(world: World) -> None:
    case = world.register(t("2025-03-02"))
    refused(world, TransitionError, "names its ground", "accept", case,
            {"decision": "not_accepted", "reason": "不属于职权范围"}, "office-01",
            t("2025-03-03"))
    refused(world, InputError, "only when the petition is not accepted", "accept", case,
            {"decision": "accepted", "ground": "other"}, "office-01", t("2025-03-03"))
    refused(world, InputError, "final_recheck goes with not_reaccepted", "accept", case,
            {"decision": "not_accepted", "reason": "x", "ground": "final_recheck"},
            "office-01", t("2025-03-03"))
    world.do("accept", case, {"decision": "not_accepted", "reason": "属于劳动争议",
                              "ground": "legal_procedure"}, by="office-01", at=t("2025-03-03"))
    other = world.register(t("2025-03-04"))
    world.do("accept", other, {"decision": "not_accepted", "reason": "已由区政府受理",
                               "ground": "handled_elsewhere"}, by="office-01",
             at=t("2025-03-05"))
    grounds = statistics(world.ledger.store, date(2025, 1, 1), END, END)["not_accepted_by_ground"]
    assert grounds == {"outside_remit": 0, "legal_procedure": 1, "handled_elsewhere": 1,
                       "final_recheck": 0, "other": 0}
    assert row(world, case).ground == "legal_procedure"


def test_rule_8_a_forged_decision_without_a_ground_fails(world: World) -> None:
    case = world.register(t("2025-03-02"))
    position = forged(world, case, "accept", {"decision": "not_accepted", "reason": "无"},
                      by="office-01", at=t("2025-03-03"))
    caught(world, position, "names its ground")
    assert row(world, case).decision is None


# ---- 9. supervision: 通报 and report-backs (回告), Art. 39-40 --------

def test_rule_9_report_backs_to_the_supervising_authority(world: World) -> None:
    quiet = world.accepted_case("2025-03-02")
    refused(world, TransitionError, "not supervised", "report_back", quiet,
            {"text": "回告"}, "officer-07", t("2025-03-10"))
    reported, silent, late = (world.accepted_case(d) for d in
                              ("2025-03-03", "2025-03-04", "2025-03-05"))
    for case in (reported, silent, late):
        world.do("supervise", case, {"authority": "leader", "due": "2025-04-10",
                                     "form": "notice"}, by="leader-01", at=t("2025-03-08"))
    refused(world, ForbiddenError, "handling body", "report_back", reported, {"text": "回告"},
            "officer-08", t("2025-04-01"))               # a handler of another case
    world.do("report_back", reported, {"text": "已按期回告",
                                       "served_at": t("2025-04-09").isoformat()},
             by="lead-03", at=t("2025-04-09"))
    world.do("report_back", late, {"text": "逾期回告"}, by="officer-07", at=t("2025-04-20"))
    found = {case: [x for x in triggers(world, case) if x["code"] == "no_report_back"]
             for case in (reported, silent, late)}
    assert found[reported] == []
    assert [(x["variant"], x["days_late"]) for x in found[silent]] == [("none", 265)]
    assert [(x["variant"], x["days_late"]) for x in found[late]] == [(None, 10)]
    assert {p["actor"] for p in found[silent][0]["responsible"]} == {"officer-07", "lead-03"}
    rows = {r["case"]: r for r in supervision(world.ledger.store, END)["rows"]}
    assert (rows[reported]["report_backs"], rows[reported]["reported_back_on"]) == \
        (1, "2025-04-09")
    assert rows[reported]["form"] == "notice"


def test_rule_9_a_forged_report_back_on_an_unsupervised_case_fails(world: World) -> None:
    case = world.accepted_case("2025-03-02")
    position = forged(world, case, "report_back", {"text": "伪造回告"}, by="officer-07",
                      at=t("2025-03-10"))
    caught(world, position, "not supervised")
    assert row(world, case).report_back_count == 0


# ---- 10. groups --------

def test_rule_10_group_size_by_policy_and_joint_letters_apart(ledger_url: str,
                                                              keystore: Path) -> None:
    with pytest.raises(PolicyError, match="at least 2"):
        Policy(min_group_persons=1)
    with pytest.raises(InputError, match="min_group_persons"):
        Ledger.init(ledger_url, keystore, origin="x.example/l", admin="admin-01",
                    policy=Policy.from_data({"min_group_persons": 1}))
    world = staffed(ledger_url, keystore, Policy(min_group_persons=5))
    try:
        for persons, channel in ((3, "visit"), (5, "visit"), (8, "letter"), (6, "online"),
                                 (12, "call"), (1, "visit")):
            world.register(t("2025-03-02"), persons=persons, channel=channel)
        stats = statistics(world.ledger.store, date(2025, 1, 1), END, END)
        assert stats["group_min_persons"] == 5
        assert stats["group"] == {"batches": 4, "persons": 31}
        assert stats["group_visits"] == {"batches": 1, "persons": 5}
        assert stats["joint_letters"] == {"batches": 2, "persons": 14}
        assert ledger_policy(world.ledger.store).min_group_persons == 5
    finally:
        world.ledger.close()


def test_rule_10_the_default_group_is_more_than_one_person(world: World) -> None:
    for persons in (1, 2):
        world.register(t("2025-03-02"), persons=persons, channel="visit")
    stats = statistics(world.ledger.store, date(2025, 1, 1), END, END)
    assert stats["group"] == {"batches": 1, "persons": 2} == stats["group_visits"]


# ---- 11. responsibility, refusals (拒签) and coded measures --------

def signed_but_refused(world: World, day: str = "2025-03-02") -> str:
    case = replied(world, day, "2025-03-12")
    world.do("attest", case, {"evidence": ["答复书"]}, by="officer-07", at=t("2025-03-13"))
    world.do("consent", case, {}, by="lead-03", at=t("2025-03-13", 10))
    return case


def test_rule_11_a_refusal_is_recorded_with_its_reason_and_is_no_staff_fault(world: World
                                                                            ) -> None:
    case = signed_but_refused(world)
    refused(world, TransitionError, "with its reason", "petitioner_sign", case,
            {"form": "refused"}, "registrar-01", t("2025-03-14"))
    world.do("petitioner_sign", case, {"form": "refused", "reason": "对赔偿数额有异议"},
             by="registrar-01", at=t("2025-03-14"))
    world.do("close", case, {"override_reason": "信访人拒签，经研究办结"}, by="office-01",
             at=t("2025-03-15"))
    skipped = world.accepted_case("2025-03-03")
    world.do("reply", skipped, {**REPLY, "served_at": t("2025-03-12").isoformat()},
             by="officer-07", at=t("2025-03-12"))
    world.do("close", skipped, {"override_reason": "未经签字办结"}, by="office-01",
             at=t("2025-03-15"))
    record = closure_record(world.ledger.store, case)
    refusal = next(p for p in record.problems if p.code == "refused")
    assert "对赔偿数额有异议" in refusal.detail and not record.valid
    petitioner = record.signatures["petitioner"]
    assert (petitioner.form, petitioner.reason) == ("refused", "对赔偿数额有异议")
    assert record.to_json()["signatures"]["petitioner"]["reason"] == "对赔偿数额有异议"
    other = closure_record(world.ledger.store, skipped)
    assert [p.code for p in other.problems if p.code in ("refused", "missing_petitioner")] == \
        ["missing_petitioner"]
    [after_refusal] = [x for x in triggers(world, case) if x["code"] == "unsigned_closure"]
    [skipping] = [x for x in triggers(world, skipped) if x["code"] == "unsigned_closure"]
    assert after_refusal["variant"] == "refused" and after_refusal["responsible"] == []
    assert after_refusal["facts"]["reason"] == "对赔偿数额有异议"
    assert skipping["variant"] == "override"
    assert {p["actor"] for p in skipping["responsible"]} == {"office-01", "officer-07",
                                                            "lead-03"}
    assert row(world, case).refusal_reason == "对赔偿数额有异议"


def test_rule_11_direct_and_leadership_responsibility(world: World) -> None:
    case = world.accepted_case("2025-03-02")            # handling due 2025-05-02
    world.do("package", case, {"leader": "leader-01"}, by="leader-01", at=t("2025-03-05"))
    world.do("reply", case, {**REPLY, "served_at": t("2025-05-12").isoformat()},
             by="officer-07", at=t("2025-05-12"))
    report = accountability_report(world.ledger.store, END, integrity=False)
    [late] = [x for c in report["cases"] if c["case"] == case for x in c["triggers"]
              if x["code"] == "late_reply"]
    assert {(p["actor"], p["responsibility"]) for p in late["responsible"]} == {
        ("officer-07", "direct"), ("lead-03", "leadership"), ("leader-01", "leadership")}
    for slot in report["by_actor"].values():   # every trigger counted in one capacity
        assert slot["direct"] + slot["leadership"] == slot["total"]
    assert report["by_actor"]["officer-07"]["leadership"] == 0
    assert report["by_actor"]["leader-01"]["leadership"] >= 1
    split = report["by_responsibility"]
    assert "officer-07" in split["direct"]["actors"]
    assert split["leadership"]["actors"] == ["lead-03", "leader-01"]


def test_rule_11_measures_are_coded_with_a_note(world: World) -> None:
    case = world.accepted_case("2025-03-02")
    world.do("reverse_check_open", case, {"reason": "超期"}, by="inspector-01",
             at=t("2025-06-01"))
    world.do("reverse_check_finding", case, {"actor": "officer-07", "fault": "overdue_open",
                                             "responsibility": "direct"},
             by="inspector-01", at=t("2025-06-02"))
    refused(world, TransitionError, "measures are coded", "reverse_check_conclude", case,
            {"measures": "批评教育"}, "inspector-01", t("2025-06-03"))
    refused(world, InputError, "measures", "reverse_check_conclude", case,
            {"measures": ["scolding"]}, "inspector-01", t("2025-06-03"))
    world.do("reverse_check_conclude", case, {"measures": ["admonition", "written_examination"],
                                              "note": "责令书面检查"},
             by="inspector-01", at=t("2025-06-03"))
    report = accountability_report(world.ledger.store, END, integrity=False)
    [check] = next(c for c in report["cases"] if c["case"] == case)["reverse_checks"]
    assert (check["measures"], check["note"]) == (["admonition", "written_examination"],
                                                  "责令书面检查")
    assert check["findings"][0]["responsibility"] == "direct"


def test_rule_11_forged_refusal_without_reason_and_free_text_measures_fail(world: World
                                                                          ) -> None:
    case = signed_but_refused(world)
    position = forged(world, case, "petitioner_sign", {"form": "refused"}, by="registrar-01",
                      at=t("2025-03-14"))
    caught(world, position, "with its reason")
    other = world.accepted_case("2025-03-03")
    world.do("reverse_check_open", other, {"reason": "超期"}, by="inspector-01",
             at=t("2025-06-01"))
    concluded = forged(world, other, "reverse_check_conclude", {"measures": "批评教育"},
                       by="inspector-01", at=t("2025-06-02"))
    caught(world, concluded, "measures are coded")
    assert row(world, case).petitioner_form is None
    assert row(world, other).reverse_check == "open"


# ---- ledgers of rules version 2 keep verifying and reporting as before ---------------

FIXTURE = Path(__file__).parent / "fixtures" / "rules_v2"


def contained(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` in what ``old`` holds (keys ``new`` adds are fine)."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [where]
        return [d for key in old for d in (contained(old[key], new[key], f"{where}.{key}")
                                          if key in new else [f"{where}.{key} (gone)"])]
    if isinstance(old, list):
        if not isinstance(new, list) or len(old) != len(new):
            return [where]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in contained(a, b, f"{where}[{i}]")]
    return [] if old == new else [where]


def test_a_rules_2_ledger_still_verifies_and_reports_the_same(tmp_path: Path) -> None:
    """tests/fixtures/rules_v2: a ledger written by the release before issue 11 (rules 2) with
    what it wrote down then — verify, case histories, closures, statistics, supervision and
    accountability as of 2025-12-31. The one deliberate change: a late extension (case 2,
    granted after its period ended, which rules 2 let be written) no longer moves the
    deadline (Art. 34), so that reply is now late."""
    import json
    import shutil

    from ledger.storage.store import Store, parse_location
    from ledger.verification.closure import closure_report
    from ledger.verification.history import case_history

    shutil.copy(FIXTURE / "ledger.db", tmp_path / "ledger.db")
    expected = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
    with Store(parse_location(f"sqlite:///{tmp_path / 'ledger.db'}")) as store:
        assert ledger_policy(store).rules == 2
        verified = verify_ledger(store, workers=1)
        assert verified.to_json() == expected["verify"] and verified.ok
        late_extension = expected["cases"][1]
        for case, history in expected["histories"].items():
            now = case_history(store, case).to_json()
            if case == late_extension:   # the deadline the late extension no longer moves
                assert (history["deadlines"]["handling"], now["deadlines"]["handling"]) == \
                    ("2025-06-02", "2025-05-03")
                now["deadlines"]["handling"] = history["deadlines"]["handling"]
            assert contained(history, now) == [], case
        assert contained(expected["closures"], [r.to_json() for r in closure_report(store)]) \
            == []
        assert contained(expected["statistics"],
                         statistics(store, date(2025, 1, 1), END, END)) == []
        assert contained(expected["supervision"], supervision(store, END)) == []
        report = accountability_report(store, END, verified=verified)
    old, new = expected["accountability"], report
    for entry_old, entry_new in zip(old["cases"], new["cases"], strict=True):
        if entry_old["case"] == late_extension:
            # the reply is late against the unmoved deadline, and so no longer claims (by
            # business time) to have met one: its late_entry loses the deadline variant
            def same(x: dict[str, Any]) -> bool:
                return x["code"] != "late_reply" and x["facts"].get("action") != "reply"
            changed = [(x["code"], x["variant"], x["due"], x["days_late"])
                       for x in entry_new["triggers"] if not same(x)]
            assert changed == [("late_reply", None, "2025-05-03", 22),
                               ("late_entry", None, None, 556)]
            assert [x["variant"] for x in entry_old["triggers"] if not same(x)] == ["deadline"]
            entry_old = {**entry_old, "triggers": [x for x in entry_old["triggers"] if same(x)]}
            entry_new = {**entry_new, "triggers": [x for x in entry_new["triggers"] if same(x)]}
        assert contained(entry_old, entry_new) == [], entry_old["case"]
    assert new["totals"]["by_code"] == {**old["totals"]["by_code"], "late_registration": 0,
                                        "no_report_back": 0,
                                        "late_reply": old["totals"]["by_code"]["late_reply"] + 1}
    named = {p["actor"] for c in new["cases"] if c["case"] == late_extension
             for x in c["triggers"] if x["code"] == "late_reply" for p in x["responsible"]}
    assert named == {"officer-07", "lead-03"}
    assert {a: s["total"] for a, s in new["by_actor"].items()} == {
        a: s["total"] + (a in named) for a, s in old["by_actor"].items()}
    assert contained({k: v for k, v in old.items()
                      if k not in ("cases", "by_actor", "by_unit", "totals", "codes")},
                     new) == []
