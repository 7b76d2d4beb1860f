"""Old ledgers keep verifying: events are judged by the rules their ledger's init records.

The first release let the three closure signatures come in any order; rules version 2 requires
attest → consent → petitioner. A ledger recorded under version 1 keeps its order-free rule on
write and verify; a new ledger gets version 3 (the 信访工作条例 2022 rules, which keep the
order: tests/test_rules_2022.py). Both backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import Ledger
from ledger.domain.policy import RULES_VERSION, Policy
from ledger.errors import TransitionError
from ledger.verification.closure import closure_record
from ledger.verification.verify import verify_ledger
from tests.world import ACTORS, ORIGIN, UNITS, World, t


def staffed(url: str, keystore: Path, policy: Policy | None) -> World:
    start = t("2025-01-01", 8)
    led = Ledger.init(url, keystore, origin=ORIGIN, admin="admin-01", policy=policy, at=start)
    for unit, name, parent in UNITS:
        led.add_unit(unit, name, parent, as_actor="admin-01", at=start)
    for actor, name, unit, roles in ACTORS:
        led.add_actor(actor, name, roles=roles, unit=unit, as_actor="admin-01", at=start)
    return World(led, url, keystore)


def out_of_order(world: World) -> str:
    """A replied case signed consent → attest → petitioner (the first release allowed it)."""
    case = world.accepted_case()
    world.do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                             "served_at": t("2025-03-12").isoformat(), "text": "已办理"},
             by="officer-07", at=t("2025-03-12"))
    world.do("consent", case, {}, by="lead-03", at=t("2025-03-13"))
    world.do("attest", case, {"evidence": ["答复书"]}, by="officer-07", at=t("2025-03-13", 10))
    world.do("petitioner_sign", case, {"form": "key", "opinion": "satisfied"}, by="pet-0001",
             at=t("2025-03-14"))
    return case


def test_an_init_without_a_rules_version_is_judged_by_the_first_rules() -> None:
    recorded = Policy.recorded({k: v for k, v in Policy().to_data().items() if k != "rules"})
    assert recorded.rules == 1
    assert Policy.recorded(Policy().to_data()).rules == RULES_VERSION == 3
    assert Policy().rules == RULES_VERSION


def test_a_version_1_ledger_keeps_its_rules_on_write_and_verify(ledger_url: str,
                                                                keystore: Path) -> None:
    world = staffed(ledger_url, keystore, Policy(rules=1))
    try:
        case = out_of_order(world)
        world.do("close", case, {}, by="office-01", at=t("2025-03-15"))
        assert verify_ledger(world.ledger.store, workers=1).ok
        record = closure_record(world.ledger.store, case)
        assert record.closed_at is not None   # closed; the record still says how it was signed
    finally:
        world.ledger.close()


def test_a_new_ledger_refuses_the_same_order(ledger_url: str, keystore: Path) -> None:
    world = staffed(ledger_url, keystore, None)
    try:
        with pytest.raises(TransitionError, match="attest → consent"):
            out_of_order(world)
    finally:
        world.ledger.close()
