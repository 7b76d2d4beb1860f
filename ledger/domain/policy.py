"""The ledger's policy: deadlines, day counting, content categories and who may do what.

The policy is recorded, signed by the admin, in the ledger's first event, so every verifier judges
deadlines and authorization by the rules the ledger was actually run under. ``load_policy_file``
reads overrides from TOML; every number defaults to the petition rules' own (15/60/30/30/30 days).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from ledger.errors import InputError

# China has used UTC+8 without daylight saving since 1991; a fixed offset needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

DEFAULT_CATEGORIES = (
    "file_case", "police_misconduct", "household_registration", "solve_case",
    "improper_handling", "perform_duty", "consultation_or_non_police", "mental_health",
    "appeal", "compensation", "criminal", "public_order", "help", "other",
)

DEFAULT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "admin": ("unit.add", "actor.add", "actor.rotate_key", "actor.revoke_key"),
    "registrar": ("register", "petitioner_sign", "desist", "review_request"),
    "petition_office": ("accept", "assign", "close", "reopen"),
    "handler": ("progress", "reply", "attest"),
    "unit_leader": ("extend", "consent"),
    "leader": ("supervise", "package", "register"),
    "supervisor": ("supervise", "remind"),
    "inspector": ("reverse_check_open", "reverse_check_finding", "reverse_check_conclude"),
    "reviewer": ("review_decide",),
    "petitioner": ("petitioner_sign",),
}


@dataclass(frozen=True)
class Policy:
    acceptance_days: int = 15
    handling_days: int = 60
    max_extension_days: int = 30
    review_request_days: int = 30
    review_decision_days: int = 30
    day_counting: str = "calendar"   # or "working": PRC statutory working days
    clock_tolerance_seconds: int = 300
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    permissions: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PERMISSIONS))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (not isinstance(value, int) or value < 0):
                raise InputError(f"policy value {f.name} must be a non-negative integer")
        if self.day_counting not in ("calendar", "working"):
            raise InputError("policy day_counting must be 'calendar' or 'working'")

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        data["permissions"] = {role: list(acts) for role, acts in self.permissions.items()}
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown policy settings: {', '.join(sorted(unknown))}",
                             f"Known settings: {', '.join(sorted(known))}.")
        values = dict(data)
        if "categories" in values:
            values["categories"] = tuple(values["categories"])
        if "permissions" in values:
            merged = dict(DEFAULT_PERMISSIONS)
            merged.update({r: tuple(a) for r, a in values["permissions"].items()})
            values["permissions"] = merged
        return cls(**values)

    def may(self, roles: frozenset[str] | set[str], action: str) -> bool:
        return any(action in self.permissions.get(role, ()) for role in roles)

    def roles_for(self, action: str) -> list[str]:
        return [role for role, acts in self.permissions.items() if action in acts]

    # ---- business-time arithmetic --------------------------------------------------------

    def handling_due(self, start: date, extension_days: int = 0) -> date:
        """Acceptance (or reopening) date + the handling period + approved extensions; the
        extension is granted in calendar days whatever the counting rule."""
        return self.add_days(start, self.handling_days) + timedelta(days=extension_days)

    def add_days(self, start: date, days: int) -> date:
        """The date ``days`` counted days after ``start`` under the policy's counting rule."""
        if self.day_counting == "calendar":
            return start + timedelta(days=days)
        return _add_working_days(start, days)


def business_date(moment: datetime) -> date:
    """The calendar date of a business time in Asia/Shanghai."""
    return moment.astimezone(SHANGHAI).date()


@lru_cache(maxsize=4096)
def _is_workday(day: date) -> bool:
    import chinese_calendar  # the maintained PRC holiday / adjusted-workday calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # Years the calendar does not cover yet: Monday to Friday.
        return day.weekday() < 5


def _add_working_days(start: date, days: int) -> date:
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if _is_workday(day):
            counted += 1
    return day


def load_policy_file(path: str | Path) -> Policy:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"policy file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"policy file {path} is not valid TOML: {exc}") from None
    flat = dict(data.get("deadlines", {}))
    for key in ("categories", "permissions", "day_counting", "clock_tolerance_seconds"):
        if key in data:
            flat[key] = data[key]
    for key, value in data.items():
        if key not in ("deadlines", "categories", "permissions", "day_counting",
                       "clock_tolerance_seconds"):
            flat[key] = value
    return Policy.from_data(flat)
