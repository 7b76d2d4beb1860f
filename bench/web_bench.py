"""Web interface latency (issue 15): p95 of the case list and of a case page, served by a real
`xinfang serve` process over HTTP, on the bench ledger at two sizes; the figures are the ratios
large ÷ small (target <= 2: a page costs the same on a 100,000-case ledger as on 1,000).

The server runs as a subprocess (the benchmark imports nothing of the server, as the
architecture's contracts require) with a keystore holding the log key only, and the requests
sign in as a person would: a signed challenge, then the session cookie. Before timing, one
request of each kind waits for what the server builds once per log position (the read model's
catch-up and the case-list index); the case list is timed on its first page and on filtered,
sorted, paged queries.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ledger import Keystore, auth_message, b64

from .workload import HANDLERS, case_number

SERVER_FILES = ("log.key", "log.state", "log.pub", "admin.pub")
READER = "office-01"          # the petition office: sees every case
WARMUP_SECONDS = 3600.0


def _serve(url: str, keystore: Path, workdir: Path) -> tuple[str, subprocess.Popen[str]]:
    server_keys = Path(tempfile.mkdtemp(prefix="server-keys-", dir=workdir))
    for name in SERVER_FILES:
        if (keystore / name).exists():
            shutil.copy2(keystore / name, server_keys / name)
    code = "import sys; from cli.main import main; sys.argv[0] = 'xinfang'; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--ledger", url,
                             "--keystore", str(server_keys), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    reader.join(600)
    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first[0] if first else "")
    if found is None:
        proc.kill()
        raise RuntimeError(f"xinfang serve did not start: {first}")
    return found.group(1), proc


def _sign_in(client: Any, base: str, keystore: Path) -> None:
    origin = {"origin": base}
    challenge = client.post(f"{base}/web/auth/challenge", json={"actor": READER},
                            headers=origin)
    challenge.raise_for_status()
    found = challenge.json()
    signature = Keystore(keystore).load(READER).sign(
        auth_message(found["origin"], READER, found["nonce"]))
    client.post(f"{base}/web/auth/session", headers=origin, json={
        "actor": READER, "nonce": found["nonce"], "signature": b64(signature)}
    ).raise_for_status()


def _p95(timings: list[float]) -> float:
    return statistics.quantiles(timings, n=20)[18]


def web_p95(url: str, keystore: Path, cases: int, workdir: Path,
            samples: int = 60) -> dict[str, Any]:
    """p95 latency (seconds) of the case list and of a case page over HTTP, on the ledger at
    ``url`` holding ``cases`` bench cases, and the time the server took to be ready."""
    import httpx

    rng = random.Random(15)
    base, proc = _serve(url, keystore, workdir)
    try:
        with httpx.Client(timeout=WARMUP_SECONDS, follow_redirects=False) as client:
            _sign_in(client, base, keystore)
            started = time.perf_counter()
            for path in ("/web/cases", f"/web/cases/{case_number(0)}"):
                client.get(base + path).raise_for_status()
            ready = time.perf_counter() - started
            pages = max(1, cases // 50)

            def list_url() -> str:
                kind = rng.randrange(3)
                if kind == 0:
                    return "/web/cases"
                if kind == 1:
                    return (f"/web/cases?handler=officer-{rng.randrange(HANDLERS):02d}"
                            f"&status=open&sort=registered&page={rng.randrange(1, 4)}")
                return f"/web/cases?sort=due&dir=asc&page={rng.randrange(1, pages + 1)}"

            timings: dict[str, list[float]] = {"list": [], "case": []}
            for _ in range(samples):
                for kind, path in (("list", list_url()),
                                   ("case", f"/web/cases/{case_number(rng.randrange(cases))}")):
                    began = time.perf_counter()
                    answer = client.get(base + path)
                    timings[kind].append(time.perf_counter() - began)
                    answer.raise_for_status()
        return {"cases": cases, "list_p95_s": _p95(timings["list"]),
                "case_p95_s": _p95(timings["case"]), "ready_s": ready}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def web_figures(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """The growth ratios (large ÷ small) and the raw figures behind them."""
    return {"web_list_growth": large["list_p95_s"] / small["list_p95_s"],
            "web_case_growth": large["case_p95_s"] / small["case_p95_s"],
            "web_list_p95_s": [small["list_p95_s"], large["list_p95_s"]],
            "web_case_p95_s": [small["case_p95_s"], large["case_p95_s"]],
            "web_ready_s": [small["ready_s"], large["ready_s"]],
            "web_cases": [small["cases"], large["cases"]]}


__all__ = ["web_figures", "web_p95"]
