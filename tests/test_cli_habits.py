"""Issue 17, the command line: input that fits habits, messages in the user's terms, imports that
report every bad line, exit codes that tell the truth, one language at a time."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.case_commands import COMMANDS, REVERSE_CHECK_COMMANDS
from cli.main import cli
from schemas import data_problem, parse_data

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "docs" / "examples" / "office.jsonl"


@pytest.fixture
def run(ledger_url: str, keystore: Path):  # noqa: ANN201
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(cli, ["--ledger", ledger_url, "--keystore", str(keystore), *args],
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def office(run):  # noqa: ANN001, ANN201
    """A ledger holding the documented sample import (docs/examples/office.jsonl)."""
    assert run("init", "--origin", "xx-city-psb.example/ledger", "--admin", "admin-01"
               ).exit_code == 0
    result = run("import", str(SAMPLE))
    assert result.exit_code == 0, result.output
    return run


def events(run, case: str) -> list[dict]:  # noqa: ANN001
    result = run("case", "history", case, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["events"]


# ---- 1. input that fits habits --------------------------------------------------------------

def test_times_without_offset_are_beijing_and_dates_are_midnight(office) -> None:  # noqa: ANN001
    run = office
    case = run("case", "register", "--as", "registrar-01", "--channel", "来访", "--source",
               "直接来信来访", "--category", "户口问题", "--petitioner", "pet-0001",
               "--summary", "再次反映", "--at", "2025-12-26 10:00").output.strip()
    assert case == "XF-2025-000004"
    (registered,) = events(run, case)
    assert registered["at"] == "2025-12-26T10:00:00+08:00"
    assert registered["data"]["channel"] == "visit"
    assert registered["data"]["source"] == "direct"
    assert registered["data"]["category"] == "household_registration"
    assert run("case", "accept", case, "--as", "office-01", "--at", "2025-12-27",
               "--decision", "受理", "--notice-served-at", "2025-12-27 15:30").exit_code == 0
    accepted = events(run, case)[1]
    assert accepted["at"] == "2025-12-27T00:00:00+08:00"
    assert accepted["data"] == {"decision": "accepted",
                                "notice_served_at": "2025-12-27T15:30:00+08:00"}
    # An explicit offset is kept as given.
    assert run("case", "progress", "XF-2025-000002", "--note", "x", "--as", "officer-07",
               "--at", "2025-12-28T01:00:00+00:00").exit_code == 0
    assert events(run, "XF-2025-000002")[-1]["at"] == "2025-12-28T01:00:00+00:00"
    assert run("verify", "--format", "json").exit_code == 0


def test_as_of_takes_a_date_or_a_moment(office) -> None:  # noqa: ANN001
    run = office
    by_day = json.loads(run("report", "supervision", "--as-of", "2025-05-20", "--format",
                            "json").output)
    by_moment = json.loads(run("report", "supervision", "--as-of", "2025-05-20 08:00",
                               "--format", "json").output)
    assert by_day["as_of"] == by_moment["as_of"] == "2025-05-20"
    assert by_day["rows"][0]["overdue_days"] == 10   # due 2025-05-10, judged at day's end
    bad = run("report", "supervision", "--as-of", "soon")
    assert bad.exit_code == 2 and "option --as-of" in bad.output


def test_strict_verification_of_stored_times_is_unchanged() -> None:
    reply = {"outcome": "support", "resolution": "aided", "text": "t"}
    # Writers normalize ...
    assert parse_data("reply", {**reply, "served_at": "2025-03-02 09:30"})["served_at"] == \
        "2025-03-02T09:30:00+08:00"
    assert parse_data("reply", {**reply, "served_at": "2025-03-02"})["served_at"] == \
        "2025-03-02T00:00:00+08:00"
    # ... verifiers still refuse signed data without an offset, or in any other form.
    assert data_problem("reply", {**reply, "served_at": "2025-03-02T09:30:00+08:00"}) is None
    assert data_problem("reply", {**reply, "served_at": "2025-03-02T09:30:00"}) is not None
    assert data_problem("reply", {**reply, "served_at": "2025-03-02 09:30"}) is not None
    assert data_problem("reply", {**reply, "served_at": "2025-03-02"}) is not None


def test_help_lists_codes_with_labels_and_bad_labels_are_refused(office) -> None:  # noqa: ANN001
    run = office
    def flat(result) -> str:  # noqa: ANN001 - help text with its wrapping undone
        return " ".join(result.output.split())

    text = flat(run("case", "register", "--help"))
    assert "household_registration 户口问题" in text and "letter 来信" in text
    assert "petition_bureau 信访局转交办" in text
    assert "problem_solved 解决问题到位" in flat(run("case", "reply", "--help"))
    assert "handler 承办人" in flat(run("actor", "add", "--help"))
    bad = run("case", "register", "--as", "registrar-01", "--channel", "飞鸽", "--source",
              "direct", "--category", "other", "--petitioner", "pet-0001", "--summary", "x")
    assert bad.exit_code == 2 and "letter 来信" in flat(bad)
    assert run("case", "review-decide", "XF-2025-000001", "--level", "复查", "--decision",
               "受理", "--as", "office-01").exit_code == 2   # 受理 is no review decision
    handlers = run("actor", "list", "--role", "承办人", "--format", "json")
    assert [a["actor"] for a in json.loads(handlers.output)] == ["officer-07"]


# ---- 2. messages in the user's terms ----------------------------------------------------------

@pytest.mark.parametrize("spec", COMMANDS + REVERSE_CHECK_COMMANDS, ids=lambda s: s.name)
def test_write_command_help_shows_no_literal_backslash_b(spec) -> None:  # noqa: ANN001
    group = "reverse-check" if spec in REVERSE_CHECK_COMMANDS else "case"
    text = CliRunner().invoke(cli, [group, spec.name, "--help"]).output
    assert "\\b" not in text and "\b" not in text
    assert "Example:\n    xinfang " in text   # the example kept on its own lines


def test_option_errors_name_the_option_in_plain_words(office) -> None:  # noqa: ANN001
    run = office
    outputs = [
        run("case", "reply", "XF-2025-000002", "--outcome", "support", "--resolution", "aided",
            "--served-at", "tomorrow", "--text", "t", "--as", "officer-07"),
        run("case", "register", "--as", "registrar-01", "--channel", "letter", "--source",
            "direct", "--category", "Bad-Code", "--petitioner", "pet-0001", "--summary", "x"),
        run("case", "register", "--as", "registrar-01", "--channel", "letter", "--source",
            "direct", "--category", "other", "--petitioner", "pet 1", "--summary", "x"),
        run("case", "progress", "XF-2025-000002", "--note", "x", "--at", "yesterday",
            "--as", "officer-07"),
    ]
    assert all(r.exit_code == 2 for r in outputs), [r.output for r in outputs]
    assert "option --served-at: 'tomorrow' is not a time" in outputs[0].output
    assert "option --category: must be a code" in outputs[1].output
    assert "option --petitioner: must be an id" in outputs[2].output
    assert "option --at: 'yesterday' is not a time" in outputs[3].output
    for result in outputs:
        assert "Value error" not in result.output and "should match pattern" not in result.output
        assert "Traceback" not in result.output


# ---- 3. import ---------------------------------------------------------------------------------

def test_the_sample_import_records_what_its_readme_says(office) -> None:  # noqa: ANN001
    run = office
    closures = json.loads(run("report", "closures", "--format", "json").output)["cases"]
    assert [(c["case"], c["valid"]) for c in closures] == [("XF-2025-000001", True)]
    second = events(run, "XF-2025-000002")
    assert [e["type"] for e in second] == ["register", "accept", "assign", "supervise",
                                           "progress"]
    assert second[0]["data"]["persons"] == 3 and second[0]["at"] == "2025-04-08T14:00:00+08:00"
    third = events(run, "XF-2025-000003")
    assert third[1]["data"]["decision"] == "not_accepted"
    assert third[1]["data"]["notice_served_at"] == "2025-05-07T00:00:00+08:00"
    assert json.loads(run("verify", "--format", "json").output)["ok"] is True
    again = run("import", str(SAMPLE), "--format", "json")   # ids already recorded: skipped
    assert json.loads(again.output)["skipped"] == 25


def bad_file(tmp_path: Path) -> Path:
    lines = [
        {"id": "x1", "action": "register", "case": "XF-2025-000010", "actor": "registrar-01",
         "at": "2025-06-01 09:00", "data": {"channel": "letter", "source": "direct",
                                            "category": "Bad", "petitioner": "pet-0001",
                                            "summary": "x"}},
        {"id": "x2", "action": "progress", "case": "XF-2025-000002", "actor": "officer-07",
         "at": "2025-06-02", "data": {"note": "fine"}},
        {"id": "x3", "action": "reply", "case": "XF-2025-000002", "actor": "officer-07",
         "at": "2025-06-03", "data": {"outcome": "support", "resolution": "aided",
                                      "served_at": "soon", "text": "t"}},
        {"id": "x4", "action": "close", "case": "XF-2025-000003", "actor": "registrar-01",
         "at": "2025-06-04", "data": {}},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("dry_run", [False, True])
def test_import_reports_every_bad_line_and_writes_nothing(office, tmp_path: Path,  # noqa: ANN001
                                                          dry_run: bool) -> None:
    run = office
    size = json.loads(run("verify", "--format", "json").output)["events"]
    result = run("import", str(bad_file(tmp_path)), *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2
    assert "3 bad lines; nothing was written" in result.output
    assert "import line 1, field category: must be a code" in result.output
    assert "import line 3, field served_at: is not a time" in result.output
    assert "import line 4 (x4): XF-2025-000003:" in result.output
    assert "import line 2" not in result.output   # the good line is not blamed
    assert "Value error" not in result.output and "should match pattern" not in result.output
    assert json.loads(run("verify", "--format", "json").output)["events"] == size


def test_import_lines_take_codes_or_their_labels(office, tmp_path: Path) -> None:  # noqa: ANN001
    """Coded fields of an import line take the code or its Chinese or English label, as the
    command line's options do; only the code is signed."""
    run = office
    lines = [
        {"id": "l1", "action": "actor.add", "actor": "admin-01", "at": "2025-06-01",
         "data": {"actor": "officer-20", "name": "赵六", "unit": "county-01",
                  "roles": ["承办人"]}},
        {"id": "l2", "action": "register", "case": "XF-2025-000030", "actor": "registrar-01",
         "at": "2025-06-01 09:00", "data": {"channel": "来访", "source": "Petition Bureau",
                                            "category": "户口问题", "petitioner": "pet-0001",
                                            "summary": "户口迁移"}},
        {"id": "l3", "action": "accept", "case": "XF-2025-000030", "actor": "office-01",
         "at": "2025-06-02", "data": {"decision": "受理"}},
        {"id": "l4", "action": "assign", "case": "XF-2025-000030", "actor": "office-01",
         "at": "2025-06-02 10:00", "data": {"unit": "county-01", "handler": "officer-20"}},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                    encoding="utf-8")
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    registered, accepted, _ = events(run, "XF-2025-000030")
    assert (registered["data"]["channel"], registered["data"]["source"],
            registered["data"]["category"]) == ("visit", "petition_bureau",
                                                "household_registration")
    assert accepted["data"]["decision"] == "accepted"
    roles = json.loads(run("actor", "list", "--format", "json").output)
    assert next(a for a in roles if a["actor"] == "officer-20")["roles"] == ["handler"]
    # a value that is neither a code nor a label is still refused, naming the field
    bad = tmp_path / "bad-label.jsonl"
    bad.write_text(json.dumps({**lines[1], "id": "l5", "case": "XF-2025-000031",
                               "data": {**lines[1]["data"], "channel": "飞鸽"}},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    refused = run("import", str(bad))
    assert refused.exit_code == 2 and "field channel" in refused.output, refused.output
    assert run("verify").exit_code == 0


def test_malformed_lines_are_all_listed_up_to_fifty(office, tmp_path: Path) -> None:  # noqa: ANN001
    run = office
    path = tmp_path / "junk.jsonl"
    path.write_text("{not json\n" * 60, encoding="utf-8")
    result = run("import", str(path))
    assert result.exit_code == 2 and "more than 50 bad lines" in result.output
    assert "import line 50: not valid JSON" in result.output
    assert "import line 51:" not in result.output
    naive = tmp_path / "naive.jsonl"
    naive.write_text(json.dumps({"id": "n1", "action": "register", "actor": "registrar-01",
                                 "at": "2025-07-01T09:00:00", "case": "XF-2025-000020",
                                 "data": {"channel": "letter", "source": "direct",
                                          "category": "other", "petitioner": "pet-0001",
                                          "summary": "x"}}) + "\n", encoding="utf-8")
    assert run("import", str(naive)).exit_code == 0
    assert events(run, "XF-2025-000020")[0]["at"] == "2025-07-01T09:00:00+08:00"


def test_dry_run_says_what_would_be_written(run, tmp_path: Path) -> None:  # noqa: ANN001
    assert run("init", "--origin", "xx-city-psb.example/ledger", "--admin", "admin-01"
               ).exit_code == 0
    result = run("import", str(SAMPLE), "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["dry_run"] is True and body["written"] == 0 and body["would_write"] == 25
    assert body["actions"]["register"] == 3 and body["actions"]["actor.add"] == 7
    assert body["cases"] == ["XF-2025-000001", "XF-2025-000002", "XF-2025-000003"]
    assert "试运行" in run("import", str(SAMPLE), "--dry-run").output
    assert json.loads(run("verify", "--format", "json").output)["events"] == 1   # init only


# ---- 4. exit codes; bundles read offline --------------------------------------------------------

def test_bundle_anchor_missing_is_named_and_show_reads_the_case(office, keystore: Path,  # noqa: ANN001
                                                                tmp_path: Path) -> None:
    run = office
    bundle = tmp_path / "case.bundle"
    assert run("export", "XF-2025-000001", "--out", str(bundle)).exit_code == 0
    log, admin = str(keystore / "log.pub"), str(keystore / "admin.pub")
    missing = run("verify-bundle", str(bundle), "--log-key", log, "--lang", "en")
    assert missing.exit_code == 1 and "no trusted admin key given" in missing.output
    assert "FAIL" in missing.output
    shown = run("verify-bundle", str(bundle), "--log-key", log, "--admin-key", admin, "--show")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "verify-bundle: 通过" in text and "时间均为北京时间" in text and "业务时间 " in text
    assert "张三 (officer-07)" in text and "王局长 (lead-county-01)" in text
    assert "信访人签字" in text and "✓" in text and "办结" in text
    unjudged = run("verify-bundle", str(bundle), "--log-key", log, "--show")
    assert unjudged.exit_code == 1 and "✓" not in unjudged.output.split("案件编号")[1]


def test_report_closures_exits_1_on_an_invalid_closure(office) -> None:  # noqa: ANN001
    run = office
    assert run("report", "closures").exit_code == 0
    case = run("case", "register", "--as", "registrar-01", "--channel", "letter", "--source",
               "direct", "--category", "other", "--petitioner", "pet-0001", "--summary", "x",
               "--at", "2025-08-01 09:00").output.strip()
    steps = [["accept", "--at", "2025-08-02"],
             ["assign", "--unit", "county-01", "--handler", "officer-07", "--at", "2025-08-02"],
             ["reply", "--outcome", "explain", "--resolution", "educated", "--served-at",
              "2025-08-03", "--text", "已解释", "--at", "2025-08-03"],
             ["close", "--override-reason", "领导批示", "--at", "2025-08-04"]]
    actors = ["office-01", "office-01", "officer-07", "office-01"]
    for step, actor in zip(steps, actors, strict=True):
        result = run("case", step[0], case, *step[1:], "--as", actor)
        assert result.exit_code == 0, result.output
    report = run("report", "closures", "--format", "json")
    assert report.exit_code == 1
    assert [c["valid"] for c in json.loads(report.output)["cases"]] == [True, False]
    zh, en = run("report", "closures").output, run("report", "closures", "--lang", "en").output
    assert "未经三签强行办结（理由：领导批示）" in zh and "closed by override" not in zh
    assert "张三 (officer-07)" in zh                      # signers by name, with the id
    assert "closed by override, bypassing the three-signature rule: 领导批示" in en


# ---- 5. one language at a time ------------------------------------------------------------------

def test_lang_switches_verify_lists_and_receipts(office) -> None:  # noqa: ANN001
    run = office
    assert run("verify").output.startswith("verify: 通过")
    assert run("verify", "--lang", "en").output.startswith("verify: PASS")
    zh, en = run("actor", "list").output, run("actor", "list", "--lang", "en").output
    assert "姓名" in zh and "承办人" in zh and "XX县公安局 (county-01)" in zh
    assert "name" in en and "handler" in en and "姓名" not in en
    assert "上级单位" in run("unit", "list").output
    receipt = run("case", "progress", "XF-2025-000002", "--note", "x", "--as", "officer-07")
    assert "进展报告已记录" in receipt.output
    receipt = run("case", "progress", "XF-2025-000002", "--note", "y", "--as", "officer-07",
                  "--lang", "en")
    assert "progress recorded at position" in receipt.output


def every_printing_command(group: click.Group, path: tuple[str, ...] = ()) -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += every_printing_command(command, (*path, name))
        elif any(p.name == "fmt" for p in command.params):
            found.append(" ".join((*path, name)))
    return found


def test_every_command_with_a_format_takes_lang() -> None:
    missing = [name for name in every_printing_command(cli)
               if not any(p.name == "lang" for p in _command(name).params)]
    assert not missing, f"commands without --lang: {missing}"


def _command(path: str) -> click.Command:
    command: click.Command = cli
    for part in path.split():
        assert isinstance(command, click.Group)
        command = command.commands[part]
    return command


def test_every_printing_command_takes_lang() -> None:
    """--lang on every command that prints, not only those with --format (checkpoint, schema,
    public-key and export print machine formats: --lang is the language of their messages)."""
    everything = []

    def walk(group: click.Group, path: tuple[str, ...] = ()) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, (*path, name))
            else:
                everything.append(" ".join((*path, name)))

    walk(cli)
    owned_elsewhere = {"witness init", "witness serve", "serve", "key new", "receipts check"}
    missing = [name for name in everything if name not in owned_elsewhere
               and not any(p.name == "lang" for p in _command(name).params)]
    assert not missing, f"commands without --lang: {missing}"


def test_tamper_reasons_and_closure_problems_in_chinese(office, ledger_url: str) -> None:  # noqa: ANN001
    from ledger.log.statement import Envelope
    from ledger.storage.store import Store, parse_location
    from tests.tamper import events_table, superuser

    run = office
    with Store(parse_location(ledger_url)) as store:
        victim, donor = store.event_at("XF-2025-000001", 3), store.event_at("XF-2025-000001", 2)
        assert victim is not None and donor is not None
        env = Envelope.from_bytes(victim.state)
        forged = Envelope(env.recorded_at_us, Envelope.from_bytes(donor.state).signature,
                          env.signed).to_bytes()
        with superuser(store) as db:
            db.execute(f"UPDATE {events_table(store)} SET state=? WHERE "
                       "originator_id=? AND originator_version=?", (forged, "XF-2025-000001", 3))
    zh, en = run("verify"), run("verify", "--lang", "en")
    assert zh.exit_code == en.exit_code == 1
    assert "签名无法用所署密钥验证" in zh.output and "does not verify" not in zh.output
    assert "signature does not verify under the named key" in en.output
    history = run("case", "history", "XF-2025-000001")
    assert history.exit_code == 1 and "签名无法用所署密钥验证" in history.output
