"""The verification-by-hand recipe in docs/integrity.md works on real ledger data."""

from __future__ import annotations

from pathlib import Path

from ledger.log.merkle import inclusion_proof, leaf_hash
from ledger.log.statement import leaf_bytes
from tests.world import World

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrity.md"


def _recipe() -> dict:
    code = DOC.read_text(encoding="utf-8").split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the documented snippet itself is under test
    return namespace


def test_by_hand_recipe_checks_events_and_inclusion(world: World) -> None:
    recipe = _recipe()
    case = world.closed_case()
    store = world.ledger.store
    size = store.latest_checkpoint().size
    root = store.latest_checkpoint().root
    directory = world.ledger.directory()
    previous = "0" * 64
    for record in store.stream(case):
        key = directory.keys[_key_of(record.state)].public
        parsed = recipe["check_event"](record.position, record.state, key)
        assert parsed["prev"] == previous
        previous = parsed["_hash"]
        assert parsed["_leaf"] == leaf_hash(leaf_bytes(record.position, record.state))
        index = store.leaf_index(record.position)
        proof = inclusion_proof(index, size, store.get_node)
        assert recipe["verify_inclusion"](parsed["_leaf"], index, size, proof, root)
        assert not recipe["verify_inclusion"](parsed["_leaf"], index, size, proof[:-1], root)


def _key_of(state: bytes) -> str:
    import json

    return json.loads(state[76 + len(b"xinfang-ledger/v1/event\n"):])["key"]
