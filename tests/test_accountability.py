"""Known-answer tests of the reverse-check (倒查) engine and the accountability report, on SQLite
and PostgreSQL.

One small office, built once per backend: one hand-built case per trigger (and a clean one),
each trigger's code, responsible actors, deadline and evidence events worked out by hand in the
comments. Evidence hashes are compared with the stored events and with ``case history``. Then
aggregation, the inspectors' own reverse-checks, as-of dates, the unit filter, the outputs (CSV
and XLSX read back, the CLI), and a forged event caught as ``integrity``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger.log.keys import Signer
from ledger.log.statement import Envelope
from ledger.verification.history import case_history
from projections.accountability import accountability_report, accountability_sheets
from projections.export import write_csv, write_xlsx
from projections.triggers import CODES, detail_text
from tests.conftest import scratch_ledger_url
from tests.readback import csv_blocks, printed
from tests.tamper import forge
from tests.world import World, build_world, t

AS_OF = date(2025, 6, 30)
DOC = "ab" * 32
STAFF = {"station-03": ("officer-07", "lead-03"), "county-01": ("officer-08", "lead-01")}


@dataclass
class Office:
    world: World
    case: dict[str, str]
    report: dict[str, Any]   # as of 2025-06-30, integrity checked

    @property
    def store(self) -> Any:
        return self.world.ledger.store


# ---- the office ---------------------------------------------------------------------------------

def register(w: World, day: str, **data: Any) -> str:
    base = {"channel": "letter", "source": "direct", "category": "household_registration",
            "petitioner": "pet-0001", "summary": "户口迁移不予办理"}
    return w.do("register", None, {**base, **data}, by="registrar-01", at=t(day)).stream


def accept(w: World, case: str, day: str, **data: Any) -> None:
    notice = {"notice_served_at": t(day, 10).isoformat()}   # served with the decision
    w.do("accept", case, {"decision": "accepted", **notice, **data}, by="office-01",
         at=t(day, 10))


def assign(w: World, case: str, day: str, unit: str, by: str = "office-01") -> None:
    w.do("assign", case, {"unit": unit, "handler": STAFF[unit][0]}, by=by, at=t(day, 11))


def progress(w: World, case: str, day: str, unit: str) -> None:
    w.do("progress", case, {"note": "已约谈信访人"}, by=STAFF[unit][0], at=t(day, 14))


def reply(w: World, case: str, day: str, unit: str) -> None:
    w.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                         "served_at": t(day, 15).isoformat(), "text": "已答复"},
         by=STAFF[unit][0], at=t(day, 15))


def sign_and_close(w: World, case: str, unit: str, day: str, close_day: str,
                   opinion: str = "satisfied") -> None:
    handler, leader = STAFF[unit]
    w.do("attest", case, {"evidence": ["答复书"]}, by=handler, at=t(day, 9))
    w.do("consent", case, {}, by=leader, at=t(day, 10))
    w.do("petitioner_sign", case, {"form": "key", "opinion": opinion}, by="pet-0001",
         at=t(day, 11))
    w.do("close", case, {}, by="office-01", at=t(close_day, 16))


def populate(w: World) -> dict[str, str]:
    """Comments give each case's events as #seq and the triggers expected at 2025-06-30."""
    c: dict[str, str] = {}
    # Clean: accepted, assigned, reported, replied, three signatures, closed. No trigger.
    c["clean"] = x = register(w, "2025-01-05")
    accept(w, x, "2025-01-06")
    assign(w, x, "2025-01-06", "station-03")
    progress(w, x, "2025-01-10", "station-03")
    reply(w, x, "2025-01-20", "station-03")
    sign_and_close(w, x, "station-03", "2025-01-21", "2025-01-22")
    # late_acceptance: registered 01-05 (due 01-20), decided 01-25 by office-01 (#2): 5 days.
    c["late_acc"] = x = register(w, "2025-01-05")
    accept(w, x, "2025-01-25")
    assign(w, x, "2025-01-25", "station-03")
    reply(w, x, "2025-02-10", "station-03")
    sign_and_close(w, x, "station-03", "2025-02-11", "2025-02-12")
    # late_reply: #2 accepted 01-11; #3 to county-01; #4 transferred 02-15 to station-03;
    # #5 progress; #6 leader-01 extends 10 days: due 01-11 + 60 + 10 = 03-22; #7 reply served
    # 03-25: 3 days late, while officer-07 of station-03 had it. #8-#11 signatures, close.
    c["late_reply"] = x = register(w, "2025-01-10")
    accept(w, x, "2025-01-11")
    assign(w, x, "2025-01-11", "county-01")
    assign(w, x, "2025-02-15", "station-03")
    progress(w, x, "2025-02-20", "station-03")
    w.do("extend", x, {"days": 10, "reason": "需调取证据"}, by="leader-01", at=t("2025-03-01"))
    reply(w, x, "2025-03-25", "station-03")
    sign_and_close(w, x, "station-03", "2025-03-26", "2025-03-27")
    # overdue_open: accepted 02-02 (due 04-03), officer-08 of county-01 reported once, no
    # reply: 88 days overdue at 06-30; lead-01 never acted, so the directory names them.
    c["overdue"] = x = register(w, "2025-02-01")
    accept(w, x, "2025-02-02")
    assign(w, x, "2025-02-02", "county-01")
    progress(w, x, "2025-02-20", "county-01")
    # overdue_open and no_feedback: accepted 02-11 (due 04-12), assigned, then silence.
    c["silent"] = x = register(w, "2025-02-10")
    accept(w, x, "2025-02-11")
    assign(w, x, "2025-02-11", "station-03")
    # supervision_missed (closed late): #4 supervised 03-03, due 03-31; #6 reported back in
    # time (回告, so no no_report_back); closed 04-12 (#11).
    c["supervised"] = x = register(w, "2025-03-01", source="congress")
    accept(w, x, "2025-03-02")
    assign(w, x, "2025-03-02", "county-01")
    w.do("supervise", x, {"authority": "congress", "due": "2025-03-31", "form": "letter"},
         by="leader-01", at=t("2025-03-03", 12))
    progress(w, x, "2025-03-10", "county-01")
    w.do("report_back", x, {"text": "正在办理，按期回告"}, by="officer-08", at=t("2025-03-30"))
    reply(w, x, "2025-04-10", "county-01")
    sign_and_close(w, x, "county-01", "2025-04-11", "2025-04-12")
    # supervision_missed (open): accepted 05-11 by office-01 (#2), supervised (#3), due 06-15,
    # never assigned: the office actor who accepted it answers; 15 days at 06-30.
    c["sup_open"] = x = register(w, "2025-05-10")
    accept(w, x, "2025-05-11")
    w.do("supervise", x, {"authority": "leader", "due": "2025-06-15"}, by="leader-01",
         at=t("2025-05-12", 12))
    w.do("report_back", x, {"text": "尚未交办，正在研究"}, by="office-01", at=t("2025-06-14"))
    # unsigned_closure: attested (#6) but no consent, the petitioner refused (#7), closed by
    # override (#8). (Without an attestation no consent can be signed: 三签 order.)
    c["unsigned"] = x = register(w, "2025-03-05")
    accept(w, x, "2025-03-06")
    assign(w, x, "2025-03-06", "station-03")
    progress(w, x, "2025-03-10", "station-03")
    reply(w, x, "2025-03-20", "station-03")
    w.do("attest", x, {"evidence": ["答复书"]}, by="officer-07", at=t("2025-03-21", 10))
    w.do("petitioner_sign", x, {"form": "refused", "reason": "对答复不满"}, by="registrar-01",
         at=t("2025-03-21", 11))
    w.do("close", x, {"override_reason": "信访人拒签，集体研究办结"}, by="office-01",
         at=t("2025-03-22", 16))
    # dissatisfied_closure: reply #5, petitioner dissatisfied #8, closed #9.
    c["dissatisfied"] = x = register(w, "2025-03-10")
    accept(w, x, "2025-03-11")
    assign(w, x, "2025-03-11", "station-03")
    progress(w, x, "2025-03-15", "station-03")
    reply(w, x, "2025-03-25", "station-03")
    sign_and_close(w, x, "station-03", "2025-03-26", "2025-03-28", opinion="dissatisfied")
    # reflow: "early" replied #5 and closed #9 on 02-05; "later" (registered 04-01) names it.
    c["early"] = x = register(w, "2025-01-15")
    accept(w, x, "2025-01-16")
    assign(w, x, "2025-01-16", "station-03")
    progress(w, x, "2025-01-20", "station-03")
    reply(w, x, "2025-02-01", "station-03")
    sign_and_close(w, x, "station-03", "2025-02-02", "2025-02-05")
    c["later"] = x = register(w, "2025-04-01", repeat_of=[c["early"]])
    w.do("accept", x, {"decision": "not_accepted", "reason": "同一事项已答复", "ground": "other",
                       "notice_served_at": t("2025-04-02").isoformat()}, by="office-01",
         at=t("2025-04-02"))
    # reflow after a desist (停访息诉, #4) without closing: officer-07 had the case (#3).
    c["desisted"] = x = register(w, "2025-05-20")
    accept(w, x, "2025-05-21")
    assign(w, x, "2025-05-21", "station-03")
    w.do("desist", x, {"document_sha256": DOC}, by="registrar-01", at=t("2025-05-25"))
    c["later2"] = x = register(w, "2025-06-01", repeat_of=[c["desisted"]])
    w.do("accept", x, {"decision": "not_accepted", "reason": "已停访息诉", "ground": "other",
                       "notice_served_at": t("2025-06-02").isoformat()}, by="office-01",
         at=t("2025-06-02"))
    # No reflow: closed 04-07, reopened 04-15 (#10), so open when "later3" came on 04-20.
    c["reopened"] = x = register(w, "2025-04-01")
    accept(w, x, "2025-04-01")
    assign(w, x, "2025-04-01", "station-03")
    progress(w, x, "2025-04-03", "station-03")
    reply(w, x, "2025-04-05", "station-03")
    sign_and_close(w, x, "station-03", "2025-04-06", "2025-04-07")
    w.do("reopen", x, {"reason": "回流，重新办理"}, by="office-01", at=t("2025-04-15"))
    progress(w, x, "2025-04-18", "station-03")
    c["later3"] = y = register(w, "2025-04-20", repeat_of=[x])
    w.do("accept", y, {"decision": "not_accepted", "reason": "正在重新办理",
                       "ground": "handled_elsewhere",
                       "notice_served_at": t("2025-04-21").isoformat()}, by="office-01",
         at=t("2025-04-21"))
    reply(w, x, "2025-04-25", "station-03")
    sign_and_close(w, x, "station-03", "2025-04-26", "2025-04-28")
    # bounced: assigned #3 by office-01, transferred #4 and #5 by office-02.
    c["bounced"] = x = register(w, "2025-05-05")
    accept(w, x, "2025-05-06")
    assign(w, x, "2025-05-06", "station-03")
    assign(w, x, "2025-05-10", "county-01", by="office-02")
    assign(w, x, "2025-05-15", "station-03", by="office-02")
    # overturned and late_review_decision: reply #4 consented by lead-03 #6, closed #8;
    # review requested 02-20 (#9, decision due 03-22), changed on 04-01 (#10): 10 days late.
    c["reviewed"] = x = register(w, "2025-01-20")
    accept(w, x, "2025-01-21")
    assign(w, x, "2025-01-21", "station-03")
    reply(w, x, "2025-02-10", "station-03")
    sign_and_close(w, x, "station-03", "2025-02-11", "2025-02-13",
                   opinion="basically_satisfied")
    w.do("review_request", x, {"level": "review"}, by="registrar-01", at=t("2025-02-20"))
    w.do("review_decide", x, {"level": "review", "decision": "changed"}, by="reviewer-01",
         at=t("2025-04-01"))
    # late_notice: registered 05-01 (due 05-16), notice served 05-20: 4 days late.
    c["late_notice"] = x = register(w, "2025-05-01")
    accept(w, x, "2025-05-05", notice_served_at=t("2025-05-20").isoformat())
    # late_acceptance, undecided: registered 06-01 (due 06-16): 14 days overdue at 06-30.
    c["undecided"] = register(w, "2025-06-01")
    # The inspector's reverse-check of the late reply: one finding the rules confirm, one
    # they do not (lead-03 extended the deadline, but nothing was supervised).
    lr = c["late_reply"]
    w.do("reverse_check_open", lr, {"reason": "超期答复"}, by="inspector-01", at=t("2025-04-10"))
    w.do("reverse_check_finding", lr, {"actor": "officer-07", "fault": "late_reply",
                                       "evidence": [stored_ref(w, lr, 7)]},
         by="inspector-01", at=t("2025-04-10", 10))
    w.do("reverse_check_finding", lr, {"actor": "lead-03", "fault": "supervision_missed",
                                       "evidence": [stored_ref(w, lr, 6)]},
         by="inspector-01", at=t("2025-04-10", 11))
    w.do("reverse_check_conclude", lr, {"measures": ["criticism"], "note": "责令整改"},
         by="inspector-01", at=t("2025-04-11"))
    return c


def stored_ref(w: World, stream: str, seq: int) -> dict[str, Any]:
    """The reference an inspector would cite, from the stored event itself."""
    record = w.ledger.store.event_at(stream, seq)
    assert record is not None
    return {"stream": stream, "seq": seq, "hash": Envelope.from_bytes(record.state).hash}


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def office(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           pg_problem: str | None) -> Iterator[Office]:
    urls = scratch_ledger_url(request.param, tmp_path_factory.mktemp("accountability"), pg_problem)
    url = next(urls)
    world = build_world(url, tmp_path_factory.mktemp("keys"))
    world.ledger.add_actor("office-02", "信访民警丙", roles=["petition_office"], unit="city",
                           as_actor="admin-01", at=t("2025-01-01", 8))
    # Half a year entered today: one migration batch, not a late_entry (补录) per event
    # (late_entry itself: tests/test_late_entry.py).
    world.migration = "paper-2025"
    cases = populate(world)
    yield Office(world, cases, accountability_report(world.ledger.store, AS_OF))
    world.ledger.close()
    next(urls, None)   # drops the PostgreSQL schema


# ---- helpers ------------------------------------------------------------------------------------

def who(actor: str, role: str, unit: str | None) -> dict[str, Any]:
    kind = "leadership" if role in ("unit_leader", "leader") else "direct"   # 领导/直接责任
    return {"actor": actor, "role": role, "unit": unit, "responsibility": kind}


def entry(report: dict[str, Any], case: str) -> dict[str, Any]:
    found = [c for c in report["cases"] if c["case"] == case]
    assert found, f"{case} is not in the report"
    return found[0]


def triggers(office: Office, key: str, report: dict[str, Any] | None = None) -> \
        list[dict[str, Any]]:
    return entry(report or office.report, office.case[key])["triggers"]


def evidence(office: Office, trigger: dict[str, Any]) -> list[tuple[str, int, str]]:
    """The trigger's evidence as (stream, seq, hash), checking each hash against the store."""
    out = []
    for e in trigger["evidence"]:
        assert e == {**stored_ref(office.world, e["stream"], e["seq"]),
                     "position": e["position"], "type": e["type"]}
        out.append((e["stream"], e["seq"], e["type"]))
    return out


def only(office: Office, key: str, code: str) -> dict[str, Any]:
    found = triggers(office, key)
    assert [t["code"] for t in found] == [code]
    return found[0]


# ---- one test per trigger ------------------------------------------------------------------

def test_clean_cases_have_no_trigger(office: Office) -> None:
    listed = {c["case"] for c in office.report["cases"]}
    assert not listed & {office.case[k] for k in ("clean", "later", "later2", "reopened",
                                                  "later3")}


def test_late_acceptance_names_the_deciding_office_actor(office: Office) -> None:
    x = office.case["late_acc"]
    # (a late decision is also a late written notice: served with it, after the deadline)
    found, notice = triggers(office, "late_acc")
    assert (found["code"], notice["code"], notice["days_late"]) == ("late_acceptance",
                                                                    "late_notice", 5)
    assert found["responsible"] == [who("office-01", "petition_office", "city")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-01-25", "2025-01-20", 5)
    assert evidence(office, found) == [(x, 1, "register"), (x, 2, "accept")]
    assert found["detail"] == "decided on 2025-01-25, due 2025-01-20: 5 days late"


def test_late_acceptance_undecided_names_the_registrar(office: Office) -> None:
    x = office.case["undecided"]
    found = only(office, "undecided", "late_acceptance")
    assert found["responsible"] == [who("registrar-01", "registrar", "city")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-06-30", "2025-06-16", 14)
    assert evidence(office, found) == [(x, 1, "register")]


def test_late_notice(office: Office) -> None:
    x = office.case["late_notice"]
    found = only(office, "late_notice", "late_notice")
    assert found["responsible"] == [who("office-01", "petition_office", "city")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-05-20", "2025-05-16", 4)
    assert evidence(office, found) == [(x, 1, "register"), (x, 2, "accept")]


def test_late_reply_names_the_handler_in_charge_at_the_deadline(office: Office) -> None:
    x = office.case["late_reply"]
    found = only(office, "late_reply", "late_reply")
    # officer-08 (county-01) had it first; the deadline passed under officer-07 (station-03),
    # whose unit leader lead-03 acted on the case (the extension).
    assert found["responsible"] == [who("officer-07", "handler", "station-03"),
                                    who("lead-03", "unit_leader", "station-03")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-03-25", "2025-03-22", 3)
    assert evidence(office, found) == [(x, 2, "accept"), (x, 4, "assign"), (x, 6, "extend"),
                                       (x, 7, "reply")]


def test_overdue_open_names_handler_and_directory_unit_leader(office: Office) -> None:
    x = office.case["overdue"]
    found = only(office, "overdue", "overdue_open")   # reported progress: no no_feedback
    assert found["responsible"] == [who("officer-08", "handler", "county-01"),
                                    who("lead-01", "unit_leader", "county-01")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-06-30", "2025-04-03", 88)
    assert evidence(office, found) == [(x, 2, "accept"), (x, 3, "assign")]


def test_no_feedback(office: Office) -> None:
    x = office.case["silent"]
    found = triggers(office, "silent")
    assert [t["code"] for t in found] == ["overdue_open", "no_feedback"]
    feedback = found[1]
    assert feedback["responsible"] == [who("officer-07", "handler", "station-03"),
                                       who("lead-03", "unit_leader", "station-03")]
    assert (feedback["due"], feedback["days_late"]) == ("2025-04-12", 79)
    assert evidence(office, feedback) == [(x, 2, "accept"), (x, 3, "assign")]


def test_supervision_missed_closed_late(office: Office) -> None:
    x = office.case["supervised"]
    found = only(office, "supervised", "supervision_missed")
    assert found["responsible"] == [who("officer-08", "handler", "county-01"),
                                    who("lead-01", "unit_leader", "county-01")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-04-12", "2025-03-31", 12)
    assert evidence(office, found) == [(x, 3, "assign"), (x, 4, "supervise"), (x, 11, "close")]


def test_supervision_missed_open_and_unassigned_names_the_accepting_office(
        office: Office) -> None:
    x = office.case["sup_open"]
    found = only(office, "sup_open", "supervision_missed")
    assert found["responsible"] == [who("office-01", "petition_office", "city")]
    assert (found["on"], found["due"], found["days_late"]) == ("2025-06-30", "2025-06-15", 15)
    assert evidence(office, found) == [(x, 2, "accept"), (x, 3, "supervise")]
    assert found["detail"] == "supervision due 2025-06-15, still open on 2025-06-30: " \
                              "15 days overdue"


def test_unsigned_closure_names_closer_and_missing_signer(office: Office) -> None:
    x = office.case["unsigned"]
    found = only(office, "unsigned", "unsigned_closure")
    # No consent (station-03's leader, lead-03, from the directory); the refusal is no
    # signature but no petitioner's fault.
    assert found["responsible"] == [who("office-01", "petition_office", "city"),
                                    who("lead-03", "unit_leader", "station-03")]
    assert found["facts"] == {"closed": "2025-03-22", "missing": ["missing_consent", "refused"],
                              "override": "信访人拒签，集体研究办结"}
    assert evidence(office, found) == [(x, 6, "attest"), (x, 7, "petitioner_sign"),
                                       (x, 8, "close")]
    assert detail_text("unsigned_closure", found["variant"], found["facts"], "zh") == \
        "2025-03-22办结，三签不全：缺单位负责人签字、信访人拒签；强行办结理由：信访人拒签，集体研究办结"


def test_dissatisfied_closure(office: Office) -> None:
    x = office.case["dissatisfied"]
    found = only(office, "dissatisfied", "dissatisfied_closure")
    assert found["responsible"] == [who("officer-07", "handler", "station-03"),
                                    who("lead-03", "unit_leader", "station-03")]
    assert evidence(office, found) == [(x, 5, "reply"), (x, 8, "petitioner_sign"),
                                       (x, 9, "close")]


def test_reflow_names_closer_and_replying_handler(office: Office) -> None:
    x, later = office.case["early"], office.case["later"]
    found = only(office, "early", "reflow")
    assert found["responsible"] == [who("office-01", "petition_office", "city"),
                                    who("officer-07", "handler", "station-03")]
    assert found["on"] == "2025-04-01"
    assert evidence(office, found) == [(x, 5, "reply"), (x, 9, "close"), (later, 1, "register")]


def test_reflow_after_a_desist_names_the_handler_then_in_charge(office: Office) -> None:
    x, later = office.case["desisted"], office.case["later2"]
    found = only(office, "desisted", "reflow")
    assert (found["variant"], found["on"]) == ("desisted", "2025-06-01")
    assert found["responsible"] == [who("officer-07", "handler", "station-03")]
    assert evidence(office, found) == [(x, 3, "assign"), (x, 4, "desist"),
                                       (later, 1, "register")]


def test_bounced_names_the_transferring_office_actor(office: Office) -> None:
    x = office.case["bounced"]
    found = only(office, "bounced", "bounced")
    assert found["responsible"] == [who("office-02", "petition_office", "city")]
    assert found["facts"] == {"count": 3, "units": "station-03 → county-01 → station-03"}
    assert evidence(office, found) == [(x, 3, "assign"), (x, 4, "assign"), (x, 5, "assign")]


def test_overturned_and_late_review_decision(office: Office) -> None:
    x = office.case["reviewed"]
    turned, late = triggers(office, "reviewed")
    assert (turned["code"], late["code"]) == ("overturned", "late_review_decision")
    assert turned["responsible"] == [who("officer-07", "handler", "station-03"),
                                     who("lead-03", "unit_leader", "station-03")]
    assert evidence(office, turned) == [(x, 4, "reply"), (x, 10, "review_decide")]
    assert late["responsible"] == [who("reviewer-01", "reviewer", "city")]
    assert (late["due"], late["days_late"]) == ("2025-03-22", 10)
    assert evidence(office, late) == [(x, 9, "review_request"), (x, 10, "review_decide")]


def test_every_trigger_code_is_exercised(office: Office) -> None:
    seen = {t["code"] for c in office.report["cases"] for t in c["triggers"]}
    # integrity: see the forged-event test; late_entry: the office is a migration batch;
    # late_registration and no_report_back (rules 3): tests/test_rules_2022.py
    assert seen == set(CODES) - {"integrity", "late_entry", "late_registration",
                                 "no_report_back"}
    assert [b["name"] for b in office.report["migrations"]] == ["paper-2025"]
    assert office.report["integrity"] == {"checked": True, "ok": True, "failures": 0,
                                          "truncated": False, "outside_cases": []}


def test_evidence_is_what_case_history_shows(office: Office) -> None:
    for case in office.report["cases"]:
        for trigger in case["triggers"]:
            for e in trigger["evidence"]:
                shown = case_history(office.store, e["stream"]).events[e["seq"] - 1]
                assert (shown.seq, shown.hash, shown.type) == (e["seq"], e["hash"], e["type"])
                # positions too, except a later case's registration cited by a reflow
                assert e["position"] in (shown.position, None)


# ---- the inspectors' reverse-checks, custody, aggregation ----------------------------------------

def test_reverse_checks_appear_with_findings_checked(office: Office) -> None:
    x = office.case["late_reply"]
    (check,) = entry(office.report, x)["reverse_checks"]
    assert (check["opened_by"], check["opened_on"], check["reason"], check["status"],
            check["concluded_by"], check["measures"]) == \
        ("inspector-01", "2025-04-10", "超期答复", "concluded", "inspector-01", ["criticism"])
    assert check["note"] == "责令整改"
    assert (check["ref"]["seq"], check["conclude_ref"]["seq"]) == (12, 15)
    first, second = check["findings"]
    assert (first["actor"], first["fault"], first["confirmed"]) == ("officer-07", "late_reply",
                                                                     True)
    assert first["evidence"] == [{**stored_ref(office.world, x, 7), "verified": True}]
    assert (second["actor"], second["fault"], second["confirmed"]) == \
        ("lead-03", "supervision_missed", False)
    assert second["evidence"] == [{**stored_ref(office.world, x, 6), "verified": True}]


def test_chain_of_custody(office: Office) -> None:
    steps = entry(office.report, office.case["late_reply"])["custody"]
    assert [(s["seq"], s["type"], s["actor"]) for s in steps] == [
        (1, "register", "registrar-01"), (2, "accept", "office-01"), (3, "assign", "office-01"),
        (4, "assign", "office-01"), (5, "progress", "officer-07"), (6, "extend", "leader-01"),
        (7, "reply", "officer-07"), (8, "attest", "officer-07"), (9, "consent", "lead-03"),
        (10, "petitioner_sign", "pet-0001"), (11, "close", "office-01")]
    assert steps[3]["details"] == {"unit": "station-03", "handler": "officer-07"}


def test_counts_per_actor_and_unit(office: Office) -> None:
    c, report = office.case, office.report
    got = {a: (s["triggers"], s["total"], sorted(s["cases"]), s["findings"])
           for a, s in report["by_actor"].items()}
    assert got == {
        "office-01": ({"late_acceptance": 1, "late_notice": 2, "supervision_missed": 1,
                       "unsigned_closure": 1, "reflow": 1}, 6,
                      sorted(c[k] for k in ("late_acc", "late_notice", "sup_open", "unsigned",
                                            "early")), 0),
        "office-02": ({"bounced": 1}, 1, [c["bounced"]], 0),
        "registrar-01": ({"late_acceptance": 1}, 1, [c["undecided"]], 0),
        "officer-07": ({"late_reply": 1, "overdue_open": 1, "no_feedback": 1,
                        "dissatisfied_closure": 1, "reflow": 2, "overturned": 1}, 7,
                       sorted(c[k] for k in ("late_reply", "silent", "dissatisfied", "early",
                                             "desisted", "reviewed")), 1),
        "lead-03": ({"late_reply": 1, "overdue_open": 1, "no_feedback": 1,
                     "unsigned_closure": 1, "dissatisfied_closure": 1, "overturned": 1}, 6,
                    sorted(c[k] for k in ("late_reply", "silent", "unsigned", "dissatisfied",
                                          "reviewed")), 1),
        "officer-08": ({"overdue_open": 1, "supervision_missed": 1}, 2,
                       sorted([c["overdue"], c["supervised"]]), 0),
        "lead-01": ({"overdue_open": 1, "supervision_missed": 1}, 2,
                    sorted([c["overdue"], c["supervised"]]), 0),
        "reviewer-01": ({"late_review_decision": 1}, 1, [c["reviewed"]], 0),
    }
    assert report["by_actor"]["officer-07"]["unit"] == "station-03"
    # A trigger counts once per unit among those responsible (unsigned: city and station-03).
    units = {u: (s["triggers"], s["total"], s["actors"]) for u, s in report["by_unit"].items()}
    assert units == {
        "city": ({"late_acceptance": 2, "late_notice": 2, "supervision_missed": 1,
                  "unsigned_closure": 1, "reflow": 1, "bounced": 1, "late_review_decision": 1},
                 9, ["office-01", "office-02", "registrar-01", "reviewer-01"]),
        "county-01": ({"overdue_open": 1, "supervision_missed": 1}, 2, ["lead-01", "officer-08"]),
        "station-03": ({"late_reply": 1, "overdue_open": 1, "no_feedback": 1,
                        "unsigned_closure": 1, "dissatisfied_closure": 1, "reflow": 2,
                        "overturned": 1}, 8, ["lead-03", "officer-07"]),
    }
    assert report["totals"]["triggers"] == 17 and report["totals"]["cases"] == 14
    assert all(s["direct"] + s["leadership"] == s["total"] for s in report["by_actor"].values())
    assert (report["by_actor"]["lead-03"]["leadership"], report["by_actor"]["lead-03"]["direct"]
            ) == (6, 0)
    assert report["actor_names"]["officer-07"] == "张三"
    assert report["unit_names"]["station-03"] == "城关派出所"


# ---- as of another date, unit filter --------------------------------------------------------

def _trigger_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["case"], t["code"]) for c in report["cases"] for t in c["triggers"]]


def test_as_of_an_earlier_date(office: Office) -> None:
    c = office.case
    report = accountability_report(office.store, date(2025, 4, 5), integrity=False)
    assert _trigger_rows(report) == sorted(
        [(c["late_acc"], "late_acceptance"), (c["late_acc"], "late_notice"),
         (c["late_reply"], "late_reply"),
         (c["overdue"], "overdue_open"), (c["supervised"], "supervision_missed"),
         (c["unsigned"], "unsigned_closure"), (c["dissatisfied"], "dissatisfied_closure"),
         (c["early"], "reflow"), (c["reviewed"], "overturned"),
         (c["reviewed"], "late_review_decision")], key=lambda row: row[0])
    supervised = triggers(office, "supervised", report)[0]   # closed only on 04-12
    assert (supervised["variant"], supervised["days_late"]) == ("open", 5)
    assert entry(report, c["late_reply"])["reverse_checks"] == []   # opened on 04-10
    assert report["integrity"]["checked"] is False
    pending = triggers(office, "reviewed",
                       accountability_report(office.store, date(2025, 3, 30), integrity=False))
    assert [(p["code"], p["variant"], p["responsible"], p["days_late"]) for p in pending] == \
        [("late_review_decision", "pending", [], 8)]


def test_unit_filter_keeps_cases_the_unit_ever_handled(office: Office) -> None:
    c = office.case
    report = accountability_report(office.store, AS_OF, unit="county-01", integrity=False)
    assert report["unit"] == "county-01"
    assert [e["case"] for e in report["cases"]] == sorted(
        c[k] for k in ("late_reply", "overdue", "supervised", "bounced"))
    assert report["by_actor"]["office-02"]["total"] == 1


# ---- outputs --------------------------------------------------------------------------------

def test_csv_and_xlsx_read_back(office: Office, tmp_path: Path) -> None:
    import openpyxl

    x = office.case["late_reply"]
    sheets = accountability_sheets(office.report)
    buffer = io.StringIO()
    write_csv(sheets, buffer)
    found, migrations, checks, actors, units, custody = csv_blocks(buffer.getvalue())
    assert migrations[2][:3] == ["paper-2025", str(office.report["migrations"][0]["events"]),
                                 str(len(office.case))]
    assert found[0] == ["倒查报告（截至 2025-06-30）"]
    assert found[1] == ["案件编号", "触发事项", "日期", "期限", "超期天数", "责任人", "责任单位",
                        "证据事件", "情况"]
    assert [x, "答复超期", "2025-03-25", "2025-03-22", "3",
            "张三（承办人）、所长丙（承办单位负责人）", "城关派出所", "#2 #4 #6 #7",
            "2025-03-25送达答复，办理期限2025-03-22，超期3天"] in found
    assert found[-1] == ["完整性验证：通过"]
    assert checks[2] == [x, "督察庚", "2025-04-10", "超期答复", "张三", "答复超期", "#7", "是",
                         "批评教育（责令整改）", "已结论"]
    assert checks[3][4:8] == ["所长丙", "督办逾期未办结", "#6", "否"]
    assert actors[1][:2] == ["责任人", "单位"] and actors[1][-5:] == [
        "合计", "直接责任", "领导责任", "案件数", "倒查认定"]
    assert actors[2][0] == "张三 (officer-07)" and actors[2][-5:] == ["7", "7", "0", "6", "1"]
    assert units[2][0] == "XX市公安局" and units[2][-2:] == ["9", "8"]
    assert actors[-1][0] == "合计" and units[-1][0] == "合计"     # totals rows (issue 17)
    assert int(actors[-1][-3]) == sum(int(r[-3]) for r in actors[2:-1])
    assert custody[2][:3] == [office.case["late_acc"], "#1", "登记"]

    path = tmp_path / "倒查.xlsx"
    write_xlsx(accountability_sheets(office.report, "en"), path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Reverse-check triggers", "Migration batches", "Reverse-checks",
                               "By responsible actor", "By responsible unit", "Chain of custody"]
    ws = book["Reverse-check triggers"]
    row = next(r for r in printed(ws).rows if r[0] == x and r[1] == "late reply")
    assert row[2:5] == (datetime(2025, 3, 25), datetime(2025, 3, 22), 3)
    assert row[5] == "张三 (handler), 所长丙 (unit leader)"


def invoke(office: Office, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--ledger", office.world.url, "--keystore",
                                    str(office.world.keystore), *args])


def test_cli_json_text_and_options(office: Office, tmp_path: Path) -> None:
    result = invoke(office, "report", "accountability", "--as-of", "2025-06-30", "--format",
                    "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == office.report
    text = invoke(office, "report", "accountability", "--as-of", "2025-06-30", "--lang", "en",
                  "--no-integrity")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == "Accountability report (as of 2025-06-30)"
    assert "integrity: not checked (--no-integrity)" in lines
    assert "Chain of custody" not in text.output       # files only
    out = tmp_path / "倒查.xlsx"
    written = invoke(office, "report", "accountability", "--as-of", "2025-06-30", "--unit",
                     "county-01", "--format", "xlsx", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert out.read_bytes()[:2] == b"PK"
    unknown = invoke(office, "report", "accountability", "--unit", "county-99")
    assert unknown.exit_code == 2 and "unknown unit 'county-99'" in unknown.output
    helped = invoke(office, "report", "accountability", "--help")
    assert "xinfang report accountability --unit county-02 --format xlsx" in helped.output
    assert "accountability" in invoke(office, "report", "--help").output


# ---- integrity -----------------------------------------------------------------------------------

def test_forged_event_is_an_integrity_trigger_on_its_case(world: World) -> None:
    world.migration = "paper-2025"   # entered today; the forged events get recorded times
    case = world.accepted_case(handler="officer-07")      # register, accept, assign (#1-#3)
    led = world.ledger

    def minute_after(moment: datetime) -> int:   # recorded as if typed in on time: no late_entry
        return int(moment.timestamp() * 1_000_000) + 60_000_000

    signer = led._checkpoint_signer()
    position = forge(led.store, led.keystore.load("officer-08"), stream=case, action="progress",
                     actor="officer-08", at=t("2025-03-05"),
                     data={"note": "越权", "follow_up": False}, log_signer=signer,
                     recorded_at_us=minute_after(t("2025-03-05")))                  # #4
    stranger = Signer.generate("officer-07")
    forge(led.store, stranger, stream=case, action="progress", actor="officer-07",
          at=t("2025-03-06"), data={"note": "伪造进展", "follow_up": False},
          log_signer=signer, recorded_at_us=minute_after(t("2025-03-06")))         # #5
    # A well-signed finding citing a wrong hash: verify does not look at cited hashes, the
    # report does (the write path would have refused it).
    inspector = led.keystore.load("inspector-01")
    for n, (action, data) in enumerate([
            ("reverse_check_open", {"reason": "核查"}),
            ("reverse_check_finding", {"actor": "officer-07", "fault": "late_reply",
                                       "evidence": [{"stream": case, "seq": 3,
                                                     "hash": "0" * 64}]})]):
        forge(led.store, inspector, stream=case, action=action, actor="inspector-01",
              at=t("2025-03-10", 9 + n), data=data, log_signer=signer,
              recorded_at_us=minute_after(t("2025-03-10", 9 + n)))
    report = accountability_report(led.store, date(2025, 3, 31))
    assert report["integrity"]["ok"] is False and report["integrity"]["failures"] == 2
    (found_case,) = report["cases"]
    unauthorized, unsigned = found_case["triggers"]
    assert unauthorized["code"] == unsigned["code"] == "integrity"
    assert unauthorized["responsible"] == [who("officer-08", "signer", "county-01")]
    assert unauthorized["facts"]["checks"] == "4"
    assert [(e["stream"], e["seq"], e["position"]) for e in unauthorized["evidence"]] == \
        [(case, 4, position)]
    assert unauthorized["evidence"][0]["hash"] == stored_ref(world, case, 4)["hash"]
    assert unsigned["responsible"] == [who("officer-07", "signer", "station-03")]
    assert unsigned["facts"]["checks"] == "3"
    assert report["by_actor"]["officer-08"]["triggers"] == {"integrity": 1}
    (finding,) = found_case["reverse_checks"][0]["findings"]
    assert finding["evidence"][0]["verified"] is False and finding["confirmed"] is False
    skipped = accountability_report(led.store, date(2025, 3, 31), integrity=False)
    assert [c["triggers"] for c in skipped["cases"]] == [[]]   # only the reverse-check
    assert skipped["integrity"]["checked"] is False
