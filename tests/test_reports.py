"""Known-answer tests of the supervision ledger and the statistics, on SQLite and PostgreSQL.

One small office, built once per backend, whose every figure was counted by hand (the comments
say why each case counts where it does). Then the outputs: CSV and XLSX read back, the CLI's
formats, options and exit codes.
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
from projections.export import write_csv, write_xlsx
from projections.reports import (
    change,
    comparison_period,
    statistics,
    supervision,
)
from projections.sheets import statistics_sheets, supervision_sheets
from tests.conftest import scratch_ledger_url
from tests.readback import csv_blocks, printed
from tests.world import World, build_world, t

DOC = "cd" * 32
Q1 = (date(2025, 1, 1), date(2025, 3, 31))
AS_OF = date(2025, 4, 30)


@dataclass
class Office:
    world: World
    case: dict[str, str]   # A … I (2025), P1 … P5 (2024)

    @property
    def store(self) -> Any:
        return self.world.ledger.store


# ---- the office ---------------------------------------------------------------------------------

def register(w: World, day: str, *, by: str = "registrar-01", **data: Any) -> str:
    base = {"channel": "letter", "source": "direct", "category": "household_registration",
            "petitioner": "pet-0001", "summary": "户口迁移不予办理"}
    return w.do("register", None, {**base, **data}, by=by, at=t(day)).stream


def accept(w: World, case: str, day: str, decision: str = "accepted") -> None:
    data = {"decision": decision, **({"reason": "不属受理范围"} if decision != "accepted" else {}),
            # coded grounds (信访工作条例 2022, Art. 19-22)
            **({"ground": "outside_remit"} if decision == "not_accepted" else {})}
    w.do("accept", case, data, by="office-01", at=t(day, 10))


STAFF = {"station-03": ("officer-07", "lead-03"), "county-01": ("officer-08", "lead-01")}


def assign(w: World, case: str, day: str, unit: str) -> None:
    w.do("assign", case, {"unit": unit, "handler": STAFF[unit][0]}, by="office-01",
         at=t(day, 11))


def reply(w: World, case: str, day: str, unit: str) -> None:
    w.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                         "served_at": t(day, 15).isoformat(), "text": "已答复"},
         by=STAFF[unit][0], at=t(day, 15))


def sign_and_close(w: World, case: str, unit: str, sign_day: str, close_day: str, *,
                   opinion: str = "satisfied", paper: bool = False) -> None:
    handler, leader = STAFF[unit]
    w.do("attest", case, {"evidence": ["答复书"]}, by=handler, at=t(sign_day, 9))
    w.do("consent", case, {}, by=leader, at=t(sign_day, 10))
    if paper:
        w.do("petitioner_sign", case, {"form": "witnessed", "opinion": opinion,
                                       "document_sha256": DOC}, by="registrar-01",
             at=t(sign_day, 11))
    else:
        w.do("petitioner_sign", case, {"form": "key", "opinion": opinion}, by="pet-0001",
             at=t(sign_day, 11))
    w.do("close", case, {}, by="office-01", at=t(close_day, 16))


def supervise(w: World, case: str, day: str, authority: str, due: str,
              form: str | None = None) -> None:
    data = {"authority": authority, "due": due, **({"form": form} if form else {})}
    w.do("supervise", case, data, by="leader-01", at=t(day, 12))


def progress(w: World, case: str, day: str, unit: str, follow_up: bool = False) -> None:
    w.do("progress", case, {"note": "进展", "follow_up": follow_up}, by=STAFF[unit][0],
         at=t(day, 14))


def populate(w: World) -> dict[str, str]:
    c: dict[str, str] = {}
    # ---- the comparison period, Q4 2024 (judged as of 2025-01-30) ----
    c["P1"] = p1 = register(w, "2024-11-05")                  # closed 11-25, then final
    accept(w, p1, "2024-11-06")
    assign(w, p1, "2024-11-06", "station-03")
    reply(w, p1, "2024-11-20", "station-03")
    sign_and_close(w, p1, "station-03", "2024-11-22", "2024-11-25")
    w.do("review_request", p1, {"level": "review"}, by="registrar-01", at=t("2024-11-26"))
    # 复查 by the county bureau (above station-03), 复核 by the city bureau (Art. 35-36)
    w.do("review_decide", p1, {"level": "review", "decision": "upheld"}, by="reviewer-02",
         at=t("2024-12-01"))
    w.do("review_request", p1, {"level": "recheck"}, by="registrar-01", at=t("2024-12-05"))
    w.do("review_decide", p1, {"level": "recheck", "decision": "upheld"}, by="reviewer-01",
         at=t("2024-12-10"))
    c["P2"] = p2 = register(w, "2024-12-10", channel="visit", category="file_case",
                            petitioner="pet-0002")             # accepted, still open
    accept(w, p2, "2024-12-11")
    assign(w, p2, "2024-12-11", "station-03")
    c["P3"] = p3 = register(w, "2024-12-20")                  # not accepted
    accept(w, p3, "2024-12-21", "not_accepted")
    c["P5"] = p5 = register(w, "2024-12-28", category="appeal", repeat_of=[p1])
    accept(w, p5, "2024-12-29", "not_reaccepted")             # P1 is final after 复核
    c["P4"] = p4 = register(w, "2024-12-30", category="other")  # closed only on 2025-02-05
    accept(w, p4, "2024-12-31")
    assign(w, p4, "2024-12-31", "station-03")
    reply(w, p4, "2025-01-20", "station-03")
    sign_and_close(w, p4, "station-03", "2025-01-21", "2025-02-05")

    # ---- the period, Q1 2025 (judged as of 2025-04-30) ----
    c["A"] = a = register(w, "2025-01-05")                    # supervised, closed on time
    accept(w, a, "2025-01-06")
    assign(w, a, "2025-01-06", "station-03")
    supervise(w, a, "2025-01-07", "congress", "2025-01-31", "letter")
    progress(w, a, "2025-01-10", "station-03")
    progress(w, a, "2025-01-15", "station-03", follow_up=True)
    reply(w, a, "2025-01-20", "station-03")
    sign_and_close(w, a, "station-03", "2025-01-22", "2025-01-25")
    c["B"] = b = register(w, "2025-01-10", channel="visit", source="petition_bureau",
                          category="file_case", petitioner="pet-0002", persons=3,
                          repeat_of=[a])                      # group, repeat, packaged
    accept(w, b, "2025-01-11")
    assign(w, b, "2025-01-11", "county-01")
    supervise(w, b, "2025-01-12", "political_legal_committee", "2025-02-10", "interview")
    w.do("package", b, {"leader": "leader-01"}, by="leader-01", at=t("2025-01-12", 13))
    progress(w, b, "2025-01-20", "county-01")
    reply(w, b, "2025-02-15", "county-01")
    sign_and_close(w, b, "county-01", "2025-02-16", "2025-02-20",
                   opinion="basically_satisfied", paper=True)   # 10 days late
    w.do("desist", b, {"document_sha256": DOC}, by="registrar-01", at=t("2025-02-21"))
    c["C"] = cc = register(w, "2025-02-01", by="leader-01", channel="visit",
                           category="public_order", persons=2, reception_day=True,
                           received_by="leader-01")            # answered on the spot
    accept(w, cc, "2025-02-01")
    assign(w, cc, "2025-02-01", "station-03")
    reply(w, cc, "2025-02-01", "station-03")
    sign_and_close(w, cc, "station-03", "2025-02-02", "2025-02-03")
    c["D"] = d = register(w, "2025-02-10", channel="call", source="higher_police",
                          category="criminal", petitioner="pet-0002", reception_day=True,
                          received_by="leader-01")             # supervised, open, overdue
    accept(w, d, "2025-02-11")
    assign(w, d, "2025-02-11", "station-03")
    supervise(w, d, "2025-02-12", "higher_police", "2025-03-01")
    w.do("remind", d, {}, by="supervisor-01", at=t("2025-02-25"))
    c["E"] = e = register(w, "2025-03-01", channel="online",
                          category="consultation_or_non_police")
    accept(w, e, "2025-03-02", "not_accepted")
    c["F"] = register(w, "2025-03-15", channel="mailbox", source="leader")   # undecided
    c["G"] = g = register(w, "2025-03-20")                    # supervised, not yet due
    accept(w, g, "2025-03-21")
    assign(w, g, "2025-03-21", "station-03")
    supervise(w, g, "2025-03-22", "self_initiated", "2025-05-31")
    c["H"] = h = register(w, "2025-03-25", source="congress",
                          category="solve_case")               # closed only on 05-05
    accept(w, h, "2025-03-26")
    assign(w, h, "2025-03-26", "county-01")
    supervise(w, h, "2025-03-27", "congress", "2025-04-20", "listed")
    progress(w, h, "2025-04-10", "county-01")
    progress(w, h, "2025-05-01", "county-01")
    reply(w, h, "2025-05-01", "county-01")
    sign_and_close(w, h, "county-01", "2025-05-02", "2025-05-05", opinion="dissatisfied")
    c["I"] = i = register(w, "2025-04-02")                    # after the period; unassigned
    accept(w, i, "2025-04-02")
    supervise(w, i, "2025-04-03", "leader", "2025-04-10")
    return c


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def office(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           pg_problem: str | None) -> Iterator[Office]:
    urls = scratch_ledger_url(request.param, tmp_path_factory.mktemp("reports"), pg_problem)
    url = next(urls)
    world = build_world(url, tmp_path_factory.mktemp("keys"), at=t("2024-01-01", 8))
    yield Office(world, populate(world))
    world.ledger.close()
    next(urls, None)   # drops the PostgreSQL schema


# ---- supervision ledger -------------------------------------------------------------------------

def srow(case: str, authority: str, supervised: str, due: str, form: str | None, unit: str | None,
         handler: str | None, status: str, closed: str | None, on_time: bool | None,
         overdue: int, progress: int, opinion: str | None, **extra: Any) -> dict[str, Any]:
    return {"case": case, "authority": authority, "supervised_at": supervised, "due": due,
            "form": form, "unit": unit, "handler": handler, "status": status,
            "closed_at": closed, "on_time": on_time, "overdue_days": overdue,
            "progress_reports": progress, "opinion": opinion, **extra}


def test_supervision_ledger_as_of_april_30(office: Office) -> None:
    c = office.case
    report = supervision(office.store, AS_OF)
    assert report["as_of"] == "2025-04-30"
    keys = ["case", "authority", "supervised_at", "due", "form", "unit", "handler", "leader",
            "status", "closed_at", "on_time", "overdue_days", "progress_reports", "opinion",
            "petitioner", "reminders"]
    got = [{k: r[k] for k in keys} for r in report["rows"]]
    assert got == [
        srow(c["A"], "congress", "2025-01-07", "2025-01-31", "letter", "station-03",
             "officer-07", "closed", "2025-01-25", True, 0, 2, "satisfied",
             leader=None, petitioner="pet-0001", reminders=0),
        srow(c["B"], "political_legal_committee", "2025-01-12", "2025-02-10", "interview",
             "county-01", "officer-08", "closed", "2025-02-20", False, 10, 1,
             "basically_satisfied", leader="leader-01", petitioner="pet-0002", reminders=0),
        # open: 60 days past 03-01 at 04-30
        srow(c["D"], "higher_police", "2025-02-12", "2025-03-01", None, "station-03",
             "officer-07", "open", None, None, 60, 0, None, leader=None,
             petitioner="pet-0002", reminders=1),
        srow(c["G"], "self_initiated", "2025-03-22", "2025-05-31", None, "station-03",
             "officer-07", "open", None, None, 0, 0, None, leader=None,
             petitioner="pet-0001", reminders=0),
        # closed on 05-05, after as-of: open then, 10 days past 04-20; one progress by 04-30
        srow(c["H"], "congress", "2025-03-27", "2025-04-20", "listed", "county-01",
             "officer-08", "open", None, None, 10, 1, None, leader=None,
             petitioner="pet-0001", reminders=0),
        srow(c["I"], "leader", "2025-04-03", "2025-04-10", None, None, None, "open", None,
             None, 20, 0, None, leader=None, petitioner="pet-0001", reminders=0),
    ]
    assert report["by_unit"] == {
        "county-01": {"supervised": 2, "closed": 1, "closed_on_time": 0, "overdue": 2},
        "station-03": {"supervised": 3, "closed": 1, "closed_on_time": 1, "overdue": 1},
        "unassigned": {"supervised": 1, "closed": 0, "closed_on_time": 0, "overdue": 1},
    }
    assert report["totals"] == {"supervised": 6, "closed": 2, "closed_on_time": 1, "overdue": 4}
    b = report["rows"][1]
    assert (b["unit_name"], b["handler_name"], b["leader_name"], b["petitioner_name"],
            b["summary"], b["sign_form"]) == ("XX县公安局", "李四", "副局长戊", "赵某",
                                              "户口迁移不予办理", "witnessed")
    assert report["unit_names"] == {"county-01": "XX县公安局", "station-03": "城关派出所"}


def test_supervision_ledger_at_other_dates(office: Office) -> None:
    c = office.case
    later = {r["case"]: r for r in supervision(office.store, date(2025, 5, 10))["rows"]}
    h = later[c["H"]]   # closed 05-05: 15 days late, the petitioner dissatisfied
    assert (h["status"], h["closed_at"], h["on_time"], h["overdue_days"], h["progress_reports"],
            h["opinion"]) == ("closed", "2025-05-05", False, 15, 2, "dissatisfied")
    assert (later[c["D"]]["overdue_days"], later[c["I"]]["overdue_days"]) == (70, 30)
    early = supervision(office.store, date(2025, 1, 20))
    assert [(r["case"], r["status"], r["overdue_days"], r["progress_reports"], r["leader"])
            for r in early["rows"]] == [(c["A"], "open", 0, 2, None),
                                        (c["B"], "open", 0, 1, "leader-01")]
    windowed = supervision(office.store, AS_OF, date_from=date(2025, 2, 1),
                           date_to=date(2025, 3, 31))
    assert [r["case"] for r in windowed["rows"]] == [c["D"], c["G"], c["H"]]
    assert windowed["period"] == {"from": "2025-02-01", "to": "2025-03-31"}


# ---- statistics ---------------------------------------------------------------------------------

CHANNELS = ("letter", "visit", "call", "online", "fax", "mailbox")
SOURCES = ("direct", "petition_bureau", "higher_police", "congress",
           "political_legal_committee", "procuratorate", "government", "leader",
           "self_initiated")
CATEGORIES = ("file_case", "police_misconduct", "household_registration", "solve_case",
              "improper_handling", "perform_duty", "consultation_or_non_police",
              "mental_health", "appeal", "compensation", "criminal", "public_order", "help",
              "other")


def zeros(codes: tuple[str, ...], **counts: int) -> dict[str, int]:
    return {code: counts.get(code, 0) for code in codes}


def ratio(part: int, whole: int) -> dict[str, Any]:
    """An exact ratio as the JSON carries it (issue 17): the counts and the unrounded value."""
    return {"numerator": part, "denominator": whole, "value": part / whole if whole else None}


def unit(cases: int, persons: int, accepted: int, replied: int, rate: float | None,
         supervised: int, reception: tuple[int, int], **channels: int) -> dict[str, Any]:
    return {"cases": cases, "persons": persons, "by_channel": zeros(CHANNELS, **channels),
            "accepted": accepted, "closed_replied": replied, "reply_rate": rate,
            "ratios": {"reply_rate": ratio(replied, accepted)},
            "supervised": supervised,
            "reception_day": {"cases": reception[0], "persons": reception[1]}}


def without_grid(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with each unit's source and category counts (the grid's) taken out, after
    checking that they add up to the period's."""
    units = figures["by_unit"].values()
    for key in ("by_source", "by_category"):
        assert {code: sum(u[key][code] for u in units) for code in figures[key]} == figures[key]
    return {**figures, "by_unit": {unit: {k: v for k, v in f.items()
                                          if k not in ("by_source", "by_category")}
                                   for unit, f in figures["by_unit"].items()}}


Q1_FIGURES: dict[str, Any] = {
    "period": {"from": "2025-01-01", "to": "2025-03-31"}, "as_of": "2025-04-30",
    "total": 8,                          # A B C D E F G H (I is registered in April)
    "persons": 11,                       # B 3, C 2, the rest 1 each
    "by_channel": zeros(CHANNELS, letter=3, visit=2, call=1, online=1, mailbox=1),
    "by_source": zeros(SOURCES, direct=4, petition_bureau=1, higher_police=1, congress=1,
                       leader=1),
    "by_category": zeros(CATEGORIES, household_registration=3, file_case=1, public_order=1,
                         criminal=1, consultation_or_non_police=1, solve_case=1),
    "first_time": 7, "first_time_closed": 2,     # A and C closed by 04-30
    "repeat": 1, "repeat_closed": 1,             # B names A
    "repeat_share": 0.125,
    "group": {"batches": 2, "persons": 5},       # B and C
    "group_min_persons": 2,                      # the policy's (persons > 1)
    "group_visits": {"batches": 2, "persons": 5}, "joint_letters": {"batches": 0, "persons": 0},
    "accepted": 6, "not_accepted": 1, "undecided": 1,     # E refused, F undecided
    "not_accepted_by_ground": {"outside_remit": 1, "legal_procedure": 0, "handled_elsewhere": 0,
                               "final_recheck": 0, "other": 0},
    "closed_replied": 3, "in_handling": 3,       # A B C; H closes only on 05-05
    "reply_rate": 0.5,
    "reception_day": {"cases": 2, "persons": 3, "repeat": 0,
                      "answered_on_spot": 1,     # C replied the day it was registered
                      "deadline_reply": 1, "closed": 1,
                      "by_category": zeros(CATEGORIES, public_order=1, criminal=1)},
    "supervised": 5, "supervised_share": 0.625,  # A B D G H
    "supervised_closed": 2, "supervised_close_rate": 0.4,
    "supervised_by_authority": zeros(SOURCES, congress=2, political_legal_committee=1,
                                     higher_police=1, self_initiated=1),
    "packaged": 1, "packaged_closed": 1, "packaged_desisted": 1, "desisted": 1,   # B
    "ratios": {"repeat_share": ratio(1, 8), "reply_rate": ratio(3, 6),
               "supervised_share": ratio(5, 8), "supervised_close_rate": ratio(2, 5)},
    "by_unit": {
        "county-01": unit(2, 4, 2, 1, 0.5, 2, (0, 0), letter=1, visit=1),        # B H
        "station-03": unit(4, 5, 4, 2, 0.5, 3, (2, 3), letter=2, visit=1, call=1),  # A C D G
        "unassigned": unit(2, 2, 0, 0, None, 0, (0, 0), online=1, mailbox=1),      # E F
    },
    "unit_names": {"county-01": "XX县公安局", "station-03": "城关派出所"},
}

Q4_2024_FIGURES: dict[str, Any] = {
    "period": {"from": "2024-10-01", "to": "2024-12-31"},
    "as_of": "2025-01-30",               # as far after its end as 04-30 is after 03-31
    "total": 5, "persons": 5,
    "by_channel": zeros(CHANNELS, letter=4, visit=1),
    "by_source": zeros(SOURCES, direct=5),
    "by_category": zeros(CATEGORIES, household_registration=2, file_case=1, appeal=1, other=1),
    "first_time": 4, "first_time_closed": 1,     # P1; P4 closes only on 02-05
    "repeat": 1, "repeat_closed": 0, "repeat_share": 0.2,   # P5 names P1
    "group": {"batches": 0, "persons": 0},
    "group_min_persons": 2,
    "group_visits": {"batches": 0, "persons": 0}, "joint_letters": {"batches": 0, "persons": 0},
    "accepted": 3, "not_accepted": 2, "undecided": 0,   # P3 not accepted, P5 not re-accepted
    "not_accepted_by_ground": {"outside_remit": 1, "legal_procedure": 0, "handled_elsewhere": 0,
                               "final_recheck": 1, "other": 0},
    "closed_replied": 1, "in_handling": 2, "reply_rate": 1 / 3,
    "reception_day": {"cases": 0, "persons": 0, "repeat": 0, "answered_on_spot": 0,
                      "deadline_reply": 0, "closed": 0, "by_category": zeros(CATEGORIES)},
    "supervised": 0, "supervised_share": 0.0, "supervised_closed": 0,
    "supervised_close_rate": None, "supervised_by_authority": zeros(SOURCES),
    "packaged": 0, "packaged_closed": 0, "packaged_desisted": 0, "desisted": 0,
    "ratios": {"repeat_share": ratio(1, 5), "reply_rate": ratio(1, 3),
               "supervised_share": ratio(0, 5), "supervised_close_rate": ratio(0, 0)},
    "by_unit": {
        "station-03": unit(3, 3, 3, 1, 1 / 3, 0, (0, 0), letter=2, visit=1),   # P1 P2 P4
        "unassigned": unit(2, 2, 0, 0, None, 0, (0, 0), letter=2),              # P3 P5
    },
    "unit_names": {"station-03": "城关派出所"},
}


def test_statistics_every_figure(office: Office) -> None:
    report = statistics(office.store, *Q1, AS_OF)
    figures = {k: v for k, v in report.items()
               if k not in ("previous", "change", "compare", "organization")}
    assert without_grid(figures) == Q1_FIGURES
    assert report["compare"] == "previous"
    assert report["organization"] == {"unit": "city", "name": "XX市公安局"}
    assert without_grid(report["previous"]) == Q4_2024_FIGURES


def test_statistics_change_against_the_previous_period(office: Office) -> None:
    moved = statistics(office.store, *Q1, AS_OF)["change"]
    assert moved["total"] == {"previous": 5, "delta": 3, "pct": 60.0}
    assert moved["persons"] == {"previous": 5, "delta": 6, "pct": 120.0}
    assert moved["accepted"] == {"previous": 3, "delta": 3, "pct": 100.0}
    assert moved["not_accepted"] == {"previous": 2, "delta": -1, "pct": -50.0}
    assert moved["closed_replied"] == {"previous": 1, "delta": 2, "pct": 200.0}
    assert moved["repeat"] == {"previous": 1, "delta": 0, "pct": 0.0}
    assert moved["supervised"] == {"previous": 0, "delta": 5, "pct": None}
    assert moved["reply_rate"] == {"previous": 1 / 3, "delta": 0.5 - 1 / 3}
    assert moved["repeat_share"] == {"previous": 0.2, "delta": 0.125 - 0.2}
    assert moved["supervised_close_rate"] == {"previous": None, "delta": None}
    assert moved["by_channel"]["letter"] == {"previous": 4, "delta": -1, "pct": -25.0}
    assert moved["group"]["batches"] == {"previous": 0, "delta": 2, "pct": None}
    assert moved["by_unit"]["station-03"]["cases"] == {"previous": 3, "delta": 1, "pct": 33.3}
    assert "period" not in moved and "unit_names" not in moved and "ratios" not in moved


def test_statistics_judged_at_another_date_and_compared_with_a_year_before(
        office: Office) -> None:
    report = statistics(office.store, *Q1, date(2025, 5, 10), compare="year")
    assert (report["closed_replied"], report["reply_rate"], report["supervised_closed"],
            report["supervised_close_rate"], report["in_handling"]) == (4, 4 / 6, 3, 0.6, 2)
    assert report["previous"]["period"] == {"from": "2024-01-01", "to": "2024-03-31"}
    assert report["previous"]["total"] == 0 and report["change"]["total"]["pct"] is None
    december = statistics(office.store, date(2024, 12, 1), date(2024, 12, 31), AS_OF)
    assert (december["total"], december["accepted"], december["closed_replied"]) == (4, 2, 1)
    assert december["previous"]["period"] == {"from": "2024-11-01", "to": "2024-11-30"}


def test_comparison_periods() -> None:
    d = date
    assert comparison_period(d(2025, 1, 1), d(2025, 12, 31)) == (d(2024, 1, 1), d(2024, 12, 31))
    assert comparison_period(d(2025, 3, 1), d(2025, 3, 31)) == (d(2025, 2, 1), d(2025, 2, 28))
    assert comparison_period(d(2025, 1, 10), d(2025, 1, 19)) == (d(2024, 12, 31), d(2025, 1, 9))
    assert comparison_period(d(2024, 2, 1), d(2024, 2, 29), "year") == \
        (d(2023, 2, 1), d(2023, 2, 28))
    assert comparison_period(d(2025, 2, 1), d(2025, 2, 28), "year") == \
        (d(2024, 2, 1), d(2024, 2, 29))


def test_change_is_shaped_like_the_figures() -> None:
    current = {"period": {}, "total": 43, "reply_rate": 0.907, "group": {"batches": 2}}
    previous = {"period": {}, "total": 69, "reply_rate": None, "group": {"batches": 0}}
    # the seed's "比去年同期69起下降了38%"
    assert change(current, previous) == {
        "total": {"previous": 69, "delta": -26, "pct": -37.7},
        "reply_rate": {"previous": None, "delta": None},
        "group": {"batches": {"previous": 0, "delta": 2, "pct": None}}}


# ---- outputs -------------------------------------------------------------------------------------

def test_supervision_csv_and_xlsx_read_back(office: Office, tmp_path: Path) -> None:
    import openpyxl

    c = office.case
    sheets = supervision_sheets(supervision(office.store, AS_OF))
    buffer = io.StringIO()
    write_csv(sheets, buffer)
    ledger_rows, unit_rows = csv_blocks(buffer.getvalue())
    assert ledger_rows[0] == ["督办台账（截至 2025-04-30）"]
    assert ledger_rows[1] == ["案件编号", "督办机关", "督办日期", "督办形式", "信访人", "信访事项",
                              "包案领导", "承办单位", "承办人", "回告期限", "进展报告", "催办",
                              "状态", "办结日期", "按期办结", "超期天数", "信访人意见"]
    assert ledger_rows[3] == [c["B"], "政法委交办", "2025-01-12", "约谈", "赵某",
                              "户口迁移不予办理", "副局长戊", "XX县公安局", "李四", "2025-02-10",
                              "1", "0", "已办结", "2025-02-20", "否", "10", "基本满意"]
    assert ledger_rows[4][0] == c["D"] and ledger_rows[4][12:] == ["未办结", "", "", "60", ""]
    assert unit_rows[1] == ["承办单位", "督办件", "已办结", "按期办结", "超期"]
    assert unit_rows[2:] == [["XX县公安局", "2", "1", "0", "2"], ["城关派出所", "3", "1", "1", "1"],
                             ["未交办", "1", "0", "0", "1"], ["合计", "6", "2", "1", "4"]]

    path = tmp_path / "督办台账.xlsx"
    write_xlsx(sheets, path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["督办台账", "按承办单位"]
    ws = book["督办台账"]
    sheet = printed(ws)
    assert sheet.heading == "XX市公安局信访督办台账"
    assert sheet.meta == ["制表单位：XX市公安局", "截至：2025-04-30"]
    assert sheet.headers[-1][0] == "案件编号"
    n = sheet.first_row
    assert list(sheet.rows[2][:4]) == [c["D"], "上级公安机关转办", datetime(2025, 2, 12), None]
    assert ws[f"P{n + 2}"].value == 60 and ws[f"N{n + 2}"].value is None
    assert ws[f"A{n + 2}"].fill.fgColor.rgb.endswith("FFC7CE")      # overdue rows highlighted
    assert not ws[f"A{n}"].fill.fgColor.rgb.endswith("FFC7CE")      # A closed on time
    assert list(printed(book["按承办单位"]).rows[-1]) == ["合计", 6, 2, 1, 4]


def test_statistics_csv_and_xlsx_read_back(office: Office, tmp_path: Path) -> None:
    import openpyxl

    report = statistics(office.store, *Q1, AS_OF)
    buffer = io.StringIO()
    write_csv(statistics_sheets(report), buffer)
    figures, grid, categories, units = csv_blocks(buffer.getvalue())   # 信访统计表（一）（二）
    assert grid[1][:4] == ["承办单位", "合计", "来信", "来访"]
    assert grid[-1][:2] == ["合计", "8"] and categories[-1][:2] == ["合计", "8"]
    assert figures[0] == ["信访工作统计 2025-01-01 至 2025-03-31（截至 2025-04-30）"]
    assert figures[1] == ["指标", "本期", "对比期", "增减", "增减幅度"]
    by_label = {row[0]: row[1:] for row in figures[2:]}
    assert by_label["信访总量（件次）"] == ["8", "5", "3", "60.0%"]
    assert by_label["办结回复率"] == ["50.0%", "33.3%", "+16.7个百分点", ""]
    assert by_label["受理"] == ["6", "3", "3", "100.0%"]
    assert by_label["　来信"] == ["3", "4", "-1", "-25.0%"]
    assert by_label["　当面答复解决"] == ["1", "0", "1", ""]
    assert by_label["　　治安问题"] == ["1", "0", "1", ""]
    assert by_label["　其中停访息诉"] == ["1", "0", "1", ""]
    assert figures[-1] == ["对比期：上期 2024-10-01 至 2024-12-31（截至 2025-01-30）"]
    assert units[1][:3] == ["承办单位", "信访件", "信访人次"]
    assert units[2] == ["XX县公安局", "2", "4", "1", "1", "0", "0", "0", "0", "2", "1", "50.0%",
                        "2", "0", "0"]
    assert units[-1] == ["合计", "8", "11", "3", "2", "1", "1", "0", "1", "6", "3", "50.0%",
                         "5", "2", "3"]

    path = tmp_path / "stats.xlsx"
    write_xlsx(statistics_sheets(report, "en"), path)
    book = openpyxl.load_workbook(path)
    ws = book["Petition statistics"]
    first = printed(ws).first_row
    rows = {row[0].value: row for row in ws.iter_rows(min_row=first) if row[0].value}
    assert [cell.value for cell in rows["petitions"][1:5]] == [8, 5, 3, 0.6]
    rate = rows["reply rate"]
    assert (rate[1].value, rate[2].value, rate[1].number_format) == (0.5, 1 / 3, "0.0%")


def invoke(office: Office, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--ledger", office.world.url, "--keystore",
                                    str(office.world.keystore), *args])


def test_cli_json_is_the_library_report(office: Office) -> None:
    result = invoke(office, "report", "supervision", "--as-of", "2025-04-30", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == supervision(office.store, AS_OF)
    result = invoke(office, "report", "statistics", "--from", "2025-01-01", "--to", "2025-03-31",
                    "--as-of", "2025-04-30", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == statistics(office.store, *Q1, AS_OF)


def test_cli_text_marks_overdue_rows(office: Office) -> None:
    result = invoke(office, "report", "supervision", "--as-of", "2025-04-30")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "督办台账（截至 2025-04-30）" and lines[1].startswith("案件编号")
    marked = [line.split()[0] for line in lines if line.rstrip().endswith("⚠")]
    assert marked == [office.case[k] for k in ("B", "D", "H", "I")]
    english = invoke(office, "report", "statistics", "--from", "2025-01-01", "--to",
                     "2025-03-31", "--as-of", "2025-04-30", "--lang", "en")
    assert english.exit_code == 0, english.output
    assert english.output.startswith("Petition statistics 2025-01-01 to 2025-03-31")
    assert any(line.split()[:3] == ["reply", "rate", "50.0%"]
               for line in english.output.splitlines())


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "xlsx"])
def test_cli_writes_every_format_to_a_file(office: Office, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    result = invoke(office, "report", "supervision", "--as-of", "2025-04-30", "--format", fmt,
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    if fmt == "xlsx":
        assert out.read_bytes()[:2] == b"PK"
        return
    text = out.read_text(encoding="utf-8-sig" if fmt == "csv" else "utf-8")
    assert office.case["D"] in text
    if fmt == "csv":
        assert out.read_bytes().startswith(b"\xef\xbb\xbf")   # BOM: spreadsheets read UTF-8


@pytest.mark.parametrize("args, message", [
    (["report", "supervision", "--as-of", "2025-13-01"],
     "'2025-13-01' is neither a date nor a time"),
    (["report", "supervision", "--as-of", "yesterday"], "'yesterday' is neither a date nor a time"),
    (["report", "statistics", "--from", "2025-03-01", "--to", "2025-01-01"],
     "after it ends on 2025-01-01"),
    (["report", "supervision", "--from", "2025-03-01", "--to", "2025-01-01"], "Give --from"),
    (["report", "statistics", "--from", "2025/01/01", "--to", "2025-01-31"], "not a date"),
    (["report", "statistics", "--to", "2025-01-31"], "Missing option '--from'"),
    (["report", "supervision", "--format", "xlsx"], "--format xlsx writes a file"),
])
def test_cli_bad_input_exits_2(office: Office, args: list[str], message: str) -> None:
    result = invoke(office, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_projections_commands(office: Office) -> None:
    rebuilt = invoke(office, "projections", "rebuild", "--format", "json")
    assert rebuilt.exit_code == 0, rebuilt.output
    body = json.loads(rebuilt.output)
    assert body["rebuilt"] and body["position"] == office.store.max_position()
    state = invoke(office, "projections", "status", "--format", "json")
    assert json.loads(state.output)["behind"] == 0
    assert invoke(office, "projections", "catch-up", "--lang", "en").output.startswith(
        "caught up: 0 log")
    assert invoke(office, "projections", "catch-up").output.startswith("已追平：应用 0 条日志")
    assert "xinfang report statistics --from" in invoke(office, "report", "--help").output


def test_cli_on_a_missing_ledger_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--ledger", f"sqlite:///{tmp_path / 'none.db'}",
                                      "report", "supervision"])
    assert result.exit_code == 3 and "no ledger" in result.output
