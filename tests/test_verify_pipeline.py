"""The fast verify pass judges exactly as the plain per-event checks do.

``verify`` decodes each statement once (noting its canonical form), checks signatures and
schemas in batches in worker processes, takes back chunks no worker has started, and can run
them on threads instead: none of that may change a single verdict.
"""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.log.statement import EVENT_CONTEXT, Statement, _compact_sorted, _sorted_compact
from ledger.verification import log as checked_log
from ledger.verification.checker import (
    KeyBook,
    check_signatures,
    order_free_batch,
    parse_entry,
)
from ledger.verification.checks import Check
from ledger.verification.log import CheckedLog
from ledger.verification.verify import verify_ledger
from tests.test_hostile import append_signed, register_bytes
from tests.world import World

# ---- one decoding: the canonical flag is RFC 8785's own verdict --------------------------------

keys = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)   # BMP and beyond
leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                 st.text(st.characters(exclude_categories=["Cs"]), max_size=8))
value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(keys, inner, max_size=3), max_leaves=8)
ENCODINGS = ["rfc8785", "code point order", "spaces", "ascii escapes", "unsorted"]


def _encode(obj: dict[str, Any], how: str) -> bytes:
    if how == "rfc8785":
        return rfc8785.dumps(obj)
    if how == "code point order":
        return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
    if how == "spaces":
        return json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()
    if how == "ascii escapes":
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":"),
                      ensure_ascii=False).encode()


@settings(max_examples=400, deadline=None)
@given(data=st.dictionaries(keys, value, max_size=4), how=st.sampled_from(ENCODINGS))
def test_parse_signed_notes_the_canonical_form_exactly_as_rfc8785_judges_it(
        data: dict[str, Any], how: str) -> None:
    obj = {"v": 1, "origin": "o.example/l", "stream": "XF-2025-000001", "seq": 1,
           "prev": "0" * 64, "type": "progress", "at": "2025-03-02T09:30:00+08:00",
           "actor": "officer-07", "key": "00" * 8, "data": data}
    body = _encode(obj, how)
    statement, at, canonical = Statement.parse_signed(EVENT_CONTEXT + body)
    assert canonical is (rfc8785.dumps(json.loads(body)) == body)
    assert statement == Statement.from_signed_bytes(EVENT_CONTEXT + body, strict=False)
    assert at.isoformat() == statement.at
    if canonical:
        assert Statement.from_signed_bytes(EVENT_CONTEXT + body) == statement
    else:
        with pytest.raises(ValueError, match="canonical"):
            Statement.from_signed_bytes(EVENT_CONTEXT + body)


@settings(max_examples=300, deadline=None)
@given(value=value)
def test_the_reused_c_encoder_writes_what_json_dumps_writes(value: Any) -> None:
    assert _sorted_compact(value) == _compact_sorted(value)


def test_supplementary_keys_take_the_reference_path() -> None:
    # U+1F600 sorts before U+FB33 in UTF-16 units, after it by code point
    obj = {"v": 1, "origin": "o", "stream": "s", "seq": 1, "prev": "0" * 64, "type": "t",
           "at": "2025-03-02T09:30:00+08:00", "actor": "a", "key": "k",
           "data": {"\ufb33": 1, "\U0001f600": 2}}
    assert Statement.parse_signed(EVENT_CONTEXT + rfc8785.dumps(obj))[2] is True
    assert Statement.parse_signed(EVENT_CONTEXT + _encode(obj, "code point order"))[2] is False


# ---- the order-free verdicts: batch == per event -----------------------------------------------

def _hostile(world: World) -> list[int]:
    """Events that fail the order-free checks in each way, signed by the real key."""
    world.closed_case()
    registrar = world.ledger.keystore.load("registrar-01")
    officer = world.ledger.keystore.load("officer-07")
    out = []
    case, signed = register_bytes(world)
    out.append(append_signed(world, case, "register", signed, officer))   # wrong key's signature
    case, signed = register_bytes(world)
    spaced = signed.replace(b'"actor":', b'"actor": ')
    out.append(append_signed(world, case, "register", spaced, registrar))   # not canonical
    case, signed = register_bytes(world, persons=-3)
    out.append(append_signed(world, case, "register", signed, registrar))   # schema
    case, signed = register_bytes(world)
    out.append(append_signed(world, case, "register", signed, registrar))   # fine
    return out


def test_order_free_batch_gives_check_signatures_verdicts(world: World) -> None:
    positions = _hostile(world)
    keybook, entries = KeyBook(), []
    for rows in world.ledger.store.iter_rows():
        for row in rows:
            entry = parse_entry(*row, check_form=True)
            keybook.learn(entry)
            entries.append(entry)
    with_jobs = [e for e in entries if keybook.job(e) is not None]
    assert len(with_jobs) == len(entries)
    expected = check_signatures([keybook.job(e) for e in with_jobs])   # type: ignore[misc]
    jobs = [keybook.order_free_job(e) for e in with_jobs]
    got = order_free_batch(jobs)   # type: ignore[arg-type]
    assert [(with_jobs[i].position, check, reason) for i, check, reason in got] == \
        [(f.position, f.check, f.reason) for f in expected]
    assert [f.position for f in expected] == positions[:3]
    assert [f.check for f in expected] == [Check.SIGNATURE, Check.PARSE, Check.PARSE]


# ---- the pass: inline, processes, threads, taken-back chunks ------------------------------------

class _NeverStarts:
    """An executor whose tasks never start: the pass must take every chunk back."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        self.submitted += 1
        return Future()

    def shutdown(self, cancel_futures: bool = False) -> None:
        pass


def _verdicts(log: CheckedLog) -> list[tuple[int, tuple[tuple[int, str], ...]]]:
    return [(e.position, tuple((f.check, f.reason) for f in e.failures)) for e in log]


def test_every_way_of_running_the_pass_gives_the_same_verdicts(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _hostile(world)
    store = world.ledger.store
    inline = _verdicts(CheckedLog(store, workers=1))
    assert [p for p, failures in inline if failures] == bad[:3]
    monkeypatch.setattr(checked_log, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(checked_log, "CHUNK", 3)   # several chunks per batch
    monkeypatch.setattr(checked_log, "BATCH", 16)  # several batches in flight
    assert _verdicts(CheckedLog(store, workers=2)) == inline
    assert _verdicts(CheckedLog(store, workers=2, executor="thread")) == inline
    never = _NeverStarts()
    taken_back = CheckedLog(store, workers=2)
    monkeypatch.setattr(taken_back, "_pool", lambda: never)
    assert _verdicts(taken_back) == inline and never.submitted > 1
    with pytest.raises(ValueError, match="executor"):
        CheckedLog(store, executor="fibers")


def test_verify_with_worker_processes_names_the_failing_events(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _hostile(world)
    monkeypatch.setattr(checked_log, "PARALLEL_THRESHOLD", 0)
    report = verify_ledger(world.ledger.store, workers=2)
    assert [(f.position, f.check) for f in report.failures] == \
        [(bad[0], Check.SIGNATURE), (bad[1], Check.PARSE), (bad[2], Check.PARSE)]
