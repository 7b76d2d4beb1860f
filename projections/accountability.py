"""The accountability report (倒查): every reverse-check trigger per case with who was
responsible and the events that prove it, the inspectors' own reverse-checks, and counts per
actor and per unit.

``accountability`` is the I/O shell: it catches the read model up, picks the cases (every case
registered by the as-of day, or those a unit handled), runs ``verify`` for the ``integrity``
trigger, and streams the cases' events up to as-of, 500 cases a query, into the pure core
``report_from_case_files``, which applies the rules of ``projections.triggers`` and aggregates.
``accountability_sheets`` lays the report out for text, CSV and XLSX (``projections.sheets``).

Imports marked as a migration (``xinfang import --migration NAME``: paper records entered after
the fact) raise no ``late_entry`` per event; ``migrations`` lists each batch once instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from ledger.domain.actions import custody_steps
from ledger.domain.cases import REVERSE_CHECK_ACTIONS
from ledger.errors import InputError
from ledger.log.statement import DIRECTORY_STREAM
from ledger.storage.store import Store
from ledger.verification.verify import Failure, VerifyReport, verify_ledger

from .events import LedgerEvent, decode, ledger_policy
from .fold import ActorRow, CaseRow
from .labels import LABELS, label
from .readmodel import actors, cases_assigned_to, cases_registered_by, counted_events, names
from .reports import today
from .runner import catch_up
from .sheets import Cell, Page, Sheet, page
from .triggers import (
    CODES,
    BadEvent,
    CaseFile,
    Context,
    Trigger,
    detail_text,
    evaluate,
    integrity_triggers,
    migration_of,
    recorded_time,
    recorded_us,
    ref,
)

UNATTRIBUTED = "unattributed"
"""``by_unit`` key for triggers with nobody (or nobody with a unit) responsible."""
CHUNK = 500
"""Cases whose events are read per query (and held in memory at once)."""
CUSTODY = custody_steps()
"""The steps of a case's chain of custody, from the action registry (the reverse-check events
are listed separately)."""
CUSTODY_FIELDS = ("decision", "ground", "unit", "handler", "authority", "due", "form", "leader",
                  "days", "outcome", "resolution", "served_at", "notified_at", "received_at",
                  "opinion", "override_reason", "level", "start", "end", "reason")

EventHash = Callable[[str, int], str | None]
"""Looks up the stored hash of (stream, seq): to check the evidence an inspector cited."""


# ---- the I/O shell ----------------------------------------------------------------------------

def accountability_report(store: Store, as_of: date | None = None, *, unit: str | None = None,
                   integrity: bool = True,
                   verified: VerifyReport | None = None) -> dict[str, Any]:
    """The accountability report at the end of ``as_of`` (default today, Asia/Shanghai).

    ``unit`` keeps the cases ever assigned to that unit by as-of. ``integrity`` runs
    ``verify_ledger`` (the slow part on a large ledger) unless a ``verified`` result is given.
    """
    as_of = as_of or today()
    day = as_of.isoformat()
    catch_up(store)
    policy = ledger_policy(store)
    unit_names, actor_names = names(store)
    if unit is not None and unit not in unit_names:
        raise InputError(f"unknown unit {unit!r}",
                         "Give a unit id from the directory, e.g. county-01.")
    registered = cases_registered_by(store, day)
    scope = [r.case_no for r in registered] if unit is None else handled_by(store, unit, day)
    if verified is None and integrity:
        verified = verify_ledger(store)
    ctx = Context(day, policy, directory(store), named_by(registered),
                  bad_events(store, verified) if verified is not None else {})
    files = (f for case_no, events in load_events(store, scope, day)
             if (f := CaseFile.fold(case_no, events, policy)) is not None)
    return report_from_case_files(
        files, ctx, unit=unit, integrity=integrity_summary(verified),
        unit_names=unit_names, actor_names=actor_names, event_hash=_stored_hash(store))


def handled_by(store: Store, unit: str, day: str) -> list[str]:
    """Cases assigned to ``unit`` on or before ``day`` (at any time: a transfer does not clear
    the responsibility for what happened while the unit had the case)."""
    return cases_assigned_to(store, unit, day)


def directory(store: Store) -> dict[str, ActorRow]:
    """Every actor with unit and roles (for attributing responsibility)."""
    return {row.actor: row for row in actors(store)}


def named_by(rows: Iterable[CaseRow]) -> dict[str, list[CaseRow]]:
    """Earlier case → the later cases naming it in ``repeat_of`` (the reflow question)."""
    out: dict[str, list[CaseRow]] = {}
    for row in rows:
        for earlier in row.repeat_of:
            out.setdefault(earlier, []).append(row)
    return out


def load_events(store: Store, case_nos: Sequence[str],
                day: str) -> Iterator[tuple[str, list[LedgerEvent]]]:
    """Each case's events dated on or before ``day`` (the registration always), in seq order,
    ``CHUNK`` cases a query, so memory holds one chunk. Only the events the checked log
    accepted (``readmodel.counted_events``): one that fails a check never counts — it is an
    ``integrity`` trigger, never a step of the case (docs/integrity.md, "One verdict")."""
    for start in range(0, len(case_nos), CHUNK):
        chunk = list(case_nos[start:start + CHUNK])
        grouped: dict[str, list[LedgerEvent]] = {}
        for position, stream, seq, topic, state in counted_events(store, chunk):
            event = decode(position, stream, seq, topic, state)
            if event is not None and (event.type == "register" or event.on <= day):
                grouped.setdefault(stream, []).append(event)
        for case_no in chunk:
            if case_no in grouped:
                yield case_no, grouped[case_no]


def bad_events(store: Store, verified: VerifyReport) -> dict[str, list[BadEvent]]:
    """``verify``'s failures per case stream, one entry per failing event, each with the actor
    and hash of the event as it is stored now."""
    grouped: dict[tuple[str, int | None], list[Failure]] = {}
    for failure in verified.failures:
        if failure.stream is not None and failure.stream != DIRECTORY_STREAM:
            grouped.setdefault((failure.stream, failure.seq), []).append(failure)
    out: dict[str, list[BadEvent]] = {}
    for (stream, seq), failures in sorted(grouped.items(), key=lambda kv: (kv[0][0],
                                                                            kv[0][1] or 0)):
        record = store.event_at(stream, seq) if seq is not None else None
        event = decode(record.position, stream, record.seq, record.type, record.state) \
            if record is not None else None
        out.setdefault(stream, []).append(BadEvent(
            stream, seq, failures[0].position,
            tuple(dict.fromkeys(f.check for f in failures)),
            tuple(dict.fromkeys(f.reason for f in failures)),
            event.actor if event else None, event.hash if event else None,
            record.type if record else None))
    return out


def integrity_summary(verified: VerifyReport | None) -> dict[str, Any]:
    """Whether ``verify`` ran, its verdict, and the failures that belong to no case."""
    if verified is None:
        return {"checked": False, "ok": None, "failures": None, "outside_cases": []}
    return {"checked": True, "ok": verified.ok, "failures": len(verified.failures),
            "truncated": verified.truncated_failures,
            "outside_cases": [f.to_json() for f in verified.failures
                              if f.stream is None or f.stream == DIRECTORY_STREAM]}


def _stored_hash(store: Store) -> EventHash:
    def lookup(stream: str, seq: int) -> str | None:
        record = store.event_at(stream, seq)
        event = decode(record.position, stream, seq, record.type, record.state) \
            if record is not None else None
        return event.hash if event is not None else None
    return lookup


# ---- the pure core ----------------------------------------------------------------------------

def report_from_case_files(files: Iterable[CaseFile], ctx: Context, *, unit: str | None = None,
                          integrity: Mapping[str, Any] | None = None,
                          unit_names: Mapping[str, str] | None = None,
                          actor_names: Mapping[str, str] | None = None,
                          event_hash: EventHash | None = None) -> dict[str, Any]:
    """The report: one entry per case with a trigger or a reverse-check (by case number), and
    the counts per responsible actor and unit. Without a ``unit`` filter, a verification
    failure in a stream that is no case as of the date still gets an entry."""
    lookup = event_hash or (lambda stream, seq: None)
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    batches = MigrationBatches()
    for f in files:
        seen.add(f.case_no)
        batches.add(f)
        triggers = evaluate(f, ctx)
        checks = reverse_checks(f, lookup, triggers)
        if triggers or checks:
            cases.append(case_entry(f, triggers, checks))
    if unit is None:
        for stream in sorted(set(ctx.bad_events) - seen):
            cases.append({"case": stream, "registered_on": None, "unit": None, "handler": None,
                          "closed_on": None, "reverse_checks": [], "custody": [],
                          "triggers": [t.to_json() for t in integrity_triggers(stream, ctx)]})
    cases.sort(key=lambda c: c["case"])
    actors = {a: ctx.actors[a].unit for a in ctx.actors}
    by_actor, by_unit = aggregate(cases, actors)
    by_code = dict.fromkeys(CODES, 0)
    for entry in cases:
        for trigger in entry["triggers"]:
            by_code[trigger["code"]] += 1
    names_a, names_u = actor_names or {}, unit_names or {}
    migrations = batches.to_json()
    mentioned = {*by_unit, *(c["unit"] for c in cases),
                 *(slot["unit"] for slot in by_actor.values())} & set(names_u)
    return {
        "as_of": ctx.as_of,
        "unit": unit,
        "codes": list(CODES),
        "integrity": dict(integrity or integrity_summary(None)),
        "cases": cases,
        "migrations": migrations,
        "by_actor": by_actor,
        "by_unit": by_unit,
        "by_responsibility": by_responsibility(cases),
        "totals": {"cases": sum(1 for c in cases if c["triggers"]),
                   "triggers": sum(by_code.values()), "by_code": by_code,
                   "reverse_checks": sum(len(c["reverse_checks"]) for c in cases)},
        "actor_names": {a: names_a[a] for a in sorted(_mentioned_actors(
            cases, by_actor, migrations)) if a in names_a},
        "unit_names": {u: names_u[u] for u in sorted(mentioned)},
    }


def _mentioned_actors(cases: Iterable[Mapping[str, Any]], by_actor: Mapping[str, Any],
                      migrations: Iterable[Mapping[str, Any]] = ()) -> set[str]:
    """Every actor the report names: responsible, custody steps, reverse-checks."""
    found = set(by_actor)
    found.update(a for batch in migrations for a in batch["signers"])
    for entry in cases:
        found.update(step["actor"] for step in entry["custody"])
        for check in entry["reverse_checks"]:
            found.update(a for a in (check["opened_by"], check["concluded_by"]) if a)
            found.update(x for f in check["findings"] for x in (f["by"], f["actor"]))
    return found


def case_entry(f: CaseFile, triggers: Sequence[Trigger],
               checks: list[dict[str, Any]]) -> dict[str, Any]:
    row = f.row
    return {"case": f.case_no, "registered_on": row.registered_on, "unit": row.unit,
            "handler": row.handler, "closed_on": row.closed_on,
            "triggers": [t.to_json() for t in triggers], "reverse_checks": checks,
            "custody": custody(f)}


def custody(f: CaseFile) -> list[dict[str, Any]]:
    """The chain of custody: who did each step, when (business date, and when it was
    recorded), with the event reference and the migration batch it came in, if any."""
    return [{"type": e.type, "on": e.on, "actor": e.actor, **ref(e).to_json(),
             "recorded_at": _recorded_text(e), "migration": migration_of(e),
             "details": {k: e.data[k] for k in CUSTODY_FIELDS if k in e.data}}
            for e in f.of(*CUSTODY)]


def _recorded_text(event: LedgerEvent) -> str | None:
    moment = recorded_time(event)
    return moment.isoformat(timespec="seconds") if moment is not None else None


class MigrationBatches:
    """Each migration batch once: its case events in the report's scope, the cases, who
    signed them, and the business-time and recorded-time ranges they span."""

    def __init__(self) -> None:
        self._batches: dict[str, dict[str, Any]] = {}

    def add(self, f: CaseFile) -> None:
        for e in f.events:
            name = migration_of(e)
            if name is None:
                continue
            at = datetime.fromisoformat(e.at)
            recorded = recorded_us(e)
            batch = self._batches.get(name)
            if batch is None:
                batch = self._batches[name] = {
                    "events": 0, "cases": set(), "signers": set(), "business": [at, e, at, e],
                    "recorded": [recorded, e, recorded, e],
                    "positions": [e.position, e.position]}
            batch["events"] += 1
            batch["cases"].add(f.case_no)
            batch["signers"].add(e.actor)
            _widen(batch["business"], at, e)
            _widen(batch["recorded"], recorded, e)
            batch["positions"] = [min(batch["positions"][0], e.position),
                                  max(batch["positions"][1], e.position)]

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for name, b in self._batches.items():
            business, recorded = b["business"], b["recorded"]
            out.append({"name": name, "events": b["events"], "cases": len(b["cases"]),
                        "signers": sorted(b["signers"]),
                        "business_from": business[1].at, "business_to": business[3].at,
                        "recorded_from": _recorded_text(recorded[1]),
                        "recorded_to": _recorded_text(recorded[3]),
                        "first_position": b["positions"][0],
                        "last_position": b["positions"][1]})
        return sorted(out, key=lambda b: (b["first_position"], b["name"]))


def _widen(span: list[Any], value: Any, event: LedgerEvent) -> None:
    """Keep [lowest, its event, highest, its event]."""
    if value < span[0]:
        span[0:2] = [value, event]
    if value > span[2]:
        span[2:4] = [value, event]


def reverse_checks(f: CaseFile, event_hash: EventHash,
                   triggers: Sequence[Trigger] = ()) -> list[dict[str, Any]]:
    """The inspectors' reverse-checks on the case, one per opening: reason, findings, measures,
    status. Each cited event is checked against the ledger (``verified``), and each finding
    against the rules (``confirmed``: a trigger of that code names that actor; None when the
    fault is no trigger code)."""
    rounds: list[dict[str, Any]] = []
    for e in f.of(*REVERSE_CHECK_ACTIONS):
        if e.type == "reverse_check_open":
            rounds.append({"opened_by": e.actor, "opened_on": e.on, "reason": e.data["reason"],
                           "ref": ref(e).to_json(), "findings": [], "status": "open",
                           "concluded_by": None, "concluded_on": None, "measures": None,
                           "note": None, "conclude_ref": None})
        elif not rounds:
            continue   # the rules refuse this; verify names it
        elif e.type == "reverse_check_finding":
            evidence = [{**cited, "verified": _cited_ok(f, cited, event_hash)}
                        for cited in e.data.get("evidence", [])]
            actor, fault = e.data["actor"], e.data["fault"]
            confirmed = any(t.code == fault and any(p.actor == actor for p in t.responsible)
                            for t in triggers) if fault in CODES else None
            rounds[-1]["findings"].append({"by": e.actor, "on": e.on, "actor": actor,
                                           "fault": fault, "evidence": evidence,
                                           "confirmed": confirmed, "ref": ref(e).to_json(),
                                           "responsibility": e.data.get("responsibility")})
        else:
            # coded measures (rules 3) or the free text of rules 1-2, with the note
            rounds[-1].update(status="concluded", concluded_by=e.actor, concluded_on=e.on,
                              measures=e.data["measures"], note=e.data.get("note"),
                              conclude_ref=ref(e).to_json())
    return rounds


def _cited_ok(f: CaseFile, cited: Mapping[str, Any], event_hash: EventHash) -> bool:
    own = f.event(cited["seq"]) if cited["stream"] == f.case_no else None
    stored = own.hash if own is not None else event_hash(cited["stream"], cited["seq"])
    return stored == cited["hash"]


def aggregate(cases: Sequence[Mapping[str, Any]],
              units: Mapping[str, str | None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Counts per responsible actor and per responsible unit: triggers per code, total, cases;
    an actor's ``findings`` count the inspectors' findings naming them. A trigger counts once
    per actor and once per unit among those responsible."""
    by_actor: dict[str, dict[str, Any]] = {}
    by_unit: dict[str, dict[str, Any]] = {}

    def actor_entry(actor: str) -> dict[str, Any]:
        return by_actor.setdefault(actor, {"unit": units.get(actor), "total": 0,
                                           "triggers": {}, "cases": [], "findings": 0,
                                           "direct": 0, "leadership": 0})

    for entry in cases:
        case = entry["case"]
        for trigger in entry["triggers"]:
            people = trigger["responsible"]
            for actor in dict.fromkeys(p["actor"] for p in people):
                slot = actor_entry(actor)
                _count(slot, trigger["code"], case)
                # direct responsibility (handler, signer) counts before leadership (unit or
                # package leader) when one trigger names the actor in both capacities
                kinds = {_responsibility(p) for p in people if p["actor"] == actor}
                slot["direct" if "direct" in kinds else "leadership"] += 1
            for unit in dict.fromkeys(p["unit"] or UNATTRIBUTED for p in people) or \
                    [UNATTRIBUTED]:
                slot = by_unit.setdefault(unit, {"total": 0, "triggers": {}, "cases": [],
                                                 "actors": []})
                _count(slot, trigger["code"], case)
                for p in people:
                    if (p["unit"] or UNATTRIBUTED) == unit and p["actor"] not in slot["actors"]:
                        slot["actors"].append(p["actor"])
        for check in entry["reverse_checks"]:
            for finding in check["findings"]:
                actor_entry(finding["actor"])["findings"] += 1
    for slot in by_unit.values():
        slot["actors"].sort()
    order = {code: i for i, code in enumerate(CODES)}
    for slot in (*by_actor.values(), *by_unit.values()):
        slot["triggers"] = dict(sorted(slot["triggers"].items(), key=lambda kv: order[kv[0]]))
    return (dict(sorted(by_actor.items())),
            dict(sorted(by_unit.items(), key=lambda kv: (kv[0] == UNATTRIBUTED, kv[0]))))


def _responsibility(person: Mapping[str, Any]) -> str:
    return str(person.get("responsibility") or "direct")


def by_responsibility(cases: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Triggers per kind of responsibility: ``direct`` (the handler or signer) and
    ``leadership`` (the unit leader, the package leader), each a count of the triggers naming
    someone in that capacity and of the actors named; ``none`` counts triggers naming nobody
    (e.g. a closure after a recorded refusal to sign, no staff fault by itself)."""
    out: dict[str, Any] = {"direct": {"triggers": 0, "actors": []},
                           "leadership": {"triggers": 0, "actors": []}, "none": 0}
    for entry in cases:
        for trigger in entry["triggers"]:
            people = trigger["responsible"]
            if not people:
                out["none"] += 1
            for kind in dict.fromkeys(_responsibility(p) for p in people):
                out[kind]["triggers"] += 1
                actors = out[kind]["actors"]
                actors.extend(p["actor"] for p in people if _responsibility(p) == kind
                              and p["actor"] not in actors)
    for kind in ("direct", "leadership"):
        out[kind]["actors"].sort()
    return out


def _count(slot: dict[str, Any], code: str, case: str) -> None:
    slot["total"] += 1
    slot["triggers"][code] = slot["triggers"].get(code, 0) + 1
    if case not in slot["cases"]:
        slot["cases"].append(case)


# ---- layout -------------------------------------------------------------------------------------

def accountability_sheets(report: dict[str, Any], lang: str = "zh", *,
                          with_custody: bool = True, organization: str | None = None,
                          prepared: date | None = None) -> list[Sheet]:
    """Triggers, reverse-checks, per actor, per unit, and (for files) the chain of custody;
    each printed under ``organization`` (the top unit's name) with the as-of line."""
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    actors, units = report.get("actor_names", {}), report.get("unit_names", {})
    scope = f" · {a('unit_filter')} {units.get(report['unit'], report['unit'])}" \
        if report.get("unit") else ""
    title = f"{a('title')}（{a('as_of')} {report['as_of']}）{scope}" if lang == "zh" else \
        f"{a('title')} ({a('as_of')} {report['as_of']}){scope}"
    sep = "：" if lang == "zh" else ": "
    meta = [f"{a('as_of')}{sep}{report['as_of']}"]
    if report.get("unit"):
        meta.append(f"{a('unit_filter')}{sep}{units.get(report['unit'], report['unit'])}")
    name = label("print", "accountability", lang)
    sheets = [_trigger_sheet(report, title, lang, actors, units),
              _migration_sheet(report, lang, actors),
              _reverse_check_sheet(report, lang, actors),
              _actor_sheet(report, lang, actors, units), _unit_sheet(report, lang, units)]
    if with_custody:
        sheets.append(_custody_sheet(report, lang, actors))

    def printed(sheet: Sheet, first: bool) -> Page:
        heading = name if first else (f"{name}（{sheet.name}）" if lang == "zh" else
                                      f"{name} ({sheet.name})")
        return page(report, heading, meta, lang, organization=organization, prepared=prepared)

    return [replace(sheet, page=printed(sheet, n == 0)) for n, sheet in enumerate(sheets)]


def _totals_row(rows: list[list[Cell]], first: int, cases: int, total_label: str,
                lead: int) -> list[Cell]:
    """合计: every count column summed; the cases column counts distinct cases instead."""
    out: list[Cell] = [total_label, *([None] * (lead - 1))]
    out += [sum(v for row in rows if isinstance(v := row[j], int))
            for j in range(first, len(rows[0]))]
    out[cases] = None
    return out


def _who(people: Sequence[Mapping[str, Any]], lang: str, actors: Mapping[str, str]) -> str:
    def role(code: str) -> str:
        return label("role", code, lang) if code in LABELS["role"] else \
            label("accountability", code, lang)
    parts = [f"{actors.get(p['actor'], p['actor'])}（{role(p['role'])}）" if lang == "zh" else
             f"{actors.get(p['actor'], p['actor'])} ({role(p['role'])})" for p in people]
    return ("、" if lang == "zh" else ", ").join(parts) or label("accountability", "none", lang)


def _refs_text(refs: Sequence[Mapping[str, Any]], case: str, lang: str) -> str:
    bad = label("accountability", "bad_ref", lang)
    return " ".join(("#" if r["stream"] == case else f"{r['stream']}#") + str(r["seq"])
                    + ("" if r.get("verified", True) else bad) for r in refs)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _trigger_sheet(report: dict[str, Any], title: str, lang: str, actors: Mapping[str, str],
                   units: Mapping[str, str]) -> Sheet:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    columns = ("case", "code", "on", "due", "days_late", "responsible", "units", "evidence",
               "detail")
    rows: list[list[Cell]] = []
    flagged = set()
    for entry in report["cases"]:
        for t in entry["triggers"]:
            unit_ids = dict.fromkeys(p["unit"] for p in t["responsible"] if p["unit"])
            if t["code"] == "integrity":
                flagged.add(len(rows))
            rows.append([entry["case"], label("trigger", t["code"], lang), _day(t["on"]),
                         _day(t["due"]), t["days_late"], _who(t["responsible"], lang, actors),
                         "、".join(units.get(u, u) for u in unit_ids) if lang == "zh" else
                         ", ".join(units.get(u, u) for u in unit_ids),
                         _refs_text(t["evidence"], entry["case"], lang),
                         detail_text(t["code"], t.get("variant"), t["facts"], lang)])
    return Sheet(a("triggers"), title, [a(c) for c in columns], rows,
                 frozenset({columns.index("days_late")}), frozenset(flagged),
                 _integrity_notes(report, lang))


def _integrity_notes(report: dict[str, Any], lang: str) -> list[str]:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    state = report["integrity"]
    if not state["checked"]:
        return [a("integrity_skipped")]
    if state["ok"]:
        return [a("integrity_ok")]
    notes = [a("integrity_failed").format(n=state["failures"])]
    notes += [f"{a('outside_cases')}: {f['stream'] or '—'} @{f['position']} "
              f"(check {f['check']}): {f['reason']}" for f in state["outside_cases"]]
    return notes


def _migration_sheet(report: dict[str, Any], lang: str, actors: Mapping[str, str]) -> Sheet:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    columns = ("migration", "events", "cases", "signers", "business_from", "business_to",
               "recorded_from", "recorded_to")
    sep = "、" if lang == "zh" else ", "
    rows: list[list[Cell]] = [
        [b["name"], b["events"], b["cases"], sep.join(actors.get(s, s) for s in b["signers"]),
         b["business_from"][:16], b["business_to"][:16], (b["recorded_from"] or "?")[:16],
         (b["recorded_to"] or "?")[:16]]
        for b in report.get("migrations", [])]
    return Sheet(a("migrations"), f"{a('title')} · {a('migrations')}", [a(c) for c in columns],
                 rows, frozenset({1, 2}), notes=[] if rows else [a("no_migrations")])


def _reverse_check_sheet(report: dict[str, Any], lang: str,
                         actors: Mapping[str, str]) -> Sheet:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    columns = ("case", "opened_by", "opened_on", "reason", "finding_actor", "fault", "evidence",
               "confirmed", "measures", "status")
    rows: list[list[Cell]] = []
    for entry in report["cases"]:
        for check in entry["reverse_checks"]:
            head: list[Cell] = [entry["case"], actors.get(check["opened_by"], check["opened_by"]),
                                _day(check["opened_on"]), check["reason"]]
            tail: list[Cell] = [measures_text(check, lang), a(check["status"])]
            for finding in check["findings"] or [None]:
                if finding is None:
                    rows.append([*head, None, None, None, None, *tail])
                    continue
                confirmed = finding["confirmed"]
                rows.append([*head, actors.get(finding["actor"], finding["actor"]),
                             label("trigger", finding["fault"], lang),
                             _refs_text(finding["evidence"], entry["case"], lang),
                             None if confirmed is None else
                             label("field", "yes" if confirmed else "no", lang), *tail])
    return Sheet(a("reverse_checks"), a("reverse_checks"), [a(c) for c in columns], rows)


def measures_text(check: Mapping[str, Any], lang: str) -> str | None:
    """A conclusion's measures by their labels (or the free text of rules 1-2) and its note."""
    measures = check.get("measures")
    if measures is None:
        return None
    sep = "、" if lang == "zh" else ", "
    text = sep.join(label("measure", m, lang) for m in measures) \
        if isinstance(measures, list) else str(measures)
    note = check.get("note")
    return f"{text}（{note}）" if note and lang == "zh" else \
        (f"{text} ({note})" if note else text)


def _codes_used(report: dict[str, Any]) -> list[str]:
    return [code for code, n in report["totals"]["by_code"].items() if n]


def _actor_sheet(report: dict[str, Any], lang: str, actors: Mapping[str, str],
                 units: Mapping[str, str]) -> Sheet:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    codes = _codes_used(report)
    rows: list[list[Cell]] = []
    ranked = sorted(report["by_actor"].items(), key=lambda kv: (-kv[1]["total"], kv[0]))
    for actor, slot in ranked:
        name = actors.get(actor)
        rows.append([f"{name} ({actor})" if name else actor,
                     units.get(slot["unit"], slot["unit"]) if slot["unit"] else None,
                     *(slot["triggers"].get(c, 0) for c in codes), slot["total"],
                     slot.get("direct", 0), slot.get("leadership", 0),
                     len(slot["cases"]), slot["findings"]])
    headers = [a("actor"), a("unit"), *(label("trigger", c, lang) for c in codes), a("total"),
               label("responsibility", "direct", lang),
               label("responsibility", "leadership", lang), a("cases"), a("findings")]
    totals: frozenset[int] = frozenset()
    if rows:
        row = _totals_row(rows, 2, len(headers) - 2, a("total"), 2)
        row[len(headers) - 2] = _distinct_cases(report["by_actor"].values())
        rows.append(row)
        totals = frozenset({len(rows) - 1})
    return Sheet(a("by_actor"), f"{a('title')} · {a('by_actor')}", headers, rows,
                 frozenset(range(2, len(headers))), totals=totals)


def _distinct_cases(slots: Iterable[Mapping[str, Any]]) -> int:
    return len({case for slot in slots for case in slot["cases"]})


def _unit_sheet(report: dict[str, Any], lang: str, units: Mapping[str, str]) -> Sheet:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    codes = _codes_used(report)
    rows: list[list[Cell]] = [
        [a(UNATTRIBUTED) if unit == UNATTRIBUTED else units.get(unit, unit),
         *(slot["triggers"].get(c, 0) for c in codes), slot["total"], len(slot["cases"])]
        for unit, slot in report["by_unit"].items()]
    headers = [a("unit"), *(label("trigger", c, lang) for c in codes), a("total"), a("cases")]
    totals: frozenset[int] = frozenset()
    if rows:
        row = _totals_row(rows, 1, len(headers) - 1, a("total"), 1)
        row[len(headers) - 1] = _distinct_cases(report["by_unit"].values())
        rows.append(row)
        totals = frozenset({len(rows) - 1})
    return Sheet(a("by_unit"), f"{a('title')} · {a('by_unit')}", headers, rows,
                 frozenset(range(1, len(headers))), totals=totals)


def _custody_sheet(report: dict[str, Any], lang: str, actors: Mapping[str, str]) -> Sheet:
    a = lambda key: label("accountability", key, lang)  # noqa: E731
    rows: list[list[Cell]] = []
    for entry in report["cases"]:
        for step in entry["custody"]:
            details = ", ".join(f"{k}={v}" for k, v in step["details"].items())
            rows.append([entry["case"], f"#{step['seq']}", label("action", step["type"], lang),
                         _day(step["on"]), actors.get(step["actor"], step["actor"]),
                         details or None, step["hash"]])
    headers = [a("case"), a("ref"), a("step"), a("on"), label("field", "actor", lang),
               a("details"), "hash"]
    return Sheet(a("custody"), f"{a('title')} · {a('custody')}", headers, rows)
