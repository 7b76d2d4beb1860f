"""The command-line contract: names, JSON keys, exit codes (both backends where storage matters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli


@pytest.fixture
def run(ledger_url: str, keystore: Path):  # noqa: ANN201
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # noqa: ANN202, A002
        return runner.invoke(cli, ["--ledger", ledger_url, "--keystore", str(keystore), *args],
                             input=input, catch_exceptions=False)

    return invoke


def _setup(run) -> None:  # noqa: ANN001
    assert run("init", "--origin", "xx-city-psb.example/ledger", "--admin", "admin-01"
               ).exit_code == 0
    for args in (["unit", "add", "county-01", "--name", "XX县公安局"],
                 ["actor", "add", "officer-07", "--name", "张三", "--unit", "county-01",
                  "--role", "handler"],
                 ["actor", "add", "registrar-01", "--name", "李四", "--unit", "county-01",
                  "--role", "registrar"],
                 ["actor", "add", "office-01", "--name", "王五", "--unit", "county-01",
                  "--role", "petition_office"],
                 ["actor", "add", "pet-0001", "--name", "赵某", "--role", "petitioner",
                  "--keyless"]):
        result = run(*args, "--as", "admin-01", "--at", "2025-01-02T08:00:00+08:00")
        assert result.exit_code == 0, result.output


def test_issue_walkthrough(run, keystore: Path, tmp_path: Path) -> None:  # noqa: ANN001
    _setup(run)
    assert (keystore / "log.pub").exists() and (keystore / "admin.pub").exists()
    assert run("actor", "rotate-key", "officer-07", "--as", "admin-01").exit_code == 0
    result = run("case", "register", "--as", "registrar-01", "--channel", "letter", "--source",
                 "petition_bureau", "--category", "household_registration", "--petitioner",
                 "pet-0001", "--summary", "户口迁移不予办理", "--at",
                 "2025-03-02T09:30:00+08:00")
    assert result.exit_code == 0 and result.output.strip() == "XF-2025-000001"
    assert run("case", "accept", "XF-2025-000001", "--as", "office-01", "--at",
               "2025-03-03T09:00:00+08:00").exit_code == 0
    history = run("case", "history", "XF-2025-000001", "--format", "json")
    assert history.exit_code == 0
    body = json.loads(history.output)
    assert body["case"] == "XF-2025-000001"
    keys = {"seq", "position", "type", "at", "recorded_at", "actor", "role", "unit", "data",
            "hash", "signature_ok", "authorized"}
    assert [e["type"] for e in body["events"]] == ["register", "accept"]
    assert all(keys <= set(e) and e["signature_ok"] and e["authorized"]
               for e in body["events"])
    text = run("case", "history", "XF-2025-000001")
    assert "受理决定" in text.output and "登记员" in text.output
    assert "acceptance decision" in run("case", "history", "XF-2025-000001", "--lang",
                                        "en").output
    verify = run("verify", "--format", "json")
    assert verify.exit_code == 0
    report = json.loads(verify.output)
    assert set(report) >= {"ok", "events", "streams", "checkpoint", "failures"}
    assert report["ok"] and report["checkpoint"]["size"] == report["events"] == 9
    note = run("checkpoint")
    assert note.output.startswith("xx-city-psb.example/ledger\n9\n")
    cp = tmp_path / "cp.txt"
    cp.write_text(note.output, encoding="utf-8")
    assert run("case", "reply", "XF-2025-000001", "--outcome", "support", "--resolution",
               "educated", "--served-at", "2025-03-04T10:00:00+08:00", "--text", "x", "--as",
               "officer-07").exit_code == 2   # not assigned yet
    assert run("verify", "--since", str(cp)).exit_code == 0


def test_exit_codes(run, tmp_path: Path) -> None:  # noqa: ANN001
    missing = run("verify")
    assert missing.exit_code == 3 and "no ledger" in missing.output.lower()
    _setup(run)
    bad_option = run("case", "register", "--as", "registrar-01", "--channel", "pigeon")
    assert bad_option.exit_code == 2
    unknown_case = run("case", "accept", "XF-2025-000042", "--as", "office-01")
    assert unknown_case.exit_code == 2 and "unknown case" in unknown_case.output
    forbidden = run("unit", "add", "x-1", "--name", "x", "--as", "officer-07")
    assert forbidden.exit_code == 2 and "may" in forbidden.output
    no_key = run("case", "register", "--as", "pet-0001", "--channel", "letter", "--source",
                 "direct", "--category", "help", "--petitioner", "pet-0001", "--summary", "x")
    assert no_key.exit_code == 2
    assert "Traceback" not in no_key.output


def test_import_reports_first_bad_line_and_writes_nothing(run, tmp_path: Path) -> None:  # noqa: ANN001
    _setup(run)
    lines = [
        {"id": "l1", "action": "register", "case": "XF-2025-000001", "actor": "registrar-01",
         "at": "2025-03-02T09:00:00+08:00", "data": {"channel": "visit", "source": "direct",
                                                      "category": "help", "petitioner":
                                                      "pet-0001", "summary": "求助"}},
        {"id": "l2", "action": "accept", "case": "XF-2025-000001", "actor": "office-01",
         "at": "2025-03-03T09:00:00+08:00", "data": {"decision": "accepted"}},
        {"id": "l3", "action": "reply", "case": "XF-2025-000001", "actor": "officer-07",
         "at": "2025-03-04T09:00:00+08:00", "data": {"outcome": "support",
                                                      "resolution": "educated",
                                                      "served_at": "2025-03-04T09:00:00+08:00",
                                                      "text": "x"}},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n",
                    encoding="utf-8")
    before = json.loads(run("verify", "--format", "json").output)["events"]
    result = run("import", str(path))
    assert result.exit_code == 2 and "line 3" in result.output
    assert json.loads(run("verify", "--format", "json").output)["events"] == before
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines[:2]) + "\n",
                    encoding="utf-8")
    assert run("import", str(path)).exit_code == 0
    again = run("import", str(path), "--format", "json")
    assert json.loads(again.output) == {"lines": 2, "written": 0, "skipped": 2,
                                        "first_position": None, "last_position": None}
    path.write_text('{"id": "x", "action": "register"\n', encoding="utf-8")
    broken = run("import", str(path))
    assert broken.exit_code == 2 and "line 1" in broken.output


def test_schema_is_json_schema_of_import_line() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    schema = json.loads(result.output)
    assert schema["title"] == "xinfang import line"
    assert {"id", "action", "actor", "at"} <= set(schema["required"])
    assert "Register" in schema["$defs"]


def test_help_has_examples() -> None:
    runner = CliRunner()
    for args in (["--help"], ["case", "register", "--help"], ["verify", "--help"],
                 ["import", "--help"], ["actor", "add", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and ("Example" in result.output
                                          or "Quick start" in result.output)


def test_directory_listings(run) -> None:  # noqa: ANN001
    _setup(run)
    assert run("actor", "revoke-key", "officer-07", "--as", "admin-01").exit_code == 0
    actors = {a["actor"]: a for a in json.loads(run("actor", "list", "--format",
                                                      "json").output)}
    assert actors["officer-07"]["key"] is None and len(actors["officer-07"]["revoked_keys"]) == 1
    assert actors["pet-0001"]["keyless"] and actors["admin-01"]["roles"] == ["admin"]
    handlers = run("actor", "list", "--role", "handler").output
    assert "officer-07" in handlers and "registrar-01" not in handlers
    units = json.loads(run("unit", "list", "--format", "json").output)
    assert units == [{"unit": "county-01", "name": "XX县公安局", "parent": None}]


def test_import_refuses_a_repeated_id_within_the_file(run, tmp_path: Path) -> None:  # noqa: ANN001
    _setup(run)
    line = {"id": "same", "action": "unit.add", "actor": "admin-01",
            "at": "2025-01-03T09:00:00+08:00", "data": {"unit": "u-1", "name": "一所"}}
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n" +
                    json.dumps({**line, "data": {"unit": "u-2", "name": "二所"}},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    result = run("import", str(path))
    assert result.exit_code == 2 and "line 2" in result.output and "line 1" in result.output


# ---- the CLI is a thin shell over the public API (issue 10) -----------------------------------

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("ledger", "projections", "schemas", "bench")


def _imports(package: str) -> list[tuple[str, int, str]]:
    """(file, line, module) of every absolute import in a package's files."""
    import ast

    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((path.relative_to(ROOT).as_posix(), node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found += [(path.relative_to(ROOT).as_posix(), node.lineno, alias.name)
                          for alias in node.names]
    return found


def test_cli_imports_only_the_public_api_modules() -> None:
    deep = [(f, n, m) for f, n, m in _imports("cli")
            if m.split(".")[0] in LIBRARIES and m not in LIBRARIES]
    assert deep == [], "cli/ reaches behind a public API module"


def test_no_library_package_imports_the_cli() -> None:
    """bench/ is a library (the `xinfang bench` command lives in cli/), and the write side,
    read side and schemas know nothing of the command line or its demo scenario."""
    for package in LIBRARIES:
        assert [(f, n, m) for f, n, m in _imports(package) if m.split(".")[0] == "cli"] == []


@pytest.mark.parametrize("package", LIBRARIES)
def test_public_api_modules_export_what_they_list(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    names = module.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n)) or names == sorted(names)
    assert [n for n in names if not hasattr(module, n)] == []
    assert module.__doc__ and len(module.__doc__.splitlines()) > 3   # the map of the API
