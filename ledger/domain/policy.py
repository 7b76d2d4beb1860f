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



def default_permissions(rules: int | None = None) -> dict[str, tuple[str, ...]]:
    """Who may do what by default under a rules version (default: the newest), derived from
    the action registry (``ledger.domain.actions``: each action names its roles)."""
    # the registry imports this module, so it is imported on first use
    from ledger.domain.actions import permissions_for

    return permissions_for(RULES_VERSION if rules is None else rules)


class _Defaults(dict[str, tuple[str, ...]]):
    """Marks permissions left to the defaults of the policy's rules version."""


class PolicyError(InputError, ValueError):
    """A policy setting is unknown, of the wrong type or out of bounds. An InputError for
    writers (exit 2); a ValueError too, so a verifier reading a hostile init event reports a
    check-1 failure instead of crashing (issue 9, "Verifiers never crash")."""


# Bounds on every policy number: an absurd value (10^30 seconds of clock tolerance) would
# overflow timedelta, and a huge day count would push deadlines past datetime's year 9999.
# With business dates bounded to 1970-2199 (schemas/bounds.py) no deadline can overflow.
MAX_POLICY_DAYS = 3650                      # any period in days: at most ten years
MAX_CLOCK_TOLERANCE_SECONDS = 86400         # at most one day
_INT_BOUNDS = {"clock_tolerance_seconds": MAX_CLOCK_TOLERANCE_SECONDS}   # others: days
MAX_CATEGORIES = 1000
MAX_NAME_CHARS = 200                        # a category, role or action name


#: The version of the case rules (ledger/domain/cases.py) new ledgers are written under. Events
#: are judged by the rules their ledger's init event records, so ledgers written by an earlier
#: release keep verifying: 1 = the first release (three closure signatures in any order);
#: 2 = the three-signature order attest → consent → petitioner, enforced on write and verify;
#: 3 = the petition rules as the 信访工作条例 (2022) states them (docs/read-side.md, "The rules
#: of the 信访工作条例"): extensions, review levels and windows, hearings, receipt, grounds,
#: report-backs, refusals and coded measures.
RULES_VERSION = 3


@dataclass(frozen=True)
class Policy:
    acceptance_days: int = 15
    handling_days: int = 60
    max_extension_days: int = 30
    review_request_days: int = 30
    review_decision_days: int = 30
    # 工作日 rules: registration within this many PRC working days of receipt (Art. 23, 44;
    # late_registration). Older ledgers' init policy lacks the key: the default applies.
    registration_working_days: int = 5
    # Periods in 日 are calendar days (Art. 23, 34-36); "working" counts every period in PRC
    # working days instead, a local deviation kept for offices that run that way.
    day_counting: str = "calendar"
    # Roll a period in 日 that ends on a non-working day (法定休假日: a public holiday or rest
    # day) to the next working day.
    roll_holidays: bool = False
    # The smallest group petition (集体访): persons >= this (the contract: persons > 1).
    min_group_persons: int = 2
    clock_tolerance_seconds: int = 300
    # 补录: an event recorded more than this many days after its business time is a
    # late_entry trigger (older ledgers' init policy lacks the key: the default applies)
    late_entry_days: int = 3
    rules: int = RULES_VERSION
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    permissions: dict[str, tuple[str, ...]] = field(default_factory=_Defaults)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int":
                bound = _INT_BOUNDS.get(f.name, MAX_POLICY_DAYS)
                if type(value) is not int or not 0 <= value <= bound:   # bool is no int here
                    raise PolicyError(f"policy value {f.name} must be an integer in "
                                      f"0..{bound}, not {value!r:.40}")
            elif f.type == "bool" and type(value) is not bool:
                raise PolicyError(f"policy value {f.name} must be true or false, not "
                                  f"{value!r:.40}")
        if self.day_counting not in ("calendar", "working"):
            raise PolicyError("policy day_counting must be 'calendar' or 'working'")
        if self.min_group_persons < 2:
            raise PolicyError("policy min_group_persons must be at least 2: a group petition "
                              "(集体访) has more than one person")
        if not 1 <= self.rules <= RULES_VERSION:
            raise PolicyError(f"policy rules must be a rules version in 1..{RULES_VERSION}, not "
                              f"{self.rules}")
        if isinstance(self.permissions, _Defaults):
            object.__setattr__(self, "permissions", default_permissions(self.rules))
        if type(self.categories) not in (list, tuple) or len(self.categories) > MAX_CATEGORIES \
                or not all(_is_name(c) for c in self.categories):
            raise PolicyError(f"policy categories must be a list of at most {MAX_CATEGORIES} "
                              "names")
        if type(self.permissions) is not dict or len(self.permissions) > MAX_CATEGORIES or \
                not all(_is_name(role) and type(acts) in (list, tuple)
                        and len(acts) <= MAX_CATEGORIES and all(_is_name(a) for a in acts)
                        for role, acts in self.permissions.items()):
            raise PolicyError("policy permissions must map role names to lists of action names")
        # Frozen: normalize lists given by callers to the tuples the rest of the code expects.
        object.__setattr__(self, "categories", tuple(self.categories))
        object.__setattr__(self, "permissions",
                           {role: tuple(acts) for role, acts in self.permissions.items()})

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        data["permissions"] = {role: list(acts) for role, acts in self.permissions.items()}
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Policy:
        """A policy from its data (the init event's, or a policy file's); PolicyError for an
        unknown setting or any value of the wrong type or out of bounds."""
        if type(data) is not dict:
            raise PolicyError("the policy is not a table of settings")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            names = ", ".join(sorted(str(name)[:40] for name in unknown)[:5])
            raise PolicyError(f"unknown policy settings: {names}",
                              f"Known settings: {', '.join(sorted(known))}.")
        values = dict(data)
        if "permissions" in values:
            given = values["permissions"]
            if type(given) is not dict:
                raise PolicyError("policy permissions must map role names to lists of "
                                  "action names")
            rules = values.get("rules", RULES_VERSION)
            defaults = default_permissions(rules if type(rules) is int
                                           and 1 <= rules <= RULES_VERSION else None)
            values["permissions"] = {**defaults, **given}   # checked by __post_init__
        return cls(**values)

    @classmethod
    def recorded(cls, data: dict[str, Any]) -> Policy:
        """The policy an init event records: one without a rules version was written by the
        first release, and is judged by its rules."""
        if type(data) is dict and "rules" not in data:
            data = {**data, "rules": 1}
        return cls.from_data(data)

    def may(self, roles: frozenset[str] | set[str], action: str) -> bool:
        return any(action in self.permissions.get(role, ()) for role in roles)

    def roles_for(self, action: str) -> list[str]:
        return [role for role, acts in self.permissions.items() if action in acts]

    # ---- business-time arithmetic --------------------------------------------------------

    def handling_due(self, start: date, extension_days: int = 0) -> date:
        """Acceptance (or reopening) date + the handling period + approved extensions (Art.
        34); the extension is granted in calendar days whatever the counting rule, and the
        period ends on the last of them (rolled past a non-working day if the policy says so).
        """
        if self.day_counting == "working":
            return _saturating_add(_add_working_days(start, self.handling_days), extension_days)
        return self.rolled(_saturating_add(start, self.handling_days + extension_days))

    def add_days(self, start: date, days: int) -> date:
        """The end of a period of ``days`` 日 from ``start``: calendar days (Art. 23, 34-36),
        rolled to the next working day when it ends on a non-working day and the policy rolls;
        PRC working days under the ``working`` counting rule (a local deviation)."""
        if self.day_counting == "working":
            # Policy periods are at most MAX_POLICY_DAYS; the clamp only bounds the loop.
            return _add_working_days(start, min(days, MAX_POLICY_DAYS))
        return self.rolled(_saturating_add(start, days))

    def add_working_days(self, start: date, days: int) -> date:
        """The end of a period of ``days`` 工作日 from ``start``: always PRC working days (the
        statutory calendar, holidays and adjusted working days included)."""
        return _add_working_days(start, min(days, MAX_POLICY_DAYS))

    def rolled(self, day: date) -> date:
        """``day``, or the next working day when it is a non-working day and the policy rolls
        (法定休假日: a period ending on one ends on the next working day)."""
        if not self.roll_holidays:
            return day
        for _ in range(MAX_POLICY_DAYS):   # the longest run of rest days is far shorter
            if day == date.max or _is_workday(day):
                break
            day += timedelta(days=1)
        return day


def _saturating_add(start: date, days: int) -> date:
    """``start + days``, or date.max where that would leave the calendar. Bounded inputs never
    get near it; only a stream of forged events (thousands of extensions, each already failing
    verification) could, and a deadline past year 9999 is never missed anyway."""
    try:
        return start + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def business_date(moment: datetime) -> date:
    """The calendar date of a business time in Asia/Shanghai.

    ValueError (not OverflowError) for a time whose conversion leaves datetime's range; times
    accepted by the parsers (schemas/bounds.py) never do."""
    try:
        return moment.astimezone(SHANGHAI).date()
    except OverflowError:
        raise ValueError(f"time {moment.isoformat()} is outside the supported calendar") from None


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
        if day == date.max:
            return day   # see _saturating_add
        day += timedelta(days=1)
        if _is_workday(day):
            counted += 1
    return day


def _is_name(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_NAME_CHARS


def load_policy_file(path: str | Path) -> Policy:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise InputError(f"policy file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"policy file {path} is not valid TOML: {exc}") from None
    if type(data.get("deadlines", {})) is not dict:
        raise PolicyError(f"policy file {path}: [deadlines] must be a table")
    flat = dict(data.get("deadlines", {}))
    for key in ("categories", "permissions", "day_counting", "clock_tolerance_seconds"):
        if key in data:
            flat[key] = data[key]
    for key, value in data.items():
        if key not in ("deadlines", "categories", "permissions", "day_counting",
                       "clock_tolerance_seconds"):
            flat[key] = value
    return Policy.from_data(flat)


def __getattr__(name: str) -> Any:
    """``DEFAULT_PERMISSIONS``: the newest rules' default grants (derived from the registry
    on first use, which imports this module)."""
    if name == "DEFAULT_PERMISSIONS":
        return default_permissions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
