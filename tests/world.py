"""A small, fully staffed ledger for tests, on either backend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import Ledger
from ledger.domain.policy import SHANGHAI
from ledger.writing.commands import Command

CST = SHANGHAI   # the one Asia/Shanghai zone (ledger.domain.policy), under its test name
ORIGIN = "test.example/ledger"

UNITS = [("city", "XX市公安局", None), ("county-01", "XX县公安局", "city"),
         ("station-03", "城关派出所", "county-01")]
ACTORS = [
    ("registrar-01", "登记员甲", "city", ["registrar"]),
    ("office-01", "信访民警乙", "city", ["petition_office"]),
    ("officer-07", "张三", "station-03", ["handler"]),
    ("officer-08", "李四", "county-01", ["handler"]),
    ("lead-03", "所长丙", "station-03", ["unit_leader"]),
    ("lead-01", "局长丁", "county-01", ["unit_leader"]),
    ("leader-01", "副局长戊", "city", ["leader"]),
    ("supervisor-01", "督办员己", "city", ["supervisor"]),
    ("inspector-01", "督察庚", "city", ["inspector"]),
    ("reviewer-01", "复查员辛", "city", ["reviewer"]),
    # the county bureau's reviewer: a 复查 of what a station replied (the city's reviewer then
    # decides the 复核, Art. 35-36)
    ("reviewer-02", "复查员壬", "county-01", ["reviewer"]),
    ("pet-0001", "王某", None, ["petitioner"]),
]


def t(day: str, hour: int = 9) -> datetime:
    """A business time in Asia/Shanghai: t("2025-03-02") → 2025-03-02T09:00+08:00."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=CST)


@dataclass
class World:
    ledger: Ledger
    url: str
    keystore: Path
    migration: str | None = None   # set: writes are marked as this migration batch (补录)

    def do(self, action: str, case: str | None, data: dict[str, Any] | None = None, *,
           by: str, at: datetime) -> Any:
        if self.migration is not None:
            command = Command(action, case, data or {}, by, at, migration=self.migration)
            return self.ledger.execute_many([command])[0]
        return self.ledger.execute(action, case, data or {}, as_actor=by, at=at)

    def register(self, at: datetime, petitioner: str = "pet-0001", **extra: Any) -> str:
        data = {"channel": "letter", "source": "direct", "category": "household_registration",
                "petitioner": petitioner, "summary": "户口迁移不予办理", **extra}
        return self.do("register", extra.pop("case", None), data, by=extra.pop(
            "by", "registrar-01"), at=at).stream

    def accepted_case(self, day: str = "2025-03-02", handler: str = "officer-07",
                      unit: str = "station-03") -> str:
        case = self.register(t(day))
        start = datetime.fromisoformat(day)
        accepted = t((start + timedelta(days=1)).date().isoformat())
        # the written notice (告知书) served with the decision (Art. 23; rules 3 flag a
        # decision without one as late_notice once the deadline has passed)
        self.do("accept", case, {"decision": "accepted",
                                 "notice_served_at": accepted.isoformat()},
                by="office-01", at=accepted)
        self.do("assign", case, {"unit": unit, "handler": handler}, by="office-01",
                at=t((start + timedelta(days=1)).date().isoformat(), 10))
        return case

    def closed_case(self, day: str = "2025-03-02", opinion: str = "satisfied") -> str:
        case = self.accepted_case(day)
        start = datetime.fromisoformat(day)

        def d(n: int, hour: int = 9) -> datetime:
            return t((start + timedelta(days=n)).date().isoformat(), hour)

        self.do("progress", case, {"note": "已约谈"}, by="officer-07", at=d(5))
        self.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                                "served_at": d(10).isoformat(), "text": "已办理"},
                by="officer-07", at=d(10))
        self.do("attest", case, {"evidence": ["答复书-001"]}, by="officer-07", at=d(11))
        self.do("consent", case, {}, by="lead-03", at=d(11, 10))
        self.do("petitioner_sign", case, {"form": "key", "opinion": opinion}, by="pet-0001",
                at=d(12))
        self.do("close", case, {}, by="office-01", at=d(13))
        return case


def build_world(url: str, keystore: Path, *, at: datetime | None = None) -> World:
    start = at or t("2025-01-01", 8)
    led = Ledger.init(url, keystore, origin=ORIGIN, admin="admin-01", admin_name="管理员",
                      at=start)
    for unit, name, parent in UNITS:
        led.add_unit(unit, name, parent, as_actor="admin-01", at=start)
    for actor, name, unit, roles in ACTORS:
        led.add_actor(actor, name, roles=roles, unit=unit, as_actor="admin-01", at=start)
    led.add_actor("pet-0002", "赵某", roles=["petitioner"], keyless=True, as_actor="admin-01",
                  at=start)
    return World(led, url, keystore)
