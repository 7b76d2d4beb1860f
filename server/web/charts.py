"""Bar charts as SVG, drawn on the server (no chart library, no script).

Horizontal bars, one per label (Chinese labels read better beside a bar than under it), an
optional second series (the comparison period) as a thinner bar under each, the value at the
bar's end. Every text is escaped; the chart carries a ``<title>`` and ``<desc>`` for screen
readers, and the page shows the same figures in its tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

FONT = ("system-ui, -apple-system, 'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', "
        "'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif")
BAR = 18
GAP = 10
COLORS = ("#2f5d8a", "#b0bccb")


def _text_width(text: str) -> float:
    """Rough width in px at 13px: CJK characters are about twice as wide as Latin ones."""
    return sum(13.0 if ord(ch) > 0x2E80 else 7.2 for ch in text)


def _shown(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value * 100:.1f}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


def bar_chart(title: str, items: Sequence[tuple[str, float | None]], *, percent: bool = False,
              compare: Sequence[float | None] | None = None,
              series: tuple[str, str] | None = None, width: int = 560) -> Markup:
    """An SVG bar chart of ``items`` ((label, value) pairs); ``compare`` a second value per
    item (drawn under it, named by ``series``); ``percent``: values are ratios 0..1."""
    values = [v or 0 for _, v in items] + [v or 0 for v in (compare or [])]
    top = max(values, default=0) or 1
    if percent:
        top = max(top, 1.0)
    label_w = min(200.0, max((_text_width(label) for label, _ in items), default=40) + 12)
    value_w = 64
    plot = max(width - label_w - value_w, 80)
    step = BAR + GAP + (BAR // 2 + 2 if compare is not None else 0)
    legend = 24 if compare is not None and series else 0
    height = 30 + legend + step * len(items) + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'font-family="{escape(FONT)}" font-size="13">',
           f"<title>{escape(title)}</title>",
           "<desc>" + escape("; ".join(
               f"{label}: {_shown(v, percent)}" +
               (f" / {_shown(compare[i], percent)}" if compare is not None else "")
               for i, (label, v) in enumerate(items))) + "</desc>",
           f'<text x="0" y="18" font-size="15" font-weight="bold" fill="#222">'
           f"{escape(title)}</text>"]
    y = 30
    if legend and series:
        for n, name in enumerate(series):
            x = label_w + n * 160
            out.append(f'<rect x="{x:.0f}" y="{y + 2}" width="12" height="12" '
                       f'fill="{COLORS[n]}"/>')
            out.append(f'<text x="{x + 18:.0f}" y="{y + 13}" fill="#333">{escape(name)}</text>')
        y += legend
    for i, (label, value) in enumerate(items):
        bar = plot * (value or 0) / top
        out.append(f'<text x="{label_w - 8:.0f}" y="{y + BAR - 5}" text-anchor="end" '
                   f'fill="#222">{escape(label)}</text>')
        out.append(f'<rect x="{label_w:.0f}" y="{y}" width="{bar:.1f}" height="{BAR}" '
                   f'fill="{COLORS[0]}"/>')
        out.append(f'<text x="{label_w + bar + 6:.1f}" y="{y + BAR - 5}" fill="#222">'
                   f"{escape(_shown(value, percent))}</text>")
        if compare is not None:
            other = compare[i]
            y2 = y + BAR + 2
            bar2 = plot * (other or 0) / top
            out.append(f'<rect x="{label_w:.0f}" y="{y2}" width="{bar2:.1f}" '
                       f'height="{BAR // 2}" fill="{COLORS[1]}"/>')
            out.append(f'<text x="{label_w + bar2 + 6:.1f}" y="{y2 + BAR // 2}" '
                       f'font-size="11" fill="#555">{escape(_shown(other, percent))}</text>')
        y += step
    out.append("</svg>")
    return Markup("".join(out))


__all__ = ["bar_chart"]
