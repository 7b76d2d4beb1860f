"""Faults and bad input survived: SIGKILL mid-import, fuzzed import lines and options."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import cli
from cli.scenario import build_scenario
from ledger import Ledger
from ledger.verification.verify import verify_ledger
from tests.world import World, t


def _jsonl(commands) -> str:  # noqa: ANN001
    return "".join(json.dumps({"id": c.cmd, "action": c.action, "actor": c.actor,
                               "at": c.at.isoformat(), "data": c.data,
                               **({"case": c.case} if c.case else {})},
                              ensure_ascii=False) + "\n" for c in commands)


@pytest.mark.slow
def test_sigkill_mid_import_then_reimport(ledger_url: str, tmp_path: Path) -> None:
    scenario = build_scenario(11, cases=260, petitioners=120)
    path = tmp_path / "year.jsonl"
    path.write_text(_jsonl(scenario.commands), encoding="utf-8")
    keys = tmp_path / "keys"
    led = Ledger.init(ledger_url, keys, origin="crash.example/ledger", admin="admin-01",
                      at=t("2025-01-01", 8))
    base = led.store.leaf_count()
    cmd = [sys.executable, "-m", "cli.main", "--ledger", ledger_url, "--keystore", str(keys),
           "import", str(path), "--batch-size", "50"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while led.store.leaf_count() < base + 300 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = led.store.leaf_count() - base
    assert 0 < written < len(scenario.commands), "the kill did not land mid-import"
    report = verify_ledger(led.store)
    assert report.ok, report.failures[:3]
    again = subprocess.run(cmd + ["--format", "json"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["skipped"] == written
    assert result["written"] + result["skipped"] == len(scenario.commands)
    assert led.store.leaf_count() == base + len(scenario.commands)
    ids = led.store.query(f"SELECT COUNT(*), COUNT(DISTINCT cmd) FROM "
                          f"{led.store.t('xf_commands')}")[0]
    assert ids == (len(scenario.commands), len(scenario.commands))
    assert verify_ledger(led.store).ok
    led.close()


ACTIONS = ["register", "accept", "assign", "reply", "close", "unit.add", "actor.add",
           "extend", "petitioner_sign", "bogus"]
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                        st.text(max_size=12), st.floats(allow_nan=False))
junk = st.recursive(json_scalar, lambda c: st.lists(c, max_size=3) |
                    st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
line = st.fixed_dictionaries(
    {"id": st.one_of(st.text(min_size=0, max_size=6), st.integers()),
     "action": st.sampled_from(ACTIONS),
     "actor": st.sampled_from(["registrar-01", "office-01", "officer-07", "nobody", "",
                               "pet-0002"]),
     "at": st.sampled_from(["2025-03-02T09:00:00+08:00", "2025-03-02", "yesterday",
                            "2099-01-01T00:00:00+08:00", ""]),
     "data": st.one_of(junk, st.fixed_dictionaries(
         {"channel": st.sampled_from(["letter", "pigeon"]),
          "source": st.sampled_from(["direct", "x"]),
          "category": st.sampled_from(["help", "ufo"]),
          "petitioner": st.sampled_from(["pet-0001", "officer-07", "ghost"]),
          "summary": st.text(max_size=5), "days": st.integers(-5, 100)}))},
    optional={"case": st.sampled_from(["XF-2025-000001", "XF-2025-000099", "bad", ""]),
              "extra": junk})


def _state(world: World) -> tuple[int, bytes | None]:
    store = world.ledger.store
    latest = store.latest_checkpoint()
    return store.leaf_count(), latest.root if latest else None


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=st.lists(line, min_size=1, max_size=3), garbage=st.booleans())
def test_fuzzed_import_lines(world: World, tmp_path: Path, lines: list, garbage: bool) -> None:
    world_case = world.ledger.store.stream("XF-2025-000001")
    if not world_case:
        world.accepted_case()
    before = _state(world)
    path = tmp_path / "fuzz.jsonl"
    text = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines)
    if garbage:
        text += "\n{not json"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore",
                                      str(world.keystore), "import", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit)
    if result.exit_code == 2:
        assert result.output.startswith("error: ")
        assert _state(world) == before, "a refused import changed the ledger"


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(option=st.sampled_from(["--channel", "--source", "--category", "--persons",
                               "--petitioner", "--at", "--repeat-of", "--received-by"]),
       value=st.text(min_size=0, max_size=15))
def test_fuzzed_command_options(world: World, option: str, value: str) -> None:
    before = _state(world)
    args = {"--channel": "letter", "--source": "direct", "--category": "help",
            "--petitioner": "pet-0001", "--summary": "模糊测试"}
    args[option] = value
    flat = [x for pair in args.items() for x in pair]
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "case", "register", "--as", "registrar-01", *flat])
    valid_value = {"--channel": ("letter", "visit", "call", "online", "fax", "mailbox"),
                   "--category": ("help",), "--petitioner": ("pet-0001",)}
    if result.exit_code == 0:
        assert option in ("--repeat-of", "--received-by", "--persons", "--at", "--channel",
                          "--category", "--petitioner", "--source") and \
            (option not in valid_value or value in valid_value[option])
        return
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit)
    assert _state(world) == before
