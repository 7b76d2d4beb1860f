"""The ledger server under load and under a crash (issue 12), on SQLite and PostgreSQL: several
client processes writing the same cases at once lose nothing, duplicate nothing and fork
nothing; a server killed with SIGKILL in the middle of an import leaves whole batches only,
and running the import again completes it without duplicates."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Envelope, Keystore, LedgerClient, Statement, verify_ledger
from tests.test_server import XINFANG, Served, make_served
from tests.world import t

WORKERS = 4
PER_WORKER = 8


@pytest.fixture
def served(ledger_url: str, tmp_path: Path) -> Iterator[Served]:
    running = make_served(ledger_url, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _writer(url: str, keystore: str, case: str, worker: int, out: mp.Queue) -> None:
    registered, notes = [], 0
    with LedgerClient(url, Keystore(keystore), actor="officer-07") as client:
        for i in range(PER_WORKER):
            receipt = client.execute("register", None, {
                "channel": "visit", "source": "direct", "category": "help",
                "petitioner": "pet-0001", "summary": f"并发登记 {worker}-{i}"},
                as_actor="registrar-01", at=t("2025-05-01"))
            registered.append(receipt.stream)
            client.execute("progress", case, {"note": f"并发进展 {worker}-{i}"},
                           as_actor="officer-07", at=t("2025-05-02"))
            notes += 1
    out.put((registered, notes))


@pytest.mark.slow
def test_concurrent_client_processes_lose_duplicate_and_fork_nothing(served: Served) -> None:
    keys = served.keys_of("officer-07", "registrar-01")
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(served.url, str(keys), served.case, w, out))
             for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=240) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    numbers = [n for registered, _ in results for n in registered]
    assert len(numbers) == len(set(numbers)) == WORKERS * PER_WORKER
    with served.store() as store:
        records = store.stream(served.case)
        progress = [r for r in records if r.type == "progress"]
        assert len(progress) == WORKERS * PER_WORKER
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        notes = {Statement.from_signed_bytes(Envelope.from_bytes(r.state).signed).data["note"]
                 for r in progress}
        assert len(notes) == WORKERS * PER_WORKER   # each exactly once
        report = verify_ledger(store)
        assert report.ok, report.failures[:3]
    # every write left its receipt on the device, and they all still hold
    check = served.cli("officer-07", "receipts", "check", "--format", "json", keys=keys)
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["checked"] == 2 * WORKERS * PER_WORKER


def _import_file(path: Path, cases: int) -> int:
    lines = []
    for n in range(cases):
        case = f"XF-2025-{500 + n:06d}"
        lines += [
            {"id": f"r-{n}", "action": "register", "case": case, "actor": "registrar-01",
             "at": "2025-06-01T09:00:00+08:00",
             "data": {"channel": "letter", "source": "direct", "category": "help",
                      "petitioner": "pet-0001", "summary": f"迁移 {n}"}},
            {"id": f"a-{n}", "action": "accept", "case": case, "actor": "office-01",
             "at": "2025-06-02T09:00:00+08:00", "data": {"decision": "accepted"}},
            {"id": f"s-{n}", "action": "assign", "case": case, "actor": "office-01",
             "at": "2025-06-02T10:00:00+08:00",
             "data": {"unit": "station-03", "handler": "officer-07"}}]
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    return len(lines)


@pytest.mark.slow
def test_sigkill_of_the_server_mid_import_then_a_clean_resume(served: Served) -> None:
    keys = served.keys_of("registrar-01", "office-01")
    path = served.root / "migration.jsonl"
    total = _import_file(path, 600)
    batch = 100
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")},
           "XINFANG_SERVER": served.url, "XINFANG_KEYSTORE": str(keys),
           "XINFANG_ACTOR": "office-01"}
    command = [str(XINFANG), "import", str(path), "--batch-size", str(batch), "--format",
               "json"]
    with served.store() as store:
        before = store.max_position()
        importer = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while store.max_position() < before + 3 * batch and time.monotonic() < deadline:
            time.sleep(0.01)
        served.stop(kill=True)   # SIGKILL, mid-import
        _, error = importer.communicate(timeout=60)
        assert importer.returncode == 3, error
        assert "cannot reach the ledger server" in error
        landed = store.max_position() - before
        assert 0 < landed < total and landed % batch == 0   # whole batches only
        assert verify_ledger(store).ok
    served.start()   # a new port: tell the importer
    env["XINFANG_SERVER"] = served.url
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["skipped"] == landed and summary["written"] == total - landed
    with served.store() as store:
        assert store.max_position() == before + total
        assert len(store.recorded_commands([f"r-{n}" for n in range(600)])) == 600
        report = verify_ledger(store)
        assert report.ok, report.failures[:3]
