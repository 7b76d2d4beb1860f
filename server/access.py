"""Who may read what on the ledger server: one module, used by every read endpoint.

A reader is the actor of a signed-in session (docs/api.md). What they see follows their roles
in the directory and the cases' own events:

* **jurisdiction roles** — ``inspector``, ``petition_office``, ``leader``, ``supervisor``,
  ``admin`` — see their jurisdiction: every case when they have no unit or a root unit (a unit
  without parent), otherwise the cases handled (assigned, at any time) by a unit of their
  unit's subtree. Only readers who see every case may read the ledger-wide reports and the
  raw log;
* **handlers and unit leaders** see the cases their unit handles or handled, and the cases
  assigned to them;
* **petitioners** see only their own cases (status and history: 可查询、可跟踪);
* everyone sees the cases in which they signed an event or were named (a packaging leader).

For a ``police_misconduct`` case (举报民警违法违纪) the petitioner's identity is hidden from the
accused, i.e. handling, unit (信访工作条例 Art. 30): a reader of a unit that handles or handled
the case gets every occurrence of the petitioner's id replaced by :data:`HIDDEN`, and no raw log
nor bundle (which carry it in signed bytes).

The facts per case come from one pass over the stored log (unverified: access follows the log
as stored; every verdict still comes from the checked view), kept up to date incrementally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import Envelope, LedgerError, Statement, Store

JURISDICTION_ROLES = frozenset({"inspector", "petition_office", "leader", "supervisor", "admin"})
UNIT_ROLES = frozenset({"handler", "unit_leader"})
MISCONDUCT = "police_misconduct"
HIDDEN = "（已隐去）"
_FIRST = -(2**63)


@dataclass
class CaseFacts:
    """What access decisions need to know about one case."""

    petitioner: str | None = None
    category: str | None = None
    units: set[str] = field(default_factory=set)      # every unit it was assigned to
    people: set[str] = field(default_factory=set)     # signers, handlers, package leaders
    registered_in: str | None = None                  # the registering actor's unit


@dataclass(frozen=True)
class Reader:
    """A signed-in actor and the reach of their roles."""

    actor: str
    roles: frozenset[str]
    unit: str | None
    everything: bool                   # sees every case
    subtree: frozenset[str] = frozenset()   # units whose cases a jurisdiction role sees
    own_unit: bool = False             # handler / unit leader: their unit's cases

    @property
    def scope(self) -> str:
        if self.everything:
            return "all"
        if self.subtree:
            return "jurisdiction"
        if self.own_unit:
            return "unit"
        return "own"


def reader_of(directory: Any, actor_id: str) -> Reader | None:
    """The reader ``actor_id`` is in ``directory`` (None if not in it)."""
    actor = directory.actor(actor_id)
    if actor is None:
        return None
    roles = frozenset(actor.roles)
    unit = actor.unit
    if roles & JURISDICTION_ROLES:
        record = directory.units.get(unit) if unit else None
        if unit is None or record is None or record.parent is None:
            return Reader(actor_id, roles, unit, True)
        return Reader(actor_id, roles, unit, False, frozenset(_subtree(directory, unit)),
                      bool(roles & UNIT_ROLES))
    return Reader(actor_id, roles, unit, False, frozenset(), bool(roles & UNIT_ROLES))


def _subtree(directory: Any, root: str) -> set[str]:
    children: dict[str | None, list[str]] = {}
    for unit in directory.units.values():
        children.setdefault(unit.parent, []).append(unit.unit)
    found, todo = set(), [root]
    while todo:
        unit = todo.pop()
        if unit not in found:
            found.add(unit)
            todo.extend(children.get(unit, ()))
    return found


class AccessIndex:
    """Case facts for every case, folded from the stored log and caught up on demand."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.after = _FIRST
        self.cases: dict[str, CaseFacts] = {}
        self.unit_of: dict[str, str | None] = {}     # actor → unit, from actor.add events

    def refresh(self) -> None:
        for rows in self.store.iter_rows(batch=5000, after=self.after):
            for position, stream, _seq, topic, state in rows:
                self.after = max(self.after, position)
                if stream.startswith("XF-"):
                    self._learn(stream, state)
                elif topic == "actor.add":
                    self._learn_actor(state)

    def _learn_actor(self, state: bytes) -> None:
        try:
            statement = Statement.from_signed_bytes(Envelope.from_bytes(state).signed,
                                                    strict=False)
        except (ValueError, LedgerError):
            return
        actor = _text(statement.data.get("actor"))
        if actor is not None:
            self.unit_of[actor] = _text(statement.data.get("unit"))

    def _learn(self, stream: str, state: bytes) -> None:
        try:
            statement = Statement.from_signed_bytes(Envelope.from_bytes(state).signed,
                                                    strict=False)
        except (ValueError, LedgerError):
            return
        facts = self.cases.setdefault(stream, CaseFacts())
        data = statement.data
        facts.people.add(statement.actor)
        if statement.type == "register":
            facts.petitioner = _text(data.get("petitioner"))
            facts.category = _text(data.get("category"))
            facts.registered_in = self.unit_of.get(statement.actor)
        elif statement.type == "assign":
            if (unit := _text(data.get("unit"))) is not None:
                facts.units.add(unit)
            if (handler := _text(data.get("handler"))) is not None:
                facts.people.add(handler)
        elif statement.type == "package" and (leader := _text(data.get("leader"))):
            facts.people.add(leader)

    def facts(self, case: str) -> CaseFacts | None:
        return self.cases.get(case)

    # ---- decisions --------------------------------------------------------------------------

    def may_see(self, reader: Reader, case: str) -> bool:
        facts = self.cases.get(case)
        if facts is None:
            return reader.everything   # an unknown case: only they may learn it is unknown
        if reader.everything or reader.actor in facts.people:
            return True
        if reader.actor == facts.petitioner:
            return True
        if reader.subtree and facts.units & reader.subtree:
            return True
        if reader.subtree and not facts.units and facts.registered_in in reader.subtree:
            return True   # not yet assigned: it waits at the registering unit's petition office
        return reader.own_unit and reader.unit is not None and reader.unit in facts.units

    def hides_petitioner(self, reader: Reader, case: str) -> bool:
        """Whether the petitioner of ``case`` is hidden from ``reader`` (Art. 30)."""
        facts = self.cases.get(case)
        return (facts is not None and facts.category == MISCONDUCT
                and facts.petitioner is not None and reader.actor != facts.petitioner
                and reader.unit is not None and reader.unit in facts.units)

    def may_read_log(self, reader: Reader) -> bool:
        """The raw log carries every identity: only for readers who see every case and from
        whom no petitioner is hidden."""
        return reader.everything and not any(
            self.hides_petitioner(reader, case) for case in self.cases)

    def visible(self, reader: Reader, cases: Iterable[str]) -> list[str]:
        return [case for case in cases if self.may_see(reader, case)]

    def redact(self, reader: Reader, case: str, document: Any,
               names: Mapping[str, str]) -> Any:
        """``document`` (about ``case``) with the petitioner's id and name replaced by
        :data:`HIDDEN` wherever they are hidden from ``reader``."""
        facts = self.cases.get(case)
        if facts is None or facts.petitioner is None or \
                not self.hides_petitioner(reader, case):
            return document
        return hide(document, {facts.petitioner, names.get(facts.petitioner, "")})


def hide(value: Any, secrets: set[str]) -> Any:
    """``value`` with every string equal to one of ``secrets`` replaced by :data:`HIDDEN`."""
    hidden = {s for s in secrets if s}
    if isinstance(value, str):
        return HIDDEN if value in hidden else value
    if isinstance(value, dict):   # a hidden id as a key (a names table) is left out
        return {key: hide(item, hidden) for key, item in value.items() if key not in hidden}
    if isinstance(value, list | tuple):
        return [hide(item, hidden) for item in value]
    return value


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


__all__ = ["HIDDEN", "JURISDICTION_ROLES", "AccessIndex", "CaseFacts", "Reader", "hide",
           "reader_of"]
