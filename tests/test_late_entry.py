"""Backdating made visible (issue 9, class 8): the ``late_entry`` (补录) trigger, migration
batches reported once, and the empty import as a clean no-op — on SQLite and PostgreSQL.

Business time (``at``) is what the signer claims; the recorded time is set by the writer. These
tests write with real keys through the library and the CLI, with business times in the past and
the recorded time "now", which is exactly what an insider backdating an event produces.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from ledger import Ledger
from ledger.domain.policy import SHANGHAI, Policy
from ledger.log.keys import Signer
from ledger.log.statement import Envelope, Statement
from ledger.verification.verify import verify_ledger
from projections.accountability import accountability_report, accountability_sheets
from projections.export import write_csv
from projections.triggers import detail_text
from tests.readback import csv_blocks
from tests.tamper import forge
from tests.world import World

NOW = datetime.now(SHANGHAI).replace(microsecond=0)
REGISTERED = NOW - timedelta(days=40)
ACCEPTED = REGISTERED + timedelta(days=5)        # inside the 15-day acceptance window
CASE = f"XF-{REGISTERED.year:04d}-000001"
REGISTER_DATA = {"channel": "letter", "source": "direct", "category": "household_registration",
                 "petitioner": "pet-0001", "summary": "户口迁移不予办理"}


def day(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).date().isoformat()


def today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def who(actor: str, role: str, unit: str | None) -> dict[str, Any]:
    kind = "leadership" if role in ("unit_leader", "leader") else "direct"   # 领导/直接责任
    return {"actor": actor, "role": role, "unit": unit, "responsibility": kind}


def report_of(world: World) -> dict[str, Any]:
    return accountability_report(world.ledger.store, date.fromisoformat(today()))


def case_triggers(report: dict[str, Any], case: str, code: str = "late_entry") -> list[dict]:
    found = [c for c in report["cases"] if c["case"] == case]
    return [t for t in found[0]["triggers"] if t["code"] == code] if found else []


def invoke(world: World, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                    *args])


def import_lines() -> list[dict[str, Any]]:
    """The backdated pair: registered 40 days ago, accepted (by business time) 5 days later."""
    return [
        {"id": "paper-1", "action": "register", "case": CASE, "actor": "registrar-01",
         "at": REGISTERED.isoformat(), "data": REGISTER_DATA},
        {"id": "paper-2", "action": "accept", "case": CASE, "actor": "office-01",
         "at": ACCEPTED.isoformat(), "data": {"decision": "accepted"}}]


# ---- late_entry ---------------------------------------------------------------------------------

def test_backdated_acceptance_inside_the_deadline_is_a_late_entry(world: World) -> None:
    # Written today with real keys, business times claiming 40 and 35 days ago.
    case = world.register(REGISTERED)
    world.do("accept", case, {"decision": "accepted", "notice_served_at": ACCEPTED.isoformat()},
             by="office-01", at=ACCEPTED)
    report = report_of(world)
    assert report["migrations"] == []
    # By business time the decision was on time: no late_acceptance ...
    assert case_triggers(report, case, "late_acceptance") == []
    register, accept = case_triggers(report, case)
    # ... but it was recorded long after the 15-day window closed: late_entry, deadline variant.
    due = (REGISTERED.date() + timedelta(days=15)).isoformat()
    assert accept["variant"] == "deadline"
    assert accept["responsible"] == [who("office-01", "signer", "city")]
    assert (accept["on"], accept["due"]) == (today(), due)
    assert accept["days_late"] == (date.fromisoformat(today()) - date.fromisoformat(due)).days
    assert accept["days_late"] >= 24   # ~25 days after the deadline it claims to have met
    assert accept["facts"] == {"action": "accept", "at": day(ACCEPTED), "recorded": today(),
                               "days": (date.fromisoformat(today()) - ACCEPTED.date()).days,
                               "deadline": "acceptance", "due": due}
    assert [(e["seq"], e["type"]) for e in accept["evidence"]] == [(1, "register"),
                                                                   (2, "accept")]
    assert accept["detail"] == (f"acceptance decision dated {day(ACCEPTED)}, within the "
                                f"acceptance notice due {due}, was recorded on {today()}, "
                                "after it")
    assert "才记录" in detail_text("late_entry", "deadline", accept["facts"], "zh")
    # The registration has no deadline of its own: recorded > 3 days after its business time.
    assert register["variant"] is None and register["due"] is None
    assert register["responsible"] == [who("registrar-01", "signer", "city")]
    assert register["days_late"] == (date.fromisoformat(today()) - REGISTERED.date()).days
    assert [(e["seq"], e["type"]) for e in register["evidence"]] == [(1, "register")]
    assert report["by_actor"]["office-01"]["triggers"] == {"late_entry": 1}
    assert report["totals"]["by_code"]["late_entry"] == 2
    # The chain of custody shows when each step was recorded.
    steps = next(c for c in report["cases"] if c["case"] == case)["custody"]
    assert [s["recorded_at"][:10] for s in steps] == [today(), today()]
    assert [s["migration"] for s in steps] == [None, None]


def test_deadline_missed_only_by_recorded_time_and_the_threshold(world: World) -> None:
    accepted = NOW - timedelta(days=61)      # handling due: accepted + 60 days = yesterday
    world.migration = "paper-setup"          # the case's history came in as a migration
    case = world.register(accepted - timedelta(days=1))
    world.do("accept", case, {"decision": "accepted"}, by="office-01", at=accepted)
    world.do("assign", case, {"unit": "station-03", "handler": "officer-07"}, by="office-01",
             at=accepted)
    world.migration = None                   # from here on, live writes (backdated)
    world.do("progress", case, {"note": "四天前约谈"}, by="officer-07",
             at=NOW - timedelta(days=4))                                     # #4: > 3 days
    world.do("progress", case, {"note": "两天前约谈"}, by="officer-07",
             at=NOW - timedelta(days=2))                                     # #5: within 3
    served = NOW - timedelta(days=1)         # served (by its claim) on the due date
    world.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                             "served_at": served.isoformat(), "text": "已答复"},
             by="officer-07", at=served)                                     # #6: 1 day
    report = report_of(world)
    assert case_triggers(report, case, "late_reply") == []   # on time by business time
    found = case_triggers(report, case)
    assert [(t["evidence"][-1]["seq"], t["variant"]) for t in found] == [(4, None),
                                                                         (6, "deadline")]
    progress, reply = found
    assert progress["days_late"] == 4
    assert progress["responsible"] == [who("officer-07", "signer", "station-03")]
    due = (accepted.date() + timedelta(days=60)).isoformat()
    assert (reply["due"], reply["facts"]["deadline"]) == (due, "handling")
    assert reply["facts"]["days"] <= 1       # under the threshold: the deadline makes it late
    assert [(e["seq"], e["type"]) for e in reply["evidence"]] == [(2, "accept"), (6, "reply")]
    (batch,) = report["migrations"]
    assert (batch["name"], batch["events"], batch["cases"]) == ("paper-setup", 3, 1)


def test_the_policy_threshold_applies(ledger_url: str, tmp_path: Path) -> None:
    old = {k: v for k, v in Policy().to_data().items() if k != "late_entry_days"}
    assert Policy.from_data(old).late_entry_days == 3   # older ledgers keep the default
    start = NOW - timedelta(days=30)
    led = Ledger.init(ledger_url, tmp_path / "keys", origin="test.example/lenient",
                      admin="admin-01", policy=Policy(late_entry_days=10), at=start)
    try:
        lenient = World(led, ledger_url, tmp_path / "keys")
        led.add_unit("city", "XX市公安局", as_actor="admin-01", at=start)
        led.add_actor("registrar-01", "登记员甲", roles=["registrar"], unit="city",
                      as_actor="admin-01", at=start)
        led.add_actor("pet-0001", "王某", roles=["petitioner"], keyless=True,
                      as_actor="admin-01", at=start)
        nine = lenient.register(NOW - timedelta(days=9))
        eleven = lenient.register(NOW - timedelta(days=11))
        report = accountability_report(led.store, date.fromisoformat(today()))
        assert case_triggers(report, nine) == []
        assert [t["days_late"] for t in case_triggers(report, eleven)] == [11]
    finally:
        led.close()


def test_events_failing_verify_are_integrity_not_late_entry(world: World) -> None:
    world.migration = "paper"
    case = world.register(REGISTERED)
    led = world.ledger
    forge(led.store, Signer.generate("office-01"), stream=case, action="accept",
          actor="office-01", at=ACCEPTED, data={"decision": "accepted"},
          log_signer=led._checkpoint_signer())                       # a stranger's key
    report = report_of(world)
    codes = [t["code"] for t in next(c for c in report["cases"] if c["case"] == case)
             ["triggers"]]
    assert "integrity" in codes and "late_entry" not in codes


# ---- migration batches --------------------------------------------------------------------------

@pytest.mark.parametrize("migration", [None, "paper-2025"])
def test_the_same_import_as_a_migration_is_one_batch(world: World, tmp_path: Path,
                                                     migration: str | None) -> None:
    path = tmp_path / "paper.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n"
                            for line in import_lines()), encoding="utf-8")
    args = ["import", str(path), "--lang", "en",
            *(["--migration", migration] if migration else [])]
    result = invoke(world, *args)
    assert result.exit_code == 0, result.output
    assert "imported 2 of 2 lines" in result.output
    report = report_of(world)
    if migration is None:
        assert [t["variant"] for t in case_triggers(report, CASE)] == [None, "deadline"]
        assert report["migrations"] == []
        return
    assert f"as migration {migration}" in result.output
    assert case_triggers(report, CASE) == []
    (batch,) = report["migrations"]
    positions = [r.position for r in world.ledger.store.stream(CASE)]
    assert batch == {"name": migration, "events": 2, "cases": 1,
                     "signers": ["office-01", "registrar-01"],
                     "business_from": REGISTERED.isoformat(),
                     "business_to": ACCEPTED.isoformat(),
                     "recorded_from": batch["recorded_from"], "recorded_to": batch["recorded_to"],
                     "first_position": positions[0], "last_position": positions[1]}
    assert batch["recorded_from"][:10] == batch["recorded_to"][:10] == today()
    assert batch["recorded_from"] <= batch["recorded_to"]
    # The mark is signed into each statement, and the ledger still verifies.
    for record in world.ledger.store.stream(CASE):
        statement = Statement.from_signed_bytes(Envelope.from_bytes(record.state).signed)
        assert statement.migration == migration
    assert verify_ledger(world.ledger.store).ok
    # Re-running the import skips what is recorded: still one batch of two events.
    again = invoke(world, *args)
    assert again.exit_code == 0 and "(2 already recorded)" in again.output
    assert report_of(world)["migrations"][0]["events"] == 2
    # JSON, text and CSV show the batch.
    shown = invoke(world, "report", "accountability", "--format", "json", "--no-integrity")
    assert json.loads(shown.output)["migrations"][0]["name"] == migration
    text = invoke(world, "report", "accountability", "--lang", "en", "--no-integrity")
    assert "Migration batches" in text.output and migration in text.output
    buffer = io.StringIO()
    write_csv(accountability_sheets(report), buffer)
    blocks = csv_blocks(buffer.getvalue())
    batches = next(b for b in blocks if b[0][0].endswith("迁移补录批次"))
    assert batches[1][:4] == ["批次", "事件数", "案件数", "签名人"]
    assert batches[2][:4] == [migration, "2", "1", "信访民警乙、登记员甲"]


@pytest.mark.parametrize("name", ["", " padded", "x" * 101, "line\nbreak"])
def test_a_bad_migration_name_is_refused_before_writing(world: World, tmp_path: Path,
                                                        name: str) -> None:
    path = tmp_path / "paper.jsonl"
    path.write_text(json.dumps(import_lines()[0]) + "\n", encoding="utf-8")
    leaves = world.ledger.store.leaf_count()
    result = invoke(world, "import", str(path), "--migration", name)
    assert result.exit_code == 2, result.output
    assert "invalid migration name" in result.output and "Traceback" not in result.output
    assert world.ledger.store.leaf_count() == leaves


def test_statement_migration_field_is_optional_and_typed() -> None:
    base = Statement(origin="o.example/l", stream=CASE, seq=1, prev="0" * 64, type="register",
                     at="2025-03-02T09:00:00+08:00", actor="registrar-01", key="ab" * 8,
                     data={"summary": "x"})
    assert "migration" not in base.to_object()          # old statements are unchanged
    assert Statement.from_signed_bytes(base.signed_bytes()) == base
    marked = Statement(**{**base.to_object(), "migration": "paper-2025"})
    assert Statement.from_signed_bytes(marked.signed_bytes()).migration == "paper-2025"
    from ledger.log.statement import EVENT_CONTEXT, canonical_bytes

    for bad in (5, None, ["x"]):
        forged = EVENT_CONTEXT + canonical_bytes({**base.to_object(), "migration": bad})
        with pytest.raises(ValueError, match="migration"):
            Statement.from_signed_bytes(forged)


# ---- the empty import ---------------------------------------------------------------------------

@pytest.mark.parametrize("content", ["", "\n\n\n", "  \n\t\n \r\n"])
def test_an_empty_import_is_nothing_to_import(world: World, tmp_path: Path,
                                              content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    leaves = world.ledger.store.leaf_count()
    result = invoke(world, "import", str(path), "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "nothing to import" in result.output and "Traceback" not in result.output
    as_json = invoke(world, "import", str(path), "--format", "json", "--migration", "paper")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == {"lines": 0, "written": 0, "skipped": 0,
                                          "first_position": None, "last_position": None,
                                          "migration": "paper"}
    assert world.ledger.store.leaf_count() == leaves
