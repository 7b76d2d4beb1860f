"""Every command that advertises an output format really produces it (issue 10, "one output
interface").

The (command, format) pairs come from the click tree: every ``--format`` option is the one
``cli.output.renders`` makes, and its choices are what the command advertises. A new command
with ``--format`` fails ``test_every_command_with_a_format_is_exercised`` until it has an
invocation below; a new format in ``cli.output.FORMATS`` fails until it has a reader here.

The output is read back as its format demands: JSON parsed, CSV read with the csv module (with
its byte-order mark), XLSX opened with openpyxl, text non-empty. This is a test of rendering,
not of storage, so it runs on SQLite only (the commands' storage is tested on both backends
elsewhere).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from bench import run_bench
from cli import bench_command
from cli.main import cli
from cli.output import FORMATS, FormatOption
from tests.readback import printed
from tests.test_bench import TINY
from tests.world import build_world, t

CASE = "{case}"   # stands for the lifecycle's case number in the arguments below


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                             click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def advertised() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Command path → the formats its --format offers."""
    found = {}
    for path, command in commands(cli):
        options = [p for p in command.params if isinstance(p, FormatOption)]
        if options:
            found[path] = options[0].formats
    return found


ADVERTISED = advertised()


# ---- reading each format back -------------------------------------------------------------------

def read_text(result: Result, out: Path | None) -> Any:
    text = out.read_text(encoding="utf-8") if out else result.stdout
    assert text.strip(), "empty text output"
    return text


def read_json(result: Result, out: Path | None) -> Any:
    document = json.loads(out.read_text(encoding="utf-8") if out else result.stdout)
    assert isinstance(document, dict | list) and document, document
    return document


def read_csv(result: Result, out: Path | None) -> Any:
    assert out is not None
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")   # spreadsheets read it as UTF-8
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    title, headers = rows[0], rows[1]
    assert len(title) == 1 and title[0], rows[:2]           # a titled table, then its header
    assert len(headers) >= 2 and all(headers), headers
    return rows


def read_xlsx(result: Result, out: Path | None) -> Any:
    import openpyxl

    assert out is not None
    book = openpyxl.load_workbook(out)
    assert book.sheetnames
    for ws in book.worksheets:   # print-ready (issue 17): heading, repeated headers, A4
        sheet = printed(ws)
        assert sheet.heading and all(sheet.headers[-1]), "no heading or header row"
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    return book


def read_pdf(result: Result, out: Path | None) -> Any:
    from pypdf import PdfReader

    assert out is not None
    reader = PdfReader(out)
    assert reader.pages
    for page in reader.pages:   # print-ready (issue 17): A4 landscape, numbered pages
        assert float(page.mediabox.width) > float(page.mediabox.height)
        assert re.search(r"(第 \d+ 页 共 \d+ 页|Page \d+ of \d+)", page.extract_text() or "")
    return reader


READERS: dict[str, Callable[[Result, Path | None], Any]] = {
    "text": read_text, "json": read_json, "csv": read_csv, "xlsx": read_xlsx, "pdf": read_pdf}


def test_every_format_has_a_reader_and_every_option_is_the_registrys() -> None:
    assert set(READERS) == set(FORMATS)
    assert ADVERTISED, "no command advertises a format"
    for path, command in commands(cli):
        for param in command.params:
            if "--format" in getattr(param, "opts", ()):
                assert isinstance(param, FormatOption), f"{' '.join(path)} has its own --format"
    for path, formats in ADVERTISED.items():
        assert set(formats) <= set(FORMATS), path
        command = dict(commands(cli))[path]
        has_out = any("--out" in getattr(p, "opts", ()) for p in command.params)
        if any(FORMATS[f].file_only for f in formats):
            assert has_out, f"{' '.join(path)} offers a file-only format without --out"


# ---- the ledger the commands run on -------------------------------------------------------------

@dataclass
class Env:
    root: Path
    url: str
    keys: Path
    closed: str
    bundle: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--ledger", self.url, "--keystore", str(self.keys),
                                        *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("formats")
    url = f"sqlite:///{root / 'ledger.db'}"
    world = build_world(url, root / "keys")
    closed = world.closed_case()
    supervised = world.accepted_case("2025-04-01")
    world.do("supervise", supervised, {"authority": "leader", "due": "2025-05-30"},
             by="leader-01", at=t("2025-04-03"))
    world.ledger.close()
    here = Env(root, url, root / "keys", closed, root / "case.bundle.json")
    exported = here.run("export", closed, "--out", str(here.bundle))
    assert exported.exit_code == 0, exported.output
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench_command, "run_bench", _tiny_bench)
        yield here


_BENCH: dict[str, Any] = {}


def _tiny_bench(backend: str, **options: Any) -> dict[str, Any]:
    """The real benchmark at tiny sizes, measured once for every format."""
    if backend not in _BENCH:
        _BENCH[backend] = run_bench(backend, **{**options, "sizes": TINY})
    return _BENCH[backend]


def _init(env: Env, fmt: str) -> list[str]:
    fresh = env.root / f"init-{fmt}"
    return ["--ledger", f"sqlite:///{fresh / 'ledger.db'}", "--keystore", str(fresh / "keys"),
            "init", "--origin", "formats.example/ledger", "--admin", "admin-01"]


def _import(env: Env, fmt: str) -> list[str]:
    path = env.root / f"import-{fmt}.jsonl"
    line = {"id": f"unit-{fmt}", "action": "unit.add", "actor": "admin-01",
            "at": "2025-01-03T09:00:00+08:00", "data": {"unit": f"u-{fmt}", "name": "一所"}}
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    return ["import", str(path)]


#: Commands that read (or write something new each time), by path: their arguments.
READS: dict[tuple[str, ...], Callable[[Env, str], list[str]]] = {
    ("init",): _init,
    ("import",): _import,
    ("unit", "list"): lambda env, fmt: ["unit", "list"],
    ("actor", "list"): lambda env, fmt: ["actor", "list"],
    ("case", "history"): lambda env, fmt: ["case", "history", env.closed],
    ("case", "list"): lambda env, fmt: ["case", "list", "--as-of", "2025-12-31"],
    ("case", "verify-closure"): lambda env, fmt: ["case", "verify-closure", env.closed],
    ("verify",): lambda env, fmt: ["verify", "--workers", "1"],
    ("verify-bundle",): lambda env, fmt: [
        "verify-bundle", str(env.bundle), "--log-key", str(env.keys / "log.pub"),
        "--admin-key", str(env.keys / "admin.pub")],
    ("report", "statistics"): lambda env, fmt: [
        "report", "statistics", "--from", "2025-01-01", "--to", "2025-12-31", "--as-of",
        "2025-12-31"],
    ("report", "supervision"): lambda env, fmt: ["report", "supervision", "--as-of",
                                                 "2025-12-31"],
    ("report", "accountability"): lambda env, fmt: ["report", "accountability", "--as-of",
                                                    "2025-12-31"],
    ("report", "closures"): lambda env, fmt: ["report", "closures"],
    ("projections", "status"): lambda env, fmt: ["projections", "status"],
    ("projections", "catch-up"): lambda env, fmt: ["projections", "catch-up"],
    ("projections", "rebuild"): lambda env, fmt: ["projections", "rebuild"],
    ("bench",): lambda env, fmt: ["bench", "--quick", "--backend", "sqlite"],
    ("key", "new"): lambda env, fmt: ["--keystore", str(env.root / f"device-{fmt}"), "key",
                                      "new", "--actor", "officer-99", "--no-passphrase"],
    ("receipts", "check"): lambda env, fmt: ["receipts", "check"],   # none kept: nothing fails
}

#: One case's whole life, one signed event per command, in order (CASE: its number).
LIFECYCLE: list[tuple[tuple[str, ...], list[str]]] = [
    (("case", "register"), ["--as", "registrar-01", "--channel", "letter", "--source", "direct",
                            "--category", "household_registration", "--petitioner", "pet-0001",
                            "--summary", "户口迁移不予办理", "--at", "2025-03-02T09:00:00+08:00"]),
    (("case", "accept"), [CASE, "--as", "office-01", "--at", "2025-03-03T09:00:00+08:00"]),
    (("case", "assign"), [CASE, "--unit", "station-03", "--handler", "officer-07", "--as",
                          "office-01", "--at", "2025-03-03T10:00:00+08:00"]),
    (("case", "supervise"), [CASE, "--authority", "leader", "--due", "2025-04-30", "--form",
                             "letter", "--as", "leader-01", "--at", "2025-03-05T09:00:00+08:00"]),
    (("case", "package"), [CASE, "--leader", "leader-01", "--as", "leader-01", "--at",
                           "2025-03-06T09:00:00+08:00"]),
    (("case", "progress"), [CASE, "--note", "已约谈信访人", "--as", "officer-07", "--at",
                            "2025-03-10T09:00:00+08:00"]),
    (("case", "remind"), [CASE, "--note", "请加快办理", "--as", "supervisor-01", "--at",
                          "2025-03-20T09:00:00+08:00"]),
    (("case", "report-back"), [CASE, "--text", "正在办理，按期回告", "--as", "officer-07",
                               "--at", "2025-03-25T09:00:00+08:00"]),
    (("case", "extend"), [CASE, "--days", "20", "--reason", "需调取档案", "--notified-at",
                          "2025-04-21", "--as", "leader-01", "--at",
                          "2025-04-20T09:00:00+08:00"]),
    (("case", "reply"), [CASE, "--outcome", "support", "--resolution", "problem_solved",
                         "--served-at", "2025-05-25T10:00:00+08:00", "--text", "已办理落户",
                         "--as", "officer-07", "--at", "2025-05-25T10:00:00+08:00"]),
    (("case", "attest"), [CASE, "--evidence", "答复书-1", "--as", "officer-07", "--at",
                          "2025-05-26T09:00:00+08:00"]),
    (("case", "consent"), [CASE, "--as", "lead-03", "--at", "2025-05-27T09:00:00+08:00"]),
    (("case", "petitioner-sign"), [CASE, "--form", "key", "--opinion", "satisfied", "--as",
                                   "pet-0001", "--at", "2025-05-28T09:00:00+08:00"]),
    (("case", "close"), [CASE, "--as", "office-01", "--at", "2025-05-29T09:00:00+08:00"]),
    (("case", "review-request"), [CASE, "--level", "review", "--as", "registrar-01", "--at",
                                  "2025-06-10T09:00:00+08:00"]),
    (("case", "review-decide"), [CASE, "--level", "review", "--decision", "changed", "--as",
                                 "reviewer-01", "--at", "2025-07-01T09:00:00+08:00"]),
    (("case", "reopen"), [CASE, "--reason", "复查变更", "--as", "office-01", "--at",
                          "2025-07-02T09:00:00+08:00"]),
    (("case", "desist"), [CASE, "--document-sha256", "cd" * 32, "--as", "registrar-01", "--at",
                          "2025-08-11T09:00:00+08:00"]),
    (("reverse-check", "open"), [CASE, "--reason", "结而不息", "--as", "inspector-01", "--at",
                                 "2025-09-01T09:00:00+08:00"]),
    (("reverse-check", "finding"), [CASE, "--actor", "officer-07", "--fault", "late_reply",
                                    "--evidence", f"{CASE}#9", "--as", "inspector-01", "--at",
                                    "2025-09-02T09:00:00+08:00"]),
    (("reverse-check", "conclude"), [CASE, "--measures", "批评教育", "--note", "限期整改",
                                     "--as", "inspector-01", "--at",
                                     "2025-09-03T09:00:00+08:00"]),
]

#: Writes that need a case in another state than the lifecycle's (RECHECKING: a pending 复核).
RECHECKING = "{rechecking}"
ELSEWHERE: list[tuple[tuple[str, ...], list[str]]] = [
    (("case", "hearing"), [RECHECKING, "--start", "2025-04-15 09:00", "--end",
                           "2025-04-15 11:30", "--as", "reviewer-01", "--at",
                           "2025-04-15T12:00:00+08:00"]),
]


def test_every_command_with_a_format_is_exercised() -> None:
    lifecycle = [path for path, _ in LIFECYCLE] + [path for path, _ in ELSEWHERE]
    assert len(lifecycle) == len(set(lifecycle))
    assert not set(lifecycle) & set(READS)
    assert set(ADVERTISED) == set(lifecycle) | set(READS), (
        "give each command with --format an invocation here: "
        f"{sorted(set(ADVERTISED) ^ (set(lifecycle) | set(READS)))}")


def _render(env: Env, path: tuple[str, ...], args: list[str], fmt: str) -> Any:
    """Run one command in ``fmt`` (to a file for the formats that go in files) and read the
    output back; returns what the reader made of it."""
    files = FORMATS[fmt].from_sheets or FORMATS[fmt].file_only   # a table format: to a file
    out = env.root / f"{'-'.join(path)}.{fmt}" if files else None
    result = env.run(*args, "--format", fmt, *(["--out", str(out)] if out else []))
    assert result.exit_code == 0, (path, fmt, result.output)
    return READERS[fmt](result, out)


@pytest.mark.parametrize("path, fmt", [(path, fmt) for path in sorted(READS)
                                       for fmt in ADVERTISED.get(path, ())],
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else v)
def test_read_command_renders(env: Env, path: tuple[str, ...], fmt: str) -> None:
    read = _render(env, path, READS[path](env, fmt), fmt)
    if FORMATS[fmt].from_sheets:
        # the same sheets as the text: the text's first line is the first sheet's title
        text = env.run(*READS[path](env, "text")).stdout.splitlines()[0]
        if fmt == "csv":
            assert read[0][0] == text, (read[0][0], text)
            return
        # the workbook and the PDF print the same table under their own heading
        csv_out = env.root / f"{'-'.join(path)}.headers.csv"
        env.run(*READS[path](env, "csv"), "--format", "csv", "--out", str(csv_out))
        headers = next(csv.reader(io.StringIO(csv_out.read_text("utf-8-sig").split(
            "\n", 2)[1])))
        if fmt == "xlsx":
            assert printed(read.worksheets[0]).headers[-1] == headers
        else:
            first = re.sub(r"\s", "", read.pages[0].extract_text())
            assert all(re.sub(r"\s", "", h) in first for h in headers), (headers, first[:300])


@pytest.mark.parametrize("fmt", sorted({f for path, _ in LIFECYCLE
                                        for f in ADVERTISED.get(path, ())}))
def test_write_commands_render(env: Env, fmt: str) -> None:
    """A new case through its whole life, each command printing its receipt in ``fmt``."""
    case = None
    for path, template in LIFECYCLE:
        args = [*path, *(a.replace(CASE, case) if case else a for a in template)]
        chosen = fmt if fmt in ADVERTISED[path] else ADVERTISED[path][0]
        read = _render(env, path, args, chosen)
        if case is None:   # register: the new case number, alone or as the receipt's case
            case = read["case"] if chosen == "json" else read.strip()
            assert case.startswith("XF-2025-"), case
        elif chosen == "json":
            action = path[-1].replace("-", "_")
            if path[0] == "reverse-check":
                action = f"reverse_check_{action}"
            assert (read["case"], read["type"]) == (case, action), read
        else:
            assert read.startswith(f"{case} #"), read
    history = json.loads(env.run("case", "history", case, "--format", "json").stdout)
    assert len(history["events"]) == len(LIFECYCLE)


def test_writes_elsewhere_render(tmp_path: Path) -> None:
    """The writes ELSEWHERE, in each format they advertise, each on a fresh copy of the case
    state they need (a write is one signed event: it can be made once)."""
    for path, template in ELSEWHERE:
        for fmt in ADVERTISED[path]:
            root = tmp_path / f"{'-'.join(path)}-{fmt}"
            url = f"sqlite:///{root / 'ledger.db'}"
            world = build_world(url, root / "keys")
            case = world.closed_case("2025-03-05")
            world.do("review_request", case, {"level": "review"}, by="registrar-01",
                     at=t("2025-03-20"))
            world.do("review_decide", case, {"level": "review", "decision": "upheld"},
                     by="reviewer-02", at=t("2025-04-01"))
            world.do("review_request", case, {"level": "recheck"}, by="registrar-01",
                     at=t("2025-04-10"))
            world.ledger.close()
            here = Env(root, url, root / "keys", case, root / "unused")
            args = [*path, *(a.replace(RECHECKING, case) for a in template)]
            read = _render(here, path, args, fmt)
            if fmt == "json":
                assert (read["case"], read["type"]) == (case, path[-1].replace("-", "_"))
            else:
                assert read.startswith(f"{case} #"), read
