"""``verify``: checks 1-8 of docs/integrity.md over every stored row, in log order.

The per-row work is the checked log's (:mod:`ledger.verification.log`): the Merkle log,
then the order-free and order-dependent per-event checks. This module adds the trust anchors'
presence, check 8 against a checkpoint the inspector kept and the witness policy
(:mod:`ledger.verification.witnessed`), and the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import LedgerError
from ledger.log.checkpoint import Checkpoint, CheckpointError, parse_checkpoint, verify_checkpoint
from ledger.log.merkle import consistency_proof, verify_consistency
from ledger.storage.store import Store
from ledger.verification.checker import CaseSource, EventChecker, check_signatures
from ledger.verification.checks import CHECK_NAMES, Check, Failure
from ledger.verification.log import BATCH, CheckedLog
from ledger.verification.trust import WitnessPolicy
from ledger.verification.witnessed import LedgerWitnessCheck, fetch_witnessed, stored_sources

MAX_FAILURES = 1000


@dataclass
class VerifyReport:
    ok: bool
    events: int
    streams: int
    checkpoint_size: int | None
    checkpoint_root: str | None
    failures: list[Failure] = field(default_factory=list)
    kept_checkpoint: dict[str, Any] | None = None
    truncated_failures: bool = False
    witnessed: dict[str, Any] | None = None   # with a witness policy: {"size", "quorum", …}

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok, "events": self.events, "streams": self.streams,
            "checkpoint": {"size": self.checkpoint_size, "root": self.checkpoint_root},
            "failures": [f.to_json() for f in self.failures],
        }
        if self.kept_checkpoint is not None:
            out["kept_checkpoint"] = self.kept_checkpoint
        if self.witnessed is not None:
            out["witnessed"] = self.witnessed
        return out


class LedgerVerifier:
    """``verify``: consume the whole checked log, then check 8 against a kept checkpoint."""

    def __init__(self, store: Store, *, kept_checkpoint: str | None = None,
                 trusted_log_key: bytes | None = None, trusted_admin_key: bytes | None = None,
                 workers: int | None = None, case_cache: int = 20000,
                 progress: Callable[[int], None] | None = None,
                 require_anchors: bool = False, witness_policy: WitnessPolicy | None = None,
                 witnessed: Sequence[tuple[str, str]] = (), fetch_witnesses: bool = True,
                 now_us: int | None = None, executor: str = "process") -> None:
        self.store = store
        self.kept_text = kept_checkpoint
        self.trusted_log_key = trusted_log_key
        self.trusted_admin_key = trusted_admin_key
        self.require_anchors = require_anchors
        self.progress = progress
        self.failures: list[Failure] = []
        self.truncated = False
        self.log = CheckedLog(store, trusted_log_key=trusted_log_key,
                              trusted_admin_key=trusted_admin_key, workers=workers,
                              case_cache=case_cache, executor=executor)
        self.kept: Checkpoint | None = None
        self.kept_summary: dict[str, Any] | None = None
        # check 8, witnesses: (source, text) of cosigned checkpoints given by the inspector
        self.witness_policy = witness_policy
        self.witnessed_given = list(witnessed)
        self.fetch_witnesses = fetch_witnesses
        self.now_us = now_us
        self.witness: LedgerWitnessCheck | None = None
        self.witnessed_summary: dict[str, Any] | None = None

    @property
    def directory(self) -> Any:
        return self.log.checker.directory

    def fail(self, position: int, check: int, stream: str | None, seq: int | None,
             reason: str) -> None:
        self.record(Failure(position, check, stream, seq, reason))

    def record(self, failure: Failure) -> None:
        if len(self.failures) >= MAX_FAILURES:
            self.truncated = True
            return
        self.failures.append(failure)

    def run(self) -> VerifyReport:
        self._check_anchors()
        self._parse_kept()
        if self.kept is not None:
            self.log.roots_at[self.kept.size] = None
        self._prepare_witnesses()
        for judged, event in enumerate(self.log, start=1):
            if self.witness is not None:
                self.witness.observe(event)
            for failure in event.failures:
                if not failure.collective:   # those are reported once, in log_failures
                    self.record(failure)
            if self.progress and judged % BATCH == 0:
                self.progress(judged)
        for failure in self.log.log_failures:
            self.record(failure)
        self._check_kept()
        self._check_witnesses()
        self.failures.sort(key=lambda f: (f.position, f.check))
        latest = self.log.latest
        return VerifyReport(
            ok=not self.failures, events=self.log.checker.events + self.log.outside_rows,
            streams=self.log.checker.streams,
            checkpoint_size=latest.size if latest else None,
            checkpoint_root=latest.root.hex() if latest else None,
            failures=self.failures, kept_checkpoint=self.kept_summary,
            truncated_failures=self.truncated, witnessed=self.witnessed_summary)

    def _check_anchors(self) -> None:
        if not self.require_anchors:
            return
        if self.trusted_log_key is None:
            self.fail(0, Check.LOG, None, None, "no trusted log key was given: pass --log-key "
                      "log.pub (the public log key kept from `xinfang init`)")
        if self.trusted_admin_key is None:
            self.fail(0, Check.KEY, None, None, "no trusted admin key was given: pass "
                      "--admin-key admin.pub (the public admin key kept from `xinfang init`)")
        if self.trusted_log_key is not None and self.trusted_log_key == self.trusted_admin_key:
            self.fail(0, Check.KEY, None, None, "the trusted log key and the trusted admin key "
                      "are the same key; they must differ")

    # ---- check 8: the kept checkpoint ------------------------------------------------------

    def _parse_kept(self) -> None:
        if self.kept_text is None:
            return
        try:
            self.kept = parse_checkpoint(self.kept_text).checkpoint
        except CheckpointError as exc:
            self.fail(0, Check.KEPT, None, None, f"the kept checkpoint is malformed: {exc}")

    def _check_kept(self) -> None:
        kept = self.kept
        if kept is None or self.kept_text is None:
            return
        log = self.log
        self.kept_summary = {"size": kept.size, "root": kept.root.hex(), "consistent": False}
        try:
            verify_checkpoint(self.kept_text, log.origin, log.log_key, origin=log.origin)
        except (CheckpointError, ValueError) as exc:
            self.fail(0, Check.KEPT, None, None, f"the kept checkpoint does not verify under "
                      f"this ledger's log key: {exc}")
            return
        if kept.size > log.tree.size:
            self.fail(log.position_of_leaf(log.tree.size + 1) or self.store.max_position(),
                      Check.KEPT, None, None,
                      f"the kept checkpoint covers {kept.size} events but the ledger has only "
                      f"{log.tree.size}: rolled back or truncated")
            return
        if log.roots_at.get(kept.size) != kept.root:   # the tree recomputed from the rows
            self.fail(log.position_of_leaf(kept.size), Check.KEPT, None, None,
                      f"the first {kept.size} events differ from the kept checkpoint: the log "
                      "was rewritten or rolled back")
            return
        latest = log.latest
        if latest is not None and latest.size >= kept.size:
            try:
                proof = consistency_proof(kept.size, latest.size, self.store.get_node)
                good = verify_consistency(kept.size, latest.size, kept.root, latest.root, proof)
                reason = "the RFC 9162 consistency proof does not verify"
            except LedgerError as exc:   # a missing node is a failed proof
                good, proof, reason = False, [], str(exc)
            if not good:
                self.fail(log.position_of_leaf(kept.size), Check.KEPT, None, None, reason)
                return
            self.kept_summary["proof"] = [p.hex() for p in proof]
        self.kept_summary["consistent"] = True

    # ---- check 8: the witness policy ---------------------------------------------------------

    def _prepare_witnesses(self) -> None:
        """Gather the witnessed checkpoints (the witnesses' read endpoints, the files given,
        the kept checkpoint, the ledger's stored cosignatures) before the pass."""
        policy = self.witness_policy
        if policy is None:
            return
        sources = list(self.witnessed_given)
        if self.kept_text is not None:
            sources.append(("the kept checkpoint", self.kept_text))
        sources += stored_sources(self.store)
        problems: list[str] = []
        if self.fetch_witnesses:
            fetched, problems = fetch_witnessed(policy, self._origin_hint())
            sources += fetched
        self.witness = LedgerWitnessCheck(policy, sources, problems, now_us=self.now_us)
        self.witness.prepare(self.log.roots_at)

    def _origin_hint(self) -> str:
        """The origin to ask the witnesses about (the init event's; whatever it says, what
        they answer is verified under the trusted log key after the pass)."""
        from ledger.log.statement import DIRECTORY_STREAM, Envelope, Statement

        record = self.store.event_at(DIRECTORY_STREAM, 1)
        try:
            assert record is not None
            return Statement.from_signed_bytes(Envelope.from_bytes(record.state).signed,
                                               strict=False).origin
        except Exception:   # noqa: BLE001 - a hostile init event: the pass names it
            latest = self.store.latest_checkpoint()
            try:
                return parse_checkpoint(latest.note).checkpoint.origin if latest else ""
            except CheckpointError:
                return ""

    def _check_witnesses(self) -> None:
        if self.witness is None:
            return
        log = self.log
        failures, self.witnessed_summary = self.witness.judge(
            log.origin, log.log_key, log.tree.size, log.roots_at, self.failures,
            self.store.max_position())
        for failure in failures:
            self.record(failure)


def verify_ledger(store: Store, **options: Any) -> VerifyReport:
    return LedgerVerifier(store, **options).run()


__all__ = ["CHECK_NAMES", "CaseSource", "Check", "EventChecker", "Failure", "LedgerVerifier",
           "VerifyReport", "check_signatures", "verify_ledger"]
