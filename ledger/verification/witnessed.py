"""Check 8, the witness policy: the ledger (or a bundle) against checkpoints that independent
witnesses cosigned (integrity.md "Witnesses"; docs/witness.md).

Witnessed checkpoints come from the witnesses' read endpoints, from files the inspector kept,
from the ledger's own ``xf_cosignatures`` (cosignatures cannot be forged, so the operator can
only delete them) and, for bundles, from the bundle. Each must verify under the trusted log key;
cosignatures count only under the policy's witness keys. Then:

* every checkpoint cosigned by at least one trusted witness must be consistent with the ledger:
  the tree recomputed from the rows has its root at its size (a fork otherwise, naming the
  first event that differs when the witnessed sizes pin it down), and the ledger is not
  smaller than it (a rollback otherwise);
* the *witnessed size* W is the largest size of a consistent checkpoint with a quorum;
* an event beyond W recorded more than the grace period ago fails: a log that witnesses refuse
  cannot hide behind "not yet witnessed". Otherwise the report says how many events lie beyond
  W (``"witnessed": {"size", "quorum", "unwitnessed"}``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.errors import LedgerError
from ledger.log.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from ledger.log.cosignature import (
    WitnessedCheckpoint,
    judge_witnessed,
    merge_witnessed,
    with_signature_lines,
)
from ledger.log.merkle import verify_consistency
from ledger.log.statement import now_us as _now_us
from ledger.verification.checks import Check, CheckedEvent, Failure
from ledger.verification.trust import WitnessPolicy

MAX_PROBLEMS = 20
MAX_STORED_SIZES = 256   # stored cosigned checkpoints a verification reads
_LEAF_POSITIONS = range(1, 2**64)

#: ``fetch(cosigner, origin)`` → the witness's latest cosigned checkpoint text, or None.
Fetcher = Callable[[Any, str], "str | None"]


def fetch_witnessed(policy: WitnessPolicy, origin: str,
                    fetch: Fetcher | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """Each URL-bearing witness's latest cosigned checkpoint of ``origin``, fetched at once:
    ``([(source, text)], [problems])``. A witness that is down is a problem, not a failure."""
    if fetch is None:
        from ledger.log.witness_client import fetch_cosigned

        fetch = fetch_cosigned
    targets = [(i, w) for i, w in enumerate(policy.witnesses) if w.url]
    found: list[tuple[str, str]] = []
    problems: list[str] = []

    def one(item: tuple[int, Any]) -> None:
        index, witness = item
        source = f"witness {policy.label(index)}"
        try:
            text = fetch(witness, origin)
        except LedgerError as exc:
            problems.append(f"{source}: {exc.message}")
            return
        if text is None:
            problems.append(f"{source} has cosigned no checkpoint of {origin}")
        else:
            found.append((source, text))

    if targets:
        with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
            list(pool.map(one, targets))
    return found, problems


class WitnessedSet:
    """Witnessed checkpoints from several sources, verified and merged per checkpoint."""

    def __init__(self, policy: WitnessPolicy, origin: str, log_key: bytes) -> None:
        self.policy = policy
        self.origin = origin
        self.log_key = log_key
        self.groups: dict[Checkpoint, WitnessedCheckpoint] = {}
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def add(self, text: str, source: str) -> WitnessedCheckpoint | None:
        try:
            judged = judge_witnessed(text, self.origin, self.log_key, self.policy.witnesses)
        except (CheckpointError, ValueError, TypeError) as exc:
            self.problem(f"{source}: not a checkpoint signed by the trusted log key ({exc})")
            return None
        for problem in judged.problems:
            self.problem(f"{source}: {problem}")
        if not judged.cosigners:
            return None
        held = self.groups.get(judged.checkpoint)
        self.groups[judged.checkpoint] = judged if held is None else merge_witnessed(held,
                                                                                   judged)
        return judged

    def quorum(self, witnessed: WitnessedCheckpoint) -> bool:
        return len(witnessed.cosigners) >= self.policy.quorum

    def names(self, witnessed: WitnessedCheckpoint) -> str:
        return ", ".join(self.policy.label(i) for i in sorted(witnessed.cosigners))

    def sizes(self) -> list[int]:
        return sorted({cp.size for cp in self.groups})


@dataclass
class _Leaf:
    position: int
    stream: str
    seq: int


@dataclass
class LedgerWitnessCheck:
    """Check 8's witness half for ``verify``: ``prepare`` before the pass (the witnessed sizes
    whose recomputed roots the pass must note), ``observe`` each event, ``judge`` at the end,
    when the ledger's origin and log key are known and the sources can be verified."""

    policy: WitnessPolicy
    sources: list[tuple[str, str]]       # (where it came from, checkpoint text)
    problems: list[str] = field(default_factory=list)
    now_us: int | None = None
    leaves: int = 0
    marks: set[int] = field(default_factory=set)
    at_leaf: dict[int, _Leaf] = field(default_factory=dict)
    first_old: dict[int, tuple[_Leaf, int]] = field(default_factory=dict)
    witnessed: WitnessedSet | None = None
    _waiting: list[int] = field(default_factory=list)
    _cutoff: int = 0

    def prepare(self, roots_at: dict[int, bytes | None]) -> None:
        sizes: set[int] = set()
        for source, text in self.sources:
            try:
                sizes.add(parse_checkpoint(text).checkpoint.size)
            except (CheckpointError, ValueError, TypeError) as exc:
                self.problems.append(f"{source}: not a checkpoint ({exc})")
        for size in sizes:
            roots_at.setdefault(size, None)
        self.marks = {1, *sizes, *(s + 1 for s in sizes)}
        self._waiting = sorted({0, *sizes})
        now = self.now_us if self.now_us is not None else _now_us()
        self._cutoff = now - self.policy.grace_seconds * 1_000_000

    def observe(self, event: CheckedEvent) -> None:
        if event.outside or event.position not in _LEAF_POSITIONS:
            return   # not a leaf of the recomputed tree (it fails check 7 anyway)
        self.leaves += 1
        leaf = self.leaves
        if leaf in self.marks:
            self.at_leaf[leaf] = _Leaf(event.position, event.stream, event.seq)
        recorded = event.envelope.recorded_at_us if event.envelope is not None else None
        if recorded is not None and recorded < self._cutoff:
            while self._waiting and self._waiting[0] < leaf:
                self.first_old[self._waiting.pop(0)] = (
                    _Leaf(event.position, event.stream, event.seq), recorded)

    def judge(self, origin: str, log_key: bytes, tree_size: int,
              roots_at: dict[int, bytes | None], found: Sequence[Failure], end_position: int
              ) -> tuple[list[Failure], dict[str, Any]]:
        ws = self.witnessed = WitnessedSet(self.policy, origin, log_key)
        for problem in self.problems:
            ws.problem(problem)
        for source, text in self.sources:
            ws.add(text, source)
        failures: list[Failure] = []
        consistent: list[WitnessedCheckpoint] = []
        diverging: list[WitnessedCheckpoint] = []
        beyond: list[WitnessedCheckpoint] = []
        for cp, witnessed in sorted(ws.groups.items(), key=lambda item: item[0].size):
            if cp.size > tree_size:
                beyond.append(witnessed)
            elif roots_at.get(cp.size) == cp.root:
                consistent.append(witnessed)
            else:
                diverging.append(witnessed)
        if diverging:
            failures.append(self._divergence(diverging[0], consistent, found))
        if beyond:
            top = beyond[-1]
            failures.append(Failure(
                end_position, Check.KEPT, None, None,
                f"witnesses ({ws.names(top)}) cosigned a tree of {top.checkpoint.size} events "
                f"but the ledger has only {tree_size}: rolled back or truncated"))
        quorum = [w for w in consistent if ws.quorum(w)]
        size = quorum[-1].checkpoint.size if quorum else 0
        old = self.first_old.get(size)
        if old is not None:
            leaf, recorded = old
            when = datetime.fromtimestamp(recorded / 1_000_000, tz=UTC).isoformat(
                timespec="seconds")
            failures.append(Failure(
                leaf.position, Check.KEPT, leaf.stream, leaf.seq,
                f"recorded at {when}, more than the grace period of "
                f"{self.policy.grace_seconds} s ago, yet no checkpoint with a quorum of "
                f"{self.policy.quorum} witness cosignature(s) covers it (witnessed up to "
                f"{size} of {tree_size} events)"))
        summary: dict[str, Any] = {
            "size": size if quorum else None, "quorum": self.policy.quorum,
            "witnesses": len(self.policy.witnesses), "unwitnessed": max(tree_size - size, 0),
            "cosigners": sorted(self.policy.label(i) for i in quorum[-1].cosigners)
            if quorum else [],
            "checkpoints": len(ws.groups), "problems": list(ws.problems),
        }
        return failures, summary

    def _divergence(self, bad: WitnessedCheckpoint, consistent: list[WitnessedCheckpoint],
                    found: Sequence[Failure]) -> Failure:
        """The failure for the smallest cosigned checkpoint the ledger contradicts, naming the
        first event that differs when a consistent witnessed size just below pins it."""
        size = bad.checkpoint.size
        below = max((w.checkpoint.size for w in consistent if w.checkpoint.size < size),
                    default=0)
        assert self.witnessed is not None
        what = (f"the first {size} events differ from the checkpoint of size {size} that "
                f"witnesses ({self.witnessed.names(bad)}) cosigned (root "
                f"{bad.checkpoint.root.hex()[:16]}…): the log was rewritten or forked")
        first, last = self.at_leaf.get(below + 1), self.at_leaf.get(size)
        if first is None or last is None:
            return Failure(0, Check.KEPT, None, None, what)
        if below + 1 == size:
            return Failure(first.position, Check.KEPT, first.stream, first.seq,
                           f"{what}; this event (leaf {size}) is the first that differs")
        span = f"leaves {below + 1}-{size} (positions {first.position}-{last.position})"
        for failure in found:
            if failure.stream is not None and not failure.collective and \
                    first.position <= failure.position <= last.position and \
                    failure.check != Check.KEPT:
                return Failure(failure.position, Check.KEPT, failure.stream, failure.seq,
                               f"{what}; an event among {span} differs, and this is the first "
                               "of them that fails its own checks")
        return Failure(first.position, Check.KEPT, None, None,
                       f"{what}; the first event that differs is one of {span}")


def stored_sources(store: Any, limit: int = MAX_STORED_SIZES) -> list[tuple[str, str]]:
    """The cosigned notes a ledger stored (``xf_cosignatures``), as sources: of at most
    ``limit`` sizes -- the latest half, and the rest spread evenly over the older ones, so that
    a divergence is still pinned to a short range of events on a large ledger."""
    sizes = store.cosigned_sizes()
    if len(sizes) > limit:
        recent, older = sizes[-(limit // 2):], sizes[:-(limit // 2)]
        step = len(older) / (limit - len(recent))
        sizes = sorted({older[int(i * step)] for i in range(limit - len(recent))} | set(recent))
    return [(f"the ledger's stored cosignature at size {size}", row[3])
            for size in sizes for row in store.cosignatures(size)]


def cosigned_note(store: Any, note: str) -> str:
    """``note`` with the cosignatures stored for it (those of the same checkpoint only)."""
    try:
        checkpoint = parse_checkpoint(note).checkpoint
    except CheckpointError:
        return note
    lines = []
    for _size, _witness, line, stored in store.cosignatures(checkpoint.size):
        try:
            if parse_checkpoint(stored).checkpoint == checkpoint:
                lines.append(line)
        except CheckpointError:
            continue   # a hostile row; verify reports what it finds
    try:
        return with_signature_lines(note, lines) if lines else note
    except CheckpointError:
        return note


# ---- bundles ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BundleLeaf:
    leaf_index: int
    position: int
    stream: str
    seq: int
    recorded_us: int | None


def check_bundle(witnessed: WitnessedSet, checkpoint: Checkpoint, checkpoint_text: str,
                 carried: tuple[str, Sequence[bytes]] | None, leaves: Sequence[BundleLeaf],
                 now_us: int | None = None) -> tuple[list[Failure], dict[str, Any]]:
    """Check 8 for a bundle proven against ``checkpoint``: its cosignatures, the witnessed
    checkpoint it carries (``carried``: note and consistency proof to ``checkpoint``) and those
    given (files, endpoints), then the grace period over its events."""
    failures: list[Failure] = []
    witnessed.add(checkpoint_text, "the bundle's checkpoint")
    carried_cp: Checkpoint | None = None
    if carried is not None:
        judged = witnessed.add(carried[0], "the bundle's witnessed checkpoint")
        if judged is not None:
            carried_cp = judged.checkpoint
            if carried_cp.size > checkpoint.size or not verify_consistency(
                    carried_cp.size, checkpoint.size, carried_cp.root, checkpoint.root,
                    list(carried[1])):
                failures.append(Failure(0, Check.KEPT, None, None, "the bundle's witnessed "
                                        f"checkpoint (size {carried_cp.size}) is not proven "
                                        "consistent with its checkpoint"))
                carried_cp = None
    connected: list[WitnessedCheckpoint] = []
    unconnected = 0
    for cp, group in sorted(witnessed.groups.items(), key=lambda item: item[0].size):
        anchor = checkpoint if cp.size == checkpoint.size else \
            carried_cp if carried_cp is not None and cp.size == carried_cp.size else None
        if anchor is None:
            unconnected += 1   # another size: no proof offline connects it to this bundle
        elif cp.root != anchor.root:
            failures.append(Failure(0, Check.KEPT, None, None, f"witnesses "
                                    f"({witnessed.names(group)}) cosigned another tree of size "
                                    f"{cp.size} (root {cp.root.hex()[:16]}…): the log behind "
                                    "this bundle was rewritten or forked"))
        else:
            connected.append(group)
    quorum = [g for g in connected if witnessed.quorum(g)]
    size = quorum[-1].checkpoint.size if quorum else 0
    now = now_us if now_us is not None else _now_us()
    cutoff = now - witnessed.policy.grace_seconds * 1_000_000
    beyond = [leaf for leaf in leaves if leaf.leaf_index >= size]
    for leaf in beyond:
        if leaf.recorded_us is not None and leaf.recorded_us < cutoff:
            failures.append(Failure(leaf.position, Check.KEPT, leaf.stream, leaf.seq,
                                    f"recorded more than the grace period of "
                                    f"{witnessed.policy.grace_seconds} s ago, yet the bundle "
                                    f"holds no checkpoint with a quorum of "
                                    f"{witnessed.policy.quorum} witness cosignature(s) that "
                                    "covers it"))
            break
    summary = {"size": size if quorum else None, "quorum": witnessed.policy.quorum,
               "witnesses": len(witnessed.policy.witnesses), "unwitnessed": len(beyond),
               "cosigners": sorted(witnessed.policy.label(i) for i in quorum[-1].cosigners)
               if quorum else [],
               "unconnected": unconnected, "problems": list(witnessed.problems)}
    return failures, summary


__all__ = ["BundleLeaf", "LedgerWitnessCheck", "WitnessedSet", "check_bundle",
           "cosigned_note", "fetch_witnessed", "stored_sources"]
