"""The case list behind the web page: the read model's ``case list``, indexed in memory.

Each :class:`Snapshot` is ``projections.case_list`` for one as-of day — the same rows, the same
open/closed/overdue/supervised judgements as ``xinfang case list`` — taken whole once per log
position and then searched, filtered, sorted and paged in memory: a page of a 100,000-case
ledger costs set intersections and a slice, not a query of every row (docs/web.md, "Case
list"). Nothing here replays the log per request.

A snapshot is rebuilt in a background thread when the log has moved (the page says which log
position it shows meanwhile), at most once per twice the last build's duration, so a busy
server on a huge ledger does not spend its time rebuilding.

Two adapters fill what ``case_list`` does not give yet (docs/web.md, "Adapters"):

* channel, source and summary come from each case's registration event as stored, parsed
  incrementally (``RegisterFacts``) for the cases the read model lists;
* the reverse-check triggers come from ``projections.accountability_report`` (as ``case list
  --trigger`` does), computed in the background on first use (:class:`TriggerSet`): it is
  slow on a large ledger.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ledger import SHANGHAI, Envelope, LedgerError, Statement, Store, open_store
from projections import accountability_report, case_list, directory_names

log = logging.getLogger("xinfang.web")

#: Filters matched exactly, each with an index (field of the case_list entry).
EXACT = ("unit", "handler", "status", "category", "channel", "source", "petitioner")
FLAGS = ("supervised", "overdue")
SORTS = ("case", "registered", "due", "unit", "handler", "status")
PER_PAGE = (25, 50, 100, 200)
KEEP = 3   # snapshots kept (as-of days)


def today() -> date:
    """Today in Asia/Shanghai (the default as-of day, as the CLI's)."""
    return datetime.now(SHANGHAI).date()


def _sort_key(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return {
        "case": lambda r: r["case"],
        "registered": lambda r: (r["registered_on"] or "", r["case"]),
        "due": lambda r: (r["handling_due"] or "9999-99-99", r["case"]),
        "unit": lambda r: (r["unit_name"] or r["unit"] or "\uffff", r["case"]),
        "handler": lambda r: (r["handler_name"] or r["handler"] or "\uffff", r["case"]),
        "status": lambda r: (r["status"], r["case"]),
    }[name]


@dataclass
class Query:
    """What the list page asks for (validated by the page)."""

    case: str | None = None            # case number, or part of it
    petitioner: str | None = None      # name or id, or part of either
    exact: dict[str, str] = field(default_factory=dict)   # EXACT field → value
    flags: frozenset[str] = frozenset()                   # FLAGS set
    date_from: str | None = None
    date_to: str | None = None
    trigger: str | None = None
    sort: str = "case"
    desc: bool = True
    page: int = 1
    per: int = 50


@dataclass
class Result:
    total: int
    rows: list[dict[str, Any]]
    page: int
    pages: int


@dataclass
class Snapshot:
    """``case_list`` of one as-of day at one log position, indexed."""

    as_of: str
    position: int
    rows: list[dict[str, Any]]
    made: float
    seconds: float
    by_case: dict[str, int] = field(default_factory=dict)
    index: dict[tuple[str, Any], set[int]] = field(default_factory=dict)
    by_day: list[tuple[str, int]] = field(default_factory=list)
    _orders: dict[str, list[int]] = field(default_factory=dict)
    _ranks: dict[str, list[int]] = field(default_factory=dict)
    _values: dict[str, list[str]] = field(default_factory=dict)
    _visible: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            self.by_case[row["case"]] = i
            for name in EXACT:
                value = row.get(name)
                if value is not None:
                    self.index.setdefault((name, value), set()).add(i)
            for name in FLAGS:
                if row.get(name):
                    self.index.setdefault((name, True), set()).add(i)
            self.by_day.append((row["registered_on"] or "", i))
        self.by_day.sort()

    def values(self, name: str) -> list[str]:
        """The values a field takes in this snapshot (for the filter form; cached)."""
        with self.lock:
            if name not in self._values:
                self._values[name] = sorted(
                    {str(value) for (field_name, value) in self.index if field_name == name})
            return self._values[name]

    def order(self, sort: str) -> tuple[list[int], list[int]]:
        """Row indexes in ``sort`` order (ascending) and each row's rank in it (cached)."""
        with self.lock:
            if sort not in self._orders:
                key = _sort_key(sort)
                order = sorted(range(len(self.rows)), key=lambda i: key(self.rows[i]))
                rank = [0] * len(order)
                for n, i in enumerate(order):
                    rank[i] = n
                self._orders[sort], self._ranks[sort] = order, rank
            return self._orders[sort], self._ranks[sort]

    def visible(self, reader: str, version: int, may_see: Callable[[str], bool]) -> set[int]:
        """The rows a reader who does not see every case may see (cached per access state)."""
        key = (reader, version)
        with self.lock:
            found = self._visible.get(key)
        if found is None:
            found = {i for i, row in enumerate(self.rows) if may_see(row["case"])}
            with self.lock:
                if len(self._visible) > 256:
                    self._visible.clear()
                self._visible[key] = found
        return found

    def query(self, q: Query, *, visible: set[int] | None = None,
              flagged: set[str] | None = None,
              hidden: Callable[[str], bool] = lambda case: False) -> Result:
        """One page of the rows matching every filter of ``q`` (and ``visible``; ``flagged``:
        the cases with ``q.trigger``), in ``q.sort`` order."""
        sets: list[set[int]] = []
        if visible is not None:
            sets.append(visible)
        for name, value in q.exact.items():
            sets.append(self.index.get((name, value), set()))
        for name in q.flags:
            sets.append(self.index.get((name, True), set()))
        if q.date_from or q.date_to:
            lo = bisect.bisect_left(self.by_day, (q.date_from or "", -1))
            hi = bisect.bisect_right(self.by_day, (q.date_to or "\uffff", len(self.rows)))
            sets.append({i for _, i in self.by_day[lo:hi]})
        if flagged is not None:
            sets.append({self.by_case[c] for c in flagged if c in self.by_case})
        if q.case:
            wanted = q.case.strip().upper()
            exact = self.by_case.get(wanted)
            sets.append({exact} if exact is not None else
                        {i for i, row in enumerate(self.rows) if wanted in row["case"]})
        if q.petitioner:
            text = q.petitioner.strip()
            sets.append({i for i, row in enumerate(self.rows)
                         if (text in (row["petitioner"] or "") or
                             text in (row["petitioner_name"] or ""))
                         and not hidden(row["case"])})
        matches: set[int] | None = None
        for found in sorted(sets, key=len):
            matches = set(found) if matches is None else matches & found
            if not matches:
                break
        order, rank = self.order(q.sort)
        total = len(self.rows) if matches is None else len(matches)
        pages = max(1, -(-total // q.per))
        page = min(max(q.page, 1), pages)
        start = (page - 1) * q.per
        chosen: list[int]
        if matches is None:
            n = len(order)
            chosen = [order[n - 1 - k] for k in range(start, min(start + q.per, n))] \
                if q.desc else order[start:start + q.per]
        elif total * 8 < len(self.rows):
            chosen = sorted(matches, key=rank.__getitem__, reverse=q.desc)[start:start + q.per]
        else:
            walk: Iterable[int] = reversed(order) if q.desc else order
            chosen = []
            skipped = 0
            for i in walk:
                if i in matches:
                    if skipped < start:
                        skipped += 1
                        continue
                    chosen.append(i)
                    if len(chosen) == q.per:
                        break
        return Result(total, [self.rows[i] for i in chosen], page, pages)


class RegisterFacts:
    """Channel, source and summary of every case, from its registration event as stored
    (an incremental pass over the rows written since the last one)."""

    def __init__(self) -> None:
        self.after = -(2**63)
        self.facts: dict[str, tuple[str | None, str | None, str | None]] = {}

    def refresh(self, store: Store) -> None:
        for rows in store.iter_rows(batch=5000, after=self.after):
            for position, stream, seq, _topic, state in rows:
                self.after = max(self.after, position)
                if seq != 1 or not stream.startswith("XF-"):
                    continue
                try:
                    data = Statement.from_signed_bytes(Envelope.from_bytes(state).signed,
                                                       strict=False).data
                except (ValueError, LedgerError):
                    continue
                if isinstance(data, dict):
                    self.facts[stream] = tuple(  # type: ignore[assignment]
                        v if isinstance(v, str) else None
                        for v in (data.get("channel"), data.get("source"), data.get("summary")))


@dataclass
class TriggerSet:
    """The accountability report of one as-of day (integrity not re-verified), by case."""

    as_of: str
    position: int
    report: dict[str, Any]
    by_case: dict[str, dict[str, Any]]
    made: float

    def flagged(self, code: str) -> set[str]:
        return {case for case, entry in self.by_case.items()
                if any(t["code"] == code for t in entry["triggers"])}


class CaseIndex:
    """Snapshots of the case list and of the triggers, kept current in a background thread."""

    def __init__(self, location: Any) -> None:
        self.location = location
        self.poll = open_store(location)     # log head checks, from request threads
        self.poll_lock = threading.Lock()
        self.work = open_store(location)     # builds, one at a time
        self.build_lock = threading.Lock()
        self.facts = RegisterFacts()
        self.snapshots: OrderedDict[str, Snapshot] = OrderedDict()
        self.triggers: OrderedDict[str, TriggerSet] = OrderedDict()
        self.names: tuple[int, dict[str, str], dict[str, str]] = (-1, {}, {})
        self.jobs: list[tuple[str, date]] = []
        self.wake = threading.Condition()
        self.last_build = 0.0
        self.last_seconds = 0.0
        self.stopping = False
        self.child: Any = None
        self.thread = threading.Thread(target=self._run, name="xinfang-web-index", daemon=True)
        self.thread.start()

    def close(self) -> None:
        with self.wake:
            self.stopping = True
            self.wake.notify_all()
        child = self.child
        if child is not None and child.is_alive():
            child.terminate()
        self.thread.join(5)
        with self.build_lock:
            self.work.close()
        with self.poll_lock:
            self.poll.close()

    def head(self) -> int:
        """The log's last position now."""
        with self.poll_lock:
            return self.poll.max_position()

    # ---- the case list ------------------------------------------------------------------

    def snapshot(self, as_of: date | None = None) -> tuple[Snapshot, int]:
        """The case list as of ``as_of`` (today by default) and the log head: a snapshot
        made now if there is none for that day, else the latest (a newer one is made in the
        background when the log has moved since)."""
        day = as_of or today()
        key = day.isoformat()
        head = self.head()
        snap = self.snapshots.get(key)
        if snap is None:
            with self.build_lock:
                snap = self.snapshots.get(key)
                if snap is None:
                    snap = self._build(day)
        elif snap.position < head:
            self._schedule("cases", day)
        return snap, head

    def _build(self, day: date) -> Snapshot:
        """Make a snapshot (with ``build_lock`` held)."""
        started = time.perf_counter()
        position = self.work.max_position()
        report = case_list(self.work, day)
        self.facts.refresh(self.work)
        rows = []
        for entry in report["cases"]:
            channel, source, summary = self.facts.facts.get(entry["case"], (None, None, None))
            rows.append({**entry, "channel": channel, "source": source, "summary": summary})
        seconds = time.perf_counter() - started
        snap = Snapshot(day.isoformat(), position, rows, time.time(), seconds)
        self.snapshots[snap.as_of] = snap
        self.snapshots.move_to_end(snap.as_of)
        while len(self.snapshots) > KEEP:
            self.snapshots.popitem(last=False)
        self.last_build, self.last_seconds = time.monotonic(), seconds
        return snap

    # ---- triggers ------------------------------------------------------------------------

    def trigger_set(self, as_of: date | None = None) -> TriggerSet | None:
        """The triggers as of ``as_of`` if computed (None: computing now, in the background;
        a newer set is computed when the log has moved)."""
        day = as_of or today()
        found = self.triggers.get(day.isoformat())
        if found is None or found.position < self.head():
            self._schedule("triggers", day)
        return found

    def _build_triggers(self, day: date) -> None:
        """The accountability report, computed in a child process (minutes on a large
        ledger: this keeps the server's own interpreter free for requests)."""
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=False)
        child = context.Process(target=_triggers_in_child, args=(self.location,
                                day.isoformat(), theirs), name="xinfang-web-triggers",
                                daemon=True)
        child.start()
        theirs.close()
        self.child = child
        try:
            while not ours.poll(0.5):
                if self.stopping or not child.is_alive():
                    if ours.poll(0):
                        break
                    raise RuntimeError("the trigger computation stopped"
                                       f" (exit code {child.exitcode})")
            outcome = ours.recv()
        finally:
            ours.close()
            child.join(5)
            self.child = None
        if isinstance(outcome, str):
            raise RuntimeError(outcome)
        position, report = outcome
        by_case = {entry["case"]: entry for entry in report["cases"]}
        made = TriggerSet(day.isoformat(), position, report, by_case, time.time())
        self.triggers[made.as_of] = made
        self.triggers.move_to_end(made.as_of)
        while len(self.triggers) > KEEP:
            self.triggers.popitem(last=False)

    # ---- names -----------------------------------------------------------------------------

    def directory_names(self) -> tuple[dict[str, str], dict[str, str]]:
        """({unit: name}, {actor: name}) from the read model, refreshed when the log moved."""
        head = self.head()
        if self.names[0] != head:
            with self.build_lock:
                units, actors = directory_names(self.work)
                self.names = (head, units, actors)
        return self.names[1], self.names[2]

    # ---- the background thread ----------------------------------------------------------------

    def _schedule(self, kind: str, day: date) -> None:
        with self.wake:
            if (kind, day) not in self.jobs:
                self.jobs.append((kind, day))
                self.wake.notify_all()

    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.jobs and not self.stopping:
                    self.wake.wait()
                if self.stopping:
                    return
                kind, day = self.jobs[0]
            # at most one rebuild per twice the last one's duration
            pause = self.last_build + 2 * self.last_seconds - time.monotonic()
            if pause > 0:
                with self.wake:
                    self.wake.wait(min(pause, 60))
                    if self.stopping:
                        return
            try:
                with self.build_lock:
                    if kind == "cases":
                        snap = self.snapshots.get(day.isoformat())
                        if snap is None or snap.position < self.work.max_position():
                            self._build(day)
                    else:
                        found = self.triggers.get(day.isoformat())
                        if found is None or found.position < self.work.max_position():
                            self._build_triggers(day)
            except LedgerError as exc:
                log.warning("web index (%s as of %s): %s", kind, day, exc.message)
            except Exception:   # noqa: BLE001 - logged; the pages go on with what they have
                log.exception("web index (%s as of %s) failed", kind, day)
            with self.wake:
                if (kind, day) in self.jobs:
                    self.jobs.remove((kind, day))


def _triggers_in_child(location: Any, day: str, pipe: Any) -> None:
    """In a child process: the accountability report as of ``day`` (integrity not
    re-verified), only the cases with triggers, without their chains of custody; or the
    error message."""
    try:
        store = open_store(location)
        try:
            position = store.max_position()
            report = accountability_report(store, date.fromisoformat(day), integrity=False)
        finally:
            store.close()
        report["cases"] = [{k: v for k, v in entry.items() if k != "custody"}
                           for entry in report["cases"] if entry["triggers"]]
        pipe.send((position, report))
    except LedgerError as exc:
        pipe.send(exc.message)
    except Exception as exc:   # noqa: BLE001 - reported to the parent, which logs it
        pipe.send(f"{type(exc).__name__}: {exc}")
    finally:
        pipe.close()


__all__ = ["EXACT", "FLAGS", "PER_PAGE", "SORTS", "CaseIndex", "Query", "Result", "Snapshot",
           "TriggerSet", "today"]
