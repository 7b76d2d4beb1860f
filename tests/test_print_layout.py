"""Print-ready report workbooks and exact figures (issue 17).

Every report's XLSX is read back with openpyxl: A4 landscape fitted to one page wide, header
rows repeated on every page, panes frozen below them, a page-numbered footer, the heading
under the top unit's name, the unit and as-of lines, the 制表人/审核人/制表日期 line, totals
rows that sum their columns, the 信访统计表 grid, Chinese sheet names (English with --lang en).
Rates are exact: 15 of 19 accepted cases closed with a reply is 78.9% in text, CSV and XLSX
(rounded once, from the counts) and the exact fraction in JSON.

A test of layout, not of storage: SQLite only (report storage runs on both backends in
tests/test_reports.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from projections.reports import today
from projections.sheets import Ratio, Sheet, cell_text, display_width
from tests.readback import Printed, csv_blocks, printed
from tests.world import build_world, t

AS_OF = "2025-12-31"
STATS = ["report", "statistics", "--from", "2025-01-01", "--to", "2025-12-31", "--as-of", AS_OF]
REPORTS = {
    "supervision": ["report", "supervision", "--as-of", AS_OF],
    "statistics": STATS,
    "accountability": ["report", "accountability", "--as-of", AS_OF],
    "closures": ["report", "closures"],
}
HEADINGS = {"supervision": "XX市公安局信访督办台账", "statistics": "XX市公安局信访",   # 统计表 too
            "accountability": "XX市公安局信访倒查报告", "closures": "XX市公安局三签结案记录"}


@dataclass
class Office:
    root: Path
    url: str
    keys: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--ledger", self.url, "--keystore", str(self.keys),
                                        *args], catch_exceptions=False)

    def xlsx(self, name: str, *extra: str) -> Any:
        out = self.root / f"{name}{'-'.join(extra)}.xlsx"
        result = self.run(*REPORTS[name], *extra, "--format", "xlsx", "--out", str(out))
        assert result.exit_code in (0, 1), result.output   # closures: 1 if one is invalid
        return openpyxl.load_workbook(out)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    """19 accepted cases, 15 of them closed with a reply (reply rate 15/19), 2 supervised."""
    root = tmp_path_factory.mktemp("print")
    url = f"sqlite:///{root / 'ledger.db'}"
    world = build_world(url, root / "keys")
    start = date(2025, 3, 2)
    for n in range(15):
        world.closed_case((start + timedelta(days=2 * n)).isoformat())
    open_cases = [world.accepted_case((start + timedelta(days=40 + n)).isoformat(),
                                      handler="officer-08", unit="county-01") for n in range(4)]
    world.do("supervise", open_cases[0], {"authority": "leader", "due": "2025-05-30"},
             by="leader-01", at=t("2025-04-20"))
    world.ledger.close()
    yield Office(root, url, root / "keys")


# ---- page setup ---------------------------------------------------------------------------------

def check_page(ws: Any, lang: str = "zh") -> Printed:
    """The print setup every report worksheet has; returns the sheet read back."""
    sheet = printed(ws)
    setup = ws.page_setup
    assert setup.orientation == "landscape" and int(setup.paperSize) == 9, ws.title   # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
    # one page wide (1 is the OOXML default, which writers may leave out), any number tall
    assert int(setup.fitToWidth or 1) == 1 and int(setup.fitToHeight) == 0, ws.title
    top = sheet.first_row - len(sheet.headers)
    assert ws.print_title_rows in (f"{top}:{sheet.first_row - 1}",
                                   f"${top}:${sheet.first_row - 1}"), ws.print_title_rows
    assert ws.freeze_panes == f"A{sheet.first_row}", (ws.title, ws.freeze_panes)
    footer = ws.oddFooter.center.text or ""
    assert ("第 &P 页 共 &N 页" if lang == "zh" else "Page &P of &N") in footer, footer
    return sheet


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_workbook_prints(office: Office, name: str) -> None:
    book = office.xlsx(name)
    for ws in book.worksheets:
        sheet = check_page(ws)
        assert str(sheet.heading).startswith(HEADINGS[name]), sheet.heading
        assert sheet.meta[0] == "制表单位：XX市公安局", sheet.meta
        assert any(line.startswith("截至：") for line in sheet.meta), sheet.meta
        assert sheet.signoff[0].startswith("制表人：") and sheet.signoff[1].startswith("审核人：")
        assert sheet.signoff[2] == f"制表日期：{today().isoformat()}", sheet.signoff
        assert all(ord(ch) > 0x2E80 for ch in ws.title if not ch.isascii() or ch.isalpha()), \
            ws.title   # Chinese sheet names


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_english_workbooks(office: Office, name: str) -> None:
    book = office.xlsx(name, "--lang", "en")
    for ws in book.worksheets:
        sheet = check_page(ws, "en")
        assert ws.title.isascii(), ws.title
        assert sheet.signoff[0].startswith("Prepared by") and sheet.meta[0].startswith("Unit")


def test_case_number_column_shows_the_whole_number(office: Office) -> None:
    ws = office.xlsx("closures").worksheets[0]
    sheet = printed(ws)
    widest = max(display_width(str(r[0])) for r in sheet.rows)
    assert ws.column_dimensions["A"].width >= widest, (ws.column_dimensions["A"].width, widest)


def test_column_widths_count_cjk_double() -> None:
    sheet = Sheet("s", "s", ["单位", "n"], [["城关派出所", 1], ["XX县公安局", 12345]])
    assert sheet.column_widths() == [10, 5]


# ---- totals --------------------------------------------------------------------------------------

def column_sums_match(sheet: Printed, columns: range) -> None:
    assert sheet.rows[-1][0] == "合计", sheet.rows[-1]
    for j in columns:
        assert sheet.rows[-1][j] == sum(r[j] or 0 for r in sheet.rows[:-1]), (sheet.heading, j)


def test_per_unit_sheets_have_totals_rows(office: Office) -> None:
    supervision = office.xlsx("supervision")
    column_sums_match(printed(supervision["按承办单位"]), range(1, 5))
    stats = printed(office.xlsx("statistics")["按承办单位"])
    headers = stats.headers[-1]
    counts = [j for j, h in enumerate(headers) if j and h != "办结回复率"]
    assert stats.rows[-1][0] == "合计"
    for j in counts:
        assert stats.rows[-1][j] == sum(r[j] for r in stats.rows[:-1]), headers[j]
    rate = headers.index("办结回复率")
    assert stats.rows[-1][rate] == pytest.approx(15 / 19)   # the rate of the totals
    accountability = office.xlsx("accountability")
    for name in ("按责任人", "按责任单位"):
        sheet = printed(accountability[name])
        total = sheet.headers[-1].index("合计")
        first = 2 if name == "按责任人" else 1
        column_sums_match(sheet, range(first, total + 1))


def test_statistics_grid(office: Office) -> None:
    """信访统计表 in two tables that print at full size on A4 landscape: (一) by channel and
    source, (二) by content category; each with a 合计 column and row."""
    book = office.xlsx("statistics")
    assert book.sheetnames == ["信访工作统计", "信访统计表（一）", "信访统计表（二）", "按承办单位"]
    one, two = check_page(book["信访统计表（一）"]), check_page(book["信访统计表（二）"])
    for grid, groups_wanted in ((one, {"按渠道": "来信", "按来源": "直接来信来访"}),
                                (two, {"按内容分类": "要求立案查处"})):
        groups, headers = grid.headers
        assert headers[:2] == ["承办单位", "合计"]
        starts = sorted(headers.index(h) for h in groups_wanted.values())
        assert [groups[c] for c in starts] == list(groups_wanted), groups
        bounds = [*starts, len(headers)]
        for row in grid.rows:   # the 合计 column: every group adds up to the unit's cases
            assert all(row[1] == sum(row[a:b])
                       for a, b in zip(bounds, bounds[1:], strict=False)), row
        column_sums_match(grid, range(1, len(headers)))
        assert grid.rows[-1][1] == 19
        assert [r[0] for r in grid.rows[:-1]] == ["XX县公安局", "城关派出所"]


def fit_scale(ws: Any) -> float:
    """The print scale Excel uses to fit a sheet one page wide on A4 landscape: the printable
    width (11.69 in less the 0.5 in margins, 770 pt) over the columns' width (Calibri 11:
    7 px a character plus 5, at 96 dpi)."""
    columns = [(d.min, d.max, d.width) for d in ws.column_dimensions.values()]
    points = sum((high - low + 1) * (7 * width + 5) for low, high, width in columns) * 0.75
    return min(1.0, 770 / points)


def test_statistics_grid_prints_readable(office: Office) -> None:
    """The grid printed at 53% of its size when it was one table of 31 columns; now each part
    prints unshrunk, with the full 14 categories of the default policy, headers on three
    lines in rows tall enough for them."""
    book = office.xlsx("statistics")
    for name in ("信访统计表（一）", "信访统计表（二）"):
        ws = book[name]
        assert fit_scale(ws) >= 0.95, (name, fit_scale(ws))
        header_row = printed(ws).first_row - 1
        assert ws.row_dimensions[header_row].height >= 45   # three lines of 15 pt


# ---- exact figures -------------------------------------------------------------------------------

def test_reply_rate_is_exact_and_rounded_once(office: Office, tmp_path: Path) -> None:
    document = json.loads(office.run(*STATS, "--format", "json").stdout)
    assert (document["accepted"], document["closed_replied"]) == (19, 15)
    assert document["reply_rate"] == 15 / 19               # unrounded, key kept (cli.md)
    assert document["ratios"]["reply_rate"] == {"numerator": 15, "denominator": 19,
                                                "value": 15 / 19}
    assert document["by_unit"]["station-03"]["ratios"]["reply_rate"]["denominator"] == 15

    text = office.run(*STATS).stdout
    rate_line = next(line for line in text.splitlines() if line.startswith("办结回复率"))
    assert "78.9%" in rate_line and "79.0%" not in text, rate_line

    out = tmp_path / "stats.csv"
    office.run(*STATS, "--format", "csv", "--out", str(out))
    figures = csv_blocks(out.read_text(encoding="utf-8-sig"))[0]
    assert next(r for r in figures if r[0] == "办结回复率")[1] == "78.9%"

    ws = office.xlsx("statistics")["信访工作统计"]
    row = next(r for r in ws.iter_rows(min_row=printed(ws).first_row) if r[0].value == "办结回复率")
    assert row[1].value == 15 / 19 and row[1].number_format == "0.0%"
    assert f"{row[1].value * 100:.1f}%" == "78.9%"


@pytest.mark.parametrize("part, whole, shown", [(15, 19, "78.9%"), (14, 17, "82.4%"),
                                                (1, 8, "12.5%"), (1, 2000, "0.1%"),
                                                (0, 3, "0.0%"), (2, 3, "66.7%")])
def test_ratio_cells_round_half_up_from_the_counts(part: int, whole: int, shown: str) -> None:
    assert cell_text(Ratio(part, whole)) == shown
    assert cell_text(Ratio(part, 0)) == ""


def test_csv_keeps_one_title_line_per_table(office: Office, tmp_path: Path) -> None:
    """CSV is for spreadsheets and scripts: a title line and a header row per table, no page
    furniture (that is the workbook's)."""
    out = tmp_path / "sup.csv"
    office.run(*REPORTS["supervision"], "--format", "csv", "--out", str(out))
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["督办台账（截至 2025-12-31）"] and rows[1][0] == "案件编号"
    assert not any("制表人" in cell for row in rows for cell in row)


# ---- text for people: within 120 columns, wrapped not cut, names not codes ----------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Office:
    """The demo's year (320 cases, every action) on a fresh ledger."""
    root = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(root), "--no-witnesses"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output[-2000:]
    return Office(root, f"sqlite:///{root / 'ledger.db'}", root / "keys")


TEXT_COMMANDS = [
    ["report", "supervision", "--as-of", AS_OF], STATS,
    ["report", "accountability", "--as-of", AS_OF, "--no-integrity"], ["report", "closures"],
    ["case", "list", "--as-of", AS_OF], ["case", "history", "XF-2025-000038"],
    ["case", "verify-closure", "XF-2025-000038"], ["unit", "list"], ["actor", "list"],
    ["verify", "--workers", "1"],
]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_text_output_fits_120_columns(demo: Office, lang: str) -> None:
    for command in TEXT_COMMANDS:
        result = demo.run(*command, "--lang", lang)
        assert result.exit_code in (0, 1), (command, result.output[-500:])
        lines = result.output.splitlines()
        widest = max(display_width(line) for line in lines)
        assert widest <= 120, (command, widest, max(lines, key=display_width))


def test_history_speaks_of_people_and_content(demo: Office) -> None:
    document = json.loads(demo.run("case", "history", "XF-2025-000038", "--format",
                                   "json").output)
    text = demo.run("case", "history", "XF-2025-000038").output
    for code in ("handler=", "unit=", "petitioner=", "note=", "reason=", "fault="):
        assert code not in text, code
    events = document["events"]
    assigned = next(e for e in events if e["type"] == "assign")["data"]
    names = {a["actor"]: a["name"] for a in json.loads(demo.run("actor", "list", "--format",
                                                                "json").output)}
    units = {u["unit"]: u["name"] for u in json.loads(demo.run("unit", "list", "--format",
                                                               "json").output)}
    assert f"{names[assigned['handler']]} ({assigned['handler']})" in text
    assert f"{units[assigned['unit']]} ({assigned['unit']})" in text
    registered = events[0]["data"]
    assert registered["summary"] in text                       # the event's content
    reply = next(e for e in events if e["type"] == "reply")["data"]
    assert reply["text"][:20] in text.replace("\n      ", "")   # wrapped, not cut
    assert "时间均为北京时间" in text and "业务时间" in text and "记录时间" in text
    assert "补录，晚" in text                                   # the demo is entered late
    en = demo.run("case", "history", "XF-2025-000038", "--lang", "en").output
    assert "all times are Beijing time" in en and "entered" in en and "补录" not in en


def test_wide_cells_wrap_and_are_never_cut() -> None:
    from cli.output import table_lines

    responsible = "、".join(f"责任人{n}（承办单位负责人）" for n in range(12))
    lines = table_lines(["案件编号", "触发事项", "责任人"],
                        [["XF-2025-000001", "督办逾期未办结", responsible]], width=60)
    assert max(display_width(line) for line, _ in lines) <= 60
    header = lines[0][0]
    column = display_width(header[:header.index("责任人")])   # display column of the cell
    cells = [line for line, index in lines if index == 0]
    assert cells[0].startswith("XF-2025-000001")               # the case number whole
    pieces = "".join(line[column:].strip() if display_width(line) > column else ""
                     for line in (_cut_columns(line, column) for line in cells))
    assert pieces == responsible


def _cut_columns(line: str, start: int) -> str:
    """``line`` from display column ``start`` on, padded so that str indexes match columns."""
    out, col = "", 0
    for ch in line:
        if col >= start:
            out += ch
        col += display_width(ch)
    return " " * start + out


def test_a_table_too_wide_continues_below_with_its_key_column() -> None:
    from cli.output import table_lines

    headers = ["承办单位", *(f"指标{n:02d}" for n in range(40))]
    lines = table_lines(headers, [["城关派出所", *range(40)]], align=["<"] + [">"] * 40,
                        width=120)
    assert max(display_width(line) for line, _ in lines) <= 120
    rows = [line for line, index in lines if index == 0]
    assert len(rows) >= 2 and all(r.startswith("城关派出所") for r in rows)
    shown = " ".join(rows)
    assert all(f" {n}" in shown for n in range(40))
