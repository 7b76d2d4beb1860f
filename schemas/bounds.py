"""Bounds on every time, integer, length and nesting depth parsed from signed or stored bytes.

docs/integrity.md ("Verifiers never crash", issue 9): whatever bytes the database or a bundle
holds, parsing refuses out-of-range values with a one-line reason before any arithmetic, so date
arithmetic, UTC-offset conversion and JSON parsing can never overflow or recurse without limit.
Writers are held to the same bounds, so nothing they write is refused later.

This module sits outside the ``ledger`` package so that both ``schemas.actions`` and
``ledger.log.statement`` can import it without an import cycle.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

# Times (business times, dates in action data, recorded times): local calendar years 1970-2199
# with a UTC offset within ±14:00 (the widest in use: UTC-12 to UTC+14). Any such time,
# converted to Asia/Shanghai and moved by any policy period, stays far inside datetime's
# years 1-9999, so no accepted time can overflow.
MIN_YEAR = 1970
MAX_YEAR = 2199
MAX_UTC_OFFSET = timedelta(hours=14)
# Recorded times are µs since the Unix epoch, stored as a u64: [1970-01-01, 2200-01-01) UTC.
MAX_RECORDED_US = 7_258_118_400 * 1_000_000   # 2200-01-01T00:00:00Z

# Integers: I-JSON (RFC 7493 §2.2) / RFC 8785 exact integers only.
MAX_INT = 2**53 - 1
# Signed statements: at most 1 MiB of canonical JSON, objects and arrays nested at most 32 deep
# (a statement nests 4 deep today), header strings at most 1024 characters.
MAX_STATEMENT_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_FIELD_CHARS = 1024


def time_problem(moment: datetime) -> str | None:
    """Why a business time is out of bounds (or has no offset), or None."""
    offset = moment.utcoffset()
    if offset is None:
        return f"time {moment.isoformat()} has no UTC offset"
    if abs(offset) > MAX_UTC_OFFSET:
        return f"time {moment.isoformat()} has a UTC offset beyond ±14:00"
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        return f"time {moment.isoformat()} is outside the years {MIN_YEAR}-{MAX_YEAR}"
    return None


def date_problem(day: date) -> str | None:
    """Why a calendar date is out of bounds, or None."""
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return f"date {day.isoformat()} is outside the years {MIN_YEAR}-{MAX_YEAR}"
    return None
