"""`xinfang demo`: a realistic, deterministic year that covers every action and verifies."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.demo import ORIGIN, WITNESSES
from cli.main import cli
from cli.scenario import build_scenario
from ledger import Keystore
from ledger.log.cosignature import Cosigner, judge_witnessed, parse_cosigner_vkey
from ledger.log.keys import PublicKey
from ledger.log.statement import Envelope, Statement
from ledger.storage.store import Store, parse_location
from schemas.actions import CASE_ACTIONS, Role
from server import LogKey, Witness


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
    other = runner.invoke(cli, ["demo", "--dir", str(tmp_path / "b"), "--seed", "7",
                                "--no-witnesses"])
    assert other.exit_code == 0, other.output
    assert "见证" not in other.output and not (tmp_path / "b" / "witnesses").exists()
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


# ---- the witnesses and the commands the tour prints --------------------------------------------

def _section(output: str, header: str) -> list[str]:
    """The indented lines under the tour's ``header`` line (up to the next blank line)."""
    lines = output.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    assert block, header
    return block


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XINFANG_PASSPHRASE"}
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _serve(command: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """Start a printed `witness serve` line (on any free port if its own is taken); the URL it
    listens on."""
    args = shlex.split(command)
    listen = args.index("--listen") + 1
    if not _port_free(int(args[listen].rsplit(":", 1)[1])):
        args[listen] = "127.0.0.1:0"
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(30)
    if not first or "listening on http://" not in first[0]:
        proc.kill()
        raise AssertionError(f"the witness did not start: {first} {proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, first[0].split("listening on ")[1].split("/ ")[0].rstrip("/")


def test_demo_witnesses_cosign_and_printed_commands_run(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)   # a relative --dir, as the README's first command gives
    monkeypatch.delenv("XINFANG_PASSPHRASE", raising=False)
    result = CliRunner().invoke(cli, ["demo", "--dir", "demo", "--seed", "3", "--cases", "40"])
    assert result.exit_code == 0, result.output
    out = result.output
    root = tmp_path / "demo"

    # the tour names both witnesses and shows the note with both cosignature lines
    assert "纪检监察室" in out and "市局信访处" in out
    for spec in WITNESSES:
        assert any(line.strip().startswith(f"— {spec.name} ") for line in out.split("\n")), \
            spec.name
    assert "见证策略（法定数 2/2）：通过" in out
    assert "按 2025-12-31 判断" in out and "--as-of 2025-12-31" in out

    # the stored cosignatures verify under the witnesses' own keys (the library's check)
    log_key = PublicKey.from_pem((root / "keys" / "log.pub").read_bytes()).raw
    cosigners = [Cosigner(public, name) for name, public in (
        parse_cosigner_vkey((root / "witnesses" / spec.key / "witness.vkey").read_text())
        for spec in WITNESSES)]
    with Store(parse_location(f"sqlite:///{root / 'ledger.db'}")) as store:
        size = store.max_position()
        rows = store.cosignatures()
    assert {row[0] for row in rows} == {size}
    for _, _, _, note in rows:
        judged = judge_witnessed(note, ORIGIN, log_key, cosigners)
        assert judged.checkpoint.size == size and not judged.problems
    merged = judge_witnessed(rows[0][3] + "".join(r[2] for r in rows[1:]), ORIGIN, log_key,
                             cosigners)
    assert merged.cosigners == {0, 1}
    # and each witness kept that checkpoint as the latest it cosigned (its state file)
    for spec in WITNESSES:
        directory = root / "witnesses" / spec.key
        held = Witness(spec.name, Keystore(directory).load("witness"),
                       {ORIGIN: [LogKey(ORIGIN, log_key)]}, directory / "state.db"
                       ).state(ORIGIN)
        assert held is not None and held[0] == size

    # every "try next" command runs as printed, from the directory the demo ran in
    commands = _section(out, "接下来可以试试")
    assert any(" verify --witness " in c and "--quorum 2" in c for c in commands)
    assert all("--as-of 2025-12-31" in c for c in commands if " report " in c)
    for command in commands:
        done = _sh(command, tmp_path)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    assert (root / "stats.xlsx").stat().st_size > 0 and (root / "case.bundle").exists()

    # the witnesses run again from their state, and verify fetches from them (quorum 2)
    again = _section(out, "再次启动两个见证")
    serves, verify = again[:-1], again[-1]
    assert len(serves) == 2 and all(" witness serve " in c for c in serves)
    started = []
    try:
        for command in serves:
            started.append(_serve(command, tmp_path))
        for spec, (_, url) in zip(WITNESSES, started, strict=True):
            verify = verify.replace(f"http://127.0.0.1:{spec.port}=", f"{url}=")
        done = _sh(verify + " --format json", tmp_path)
        assert done.returncode == 0, (verify, done.stdout[-2000:], done.stderr[-2000:])
        witnessed = json.loads(done.stdout)["witnessed"]
        assert witnessed["size"] == size and witnessed["quorum"] == 2, witnessed
        assert len(witnessed["cosigners"]) == 2 and witnessed["problems"] == [], witnessed
    finally:
        for proc, _ in started:
            proc.terminate()
            proc.wait(10)


def test_demo_stops_its_witnesses_on_error(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the witnesses started (here: the cosigning) leaves no server thread."""
    import cli.demo as demo

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cosigning failed")

    before = {t.name for t in threading.enumerate()}
    monkeypatch.setattr(demo, "cosign_latest", refuse)
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--cases", "10"])
    assert result.exit_code != 0
    leftover = {t.name for t in threading.enumerate() if t.is_alive()} - before
    assert not [name for name in leftover if name.startswith("uvicorn")], leftover
