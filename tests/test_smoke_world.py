from ledger.verification.verify import verify_ledger
from tests.world import World


def test_closed_case_verifies(world: World) -> None:
    case = world.closed_case()
    report = verify_ledger(world.ledger.store)
    assert report.ok, report.failures
    assert report.events == len(world.ledger.store.stream(case)) + \
        len(world.ledger.store.stream("directory"))
