"""The architecture's import rules (docs/architecture.md, pyproject.toml [tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    """Layers inside ``ledger``, the write side never importing the read side or the shells,
    and the shells importing only the packages' public API modules."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "5 kept" in result.stdout, result.stdout


def test_every_ledger_subpackage_is_in_a_layer() -> None:
    """A new sub-package must take its place in the layers contract (or the rule is moot)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = sorted(p.name for p in (ROOT / "ledger").iterdir()
                      if (p / "__init__.py").exists())
    assert packages == ["domain", "log", "storage", "verification", "writing"]
    for name in packages:
        assert f"ledger.{name}" in text.split("[tool.importlinter]", 1)[1], name
