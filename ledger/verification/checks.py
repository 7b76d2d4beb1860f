"""The checks of docs/integrity.md as values: what was checked, what failed, and the verdict of
one event. Every reader (verify, case history, closures, bundles, reports, the write path)
speaks of failures in these terms, so one event has one verdict wherever it appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.log.statement import Envelope, Statement


class Check(IntEnum):
    """The numbered checks of docs/integrity.md (the numbers are part of the CLI contract)."""

    BUNDLE = 0          # bundles only: the file's own structure
    PARSE = 1
    SIGNATURE = 2
    KEY = 3
    AUTHORIZATION = 4
    CHAIN = 5
    TIME = 6
    LOG = 7
    KEPT = 8

    @property
    def title(self) -> str:
        return CHECK_TITLES[self][0]

    def label(self, lang: str = "en") -> str:
        return CHECK_TITLES[self][0 if lang == "en" else 1]


CHECK_TITLES: dict[Check, tuple[str, str]] = {
    Check.BUNDLE: ("bundle structure", "证据包结构"),
    Check.PARSE: ("signed bytes parse and match the stored columns",
                  "签名内容可解析且与存储列一致"),
    Check.SIGNATURE: ("signature verifies under the named key", "签名可用所称密钥验证"),
    Check.KEY: ("key belongs to the actor and was valid at that position",
                "密钥属于该人员且在该位置有效"),
    Check.AUTHORIZATION: ("actor authorized for the action at that position",
                          "该人员在该位置有权执行此操作"),
    Check.CHAIN: ("previous-hash link and gap-free sequence", "前序哈希链接与序号连续"),
    Check.TIME: ("business time not after recorded time", "业务时间不晚于记录时间"),
    Check.LOG: ("Merkle log and signed checkpoints", "默克尔日志与签名检查点"),
    Check.KEPT: ("consistency with the kept checkpoint and witnesses", "与留存检查点及见证一致"),
}

#: Check number → English title (the historical name of this table).
CHECK_NAMES: dict[int, str] = {int(check): titles[0] for check, titles in CHECK_TITLES.items()
                               if check is not Check.BUNDLE}


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: which check, which event (position, stream, seq) and why."""

    position: int
    check: int
    stream: str | None
    seq: int | None
    reason: str
    # Stands for a failure of the log reported once (e.g. a checkpoint whose root differs),
    # attached to each event it leaves unproven so that none of them counts.
    collective: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"check": int(self.check), "stream": self.stream, "seq": self.seq,
                "position": self.position, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """One stored event with its verdict. ``statement`` is None when the bytes do not parse.

    An event with any failure never counts: it changes no case or directory state, and is
    no valid signature or closure for any reader.
    """

    position: int
    stream: str
    seq: int
    type: str
    envelope: Envelope | None
    statement: Statement | None
    failures: tuple[Failure, ...] = ()
    outside: bool = False   # stored outside the Merkle log: reported, never judged by the rules

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def hash(self) -> str | None:
        return self.envelope.hash if self.envelope is not None else None

    def failed(self, *checks: Check) -> bool:
        """Whether any of ``checks`` failed for this event."""
        return any(f.check in checks for f in self.failures)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.reason for f in self.failures)


__all__ = ["CHECK_NAMES", "CHECK_TITLES", "Check", "CheckedEvent", "Failure"]
