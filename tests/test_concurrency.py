"""Several OS processes writing the same cases at once: nothing lost, duplicated or forked."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.verification.verify import verify_ledger
from tests.world import World, t

WORKERS = 4
PER_WORKER = 12


def _writer(url: str, keystore: str, case: str, worker: int, out: mp.Queue) -> None:
    led = Ledger.open(url, keystore)
    registered, notes = [], 0
    for i in range(PER_WORKER):
        receipt = led.execute("register", None, {
            "channel": "visit", "source": "direct", "category": "help",
            "petitioner": "pet-0001", "summary": f"并发登记 {worker}-{i}"},
            as_actor="registrar-01", at=t("2025-05-01"))
        registered.append(receipt.stream)
        led.execute("progress", case, {"note": f"并发进展 {worker}-{i}"},
                    as_actor="officer-07", at=t("2025-05-02"))
        notes += 1
    led.close()
    out.put((registered, notes))


@pytest.mark.slow
def test_concurrent_processes_on_same_cases(world: World, keystore: Path) -> None:
    case = world.accepted_case()
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(world.url, str(keystore), case, w, out))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    numbers = [n for registered, _ in results for n in registered]
    assert len(numbers) == len(set(numbers)) == WORKERS * PER_WORKER
    store = world.ledger.store
    progress = [r for r in store.stream(case) if r.type == "progress"]
    assert len(progress) == WORKERS * PER_WORKER
    assert [r.seq for r in store.stream(case)] == list(range(1, 3 + len(progress) + 1))
    report = verify_ledger(store)
    assert report.ok, report.failures[:3]
