"""`xinfang demo`: a realistic, deterministic year that covers every action and verifies."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import cli
from cli.scenario import build_scenario
from ledger.log.statement import Envelope, Statement
from ledger.storage.store import Store, parse_location
from schemas.actions import CASE_ACTIONS, Role


def _statements(db: Path) -> list[tuple]:
    with Store(parse_location(f"sqlite:///{db}")) as store:
        out = []
        for note in store.iter_log():
            st = Statement.from_signed_bytes(Envelope.from_bytes(note.state).signed)
            # keys are fresh each run, so key material and the hashes that cover it differ
            data = {k: v for k, v in st.data.items() if k not in ("public_key", "admin_key",
                                                                  "log_key")}
            if "evidence" in data and st.type == "reverse_check_finding":
                data["evidence"] = [{**ref, "hash": None} for ref in data["evidence"]]
            out.append((st.stream, st.seq, st.type, st.at, st.actor, data))
        return out


def test_demo_builds_verifies_and_tours(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "a"), "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "verify: 通过" in result.output
    assert "办结回复率" in result.output and "督办台账" in result.output
    assert "接下来可以试试" in result.output
    again = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "a"), "--seed", "7"])
    assert again.exit_code == 2 and "--force" in again.output
    other = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "b"), "--seed", "7"])
    assert other.exit_code == 0
    first, second = _statements(tmp_path / "a" / "ledger.db"), \
        _statements(tmp_path / "b" / "ledger.db")
    assert first == second, "the same seed must give the same year"


def test_demo_year_covers_the_domain() -> None:
    scenario = build_scenario(2025)
    actions = {c.action for c in scenario.commands}
    assert set(CASE_ACTIONS) - {"reverse_check_open", "reverse_check_finding",
                                "reverse_check_conclude"} <= actions
    roles = {r for _, _, _, rs, _ in scenario.staff.actors for r in rs} | {"admin"}
    assert roles == {r.value for r in Role}
    assert len(scenario.staff.actors) + 1 >= 40 and scenario.cases >= 300
    registers = [c.data for c in scenario.commands if c.action == "register"]
    assert any(d.get("reception_day") for d in registers)
    assert any(d.get("persons", 1) > 1 for d in registers)
    assert any(d.get("repeat_of") for d in registers)
    decisions = {c.data.get("decision") for c in scenario.commands}
    assert {"accepted", "not_accepted", "not_reaccepted", "changed", "upheld"} <= decisions
    forms = {c.data.get("form") for c in scenario.commands if c.action == "petitioner_sign"}
    assert forms == {"key", "witnessed", "refused"}
    for kind in ("late_acceptance", "late_reply", "unsigned_closure", "dissatisfied_closure",
                 "overturned", "reflow", "bounced", "open_at_year_end"):
        assert scenario.problems.get(kind), kind
