"""The README's first two commands work on a fresh copy of the project, from scratch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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
