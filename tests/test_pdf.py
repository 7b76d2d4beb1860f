"""Print-ready PDF reports (issue 17): every report's ``--format pdf`` read back with pypdf and
its first page rendered with pdfium.

What an office checks on paper: A4 landscape pages, the heading under the top unit's name, the
unit and as-of lines, the header row at the top of every page a table runs onto, 合计 rows,
``第 N 页 共 M 页`` footers counting each table's pages, the 制表人/审核人/制表日期 line, and a
CJK font embedded in the file (a subset: only the glyphs used), so that it prints the same on
any machine. The figures are those of the XLSX (the same sheets), rounded once.

A test of layout, not of storage: SQLite only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader

from cli.main import cli
from projections import Page, Ratio, Sheet, font_advice, write_pdf
from projections import pdf as pdf_module
from projections.reports import today
from tests.world import build_world, t

AS_OF = "2025-12-31"
REPORTS: dict[str, list[str]] = {
    "supervision": ["report", "supervision", "--as-of", AS_OF],
    "statistics": ["report", "statistics", "--from", "2025-01-01", "--to", "2025-12-31",
                   "--as-of", AS_OF],
    "accountability": ["report", "accountability", "--as-of", AS_OF],
    "closures": ["report", "closures"],
    "case-list": ["case", "list", "--as-of", AS_OF],
    "history": ["case", "history", "{closed}"],
}
HEADINGS = {"supervision": "XX市公安局信访督办台账", "statistics": "XX市公安局信访工作统计",
            "accountability": "XX市公安局信访倒查报告", "closures": "XX市公安局三签结案记录",
            "case-list": "XX市公安局信访案件列表", "history": "XX市公安局信访案件办理经过"}
A4_LANDSCAPE = (841.89, 595.28)   # points


@dataclass
class Office:
    root: Path
    url: str
    keys: Path
    closed: str

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--ledger", self.url, "--keystore", str(self.keys),
                                        *args], catch_exceptions=False)

    def pdf(self, name: str, *extra: str) -> tuple[Path, Result]:
        out = self.root / f"{name}{''.join(extra)}.pdf"
        args = [a.replace("{closed}", self.closed) for a in REPORTS[name]]
        result = self.run(*args, *extra, "--format", "pdf", "--out", str(out))
        assert result.exit_code in (0, 1), result.output   # closures: 1 if one is invalid
        return out, result


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    """15 closed cases and 4 open ones (one supervised and overdue)."""
    root = tmp_path_factory.mktemp("pdf")
    url = f"sqlite:///{root / 'ledger.db'}"
    world = build_world(url, root / "keys")
    start = date(2025, 3, 2)
    closed = [world.closed_case((start + timedelta(days=2 * n)).isoformat()) for n in range(15)]
    open_cases = [world.accepted_case((start + timedelta(days=40 + n)).isoformat(),
                                      handler="officer-08", unit="county-01") for n in range(4)]
    world.do("supervise", open_cases[0], {"authority": "leader", "due": "2025-05-30"},
             by="leader-01", at=t("2025-04-20"))
    world.ledger.close()
    yield Office(root, url, root / "keys", closed[0])


def page_text(reader: PdfReader, n: int) -> str:
    return reader.pages[n].extract_text() or ""


def embedded_fonts(reader: PdfReader) -> list[dict[str, Any]]:
    """Every font of every page with its descriptor, resolved."""
    fonts = []
    for page in reader.pages:
        for ref in (page["/Resources"].get("/Font") or {}).values():
            font = ref.get_object()
            for descendant in font.get("/DescendantFonts") or [font]:
                fonts.append(descendant.get_object())
    return fonts


def ink(path: Path, page: int = 0) -> tuple[float, float]:
    """The share of non-white pixels on a rendered page, and of its top tenth (the heading)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    image = document[page].render(scale=1).to_pil().convert("L")
    document.close()
    width, height = image.size

    def dark(region: Any) -> float:
        counts = region.histogram()
        return sum(counts[:200]) / max(1, sum(counts))

    return dark(image), dark(image.crop((0, 0, width, height // 10)))


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_prints_as_pdf(office: Office, name: str) -> None:
    out, result = office.pdf(name)
    reader = PdfReader(out)
    pages = len(reader.pages)
    assert pages >= 1 and f"（{pages} 页）" in result.output, result.output
    for page in reader.pages:   # A4 landscape
        box = page.mediabox
        assert (float(box.width), float(box.height)) == pytest.approx(A4_LANDSCAPE, abs=0.5)
    first = page_text(reader, 0)
    assert HEADINGS[name] in first, first[:200]
    assert "制表单位：XX市公安局" in first
    assert re.search(r"第 1 页 共 \d+ 页", first), first[-80:]
    whole = "\n".join(page_text(reader, n) for n in range(pages))
    assert "制表人：" in whole and "审核人：" in whole
    assert f"制表日期：{today().isoformat()}" in whole
    # the CJK font is embedded (TrueType, subset: only the glyphs used)
    fonts = embedded_fonts(reader)
    assert fonts and all("/FontFile2" in f["/FontDescriptor"] for f in fonts), fonts
    assert all(re.match(r"/[A-Z]{6}\+", str(f["/BaseFont"])) for f in fonts), fonts
    program = fonts[0]["/FontDescriptor"]["/FontFile2"].get_object().get_data()
    assert len(program) < 400_000, "the whole font was embedded, not the subset used"
    shade, heading = ink(out)
    assert shade > 0.01 and heading > 0.002, (shade, heading)   # not blank, heading drawn


def test_statistics_pdf_has_the_grid_and_exact_rates(office: Office) -> None:
    out, _ = office.pdf("statistics")
    reader = PdfReader(out)
    texts = [page_text(reader, n) for n in range(len(reader.pages))]
    grids = [t for t in texts if "信访统计表（" in t]
    assert len(grids) == 2 and "按渠道" in grids[0] and "按内容分类" in grids[1]
    assert any("合计" in t and "19" in t for t in grids)
    assert any("办结回复率" in t and "78.9%" in t for t in texts)   # 15/19, rounded once
    assert not any("79.0%" in t for t in texts)
    # each table numbers its own pages, as a worksheet's &P/&N do
    assert all(re.search(r"第 1 页 共 1 页", t) for t in grids)


def test_english_pdf(office: Office) -> None:
    out, result = office.pdf("supervision", "--lang", "en")
    first = page_text(PdfReader(out), 0)
    assert "Petition supervision ledger" in first and "Page 1 of" in first
    assert "Prepared by" in "".join(page_text(PdfReader(out), n)
                                    for n in range(len(PdfReader(out).pages)))
    assert "wrote" in result.output


def test_pdf_needs_an_out_file(office: Office) -> None:
    result = office.run(*REPORTS["supervision"], "--format", "pdf")
    assert result.exit_code == 2 and "--out" in result.output


# ---- the writer: long tables, wide tables, fonts -----------------------------------------------

def ledger_sheet(rows: int, columns: int = 6) -> Sheet:
    headers = ["案件编号", "信访人", "信访事项", *(f"指标{j}" for j in range(columns - 3))]
    body: list[list[Any]] = [[f"XF-2025-{n:06d}", "王某", "户口迁移申请不予办理" * (1 + n % 3),
                              *(n * j for j in range(columns - 3))] for n in range(rows)]
    body.append(["合计", None, None, *(sum(r[j] for r in body) for j in range(3, columns))])
    return Sheet("台账", "台账", headers, body, numeric=frozenset(range(3, columns)),
                 flagged=frozenset({1}), totals=frozenset({rows}),
                 page=Page("XX市公安局信访督办台账", ("制表单位：XX市公安局", "截至：2025-12-31"),
                           ("制表人：", "审核人：", "制表日期：2025-12-31"), "第 &P 页 共 &N 页"))


def test_long_table_repeats_its_header_on_every_page(tmp_path: Path) -> None:
    out = tmp_path / "long.pdf"
    result = write_pdf([ledger_sheet(120)], out)
    reader = PdfReader(out)
    assert result.pages == len(reader.pages) >= 3
    for n in range(result.pages):
        text = page_text(reader, n)
        assert "案件编号" in text and "信访事项" in text, n          # the header row
        assert f"第 {n + 1} 页 共 {result.pages} 页" in text, text[-60:]
    assert "XX市公安局信访督办台账" not in page_text(reader, 1)       # heading: first page only
    last = page_text(reader, result.pages - 1)
    assert "合计" in last and "制表人：" in last
    every = "".join(page_text(reader, n) for n in range(result.pages))
    assert all(f"XF-2025-{n:06d}" in every for n in range(120)), "a row went missing"


def test_wide_table_shrinks_to_a_readable_size_and_wraps(tmp_path: Path) -> None:
    out = tmp_path / "wide.pdf"
    result = write_pdf([ledger_sheet(10, columns=30)], out)
    (layout,) = result.sheets
    assert 7.0 <= layout.font_size < 9.0, layout
    text = page_text(PdfReader(out), 0)
    assert "XF-2025-000009" in text   # case numbers are never broken


def test_grid_prints_at_the_body_size(office: Office, tmp_path: Path) -> None:
    """The 信访统计表 tables fit A4 landscape without shrinking (issue 17: it printed small)."""
    import json

    from projections import statistics_sheets

    document = json.loads(office.run(*REPORTS["statistics"], "--format", "json").stdout)
    grids = [s for s in statistics_sheets(document) if s.name.startswith("信访统计表")]
    result = write_pdf(grids, tmp_path / "grid.pdf")
    assert [s.font_size for s in result.sheets] == [9.0, 9.0]


def test_ratio_cells_print_rounded_once(tmp_path: Path) -> None:
    sheet = Sheet("r", "r", ["单位", "办结回复率"],
                  [["一所", Ratio(15, 19)], ["二所", Ratio(14, 17)]], numeric=frozenset({1}))
    out = tmp_path / "ratio.pdf"
    write_pdf([sheet], out)
    text = page_text(PdfReader(out), 0)
    assert "78.9%" in text and "82.4%" in text


RARE = "张喆"   # 喆 is outside GB 2312, so outside the built-in subset


def test_a_character_no_font_has_is_reported_with_the_package_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "_system_fonts", lambda: [])
    sheet = Sheet("s", "s", ["姓名"], [[RARE]])
    result = write_pdf([sheet], tmp_path / "rare.pdf")
    assert result.missing == "喆" and result.fallback is None
    advice = font_advice(result) or ""
    assert "fonts-wqy-microhei" in advice and "XINFANG_PDF_FONT" in advice and "喆" in advice


SYSTEM_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@pytest.mark.skipif(not SYSTEM_FONT.exists(), reason="needs Debian's fonts-wqy-microhei")
def test_characters_outside_the_subset_come_from_a_system_font(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XINFANG_PDF_FONT", str(SYSTEM_FONT))
    out = tmp_path / "rare.pdf"
    result = write_pdf([Sheet("s", "s", ["姓名"], [[RARE]])], out)
    assert result.missing == "" and result.fallback == f"{SYSTEM_FONT}#0"
    assert RARE in page_text(PdfReader(out), 0)
    assert font_advice(result) is None


def test_the_builtin_font_ships_with_its_licence() -> None:
    fonts = Path(pdf_module.__file__).with_name("fonts")
    assert pdf_module.BUILTIN_FONT.stat().st_size < 2_000_000
    assert "Apache License" in (fonts / "LICENSE-wqy-microhei.txt").read_text("utf-8")
    assert "GB 2312" in (fonts / "README.md").read_text("utf-8")
