"""The directory stream: units, actors, roles and keys, as a fold over signed events.

Key validity is judged by log position: a key registered at position p signs valid events at
positions after p, until the position of its revocation (or the rotation that replaced it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.domain.policy import Policy
from ledger.log.keys import event_key_id

DIRECTORY_ACTIONS = ("init", "unit.add", "actor.add", "actor.rotate_key", "actor.revoke_key")


class DirectoryViolation(Exception):
    """A directory event that breaks the directory's rules (check 4 when verifying).

    ``forbidden`` when the rule broken is about who may act (the writer refuses with
    ForbiddenError), otherwise the event itself is invalid (InputError), as for CaseViolation.
    """

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


@dataclass(slots=True)
class Unit:
    unit: str
    name: str
    parent: str | None


@dataclass(slots=True)
class Actor:
    actor: str
    name: str
    unit: str | None
    roles: frozenset[str]
    keyless: bool
    key: str | None = None  # current key id


@dataclass(slots=True)
class KeyRecord:
    key: str
    actor: str
    public: bytes
    valid_from: int
    revoked_at: int | None = None


@dataclass
class Directory:
    origin: str = ""
    log_key: bytes = b""
    policy: Policy = field(default_factory=Policy)
    units: dict[str, Unit] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    initialized: bool = False

    # ---- queries -----------------------------------------------------------------------------

    def actor(self, actor_id: str) -> Actor | None:
        return self.actors.get(actor_id)

    def key_problem(self, key: str, actor: str, position: int) -> str | None:
        """Why ``key`` may not sign for ``actor`` at ``position`` (None if it may)."""
        record = self.keys.get(key)
        if record is None:
            return f"key {key} is not registered in the directory"
        if record.actor != actor:
            return f"key {key} belongs to {record.actor}, not {actor}"
        if record.valid_from >= position:
            return f"key {key} was not yet registered at position {position}"
        if record.revoked_at is not None and position > record.revoked_at:
            return f"key {key} was revoked at position {record.revoked_at}"
        return None

    # ---- rules -------------------------------------------------------------------------------

    def check(self, action: str, actor_id: str, data: dict[str, Any]) -> None:
        """Raise DirectoryViolation if ``actor_id`` may not apply ``action`` with ``data``."""
        if action == "init":
            if self.initialized:
                raise DirectoryViolation("the ledger is already initialized")
            if data.get("admin") != actor_id:
                raise DirectoryViolation("init must be signed by the admin it names",
                                         forbidden=True)
            return
        if not self.initialized:
            raise DirectoryViolation("the ledger is not initialized")
        signer = self.actors.get(actor_id)
        if signer is None:
            raise DirectoryViolation(f"{actor_id} is not in the directory", forbidden=True)
        if not self.policy.may(signer.roles, action):
            raise DirectoryViolation(f"{actor_id} has no role that may {action}",
                                     forbidden=True)
        if action == "unit.add":
            if data["unit"] in self.units:
                raise DirectoryViolation(f"unit {data['unit']} already exists")
            if data.get("parent") and data["parent"] not in self.units:
                raise DirectoryViolation(f"parent unit {data['parent']} does not exist")
        elif action == "actor.add":
            if data["actor"] in self.actors:
                raise DirectoryViolation(f"actor {data['actor']} already exists")
            if data.get("unit") and data["unit"] not in self.units:
                raise DirectoryViolation(f"unit {data['unit']} does not exist")
            public = data.get("public_key")
            if public is None and not data.get("keyless"):
                raise DirectoryViolation("an actor needs a public key unless keyless")
            if public is not None and event_key_id(bytes.fromhex(public)) in self.keys:
                raise DirectoryViolation("that public key is already registered")
        elif action in ("actor.rotate_key", "actor.revoke_key"):
            target = self.actors.get(data["actor"])
            if target is None:
                raise DirectoryViolation(f"actor {data['actor']} does not exist")
            if action == "actor.rotate_key":
                if event_key_id(bytes.fromhex(data["public_key"])) in self.keys:
                    raise DirectoryViolation("that public key is already registered")
            else:
                record = self.keys.get(data["key"])
                if record is None or record.actor != target.actor:
                    raise DirectoryViolation(f"key {data['key']} is not a key of {target.actor}")
                if record.revoked_at is not None:
                    raise DirectoryViolation(f"key {data['key']} is already revoked")
        else:
            raise DirectoryViolation(f"unknown directory action {action}")

    def apply(self, action: str, data: dict[str, Any], position: int) -> None:
        if action == "init":
            self.origin = data["origin"]
            self.log_key = bytes.fromhex(data["log_key"])
            self.policy = Policy.recorded(data["policy"])
            admin_key = self._add_key(data["admin"], bytes.fromhex(data["admin_key"]), position)
            self.actors[data["admin"]] = Actor(data["admin"], data["admin_name"], None,
                                               frozenset({"admin"}), False, admin_key)
            self.initialized = True
        elif action == "unit.add":
            self.units[data["unit"]] = Unit(data["unit"], data["name"], data.get("parent"))
        elif action == "actor.add":
            public = data.get("public_key")
            key = self._add_key(data["actor"], bytes.fromhex(public), position) if public else None
            self.actors[data["actor"]] = Actor(data["actor"], data["name"], data.get("unit"),
                                               frozenset(data["roles"]),
                                               bool(data.get("keyless")), key)
        elif action == "actor.rotate_key":
            actor = self.actors[data["actor"]]
            if actor.key is not None and self.keys[actor.key].revoked_at is None:
                self.keys[actor.key].revoked_at = position
            actor.key = self._add_key(actor.actor, bytes.fromhex(data["public_key"]), position)
        elif action == "actor.revoke_key":
            self.keys[data["key"]].revoked_at = position
            actor = self.actors[data["actor"]]
            if actor.key == data["key"]:
                actor.key = None

    def _add_key(self, actor: str, public: bytes, position: int) -> str:
        kid = event_key_id(public)
        self.keys[kid] = KeyRecord(kid, actor, public, position)
        return kid
