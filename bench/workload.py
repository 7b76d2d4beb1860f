"""Synthetic but valid workloads for the benchmark: a staffed ledger and case lifecycles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import Ledger
from ledger.domain.policy import SHANGHAI
from ledger.writing.commands import Command

START = datetime(2024, 1, 1, 8, 0, tzinfo=SHANGHAI)
EVENTS_PER_CASE = 10
HANDLERS = 8


def staffed_ledger(url: str, keystore: Path) -> Ledger:
    led = Ledger.init(url, keystore, origin="bench.example/ledger", admin="admin-01", at=START)
    commands = [Command("unit.add", None, {"unit": "station-01", "name": "派出所"}, "admin-01",
                        START)]
    people: list[tuple[str, str, str | None]] = [
        ("registrar-01", "registrar", None), ("office-01", "petition_office", None),
        ("pet-0001", "petitioner", None)]
    people += [(f"officer-{i:02d}", "handler", "station-01") for i in range(HANDLERS)]
    for actor, role, unit in people:
        data: dict[str, Any] = {"actor": actor, "name": actor, "roles": [role],
                **({"unit": unit} if unit else {})}
        if role == "petitioner":
            data["keyless"] = True
        commands.append(Command("actor.add", None, data, "admin-01", START))
    led.execute_many(commands)
    return led


def case_number(n: int) -> str:
    return f"XF-{2024 + n // 999_999:04d}-{n % 999_999 + 1:06d}"


def lifecycle(n: int) -> list[Command]:
    """Ten valid events of case ``n``: register, accept, assign and seven progress reports."""
    case = case_number(n)
    at = START + timedelta(minutes=n % 500_000)
    handler = f"officer-{n % HANDLERS:02d}"
    out = [
        Command("register", case, {"channel": "letter", "source": "direct", "category": "help",
                                   "petitioner": "pet-0001", "summary": f"基准测试信访 {n}"},
                "registrar-01", at),
        Command("accept", case, {"decision": "accepted"}, "office-01", at + timedelta(hours=1)),
        Command("assign", case, {"unit": "station-01", "handler": handler}, "office-01",
                at + timedelta(hours=2)),
    ]
    out += [Command("progress", case, {"note": f"进展 {k}"}, handler,
                    at + timedelta(hours=3 + k)) for k in range(EVENTS_PER_CASE - 3)]
    return out


def chunks(first_case: int, cases: int, per_chunk: int = 2000) -> Iterator[list[Command]]:
    for start in range(first_case, first_case + cases, per_chunk):
        stop = min(start + per_chunk, first_case + cases)
        yield [c for n in range(start, stop) for c in lifecycle(n)]
