"""The integrity page: the latest checkpoint and its witnesses, "verify now" as a background
job the page polls, and bundles from elsewhere verified on upload.

Verification is the library's own (``ledger.verify_ledger``, ``ledger.verify_bundle``) on a
store of this page's own, under the ledger's pinned log and admin keys — the same checks as
``xinfang verify`` and ``xinfang verify-bundle``.
"""

from __future__ import annotations

import base64
import logging
import secrets
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger import LedgerError, open_store, verify_ledger

log = logging.getLogger("xinfang.web")

KEEP_RESULTS = 32


@dataclass
class Witnessing:
    """What the stored cosignatures say about the latest cosigned checkpoint."""

    size: int | None
    witnesses: list[dict[str, Any]]
    unwitnessed: int


def _cosigner(line: str) -> dict[str, Any]:
    """Name, key id and timestamp of a ``cosignature/v1`` line (``— name base64``)."""
    parts = line.strip().lstrip("—").strip().split(" ")
    name = parts[0] if parts else "?"
    out: dict[str, Any] = {"name": name, "key_id": None, "at": None}
    try:
        raw = base64.b64decode(parts[1], validate=True)
        out["key_id"] = raw[:4].hex()
        if len(raw) == 4 + 8 + 64:
            (stamp,) = struct.unpack(">Q", raw[4:12])
            out["at"] = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
    except (IndexError, ValueError, OverflowError, OSError):
        pass
    return out


def witnessing(store: Any) -> Witnessing:
    """The largest cosigned checkpoint, who cosigned it and when, and how many events were
    written after it (the unwitnessed tail)."""
    rows = store.cosignatures()
    leaves = store.leaf_count()
    if not rows:
        return Witnessing(None, [], leaves)
    size = max(r[0] for r in rows)
    found = [{**_cosigner(line), "witness": witness}
             for s, witness, line, _note in rows if s == size]
    return Witnessing(size, found, max(leaves - size, 0))


@dataclass
class VerifyJob:
    """One "verify now" run in a background thread; the page polls :meth:`state`."""

    id: str
    owner: str
    total: int
    started: float = field(default_factory=time.time)
    done: int = 0
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def state(self) -> dict[str, Any]:
        return {"id": self.id, "running": self.finished is None, "done": self.done,
                "total": self.total, "seconds": round((self.finished or time.time())
                                                      - self.started, 1),
                "result": self.result, "error": self.error}


class Verifier:
    """At most one whole-ledger verification at a time (a second request joins it)."""

    def __init__(self, location: Any, log_key: bytes | None, admin_key: bytes | None) -> None:
        self.location = location
        self.log_key, self.admin_key = log_key, admin_key
        self.lock = threading.Lock()
        self.jobs: OrderedDict[str, VerifyJob] = OrderedDict()
        self.running: VerifyJob | None = None

    def start(self, owner: str) -> VerifyJob:
        with self.lock:
            if self.running is not None and self.running.finished is None:
                return self.running
            store = open_store(self.location)
            try:
                total = store.max_position()
            except LedgerError:
                store.close()
                raise
            job = VerifyJob(secrets.token_urlsafe(12), owner, total)
            self.jobs[job.id] = job
            while len(self.jobs) > KEEP_RESULTS:
                self.jobs.popitem(last=False)
            self.running = job
        threading.Thread(target=self._run, args=(job, store), name="xinfang-web-verify",
                         daemon=True).start()
        return job

    def job(self, job_id: str) -> VerifyJob | None:
        with self.lock:
            return self.jobs.get(job_id)

    def _run(self, job: VerifyJob, store: Any) -> None:
        def progress(position: int) -> None:
            job.done = min(position, job.total)

        try:
            report = verify_ledger(store, trusted_log_key=self.log_key,
                                   trusted_admin_key=self.admin_key, require_anchors=True,
                                   progress=progress)
            job.result = report.to_json()
            job.done = job.total
        except LedgerError as exc:
            job.error = exc.message
        except Exception:   # noqa: BLE001 - logged; the page shows a plain message
            log.exception("verify now failed")
            job.error = "internal error: see the server's log"
        finally:
            job.finished = time.time()
            store.close()


class Results:
    """Bundle verifications, kept for their uploader to view (a few, in memory)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    def keep(self, owner: str, value: Any) -> str:
        key = secrets.token_urlsafe(12)
        with self.lock:
            self.items[key] = (owner, value)
            while len(self.items) > KEEP_RESULTS:
                self.items.popitem(last=False)
        return key

    def get(self, owner: str, key: str) -> Any:
        with self.lock:
            found = self.items.get(key)
        return found[1] if found is not None and found[0] == owner else None


__all__ = ["Results", "Verifier", "VerifyJob", "Witnessing", "witnessing"]
