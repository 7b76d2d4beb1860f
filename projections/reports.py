"""The supervision ledger (督办台账) and petition statistics (信访工作统计), from the read model.

``supervision`` and ``statistics`` catch the read model up, take the cases as they stood at the
as-of date, and hand them to pure functions (``supervision_report``, ``statistics_figures``),
which implement the meanings in docs/read-side.md: periods by registration date in
Asia/Shanghai, inclusive; "closed", "open" and "overdue" judged at the end of the as-of day.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ledger.domain.policy import business_date
from ledger.errors import InputError
from ledger.storage.store import Store
from schemas.actions import Channel, NotAcceptedGround, Source

from .asof import as_of_rows
from .events import Day, ledger_policy
from .fold import CaseRow
from .readmodel import cases_registered, names, supervised_cases
from .readmodel import units as unit_rows
from .runner import catch_up

UNASSIGNED = "unassigned"
"""``by_unit`` key for cases with no assignment (yet)."""
CHANNELS = tuple(c.value for c in Channel)
SOURCES = tuple(s.value for s in Source)
GROUNDS = tuple(g.value for g in NotAcceptedGround)
UNSPECIFIED = "unspecified"
"""``not_accepted_by_ground`` key for decisions recorded without a ground (rules 1-2)."""
WRITTEN_CHANNELS = ("letter", "online", "fax", "mailbox")
"""Channels of a joint letter (联名信): a written petition of a group, counted apart from a
group visit (集体访, channel ``visit``)."""
COMPARE_MODES = ("previous", "year")


def today() -> date:
    """The current business date in Asia/Shanghai (the default as-of)."""
    return business_date(datetime.now(tz=UTC))


def share(part: int, whole: int) -> float | None:
    """The ratio unrounded (0.7894736842105263 = 15/19); None when there is nothing to divide
    by. Displays round once, from the counts (``ratio``), never from a rounded value (issue 17:
    15/19 rounded to 0.7895 and again to 79.0%)."""
    return part / whole if whole else None


def ratio(part: int, whole: int) -> dict[str, Any]:
    """An exact ratio for JSON: the counts behind it and its unrounded value."""
    return {"numerator": part, "denominator": whole, "value": share(part, whole)}


def organization(store: Store) -> dict[str, str] | None:
    """The top unit of the directory (the one without a parent, e.g. XX市公安局), whose name
    heads a printed report; None in a ledger without units. Catches the read model up (a
    no-op after the report's own catch-up)."""
    catch_up(store)
    roots = sorted((u.unit, u.name) for u in unit_rows(store) if not u.parent)
    return {"unit": roots[0][0], "name": roots[0][1]} if roots else None


# ---- supervision ledger -----------------------------------------------------------------------

def supervision(store: Store, as_of: date | None = None, *, date_from: date | None = None,
                date_to: date | None = None) -> dict[str, Any]:
    """The supervision ledger at the end of ``as_of`` (default today), optionally only cases
    whose (latest) supervision date lies in [date_from, date_to]."""
    as_of = as_of or today()
    if date_from and date_to and date_from > date_to:
        raise _backwards(date_from, date_to)
    catch_up(store)
    rows = as_of_rows(store, supervised_cases(store), as_of, ledger_policy(store))
    units, actors = names(store)
    report = supervision_report(rows, as_of, units, actors, date_from=date_from,
                                date_to=date_to)
    return {**report, "organization": organization(store)}


def supervision_report(rows: Iterable[CaseRow], as_of: date, units: dict[str, str],
                       actors: dict[str, str], *, date_from: date | None = None,
                       date_to: date | None = None) -> dict[str, Any]:
    """One row per case supervised by ``as_of`` (rows must be as of that date) and unit totals."""
    first, last = _iso(date_from) or "", min(_iso(date_to) or "9999", as_of.isoformat())
    chosen = sorted((r for r in rows
                     if r.supervised_on is not None and first <= r.supervised_on <= last),
                    key=lambda r: (r.supervised_on or "", r.case_no))
    out_rows = [_supervision_row(r, as_of, units, actors) for r in chosen]
    by_unit: dict[str, dict[str, int]] = {}
    for row in out_rows:
        unit = by_unit.setdefault(row["unit"] or UNASSIGNED, _unit_totals())
        _count_supervision(unit, row)
    totals = _unit_totals()
    for row in out_rows:
        _count_supervision(totals, row)
    return {
        "as_of": as_of.isoformat(),
        "period": {"from": _iso(date_from), "to": _iso(date_to)},
        "rows": out_rows,
        "by_unit": dict(sorted(by_unit.items(), key=lambda kv: _unit_order(kv[0]))),
        "totals": totals,
        "unit_names": {u: units[u] for u in sorted(by_unit) if u in units},
    }


def _supervision_row(r: CaseRow, as_of: date, units: dict[str, str],
                     actors: dict[str, str]) -> dict[str, Any]:
    due = r.supervision_due
    assert due is not None
    if r.closed_on is not None:
        on_time: bool | None = r.closed_on <= due
        overdue = max(0, days_between(due, r.closed_on))
    else:
        on_time, overdue = None, max(0, days_between(due, as_of.isoformat()))
    return {
        "case": r.case_no, "authority": r.supervision_authority,
        "supervised_at": r.supervised_on, "due": due,
        "form": r.supervision_form,
        "unit": r.unit, "unit_name": units.get(r.unit) if r.unit else None,
        "handler": r.handler, "handler_name": actors.get(r.handler) if r.handler else None,
        "leader": r.package_leader,
        "leader_name": actors.get(r.package_leader) if r.package_leader else None,
        "petitioner": r.petitioner, "petitioner_name": actors.get(r.petitioner),
        "summary": r.summary,
        "status": "closed" if r.closed_on is not None else "open",
        "closed_at": r.closed_on, "on_time": on_time, "overdue_days": overdue,
        "progress_reports": r.progress_count, "follow_ups": r.follow_up_count,
        "reminders": r.remind_count, "opinion": r.petitioner_opinion,
        "sign_form": r.petitioner_form,
        # 回告 (Art. 39-40): the latest report-back and whether one came by the due date
        "report_backs": r.report_back_count, "reported_back_on": r.report_back_on,
    }


def _backwards(date_from: date, date_to: date) -> InputError:
    return InputError(f"the period starts on {date_from}, after it ends on {date_to}",
                      "Give --from on or before --to.")


def _unit_totals() -> dict[str, int]:
    return {"supervised": 0, "closed": 0, "closed_on_time": 0, "overdue": 0}


def _count_supervision(totals: dict[str, int], row: dict[str, Any]) -> None:
    totals["supervised"] += 1
    totals["closed"] += row["status"] == "closed"
    totals["closed_on_time"] += row["on_time"] is True
    totals["overdue"] += row["overdue_days"] > 0


# ---- statistics ---------------------------------------------------------------------------------

def statistics(store: Store, date_from: date, date_to: date, as_of: date | None = None, *,
               compare: str = "previous") -> dict[str, Any]:
    """Statistics of the cases registered in [date_from, date_to], judged at ``as_of``, with the
    same figures for the comparison period (``previous`` of equal length, or the same period a
    ``year`` earlier) judged the same number of days after its end, and the change."""
    if date_from > date_to:
        raise _backwards(date_from, date_to)
    if compare not in COMPARE_MODES:
        raise InputError(f"unknown comparison {compare!r}", "Use previous or year.")
    as_of = as_of or today()
    catch_up(store)
    policy = ledger_policy(store)
    units, _ = names(store)

    def figures(start: date, end: date, at: date) -> dict[str, Any]:
        rows = as_of_rows(store, cases_registered(store, start, end), at, policy)
        return statistics_figures(rows, start, end, at, policy.categories, units,
                                  min_group=policy.min_group_persons)

    current = figures(date_from, date_to, as_of)
    prev_from, prev_to = comparison_period(date_from, date_to, compare)
    previous = figures(prev_from, prev_to, prev_to + (as_of - date_to))
    return {**current, "compare": compare, "previous": previous,
            "change": change(current, previous), "organization": organization(store)}


def statistics_figures(rows: Sequence[CaseRow], date_from: date, date_to: date, as_of: date,
                       categories: Sequence[str],
                       units: dict[str, str] | None = None, *,
                       min_group: int = 2) -> dict[str, Any]:
    """Every figure of one period; ``rows`` are the period's cases as of ``as_of``. A group
    petition has at least ``min_group`` persons (the policy's ``min_group_persons``; the
    contract's default 2 is "persons > 1", many offices count 5 or more)."""
    total = len(rows)
    repeat = [r for r in rows if r.repeat_of]
    first = [r for r in rows if not r.repeat_of]
    group = [r for r in rows if r.persons >= min_group]
    group_visits = [r for r in group if r.channel == "visit"]
    joint_letters = [r for r in group if r.channel in WRITTEN_CHANNELS]
    accepted = [r for r in rows if r.decision == "accepted"]
    refused = [r for r in rows if r.decision in ("not_accepted", "not_reaccepted")]
    closed_replied = [r for r in accepted if r.closed and r.replied_on is not None]
    reception = [r for r in rows if r.reception_day]
    on_spot = [r for r in reception if r.first_reply_served_on == r.registered_on]
    supervised = [r for r in rows if r.supervised_on is not None]
    packaged = [r for r in rows if r.package_leader is not None]
    closed = _count_if(lambda r: r.closed)
    desisted = _count_if(lambda r: r.desisted_on is not None)
    by_unit: dict[str, list[CaseRow]] = {}
    for r in rows:
        by_unit.setdefault(r.unit or UNASSIGNED, []).append(r)
    return {
        "period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
        "as_of": as_of.isoformat(),
        "total": total,
        "persons": sum(r.persons for r in rows),
        "by_channel": _tally(rows, "channel", CHANNELS),
        "by_source": _tally(rows, "source", SOURCES),
        "by_category": _tally(rows, "category", categories),
        "first_time": len(first), "first_time_closed": closed(first),
        "repeat": len(repeat), "repeat_closed": closed(repeat),
        "repeat_share": share(len(repeat), total),
        "group": {"batches": len(group), "persons": sum(r.persons for r in group)},
        "group_min_persons": min_group,
        "group_visits": {"batches": len(group_visits),
                         "persons": sum(r.persons for r in group_visits)},
        "joint_letters": {"batches": len(joint_letters),
                          "persons": sum(r.persons for r in joint_letters)},
        "accepted": len(accepted), "not_accepted": len(refused),
        "not_accepted_by_ground": _by_ground(refused),
        "undecided": total - len(accepted) - len(refused),
        "closed_replied": len(closed_replied),
        "in_handling": len(accepted) - len(closed_replied),
        "reply_rate": share(len(closed_replied), len(accepted)),
        "reception_day": {
            "cases": len(reception), "persons": sum(r.persons for r in reception),
            "repeat": sum(1 for r in reception if r.repeat_of),
            "answered_on_spot": len(on_spot), "deadline_reply": len(reception) - len(on_spot),
            "closed": closed(reception),
            "by_category": _tally(reception, "category", categories),
        },
        "supervised": len(supervised), "supervised_share": share(len(supervised), total),
        "supervised_closed": closed(supervised),
        "supervised_close_rate": share(closed(supervised), len(supervised)),
        "supervised_by_authority": _tally(supervised, "supervision_authority", SOURCES),
        "packaged": len(packaged), "packaged_closed": closed(packaged),
        "packaged_desisted": desisted(packaged),
        "desisted": desisted(rows),
        # the counts behind every ratio above, for exact figures (issue 17)
        "ratios": {"repeat_share": ratio(len(repeat), total),
                   "reply_rate": ratio(len(closed_replied), len(accepted)),
                   "supervised_share": ratio(len(supervised), total),
                   "supervised_close_rate": ratio(closed(supervised), len(supervised))},
        "by_unit": {unit: _unit_figures(by_unit[unit], categories)
                    for unit in sorted(by_unit, key=_unit_order)},
        "unit_names": {u: (units or {})[u] for u in sorted(by_unit) if u in (units or {})},
    }


def _unit_figures(rows: Sequence[CaseRow], categories: Sequence[str]) -> dict[str, Any]:
    accepted = [r for r in rows if r.decision == "accepted"]
    replied = sum(1 for r in accepted if r.closed and r.replied_on is not None)
    reception = [r for r in rows if r.reception_day]
    return {
        "cases": len(rows), "persons": sum(r.persons for r in rows),
        "by_channel": _tally(rows, "channel", CHANNELS),
        "by_source": _tally(rows, "source", SOURCES),
        "by_category": _tally(rows, "category", categories),
        "accepted": len(accepted), "closed_replied": replied,
        "reply_rate": share(replied, len(accepted)),
        "ratios": {"reply_rate": ratio(replied, len(accepted))},
        "supervised": sum(1 for r in rows if r.supervised_on is not None),
        "reception_day": {"cases": len(reception),
                          "persons": sum(r.persons for r in reception)},
    }


def _by_ground(refused: Iterable[CaseRow]) -> dict[str, int]:
    """Not accepted per coded ground (Art. 19-22): every ground (zeros included); a
    not_reaccepted decision is ``final_recheck``; decisions of rules 1-2 without a ground are
    ``unspecified`` (listed only when there are any)."""
    counts = dict.fromkeys(GROUNDS, 0)
    for r in refused:
        ground = r.ground or ("final_recheck" if r.decision == "not_reaccepted" else UNSPECIFIED)
        counts[ground] = counts.get(ground, 0) + 1
    return counts


def _count_if(test: Callable[[CaseRow], bool]) -> Callable[[Iterable[CaseRow]], int]:
    return lambda rows: sum(1 for r in rows if test(r))


def _tally(rows: Iterable[CaseRow], attr: str, known: Sequence[str]) -> dict[str, int]:
    """Counts per code: every known code (zeros included, in their order), then any others."""
    counts = dict.fromkeys(known, 0)
    for r in rows:
        code = getattr(r, attr)
        counts[code] = counts.get(code, 0) + 1
    return counts


def _unit_order(unit: str) -> tuple[bool, str]:
    return unit == UNASSIGNED, unit


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def days_between(first: Day, second: Day) -> int:
    """Calendar days from ``first`` to ``second`` (negative if second is earlier)."""
    return (date.fromisoformat(second) - date.fromisoformat(first)).days


# ---- comparison ----------------------------------------------------------------------------------

NOT_COMPARED = ("period", "as_of", "unit_names", "ratios", "organization", "group_min_persons")


def change(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """The change of every figure against the comparison period, shaped like the figures.

    Counts give ``{"previous", "delta", "pct"}`` (pct in percent, 1 place; None from zero);
    ratios (``*_rate``, ``*_share``) give ``{"previous", "delta"}`` with delta in ratio units,
    unrounded (a display rounds it once).
    """
    out: dict[str, Any] = {}
    for key, value in current.items():
        if key in NOT_COMPARED:
            continue
        before = previous.get(key)
        if isinstance(value, dict):
            out[key] = change(value, before if isinstance(before, dict) else {})
        elif key.endswith(("_rate", "_share")):
            delta = value - before if value is not None and before is not None else None
            out[key] = {"previous": before, "delta": delta}
        elif isinstance(value, int) and not isinstance(value, bool):
            base = before if isinstance(before, int) else 0
            pct = round((value - base) / base * 100, 1) if base else None
            out[key] = {"previous": base, "delta": value - base, "pct": pct}
    return out


def comparison_period(date_from: date, date_to: date, compare: str = "previous") -> \
        tuple[date, date]:
    """The period to compare with: the one just before of equal length (whole months when the
    period is whole months, so a year compares with the year before), or a year earlier."""
    if compare == "year":
        end = _add_months(date_to, -12)
        if _is_month_end(date_to):
            end = end.replace(day=monthrange(end.year, end.month)[1])
        return _add_months(date_from, -12), end
    if date_from.day == 1 and _is_month_end(date_to):
        months = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month + 1
        return _add_months(date_from, -months), date_from - timedelta(days=1)
    length = (date_to - date_from).days + 1
    return date_from - timedelta(days=length), date_from - timedelta(days=1)


def _is_month_end(day: date) -> bool:
    return day.day == monthrange(day.year, day.month)[1]


def _add_months(day: date, months: int) -> date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return day.replace(year=year, month=month, day=min(day.day, monthrange(year, month)[1]))
