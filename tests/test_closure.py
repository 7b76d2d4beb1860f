"""三签 closure records: every closure defect is reported, on SQLite and PostgreSQL.

Defects the write path refuses (a revoked key, a leader of another unit, signatures out of
order, a signature after the close, a closing without signatures) are forged straight into the
store with ``tests.tamper.forge``, which signs and appends without the authorization checks.
tests/test_closure_agreement.py shows that the write path refuses each of them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger.errors import InputError, TransitionError
from ledger.verification.closure import (
    PROBLEM_CODES,
    ClosureRecord,
    closed_cases,
    closure_record,
    closure_report,
    judge_closure,
)
from ledger.verification.history import CaseHistory, case_history
from tests.tamper import forge
from tests.world import World, t

DIGEST = "ab" * 32


def day(n: int, hour: int = 9) -> datetime:
    """Business time n days after 2025-03-02 (the day the test cases are registered)."""
    return t((datetime(2025, 3, 2) + timedelta(days=n)).date().isoformat(), hour)


def replied_case(world: World) -> str:
    """Registered 2025-03-02, accepted, assigned to officer-07 (station-03), replied on day 10."""
    case = world.accepted_case("2025-03-02")
    world.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                             "served_at": day(10).isoformat(), "text": "已办理"},
             by="officer-07", at=day(10))
    return case


def attest(world: World, case: str, at: datetime | None = None) -> None:
    world.do("attest", case, {"evidence": ["答复书-001"]}, by="officer-07", at=at or day(11))


def consent(world: World, case: str, at: datetime | None = None) -> None:
    world.do("consent", case, {}, by="lead-03", at=at or day(11, 10))


def petitioner_signs(world: World, case: str, at: datetime | None = None) -> None:
    world.do("petitioner_sign", case, {"form": "key", "opinion": "satisfied"}, by="pet-0001",
             at=at or day(12))


def close(world: World, case: str, override: str | None = None, at: datetime | None = None
          ) -> None:
    world.do("close", case, {"override_reason": override} if override else {}, by="office-01",
             at=at or day(13))


def forge_event(world: World, case: str, action: str, data: dict[str, Any], *, by: str,
                at: datetime) -> int:
    """Sign with ``by``'s keystore key and append with no authorization check."""
    return forge(world.ledger.store, world.ledger.keystore.load(by), stream=case,
                 action=action, actor=by, at=at, data=data,
                 log_signer=world.ledger._checkpoint_signer())


def codes(record: ClosureRecord) -> list[str]:
    return [p.code for p in record.problems]


def run(world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                    *args])


# ---- valid closings ----------------------------------------------------------------------------

def test_properly_three_signed_closing_is_valid(world: World) -> None:
    case = world.closed_case()
    record = closure_record(world.ledger.store, case)
    assert record.valid, record.problems
    assert record.closed_at == day(13).isoformat()
    assert record.closed_by == "office-01"
    sigs = record.signatures
    assert [sigs[r].actor for r in ("handler", "unit_leader", "petitioner")] == \
        ["officer-07", "lead-03", "pet-0001"]
    assert all(s.verified for s in sigs.values())
    assert (sigs["petitioner"].opinion, sigs["petitioner"].form) == ("satisfied", "key")
    directory = world.ledger.directory()
    assert sigs["unit_leader"].key == directory.actors["lead-03"].key


def test_witnessed_paper_signature_counts(world: World) -> None:
    case = world.accepted_case()
    world.do("reply", case, {"outcome": "explain", "resolution": "educated",
                             "served_at": day(10).isoformat(), "text": "已解释"},
             by="officer-07", at=day(10))
    attest(world, case)
    consent(world, case)
    world.do("petitioner_sign", case, {"form": "witnessed", "opinion": "basically_satisfied",
                                       "document_sha256": DIGEST}, by="registrar-01",
             at=day(12))
    close(world, case)
    record = closure_record(world.ledger.store, case)
    assert record.valid, record.problems
    petitioner = record.signatures["petitioner"]
    assert (petitioner.form, petitioner.actor, petitioner.petitioner) == \
        ("witnessed", "registrar-01", "pet-0001")
    assert petitioner.document_sha256 == DIGEST
    assert petitioner.to_json()["opinion"] == "basically_satisfied"


def test_refusal_then_witnessed_signature_is_valid(world: World) -> None:
    case = replied_case(world)
    attest(world, case)
    consent(world, case)
    world.do("petitioner_sign", case, {"form": "refused", "reason": "对处理结果有异议"},
             by="registrar-01", at=day(12))
    world.do("petitioner_sign", case, {"form": "witnessed", "opinion": "dissatisfied",
                                       "document_sha256": DIGEST}, by="registrar-01",
             at=day(12, 15))
    close(world, case)
    record = closure_record(world.ledger.store, case)
    assert record.valid, record.problems
    assert record.signatures["petitioner"].opinion == "dissatisfied"


# ---- defects the write path admits (with an override) ---------------------------------------

SIGNERS: dict[str, Callable[[World, str], None]] = {
    "attest": attest, "consent": consent, "petitioner": petitioner_signs}


@pytest.mark.parametrize(("missing", "expected"), [
    ("attest", ["missing_attest", "missing_consent", "missing_petitioner", "override"]),
    ("consent", ["missing_consent", "missing_petitioner", "override"]),
    ("petitioner", ["missing_petitioner", "override"])])
def test_missing_signature_with_override(world: World, missing: str,
                                         expected: list[str]) -> None:
    """The signatures come in order (attest → consent → petitioner), so a missing one leaves
    the later ones unsigned: writing them is refused."""
    case = replied_case(world)
    names = list(SIGNERS)
    for name in names[:names.index(missing)]:
        SIGNERS[name](world, case)
    for name in names[names.index(missing) + 1:]:
        with pytest.raises(TransitionError, match="attest → consent → petitioner"):
            SIGNERS[name](world, case)
    close(world, case, override="信访人外出务工，无法联系")
    record = closure_record(world.ledger.store, case)
    assert not record.valid
    assert codes(record) == expected
    role = {"attest": "handler", "consent": "unit_leader", "petitioner": "petitioner"}[missing]
    assert not record.signatures[role].present
    assert record.override_reason == "信访人外出务工，无法联系"
    assert "信访人外出务工" in str(record.problems[-1])


def test_refusal_and_override(world: World) -> None:
    case = replied_case(world)
    attest(world, case)
    consent(world, case)
    world.do("petitioner_sign", case, {"form": "refused", "reason": "对处理结果有异议"},
             by="registrar-01", at=day(12))
    close(world, case, override="信访人拒签")
    record = closure_record(world.ledger.store, case)
    assert codes(record) == ["refused", "override"]
    petitioner = record.signatures["petitioner"]
    assert (petitioner.present, petitioner.form, petitioner.verified) == (True, "refused", False)
    assert petitioner.opinion is None


def test_transfer_after_signing_voids_attestation_and_consent(world: World) -> None:
    """Transferred to county-01 after all three signed: station-03's handler and leader no
    longer answer for it, so their signatures stop counting (and the petitioner's, which
    followed them, must follow the new ones)."""
    case = replied_case(world)
    attest(world, case)
    consent(world, case)
    petitioner_signs(world, case)
    world.do("assign", case, {"unit": "county-01", "handler": "officer-08"}, by="office-01",
             at=day(12, 15))
    close(world, case, override="移交县局后办结")
    record = closure_record(world.ledger.store, case)
    assert codes(record) == ["missing_attest", "missing_consent", "override"]
    assert "now assigned to officer-08" in str(record.problems[0])
    assert "now handled by county-01" in str(record.problems[1])
    assert record.signatures["handler"].actor == "officer-07"   # shown, but not standing


def unchecked(history: CaseHistory) -> CaseHistory:
    """The history as a reader that did not run ``verify`` holds it: every event good."""
    return CaseHistory(history.case, [replace(e, signature_ok=True, authorized=True,
                                              chain_ok=True, problems=(), failures=())
                                      for e in history.events], None)


def test_wrong_order_of_events_that_count(world: World) -> None:
    """``wrong_order`` for signatures that count but are out of order: what a history judged
    without ``verify`` (e.g. ``report accountability --no-integrity``) holds after a forgery.
    Checked, such signatures fail authorization (see below) and never count."""
    case = replied_case(world)
    forge_event(world, case, "petitioner_sign", {"form": "key", "opinion": "satisfied"},
                by="pet-0001", at=day(11))
    forge_event(world, case, "consent", {}, by="lead-03", at=day(11, 10))
    forge_event(world, case, "attest", {"evidence": ["d"]}, by="officer-07", at=day(11, 11))
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = judge_closure(unchecked(case_history(world.ledger.store, case)))
    assert codes(record) == ["wrong_order", "wrong_order"]
    assert "precedes" in str(record.problems[0])
    dated = replied_case(world)
    attest(world, dated, at=day(12))
    forge_event(world, dated, "consent", {}, by="lead-03", at=day(11))   # recorded after
    forge_event(world, dated, "petitioner_sign", {"form": "key", "opinion": "satisfied"},
                by="pet-0001", at=day(12, 11))
    forge_event(world, dated, "close", {}, by="office-01", at=day(13))
    record = judge_closure(unchecked(case_history(world.ledger.store, dated)))
    assert codes(record) == ["wrong_order"]
    assert "dated" in str(record.problems[0])


# ---- forged defects (injected past the write path) -----------------------------------------
# No write builds on an event that fails verification, so everything after the first forged
# event is forged too. A failing event counts for nothing: later events are judged without it.

def test_signatures_out_of_order(world: World) -> None:
    case = replied_case(world)
    forge_event(world, case, "petitioner_sign", {"form": "key", "opinion": "satisfied"},
                by="pet-0001", at=day(11))
    forge_event(world, case, "consent", {}, by="lead-03", at=day(11, 10))
    forge_event(world, case, "attest", {"evidence": ["答复书-001"]}, by="officer-07",
                at=day(11, 11))
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = closure_record(world.ledger.store, case)
    # Only the attestation counts; the consent and the petitioner's signature were not
    # authorized when they came, nor was the closing.
    assert codes(record) == ["missing_consent", "missing_petitioner", "unauthorized",
                             "unauthorized", "bad_close"]
    assert "attest → consent → petitioner" in str(record.problems[2])
    assert (record.signatures["unit_leader"].present,
            record.signatures["unit_leader"].authorized) == (True, False)


def test_consent_dated_before_the_attestation(world: World) -> None:
    case = replied_case(world)
    attest(world, case, at=day(12))
    forge_event(world, case, "consent", {}, by="lead-03", at=day(11))   # recorded after
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = closure_record(world.ledger.store, case)
    assert codes(record) == ["missing_consent", "missing_petitioner", "unauthorized",
                             "bad_close"]
    assert "before the handler attestation" in str(record.problems[2])


def test_signature_by_revoked_key(world: World) -> None:
    case = replied_case(world)
    attest(world, case)
    world.ledger.revoke_key("lead-03", reason="证书遗失", as_actor="admin-01", at=day(11))
    position = forge_event(world, case, "consent", {}, by="lead-03", at=day(11, 10))
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = closure_record(world.ledger.store, case)
    leader = record.signatures["unit_leader"]
    assert (leader.position, leader.verified, leader.signature_ok) == (position, False, False)
    assert codes(record) == ["missing_consent", "missing_petitioner", "bad_signature",
                             "bad_close"]
    assert "revoked" in str(record.problems[2])


def test_unit_leader_of_another_unit(world: World) -> None:
    case = replied_case(world)           # handled by station-03
    attest(world, case)
    forge_event(world, case, "consent", {}, by="lead-01", at=day(11, 10))   # leads county-01
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = closure_record(world.ledger.store, case)
    leader = record.signatures["unit_leader"]
    assert (leader.actor, leader.signature_ok, leader.authorized) == ("lead-01", True, False)
    assert codes(record) == ["missing_consent", "missing_petitioner", "unauthorized",
                             "bad_close"]
    assert "station-03" in str(record.problems[2])


def test_handler_not_assigned(world: World) -> None:
    case = replied_case(world)
    forge_event(world, case, "attest", {"evidence": ["伪造"]}, by="officer-08", at=day(11))
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = closure_record(world.ledger.store, case)
    assert codes(record) == ["missing_attest", "missing_consent", "missing_petitioner",
                             "unauthorized", "bad_close"]
    assert record.signatures["handler"].actor == "officer-08"


def test_witnessed_signature_without_document_digest(world: World) -> None:
    case = replied_case(world)
    attest(world, case)
    consent(world, case)
    forge_event(world, case, "petitioner_sign", {"form": "witnessed", "opinion": "satisfied"},
                by="registrar-01", at=day(12))
    forge_event(world, case, "close", {"override_reason": "扫描件待补"}, by="office-01",
                at=day(13))
    record = closure_record(world.ledger.store, case)
    # Checked, the schema refuses it (check 1), so it is no signature; unchecked, the rule
    # itself names the missing digest.
    assert codes(record) == ["missing_petitioner", "bad_signature", "override"]
    assert "document_sha256" in str(record.problems[1])
    assert codes(judge_closure(unchecked(case_history(world.ledger.store, case)))) == \
        ["no_document", "override"]


def test_signature_recorded_after_the_close(world: World) -> None:
    case = replied_case(world)
    attest(world, case)
    consent(world, case)
    close(world, case, override="信访人外出")
    forge_event(world, case, "petitioner_sign", {"form": "key", "opinion": "satisfied"},
                by="pet-0001", at=day(14))
    record = closure_record(world.ledger.store, case)
    assert codes(record) == ["missing_petitioner", "after_close", "override"]


def test_closing_without_signatures_and_without_override(world: World) -> None:
    case = replied_case(world)
    forge_event(world, case, "close", {}, by="office-01", at=day(13))
    record = closure_record(world.ledger.store, case)
    assert codes(record) == ["missing_attest", "missing_consent", "missing_petitioner",
                             "bad_close"]
    assert "三签" in str(record.problems[-1])


def test_reopen_starts_a_new_cycle(world: World) -> None:
    case = world.closed_case()
    world.do("reopen", case, {"reason": "结而不息"}, by="office-01", at=day(20))
    assert case not in closed_cases(world.ledger.store)
    reopened = closure_record(world.ledger.store, case)
    assert not reopened.valid and "reopened" in codes(reopened)
    world.do("reply", case, {"outcome": "support", "resolution": "aided",
                             "served_at": day(30).isoformat(), "text": "再次答复"},
             by="officer-07", at=day(30))
    attest(world, case, at=day(31))
    consent(world, case, at=day(31, 10))
    close(world, case, override="信访人未到场", at=day(32))
    record = closure_record(world.ledger.store, case)
    assert case in closed_cases(world.ledger.store)
    assert codes(record) == ["missing_petitioner", "override"]   # the first cycle's does not count
    assert record.signatures["handler"].at == day(31).isoformat()


def test_unclosed_case(world: World) -> None:
    case = replied_case(world)
    record = closure_record(world.ledger.store, case)
    assert (record.valid, codes(record), record.closed_at) == (False, ["not_closed"], None)
    assert case not in closed_cases(world.ledger.store)


def test_unknown_case_is_input_error(world: World) -> None:
    with pytest.raises(InputError):
        closure_record(world.ledger.store, "XF-2025-999999")


def test_report_lists_every_closed_case(world: World) -> None:
    good = world.closed_case()
    bad = replied_case(world)
    close(world, bad, override="领导批示")
    open_case = replied_case(world)
    records = closure_report(world.ledger.store)
    assert [r.case for r in records] == sorted([good, bad])
    assert open_case not in [r.case for r in records]
    assert [r.valid for r in records] == [True, False]
    assert set(PROBLEM_CODES) >= {c for r in records for c in codes(r)}


# ---- CLI ---------------------------------------------------------------------------------------

def test_cli_report_closures_json_shape(world: World) -> None:
    good = world.closed_case()
    result = run(world, "report", "closures", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out) == ["cases"]
    (entry,) = out["cases"]
    assert {"case", "closed_at", "valid", "signatures", "problems"} <= set(entry)
    assert (entry["case"], entry["valid"], entry["problems"]) == (good, True, [])
    assert set(entry["signatures"]) == {"handler", "unit_leader", "petitioner"}
    for sig in entry["signatures"].values():
        assert {"actor", "at", "key", "verified"} <= set(sig) and sig["verified"] is True
    assert {"opinion", "form"} <= set(entry["signatures"]["petitioner"])
    assert entry["signatures"]["petitioner"]["opinion"] == "satisfied"


def test_cli_report_closures_text_csv_xlsx(world: World, tmp_path: Any) -> None:
    good = world.closed_case()
    bad = replied_case(world)
    close(world, bad, override="领导批示")
    zh = run(world, "report", "closures")   # an invalid closure: exit 1 (cli.md)
    assert zh.exit_code == 1 and "三签结论" in zh.output and "未经三签强行办结" in zh.output
    en = run(world, "report", "closures", "--lang", "en")
    assert en.exit_code == 1 and "closed by override" in en.output and "INVALID" in en.output
    target = tmp_path / "closures.csv"
    assert run(world, "report", "closures", "--format", "csv", "--out", str(target)
               ).exit_code == 1
    rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
    # The layout of every report's CSV: title, header, one row per case, then the notes.
    assert rows[0] == ["三签结案记录"] and rows[1][0] == "案件编号"
    assert [r[0] for r in rows[2:] if r[0].startswith("XF-")] == sorted([good, bad])
    xlsx = tmp_path / "closures.xlsx"
    assert run(world, "report", "closures", "--format", "xlsx", "--out", str(xlsx)
               ).exit_code == 1   # the file is written all the same
    assert xlsx.read_bytes()[:2] == b"PK"
    assert run(world, "report", "closures", "--format", "xlsx").exit_code == 2


def test_cli_verify_closure_exit_codes(world: World) -> None:
    good = world.closed_case()
    ok = run(world, "case", "verify-closure", good)
    assert ok.exit_code == 0, ok.output
    assert "有效" in ok.output
    bad = replied_case(world)
    close(world, bad, override="领导批示")
    failed = run(world, "case", "verify-closure", bad, "--format", "json")
    assert failed.exit_code == 1
    assert json.loads(failed.output)["valid"] is False
    assert run(world, "case", "verify-closure", replied_case(world)).exit_code == 1
    assert run(world, "case", "verify-closure", "XF-2025-999999").exit_code == 2
