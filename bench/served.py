"""The served figures: signed commands through a real `xinfang serve` process (issue 12).

On a fresh staffed ledger of the backend being measured: the in-process signed command rate
(``Ledger.execute`` of one ``progress`` command, as ``signed_command_rate``), then the log key
moves to a server keystore of its own, `xinfang serve` starts as a subprocess on a loopback
port, and the same commands go through :class:`ledger.LedgerClient` — prepared by the server,
checked and signed in the client, submitted, judged again and appended by the server, the
receipt proven on arrival and kept — first from one client (the rate, and p50/p95 latency of a
whole write), then from eight concurrent clients (threads, each with its own connection and
cases). The bench knows nothing of the CLI: the server is started by command line.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ledger import Keystore, LedgerClient

from .workload import case_number, chunks, staffed_ledger

CLIENTS = 8
SERVER_FILES = ("log.key", "log.state", "log.pub", "admin.pub")


def _command(led_or_client: Any, n: int, i: int) -> None:
    led_or_client.execute("progress", case_number(n), {"note": f"服务命令 {i}"},
                          as_actor=f"officer-{n % 8:02d}")


def _start_server(url: str, keystore: Path, log: Path) -> tuple[str, subprocess.Popen[str]]:
    root = Path(__file__).resolve().parents[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")},
           "PYTHONPATH": str(root)}
    with open(log, "a") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--ledger", url,
                                 "--keystore", str(keystore), "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    found = re.search(r"listening on (http://\S+?)/?$", first[0].strip() if first else "")
    if found is None:
        proc.kill()
        raise RuntimeError(f"the ledger server did not start: {log.read_text()[-500:]}")
    return found.group(1), proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def served_rates(ledger_url: str, workdir: Path, commands: int,
                 progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """In-process vs served signed-command rates on one fresh ledger at ``ledger_url``."""
    keys = workdir / "served-keys"
    cases = 64
    led = staffed_ledger(ledger_url, keys)
    try:
        for chunk in chunks(0, cases):
            led.execute_many(chunk)
        progress("signed single commands, in process (baseline of the served figures)")
        started = time.perf_counter()
        for i in range(commands):
            _command(led, i % cases, i)
        in_process = commands / (time.perf_counter() - started)
    finally:
        led.close()
    server_keys = workdir / "server-keys"
    server_keys.mkdir()
    for name in SERVER_FILES:
        shutil.copy2(keys / name, server_keys / name)
    device = workdir / "device-keys"   # the clients' keystore: every officer, no log key
    shutil.copytree(keys, device, ignore=shutil.ignore_patterns("log.*"))
    url, proc = _start_server(ledger_url, server_keys, workdir / "server.log")
    try:
        progress("signed single commands through the server, one client")
        latencies = []
        with LedgerClient(url, Keystore(device), actor="office-01") as client:
            _command(client, 0, -1)   # sign in, connect
            started = time.perf_counter()
            for i in range(commands):
                begun = time.perf_counter()
                _command(client, i % cases, i)
                latencies.append(time.perf_counter() - begun)
            one = commands / (time.perf_counter() - started)
        progress(f"signed single commands through the server, {CLIENTS} clients")
        many = _concurrent(url, device, commands, cases)
    finally:
        _stop(proc)
    quantiles = statistics.quantiles(latencies, n=20)
    return {"served_command_ratio": one / in_process,
            "served_command_rate_1_client": one,
            f"served_command_rate_{CLIENTS}_clients": many,
            "served_latency_p50_ms": statistics.median(latencies) * 1000,
            "served_latency_p95_ms": quantiles[18] * 1000,
            "served_in_process_command_rate": in_process,
            "served_commands": commands}


def _concurrent(url: str, device: Path, commands: int, cases: int) -> float:
    """Commands per second from CLIENTS threads, each its own client and its own cases."""
    per_client = max(1, commands // CLIENTS)
    clients = [LedgerClient(url, Keystore(device), actor="office-01") for _ in range(CLIENTS)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(per_client):
                _command(clients[k], (k + CLIENTS * i) % cases, i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        for k, client in enumerate(clients):
            _command(client, k, -1)   # sign in, connect
        threads = [threading.Thread(target=work, args=(k,)) for k in range(CLIENTS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()
    if errors:
        raise errors[0]
    return per_client * CLIENTS / elapsed


__all__ = ["CLIENTS", "served_rates"]
