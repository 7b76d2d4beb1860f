"""The README's first two commands work on a fresh copy of the project, from scratch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "xinfang-demo", ".pytest_cache", ".hypothesis", ".ruff_cache",
        ".mypy_cache", "__pycache__", "build"}


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README must open with a sh block"
    return [line for line in block.group(1).splitlines() if line.strip()][:2]


def test_readme_opens_with_install_demo_and_install_test() -> None:
    demo, tests = readme_commands()
    assert "pip install" in demo and "xinfang demo" in demo
    assert "pip install" in tests and '".[test]"' in tests and "pytest" in tests


@pytest.mark.slow
def test_readme_commands_work_from_scratch(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=lambda _d, names: [n for n in names if n in SKIP
                                                          or n.endswith(".egg-info")])
    demo, tests = readme_commands()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XINFANG_", "VIRTUAL_ENV"))}
    env["HOME"] = str(tmp_path / "home")
    first = subprocess.run(demo, shell=True, cwd=copy, env=env, capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "verify: 通过" in first.stdout
    assert (copy / "xinfang-demo" / "ledger.db").exists()
    # The inner run of the test command is limited to one quick file: running the whole
    # suite inside itself would recurse.
    env["PYTEST_ADDOPTS"] = "-q tests/test_canonical_and_keys.py"
    second = subprocess.run(tests, shell=True, cwd=copy, env=env, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert re.search(r"\d+ passed", second.stdout)


# ---- the "Using it" block, line by line on a fresh ledger (issue 17) ---------------------------

EXIT = re.compile(r"exit (\d)")


def using_it_commands() -> list[tuple[str, int]]:
    """The README's "Using it" commands, continuation lines joined, each with the exit code
    its comment documents (``# refused (exit 2)``), else 0."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the Using it section must hold a sh block"
    commands = []
    for line in block.group(1).replace("\\\n", " ").splitlines():
        if line.strip():
            documented = EXIT.search(line.partition("#")[2])
            commands.append((line.strip(), int(documented.group(1)) if documented else 0))
    return commands


def test_using_it_block_runs_as_written(tmp_path: Path) -> None:
    entry = Path(sys.executable).with_name("xinfang")
    assert entry.exists(), "the xinfang entry point is installed next to the interpreter"
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
    env["HOME"] = str(tmp_path / "home")   # the default keystore ~/.xinfang/keys
    commands = using_it_commands()
    assert commands[0][0].startswith("xinfang init") and len(commands) >= 20
    for command, expected in commands:
        assert command.startswith("xinfang "), command
        run = subprocess.run(f"{entry}{command[len('xinfang'):]}", shell=True, cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == expected, (command, run.stdout[-1500:], run.stderr[-1500:])
        assert "Traceback" not in run.stderr, command
    # What the block promises, checked: files written, the bundle shown as a history.
    assert (tmp_path / "xinfang.db").exists() and (tmp_path / "stats.xlsx").exists()
    assert (tmp_path / "cp.txt").read_text(encoding="utf-8").startswith("xx-city-psb.example")
