"""What the pages show, in people's terms: a case's timeline, its deadlines, closure and
triggers; report sheets as tables; a bundle as readable cases; a public key's fingerprint.

Everything is read through the ledger server's own reads (``LedgerServer.history`` …), so a
page sees exactly what the API lets its reader see, and worded by the same functions as the
CLI's text output (``projections.event_details``, ``named``, ``beijing_time``,
``reason_text``, the report sheets).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger import (
    Check,
    ClosureRecord,
    Envelope,
    PublicKey,
    Statement,
    closure_record,
    closure_record_from_document,
    history_from_document,
)
from projections import (
    Sheet,
    accountability_sheets,
    beijing_time,
    cell_text,
    closure_record_sheets,
    event_details,
    label,
    named,
    reason_text,
)

from .text import word

CASE_NUMBER = re.compile(r"^XF-\d{4}-\d{6}$")
LATE_SECONDS = 86400   # a gap over a day between business and recorded time is shown


def check_title(number: int, lang: str) -> str:
    try:
        return Check(number).label(lang)
    except ValueError:
        return str(number)


@dataclass
class EventView:
    """One event of a timeline, ready to show."""

    seq: int
    anchor: str
    action: str
    ok: bool
    judged: bool
    failures: list[tuple[int, str, str]]          # (check, its title, the reason)
    business: str
    recorded: str
    late_days: int | None
    actor: str
    role: str | None
    unit: str | None
    details: list[tuple[str, str, str]]           # (field, label, value)
    links: list[tuple[str, str]] = field(default_factory=list)   # evidence (text, href)
    hash: str = ""
    position: int | None = None
    key: str = ""


def event_views(case: str, events: Sequence[Any], lang: str, names: Mapping[str, str],
                units: Mapping[str, str], *, judged: bool = True,
                base: str = "/web/cases/") -> list[EventView]:
    """The events of ``case`` (``HistoryEvent``-shaped) as the timeline shows them."""
    out = []
    for e in events:
        lag = e.recorded_lag_seconds
        links = []
        for ref in (e.data or {}).get("evidence", []) if e.type == "reverse_check_finding" \
                else []:
            if isinstance(ref, dict) and isinstance(ref.get("stream"), str):
                stream, seq = ref["stream"], ref.get("seq")
                href = f"#e{seq}" if stream == case else f"{base}{stream}#e{seq}"
                links.append((f"{stream}#{seq}", href))
        out.append(EventView(
            seq=e.seq, anchor=f"e{e.seq}", action=label("action", e.type, lang),
            ok=not e.failures, judged=judged,
            failures=[(int(n), check_title(int(n), lang), reason_text(reason, lang))
                      for n, reason in e.failures],
            business=beijing_time(e.at), recorded=beijing_time(e.recorded_at),
            late_days=lag // 86400 if isinstance(lag, int) and lag >= LATE_SECONDS else None,
            actor=named(e.actor, names), role=label("role", e.role, lang) if e.role else None,
            unit=named(e.unit, units) if e.unit else None,
            details=[d for d in event_details(e.type, e.data or {}, lang, names, units)
                     if not (links and d[0] == "evidence")], links=links,
            hash=getattr(e, "hash", ""), position=getattr(e, "position", None),
            key=getattr(e, "key", "")))
    return out


@dataclass
class Deadline:
    name: str
    day: str | None
    state: str


def deadline_views(deadlines: Mapping[str, date | None], status: str | None, as_of: date,
                   lang: str) -> list[Deadline]:
    """The case's current deadlines, each with how it stands at the end of ``as_of``."""
    out = []
    settled = status in ("closed", "final", "not_accepted", "not_reaccepted")
    for kind, day in deadlines.items():
        if day is None:
            out.append(Deadline(label("deadline", kind, lang), None, word("no_deadline", lang)))
            continue
        days = (day - as_of).days
        if settled and kind != "review_request":
            state = label("status", status, lang)
        elif days > 0:
            state = word("days_left", lang, days=days)
        elif days == 0:
            state = word("due_today", lang)
        else:
            state = word("days_past", lang, days=-days)
        out.append(Deadline(label("deadline", kind, lang), day.isoformat(), state))
    return out


@dataclass
class CaseView:
    case: str
    status: str | None
    ok: bool
    events: list[EventView]
    deadlines: list[Deadline]
    closure: Sheet | None
    closure_valid: bool | None
    redacted: bool


def case_view(server: Any, reader: Any, case: str, lang: str, as_of: date) -> CaseView:
    """A case as its page shows it: the server's judged history (access checked there) and
    its closure record (judged with the server's shared checked view)."""
    document = server.history(reader, case)
    history = history_from_document(document)
    names, units = document.get("names", {}), document.get("units", {})
    record = closure_of(server, reader, case)
    closure = None
    if record.closed_at is not None:
        closure = closure_record_sheets(record, lang, names)[0]
    hidden = server.access.hides_petitioner(reader, case)
    return CaseView(case, document.get("status"), bool(document.get("ok")),
                    event_views(case, history.events, lang, names, units),
                    deadline_views(history.deadlines, document.get("status"), as_of, lang),
                    closure, record.valid if record.closed_at is not None else None, hidden)


def closure_of(server: Any, reader: Any, case: str) -> ClosureRecord:
    """``LedgerServer.closure`` with the server's shared checked view (adapter: the server's
    own method judges the directory afresh on every call, about half a second each)."""
    with server.read_lock:
        server.access.refresh()
        if not server.access.may_see(reader, case):
            raise server._not_yours(case)
        record = closure_record(server.reads, case, server.read_view)
        directory = server.read_view.directory()
        names = {a.actor: a.name for a in directory.actors.values()}
        document = server.access.redact(reader, case, record.to_json(), names)
    return closure_record_from_document(document)


@dataclass
class TriggerView:
    code: str
    name: str
    on: str
    due: str
    days_late: str
    responsible: list[str]
    evidence: list[tuple[str, str]]
    detail: str


def trigger_views(case: str, entry: Mapping[str, Any], report: Mapping[str, Any], lang: str,
                  actors: Mapping[str, str], units: Mapping[str, str]) -> list[TriggerView]:
    """A case's triggers with their responsible people (name, role, unit, responsibility)
    and evidence events (anchors on the case page), worded by the accountability sheet."""
    sheet = accountability_sheets({**report, "cases": [entry]}, lang, with_custody=False)[0]
    rows = [row for row in sheet.rows if row and row[0] == case]
    out = []
    for t, row in zip(entry["triggers"], rows, strict=False):
        people = [f"{named(p['actor'], actors)} · {label('role', p.get('role'), lang)}"
                  + (f" · {named(p['unit'], units)}" if p.get("unit") else "")
                  + (f" · {label('responsibility', p['responsibility'], lang)}"
                     if p.get("responsibility") else "")
                  for p in t.get("responsible", [])]
        evidence = [(f"{ref['stream']}#{ref['seq']}",
                     f"#e{ref['seq']}" if ref["stream"] == case else
                     f"/web/cases/{ref['stream']}#e{ref['seq']}")
                    for ref in t.get("evidence", [])
                    if isinstance(ref, dict) and "stream" in ref and "seq" in ref]
        out.append(TriggerView(t["code"], label("trigger", t["code"], lang), t.get("on") or "—",
                               t.get("due") or "—",
                               "" if t.get("days_late") is None else str(t["days_late"]),
                               people, evidence, cell_text(row[-1]) if row else ""))
    return out


# ---- bundles ------------------------------------------------------------------------------------

@dataclass
class ShownEvent:
    """One bundle event in the shape :func:`event_views` reads."""

    seq: int
    at: str
    recorded_at: str
    type: str
    actor: str
    role: str
    unit: str | None
    data: dict[str, Any]
    failures: list[tuple[int, str]]
    recorded_lag_seconds: int | None
    hash: str = ""
    position: int | None = None
    key: str = ""


def bundle_cases(data: bytes, report: Any) -> tuple[list[tuple[str, list[ShownEvent]]],
                                                    dict[str, str], dict[str, str], bool]:
    """A verified bundle's cases as events to show, offline: names from the bundle's own
    directory events, each event's verdict from ``report`` (as ``verify-bundle --show``).
    Returns (cases, actor names, unit names, whether the events were judged)."""
    try:
        bundle = json.loads(data)
        entries = list(bundle["events"])
    except (ValueError, KeyError, TypeError):
        return [], {}, {}, False
    failed: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for failure in report.failures:
        if failure.stream is not None and failure.seq is not None:
            failed.setdefault((failure.stream, failure.seq), []).append(
                (int(failure.check), failure.reason))
    names: dict[str, str] = {}
    units: dict[str, str] = {}
    actor_unit: dict[str, Any] = {}
    actor_roles: dict[str, list[str]] = {}
    streams: dict[str, list[ShownEvent]] = {}
    for entry in entries:
        try:
            raw = base64.b64decode(entry["envelope"], validate=True)
            envelope = Envelope.from_bytes(raw)
            statement = Statement.from_signed_bytes(envelope.signed, strict=False)
        except (ValueError, KeyError, TypeError):
            continue
        payload = statement.data if isinstance(statement.data, dict) else {}
        if statement.type == "unit.add":
            units[str(payload.get("unit"))] = str(payload.get("name", ""))
        elif statement.type == "actor.add":
            actor = str(payload.get("actor"))
            names[actor] = str(payload.get("name", ""))
            actor_unit[actor] = payload.get("unit")
            actor_roles[actor] = [str(r) for r in payload.get("roles", [])]
        if not statement.stream.startswith("XF-"):
            continue
        try:
            recorded = envelope.recorded_at.isoformat(timespec="seconds")
            lag: int | None = int((envelope.recorded_at - statement.business_time
                                   ).total_seconds())
        except (ValueError, TypeError, ArithmeticError, AttributeError):
            recorded, lag = "", None
        roles = actor_roles.get(statement.actor, [])
        streams.setdefault(statement.stream, []).append(ShownEvent(
            statement.seq, statement.at, recorded, statement.type, statement.actor,
            roles[0] if len(roles) == 1 else "", actor_unit.get(statement.actor), payload,
            failed.get((statement.stream, statement.seq), []), lag,
            hashlib.sha256(envelope.signed).hexdigest(), None, statement.key))
    judged = not any(f.stream is None for f in report.failures)
    order = [c for c in (report.cases or []) if c in streams] + \
        [c for c in streams if c not in (report.cases or [])]
    return [(case, streams[case]) for case in order], names, units, judged


# ---- keys ------------------------------------------------------------------------------------

def fingerprint(raw: bytes) -> str:
    """A public key's fingerprint as ``xinfang key new`` prints it."""
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def public_key_facts(raw: bytes) -> dict[str, str]:
    """PEM, key id and fingerprint of a raw Ed25519 public key (ValueError if not 32 bytes)."""
    key = PublicKey.from_raw(raw)
    return {"pem": key.to_pem().decode("ascii"), "key_id": key.key_id,
            "fingerprint": fingerprint(raw)}


def qr_svg(text: str) -> str:
    """A QR code of ``text`` as SVG (segno, rendered here)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="svg", scale=4, border=2,
                                                   title="QR", xmldecl=False, svgns=True,
                                                   nl=False)
    return out.getvalue().decode("utf-8")


__all__ = ["CASE_NUMBER", "CaseView", "Deadline", "EventView", "ShownEvent", "TriggerView",
           "bundle_cases", "case_view", "check_title", "closure_of", "deadline_views",
           "event_views", "fingerprint", "public_key_facts", "qr_svg", "trigger_views"]
