"""`xinfang case list` (issue 17; cli.md: filters petitioner, unit, handler, status, overdue,
category, dates, supervised, trigger), on both backends."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from tests.world import World, t

AS_OF = "2025-12-31"


def run(w: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--ledger", w.url, "--keystore", str(w.keystore),
                                    "case", "list", "--as-of", AS_OF, *args])


def listed(w: World, *args: str) -> list[str]:
    result = run(w, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return [c["case"] for c in json.loads(result.stdout)["cases"]]


@pytest.fixture
def cases(world: World) -> dict[str, str]:
    w = world
    c: dict[str, str] = {}
    c["closed"] = w.closed_case("2025-03-02")
    c["open"] = w.accepted_case("2025-04-01", handler="officer-08", unit="county-01")
    w.do("supervise", c["open"], {"authority": "leader", "due": "2025-05-30", "form": "letter"},
         by="leader-01", at=t("2025-04-05"))
    c["late"] = w.register(t("2025-07-01"), category="public_order")
    w.do("desist", c["late"], {"document_sha256": "ab" * 32}, by="registrar-01",
         at=t("2025-07-05"))
    return c


def test_every_filter_narrows(world: World, cases: dict[str, str]) -> None:
    w, c = world, cases
    assert listed(w) == sorted(c.values())
    assert listed(w, "--unit", "county-01") == [c["open"]]
    assert listed(w, "--handler", "officer-07") == [c["closed"]]
    assert listed(w, "--status", "closed") == [c["closed"]]
    assert listed(w, "--status", "desisted") == [c["late"]]
    assert listed(w, "--status", "open") == [c["open"]]
    assert listed(w, "--supervised") == [c["open"]]
    assert listed(w, "--overdue") == [c["open"]]   # accepted 04-02, never replied
    assert listed(w, "--category", "public_order") == [c["late"]]
    assert listed(w, "--from", "2025-03-15", "--to", "2025-06-30") == [c["open"]]
    assert listed(w, "--petitioner", "pet-0001") == sorted(c.values())
    assert listed(w, "--unit", "county-01", "--status", "closed") == []
    assert listed(w, "--trigger", "overdue_open") == [c["open"]]
    # As of a day before the assignment the case had no unit yet and was not overdue.
    early = CliRunner().invoke(cli, ["--ledger", w.url, "--keystore", str(w.keystore), "case",
                                     "list", "--as-of", "2025-04-01", "--unit", "county-01",
                                     "--format", "json"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.stdout)["cases"] == []


def test_a_category_label_is_accepted(world: World, cases: dict[str, str]) -> None:
    assert listed(world, "--category", "户口问题") == sorted([cases["closed"], cases["open"]])


def test_json_shape(world: World, cases: dict[str, str]) -> None:
    result = run(world, "--supervised", "--format", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["as_of"] == AS_OF and doc["filters"]["supervised"] is True
    [entry] = doc["cases"]
    assert {"case", "registered_on", "petitioner", "category", "unit", "handler", "status",
            "handling_due", "supervised", "overdue"} <= set(entry)
    assert entry["case"] == cases["open"] and entry["registered_on"] == "2025-04-01"
    assert (entry["unit"], entry["handler"], entry["status"]) == ("county-01", "officer-08",
                                                                   "open")
    assert entry["supervised"] is True and entry["overdue"] is True
    assert entry["handling_due"] is not None


def test_csv_and_text(world: World, cases: dict[str, str]) -> None:
    result = run(world, "--format", "csv", "--lang", "en")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    header = next(i for i, r in enumerate(rows) if r and r[0] == "case")
    assert rows[header][:3] == ["case", "registered", "petitioner"]
    body = [r for r in rows[header + 1:] if r and r[0].startswith("XF-")]
    assert sorted(r[0] for r in body) == sorted(cases.values())
    assert any(r[2] == "王某" for r in body)
    text = run(world)
    assert text.exit_code == 0 and "XX县公安局" in text.stdout and "李四" in text.stdout


@pytest.mark.parametrize("args", [["--status", "pending"], ["--unit", "nowhere"],
                                  ["--handler", "nobody"], ["--petitioner", "nobody"],
                                  ["--category", "no_such_category"], ["--trigger", "bogus"],
                                  ["--from", "2025-13-01"], ["--as-of", "yesterday"],
                                  ["--from", "2025-06-01", "--to", "2025-01-01"]])
def test_unknown_filter_value_exits_2(world: World, cases: dict[str, str],
                                      args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--ledger", world.url, "--keystore", str(world.keystore),
                                      "case", "list", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
