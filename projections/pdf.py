"""Write report sheets as a print-ready PDF: the same layout as the XLSX (issue 17).

Each sheet starts a page of its own ``Page`` (A4 landscape by default): the heading under the
top unit's name, the unit and period or as-of lines, the header rows (repeated at the top of
every page the table runs onto), the rows (totals rows bold on grey, overdue rows red on
pink), the notes, the sign-off line (制表人/审核人/制表日期) and a footer ``第 N 页 共 M 页``
counting the pages of that sheet, as a worksheet's ``&P``/``&N`` do.

Columns get the widths ``Sheet.column_widths`` measures for the XLSX (with the font's own
glyph widths); the body font is 9 pt,
smaller (not below 7 pt) when a wide table needs it to fit the page, and text columns wrap
(never cut) when even that is not enough. Wrapping follows ``wrap_text`` with the font's own
string widths.

The CJK font is embedded (subset to the characters used): the package ships a subset of
WenQuanYi Micro Hei (Apache-2.0) covering GB 2312, ASCII, Latin-1 and CJK punctuation
(``projections/fonts/README.md``). A character outside it (a rare character in a name, say)
is taken from ``XINFANG_PDF_FONT`` or a system CJK font found with fontconfig; what no font
has is reported back (``PdfResult.missing``) so the command can say which package to install.
Drawing is fpdf2's; fontTools (an fpdf2 dependency) reads the fonts' character maps.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ledger.errors import EnvironmentProblem

from .sheets import Page, Sheet, cell_text, wrap_balanced, wrap_text

FONT_DIR = Path(__file__).with_name("fonts")
BUILTIN_FONT = FONT_DIR / "wqy-microhei-gb2312.ttf"
#: A TrueType/OpenType font (or collection, ``path#index``) to take missing characters from.
FONT_ENV = "XINFANG_PDF_FONT"
#: The Debian package whose font covers every CJK character the built-in subset lacks.
FONT_PACKAGE = "fonts-wqy-microhei"
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)

PAPER_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
PT = 25.4 / 72            # millimetres per point
MARGIN = 12.0             # left, right and top margins (mm)
BOTTOM = 16.0             # bottom margin, above the footer (mm)
BODY_PT, LEAST_PT = 9.0, 7.0
HEADING_PT, META_PT, NOTE_PT, FOOTER_PT = 16.0, 10.0, 8.5, 9.0
PAD_X, PAD_Y = 1.2, 0.9   # cell padding (mm)
LEADING = 1.3             # line height as a multiple of the font size
#: Millimetres a display column takes at 1 pt (half an em, with room for Latin glyphs).
COLUMN_EM = 0.56 * PT

HEADER_FILL, TOTAL_FILL, FLAG_FILL = (217, 225, 242), (242, 242, 242), (255, 199, 206)
FLAG_INK, NOTE_INK, RULE = (156, 0, 6), (89, 89, 89), (110, 110, 110)


@dataclass(frozen=True)
class SheetLayout:
    """How one sheet was printed: its pages and body font size (pt)."""

    name: str
    pages: int
    font_size: float


@dataclass(frozen=True)
class PdfResult:
    pages: int
    sheets: tuple[SheetLayout, ...]
    missing: str = ""            # characters no available font has (printed as blanks)
    fallback: str | None = None  # the font file the characters outside the subset came from


# ---- fonts ----------------------------------------------------------------------------------

def _font_path(spec: str) -> tuple[Path, int]:
    path, _, index = spec.partition("#")
    return Path(path), int(index) if index.isdigit() else 0


@lru_cache(maxsize=16)
def _cmap(path: str, index: int = 0) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(path, fontNumber=index, lazy=True)
        return frozenset(font.getBestCmap() or {})
    except Exception:   # noqa: BLE001 - an unreadable font covers nothing
        return frozenset()


def _system_fonts() -> list[str]:
    """CJK fonts on this machine: ``XINFANG_PDF_FONT``, fontconfig's choices for Chinese,
    then the usual Debian paths."""
    found = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else []
    if shutil.which("fc-match"):
        try:
            listing = subprocess.run(
                ["fc-match", "-s", "--format=%{file}#%{index}\n", ":lang=zh-cn"],
                capture_output=True, text=True, timeout=10, check=False).stdout
            found += [line for line in listing.splitlines()[:8] if line.strip()]
        except (OSError, subprocess.SubprocessError):
            pass
    return found + [p for p in SYSTEM_FONTS if Path(p).exists()]


def _fallback(missing: set[int]) -> tuple[str | None, set[int]]:
    """The font covering most of ``missing`` (its spec), and what it still lacks."""
    best, left = None, missing
    for spec in _system_fonts():
        path, index = _font_path(spec)
        if not path.is_file() or path.suffix.lower() not in (".ttf", ".ttc", ".otf", ".otc"):
            continue
        lacking = missing - _cmap(str(path), index)
        if len(lacking) < len(left):
            best, left = f"{path}#{index}", lacking
        if not left:
            break
    return best, left


def _characters(sheets: Sequence[Sheet], extra: Iterable[str]) -> set[int]:
    seen: set[int] = set()
    for text in extra:
        seen.update(map(ord, text))
    for sheet in sheets:
        page = sheet.page or Page(sheet.title)
        for text in (sheet.title, page.heading, *page.meta, *page.signoff, *sheet.headers,
                     *(g for g, _ in sheet.groups), *sheet.notes):
            seen.update(map(ord, text))
        for row in sheet.rows:
            for value in row:
                seen.update(map(ord, cell_text(value)))
    return {c for c in seen if c > 0x20 and c not in (0xA0, 0x3000)}


# ---- layout ----------------------------------------------------------------------------------

@dataclass
class _Row:
    """One table row laid out: each cell's lines, its height, how it looks."""

    cells: list[list[str]]
    height: float
    kind: str = "row"   # row · total · flagged · header
    spans: list[int] = field(default_factory=list)   # header cells: columns each spans


@dataclass
class _Item:
    kind: str           # heading · meta · gap · header · row · note · signoff
    height: float
    row: _Row | None = None
    text: str = ""


class _Writer:
    def __init__(self, lang: str) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="L", unit="mm", format="A4")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(MARGIN, MARGIN, MARGIN)
        self.pdf.set_creator("xinfang-ledger")
        self.pdf.set_lang("zh-CN" if lang == "zh" else "en")
        self.pdf.add_font("cjk", "", str(BUILTIN_FONT))
        self.lang = lang
        self.size = BODY_PT

    def use_fallback(self, spec: str) -> None:
        path, index = _font_path(spec)
        self.pdf.add_font("cjk-extra", "", str(path), collection_font_number=index)
        self.pdf.set_fallback_fonts(["cjk-extra"], exact_match=False)

    def font(self, size: float) -> None:
        self.pdf.set_font("cjk", "", size)

    def measure(self, size: float) -> Callable[[str], float]:
        self.font(size)
        return lambda text: float(self.pdf.get_string_width(text))

    # -- planning -------------------------------------------------------------------------

    def columns(self, sheet: Sheet, usable: float) -> tuple[list[float], float]:
        """Column widths (mm) and the body font size: the XLSX widths at 9 pt, a smaller
        font (not below 7 pt) for a wide table, then narrower text columns (they wrap, but
        keep their longest word whole: a case number is never broken)."""
        at10 = self.measure(10.0)

        def cols(text: str) -> int:   # display columns at the font's own glyph widths
            return math.ceil(at10(text) / (COLUMN_EM * 10))

        chars = sheet.column_widths(cols)
        padding = 2 * PAD_X * len(chars)
        size = min(BODY_PT, max(LEAST_PT, (usable - padding) / (sum(chars) * COLUMN_EM)))
        widths = [c * COLUMN_EM * size + 2 * PAD_X for c in chars]
        total = sum(widths)
        if total > usable:   # text columns give up width, down to 8 display columns each
            words = [max((cols(w) for row in sheet.rows if j < len(row)
                          for w in cell_text(row[j]).split()
                          if w.isascii()), default=0) for j in range(len(widths))]
            floor = [max(8, min(words[j], 16)) * COLUMN_EM * size + 2 * PAD_X
                     for j in range(len(widths))]
            text = [j for j in range(len(widths)) if j not in sheet.numeric]
            spare = sum(widths[j] - floor[j] for j in text if widths[j] > floor[j])
            if spare > 0:
                cut = min(1.0, (total - usable) / spare)
                for j in text:
                    if widths[j] > floor[j]:
                        widths[j] -= (widths[j] - floor[j]) * cut
        elif total > 0.6 * usable:   # a table of some breadth fills the line
            widths = [w * usable / total for w in widths]
        return widths, size

    def row(self, values: Sequence[str], widths: Sequence[float], size: float, kind: str,
            spans: Sequence[int] | None = None) -> _Row:
        measure = self.measure(size)
        spans = list(spans or [1] * len(values))
        cells, col = [], 0
        for value, span in zip(values, spans, strict=True):
            inner = max(sum(widths[col:col + span]) - 2 * PAD_X, 1.0)
            # headers balanced: 信访人/意见, not 信访人意/见
            cells.append((wrap_balanced if kind == "header" else wrap_text)(
                value, inner, measure))
            col += span
        lines = max((len(c) for c in cells), default=1)
        return _Row(cells, lines * size * PT * LEADING + 2 * PAD_Y, kind, spans)

    def plan(self, sheet: Sheet, page: Page, width: float, height: float
             ) -> tuple[list[list[_Item]], list[float], float]:
        usable, bottom = width - 2 * MARGIN, height - BOTTOM
        widths, size = self.columns(sheet, usable)
        headers: list[_Item] = []
        for cells in sheet.header_rows():
            texts, spans = [t for t, _ in cells], [s for _, s in cells]
            headers.append(_Item("header", 0, self.row(texts, widths, size, "header", spans)))
        for item in headers:
            assert item.row is not None
            item.height = item.row.height
        pages: list[list[_Item]] = [[]]
        y = MARGIN

        def place(item: _Item, repeat: bool = False) -> None:
            nonlocal y
            if y + item.height > bottom and pages[-1]:
                pages.append([])
                y = MARGIN
                if repeat:
                    for header in headers:
                        pages[-1].append(header)
                        y += header.height
            pages[-1].append(item)
            y += item.height

        line = self.measure(HEADING_PT)
        for text in wrap_text(page.heading, usable, line):
            place(_Item("heading", HEADING_PT * PT * 1.6, text=text))
        meta = self.measure(META_PT)
        for text in (t for m in page.meta for t in wrap_text(m, usable, meta)):
            place(_Item("meta", META_PT * PT * LEADING, text=text))
        place(_Item("gap", 2.0))
        rows = [self.row([cell_text(v) for v in values], widths, size,
                         "total" if i in sheet.totals else
                         "flagged" if i in sheet.flagged else "row")
                for i, values in enumerate(sheet.rows)]
        first = sum(h.height for h in headers) + (rows[0].height if rows else 0)
        if y + first > bottom and pages[-1]:
            pages.append([])
            y = MARGIN
        for header in headers:
            place(header)
        room = bottom - MARGIN - sum(h.height for h in headers)
        for laid in rows:
            for piece in _split(laid, room, size):
                place(_Item("row", piece.height, piece), repeat=True)
        note = self.measure(NOTE_PT)
        notes = [t for n in sheet.notes for t in wrap_text(n.strip(), usable, note)]
        if notes:
            place(_Item("gap", 2.0))
        for text in notes:
            place(_Item("note", NOTE_PT * PT * LEADING, text=text))
        if page.signoff:
            place(_Item("gap", 4.0))
            place(_Item("signoff", META_PT * PT * 1.8, text="\t".join(page.signoff)))
        return pages, widths, size

    # -- drawing --------------------------------------------------------------------------

    def draw(self, sheet: Sheet, page: Page, pages: list[list[_Item]], widths: list[float],
             size: float, width: float, height: float) -> None:
        pdf = self.pdf
        usable = width - 2 * MARGIN
        left = MARGIN + max(0.0, (usable - sum(widths)) / 2)
        footer = page.footer or ("第 &P 页 共 &N 页" if self.lang == "zh" else "Page &P of &N")
        numeric = {j for j in range(len(widths)) if j in sheet.numeric}
        for n, items in enumerate(pages, 1):
            pdf.add_page(orientation="L" if page.landscape else "P",
                         format=page.paper if page.paper in PAPER_MM else "A4")
            y = MARGIN
            for item in items:
                if item.kind == "heading":
                    self.text(MARGIN, y, usable, item.text, HEADING_PT, "C", bold=True)
                elif item.kind == "meta":
                    self.text(MARGIN, y, usable, item.text, META_PT, "L")
                elif item.kind == "note":
                    self.text(MARGIN, y, usable, item.text, NOTE_PT, "L", ink=NOTE_INK)
                elif item.kind == "signoff":
                    parts = item.text.split("\t")
                    for k, part in enumerate(parts):
                        self.text(MARGIN + k * usable / len(parts), y + 1.5,
                                  usable / len(parts), part, META_PT, "L")
                elif item.row is not None:
                    self.table_row(item.row, left, y, widths, size, numeric)
                y += item.height
            text = footer.replace("&P", str(n)).replace("&N", str(len(pages)))
            self.text(MARGIN, height - 11.0, usable, text, FOOTER_PT, "C")

    def text(self, x: float, y: float, w: float, text: str, size: float, align: str,
             bold: bool = False, ink: tuple[int, int, int] = (0, 0, 0)) -> None:
        from fpdf.enums import TextMode

        pdf = self.pdf
        self.font(size)
        pdf.set_text_color(*ink)
        pdf.set_xy(x, y)
        if not bold:
            pdf.cell(w, size * PT * LEADING, text, align=align)
            return
        # The font has no bold face: its outlines are stroked as well as filled, in a saved
        # graphics state (the text rendering mode outlives the text object otherwise).
        with pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=size * 0.012,
                               draw_color=ink):
            pdf.cell(w, size * PT * LEADING, text, align=align)

    def table_row(self, row: _Row, left: float, y: float, widths: Sequence[float],
                  size: float, numeric: set[int]) -> None:
        pdf = self.pdf
        fill = {"header": HEADER_FILL, "total": TOTAL_FILL, "flagged": FLAG_FILL}.get(row.kind)
        ink = FLAG_INK if row.kind == "flagged" else (0, 0, 0)
        x, col = left, 0
        for lines, span in zip(row.cells, row.spans or [1] * len(row.cells), strict=True):
            w = sum(widths[col:col + span])
            pdf.set_draw_color(*RULE)
            pdf.set_line_width(0.2)
            if fill:
                pdf.set_fill_color(*fill)
            pdf.rect(x, y, w, row.height, style="DF" if fill else "D")
            align = "C" if row.kind == "header" else ("R" if col in numeric else "L")
            for i, line in enumerate(lines):
                if line:
                    self.text(x + PAD_X, y + PAD_Y + i * size * PT * LEADING, w - 2 * PAD_X,
                              line, size, align, bold=row.kind in ("header", "total"), ink=ink)
            x += w
            col += span


def _split(row: _Row, room: float, size: float) -> list[_Row]:
    """A row taller than a page, in pieces that fit (its cells' lines continue)."""
    line = size * PT * LEADING
    fit = max(1, int((room - 2 * PAD_Y) // line))
    lines = max((len(c) for c in row.cells), default=1)
    if lines <= fit:
        return [row]
    return [_Row([c[k:k + fit] for c in row.cells], min(fit, lines - k) * line + 2 * PAD_Y,
                 row.kind, row.spans) for k in range(0, lines, fit)]


def write_pdf(sheets: Sequence[Sheet], path: str | Path, lang: str = "zh") -> PdfResult:
    """Write ``sheets`` to the PDF file ``path``, one or more pages per sheet."""
    writer = _Writer(lang)
    needed = _characters(sheets, ["第页共0123456789 Page of"])
    missing = needed - _cmap(str(BUILTIN_FONT))
    fallback = None
    if missing:
        fallback, missing = _fallback(missing)
        if fallback:
            writer.use_fallback(fallback)
    layouts = []
    for sheet in sheets:
        page = sheet.page or Page(sheet.title)
        short, long = PAPER_MM.get(page.paper, PAPER_MM["A4"])
        width, height = (long, short) if page.landscape else (short, long)
        pages, widths, size = writer.plan(sheet, page, width, height)
        writer.draw(sheet, page, pages, widths, size, width, height)
        layouts.append(SheetLayout(sheet.name, len(pages), round(size, 2)))
    if sheets:
        first = sheets[0].page or Page(sheets[0].title)
        writer.pdf.set_title(first.heading)
    try:
        writer.pdf.output(str(path))
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}",
                                 "Check that the directory exists and is writable.") from None
    return PdfResult(writer.pdf.pages_count, tuple(layouts),
                     "".join(sorted(map(chr, missing))), fallback)


def font_advice(result: PdfResult) -> str | None:
    """What to tell the user when some characters had no font (None: nothing to say)."""
    if not result.missing:
        return None
    shown = result.missing[:20] + ("…" if len(result.missing) > 20 else "")
    return (f"{len(result.missing)} character(s) not in the built-in font printed blank: "
            f"{shown}. Install a full CJK font (apt-get install {FONT_PACKAGE}) or set "
            f"{FONT_ENV}=/path/to/font.ttf, then write the PDF again.")


__all__ = ["BUILTIN_FONT", "FONT_ENV", "FONT_PACKAGE", "PdfResult", "SheetLayout",
           "font_advice", "write_pdf"]

