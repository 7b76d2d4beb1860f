"""``case list``: cases from the read model as they stood at the end of a business day, narrowed
by the filters of the CLI contract (cli.md: petitioner, unit, handler, status, overdue,
category, dates, supervised, trigger), and its one sheet."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from ledger.errors import InputError
from ledger.storage.store import Store

from .accountability import accountability_report
from .asof import as_of_rows
from .events import ledger_policy
from .fold import CaseRow
from .labels import label
from .readmodel import cases_to_list, names
from .reports import organization, today
from .runner import catch_up
from .sheets import Sheet, page

STATUSES = ("open", "closed", "desisted")


def case_status(row: CaseRow) -> str:
    """停访息诉 (desisted) outranks closing: the petitioner has stopped petitioning."""
    if row.desisted_on is not None:
        return "desisted"
    return "closed" if row.closed_on is not None else "open"


def is_overdue(row: CaseRow, day: str) -> bool:
    """Past the handling deadline at the end of ``day`` with no reply (as the
    handling-overdue trigger judges it, projections/triggers.py)."""
    return (case_status(row) == "open" and row.replied_on is None
            and row.handling_due is not None and day > row.handling_due)


def case_list(store: Store, as_of: date | None = None, *, petitioner: str | None = None,
              unit: str | None = None, handler: str | None = None, status: str | None = None,
              overdue: bool = False, category: str | None = None,
              date_from: date | None = None, date_to: date | None = None,
              supervised: bool = False, trigger: str | None = None) -> dict[str, Any]:
    """The cases matching every filter given, by case number, as of the end of ``as_of``."""
    as_of = as_of or today()
    day = as_of.isoformat()
    if date_from and date_to and date_from > date_to:
        raise InputError(f"--from {date_from} is after --to {date_to}",
                         "Give the earlier date first.")
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status {status!r}", f"Use one of: {', '.join(STATUSES)}.")
    catch_up(store)
    policy = ledger_policy(store)
    units, actors = names(store)
    for value, known, what, hint in ((unit, units, "unit", "a unit id, e.g. county-01"),
                                     (handler, actors, "handler", "an actor id"),
                                     (petitioner, actors, "petitioner", "an actor id")):
        if value is not None and value not in known:
            raise InputError(f"unknown {what} {value!r}", f"Give {hint} from the directory.")
    if category is not None and category not in policy.categories:
        raise InputError(f"unknown category {category!r}",
                         "Use a category of the ledger's policy: "
                         + ", ".join(policy.categories) + ".")
    rows = as_of_rows(store, cases_to_list(
        store, day, petitioner=petitioner, category=category,
        registered_from=date_from.isoformat() if date_from else None,
        registered_to=date_to.isoformat() if date_to else None), as_of, policy)
    flagged: set[str] | None = None
    if trigger is not None:
        report = accountability_report(store, as_of, integrity=False)
        flagged = {c["case"] for c in report["cases"]
                   if any(t["code"] == trigger for t in c["triggers"])}
    chosen = [r for r in rows
              if (unit is None or r.unit == unit) and (handler is None or r.handler == handler)
              and (status is None or case_status(r) == status)
              and (not overdue or is_overdue(r, day))
              and (not supervised or r.supervised_on is not None)
              and (flagged is None or r.case_no in flagged)]
    filters = {"petitioner": petitioner, "unit": unit, "handler": handler, "status": status,
               "overdue": overdue, "category": category,
               "from": date_from.isoformat() if date_from else None,
               "to": date_to.isoformat() if date_to else None,
               "supervised": supervised, "trigger": trigger}
    return {"as_of": day, "filters": filters, "organization": organization(store),
            "cases": [_entry(r, day, units, actors) for r in chosen]}


def directory_names(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    """Display names from the read model, caught up first: ({unit: name}, {actor: name})."""
    catch_up(store)
    return names(store)


def _entry(r: CaseRow, day: str, units: Mapping[str, str],
           actors: Mapping[str, str]) -> dict[str, Any]:
    return {"case": r.case_no, "registered_on": r.registered_on,
            "petitioner": r.petitioner, "petitioner_name": actors.get(r.petitioner),
            "category": r.category, "unit": r.unit,
            "unit_name": units.get(r.unit) if r.unit else None,
            "handler": r.handler, "handler_name": actors.get(r.handler) if r.handler else None,
            "status": case_status(r), "handling_due": r.handling_due,
            "supervised": r.supervised_on is not None, "overdue": is_overdue(r, day)}


_HEADERS = {"zh": ["案件编号", "登记日期", "信访人", "内容分类", "承办单位", "承办人", "状态",
                   "办理期限", "督办"],
            "en": ["case", "registered", "petitioner", "category", "unit", "handler", "status",
                   "handling due", "supervised"]}
_STATUS = {"desisted": ("停访息诉", "desisted")}
_YES = {"zh": ("是", "否"), "en": ("yes", "no")}


def case_list_sheets(report: Mapping[str, Any], lang: str = "zh") -> list[Sheet]:
    """One sheet, one row per case; overdue rows flagged."""
    zh = lang == "zh"
    yes, no = _YES["zh" if zh else "en"]

    def status(code: str) -> str:
        pair = _STATUS.get(code)
        return (pair[0] if zh else pair[1]) if pair else label("status", code, lang)

    cases = report["cases"]
    rows: list[list[Any]] = [
        [c["case"], c["registered_on"], c["petitioner_name"] or c["petitioner"],
         label("category", c["category"], lang), c["unit_name"] or c["unit"],
         c["handler_name"] or c["handler"], status(c["status"]), c["handling_due"],
         yes if c["supervised"] else no] for c in cases]
    title = (f"案件列表（截至 {report['as_of']}，共 {len(cases)} 件）" if zh
             else f"Cases (as of {report['as_of']}, {len(cases)})")
    meta = [f"截至：{report['as_of']}" if zh else f"As of: {report['as_of']}",
            f"共 {len(cases)} 件" if zh else f"{len(cases)} cases"]
    chosen = _filters_line(report.get("filters") or {}, lang)
    if chosen:
        meta.append(chosen)
    printed = page(report, "信访案件列表" if zh else "Petition cases", meta, lang)
    return [Sheet("cases" if not zh else "案件列表", title, _HEADERS["zh" if zh else "en"], rows,
                  flagged=frozenset(i for i, c in enumerate(cases) if c["overdue"]),
                  page=printed)]


_FILTER_NAMES = {"petitioner": ("信访人", "petitioner"), "unit": ("承办单位", "unit"),
                 "handler": ("承办人", "handler"), "status": ("状态", "status"),
                 "overdue": ("超期", "overdue"), "category": ("内容分类", "category"),
                 "from": ("登记自", "registered from"), "to": ("登记至", "registered to"),
                 "supervised": ("督办", "supervised"), "trigger": ("倒查触发事项", "trigger")}


def _filters_line(filters: Mapping[str, Any], lang: str) -> str:
    """The filters a listing was made with, for its printed heading."""
    zh = lang == "zh"
    parts = []
    for key, value in filters.items():
        if value in (None, False, ""):
            continue
        name = _FILTER_NAMES.get(key, (key, key))[0 if zh else 1]
        shown = {"category": lambda v: label("category", v, lang),
                 "status": lambda v: label("status", v, lang),
                 "trigger": lambda v: label("trigger", v, lang)}.get(key, str)(value)
        parts.append(name if value is True else f"{name} {shown}")
    if not parts:
        return ""
    return ("筛选：" if zh else "Filters: ") + ("；" if zh else "; ").join(parts)
