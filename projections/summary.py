"""A short narrative of the year's figures, in the seed reports' own phrasing (used by `demo`)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .labels import label
from .sheets import Ratio, exact, percent


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{percent(value, 0)}%"


def _rate(report: dict[str, Any], key: str) -> str:
    """A ratio of the report rounded once, half up, from the counts behind it."""
    value = exact(report, key)
    if isinstance(value, Ratio):
        fraction = value.fraction()
        return "—" if fraction is None else f"{percent(fraction, 0)}%"
    return _pct(value)


def _moved(delta: int, previous: int, signed: bool = False) -> str:
    """The change against the previous period as a percentage of it, rounded once."""
    if not previous:
        return "—"
    return f"{percent(Fraction(delta if signed else abs(delta), previous), 0, signed)}%"


def statistics_summary(report: dict[str, Any], lang: str = "zh") -> list[str]:
    """Lines like the seed report's “共接到来信76起，接待群众来访76起……办结回复率为91%”."""
    channels = report["by_channel"]
    change = report.get("change", {}).get("total", {})
    previous = report.get("previous", {}).get("total")
    top = sorted(report["by_category"].items(), key=lambda kv: -kv[1])[:3]
    rd = report["reception_day"]
    if lang == "zh":
        by_channel = "，".join(f"{label('channel', c, lang)}{n}起" for c, n in channels.items()
                              if n)
        lines = [f"共受理登记信访{report['total']}起{report['persons']}人次（{by_channel}）"
                 + (f"，比上期{previous}起{'下降' if (change.get('delta') or 0) < 0 else '上升'}"
                    f"{_moved(change.get('delta') or 0, previous)}" if previous else "") + "；",
                 f"受理{report['accepted']}起，不予受理{report['not_accepted']}起；已办结回复"
                 f"{report['closed_replied']}起，办结回复率为{_rate(report, 'reply_rate')}；",
                 f"初信初访{report['first_time']}起，重信重访{report['repeat']}起，"
                 f"占{_rate(report, 'repeat_share')}；集体访{report['group']['batches']}批"
                 f"{report['group']['persons']}人次；",
                 f"局领导接访{rd['cases']}起{rd['persons']}人次，当面答复解决"
                 f"{rd['answered_on_spot']}起，限期办结回告{rd['deadline_reply']}起；",
                 f"列入督办{report['supervised']}起，占{_rate(report, 'supervised_share')}；"
                 f"领导包案{report['packaged']}起，办结{report['packaged_closed']}起，"
                 f"停访息诉{report.get('packaged_desisted', report['desisted'])}起；",
                 "反映较多的问题：" + "，".join(f"{label('category', c, lang)}{n}起"
                                          for c, n in top) + "。"]
        return lines
    by_channel = ", ".join(f"{label('channel', c, lang)} {n}" for c, n in channels.items() if n)
    return [
        f"{report['total']} petitions, {report['persons']} persons ({by_channel})"
        + (f"; {previous} in the previous period "
           f"({_moved(change.get('delta') or 0, previous, signed=True)})" if previous
           else "") + ";",
        f"accepted {report['accepted']}, not accepted {report['not_accepted']}; closed with a "
        f"reply {report['closed_replied']}, reply rate {_rate(report, 'reply_rate')};",
        f"first petitions {report['first_time']}, repeat {report['repeat']} "
        f"({_rate(report, 'repeat_share')}); group petitions {report['group']['batches']} "
        f"batches, {report['group']['persons']} persons;",
        f"reception days: {rd['cases']} cases, {rd['answered_on_spot']} answered on the spot, "
        f"{rd['deadline_reply']} with a deadline;",
        f"supervised {report['supervised']} ({_rate(report, 'supervised_share')}); leader "
        f"packages {report['packaged']}, closed {report['packaged_closed']}, desisted "
        f"{report.get('packaged_desisted', report['desisted'])};",
        "most frequent: " + ", ".join(f"{label('category', c, lang)} {n}" for c, n in top) + ".",
    ]
