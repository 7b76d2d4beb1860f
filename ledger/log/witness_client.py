"""Getting checkpoints cosigned: the client side of C2SP ``tlog-witness``.

A log (the embedded ``xinfang checkpoint --witness``, later the ledger server) calls
:meth:`WitnessClient.submit` with a signed checkpoint and a way to compute consistency proofs
(``proofs(old_size, new_size)``, e.g. ``merkle.consistency_proof`` over ``Store.get_node``). The
client sends ``old <size>`` — the witness's size as last seen, or 0 — the proof from that size,
a blank line and the checkpoint to ``POST <url>/add-checkpoint``; on ``409 Conflict`` it reads
the witness's size from the ``text/x.tlog.size`` body and proves again from there (once per
answer, c2sp.org/tlog-witness); it checks that the answer holds a valid cosignature by the
witness's own key and returns it. :func:`fetch_cosigned` reads a witness's latest cosigned
checkpoint of a log (``GET <url>/<hex SHA-256 of the origin>/checkpoint``).

Errors: a witness that refuses (4xx: it holds another tree, the proof is wrong, it does not
know the log) raises :class:`WitnessRefused` (exit 1: it is evidence against the log); one that
cannot be reached or fails (network, 5xx, a malformed answer) raises :class:`WitnessUnavailable`
(exit 3). Answers are read up to a bound.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import EnvironmentProblem, LedgerError, VerificationError
from ledger.log.checkpoint import CheckpointError, parse_checkpoint
from ledger.log.cosignature import (
    Cosignature,
    CosignatureError,
    Cosigner,
    parse_signature_lines,
    verify_cosignature,
    with_signature_lines,
)

ProofSource = Callable[[int, int], Sequence[bytes]]
SIZE_TYPE = "text/x.tlog.size"
MAX_ANSWER_BYTES = 64 * 1024
MAX_ROUNDS = 3            # a 409 is followed at most twice: the witness moved meanwhile
DEFAULT_TIMEOUT = 10.0


class WitnessRefused(VerificationError):
    """The witness answered with a refusal (HTTP 4xx): ``status`` and its message."""

    def __init__(self, message: str, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class WitnessUnavailable(EnvironmentProblem):
    """The witness could not be reached, failed, or answered something unreadable."""


def origin_hash(origin: str) -> str:
    """The path segment of a log in a witness's read API: lowercase hex SHA-256 of the origin."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


def _client(http: Any, timeout: float) -> Any:
    if http is not None:
        return http
    import httpx

    return httpx.Client(timeout=timeout, follow_redirects=False)


def _read(response: Any, limit: int) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > limit:
            raise WitnessUnavailable(f"the answer of {response.url} is larger than {limit} "
                                     "bytes")
    return bytes(data)


def _request(http: Any, method: str, url: str, **kwargs: Any) -> tuple[int, str, bytes]:
    import httpx

    try:
        with http.stream(method, url, **kwargs) as response:
            return (response.status_code, response.headers.get("content-type", ""),
                    _read(response, MAX_ANSWER_BYTES))
    except httpx.HTTPError as exc:
        raise WitnessUnavailable(f"cannot reach the witness at {url}: {exc}",
                                 "Check the URL and that the witness is running.") from None


@dataclass
class WitnessClient:
    """One witness: its trusted key and URL, and the size it was last seen to hold."""

    cosigner: Cosigner
    known_size: int | None = None
    http: Any = None            # an httpx.Client (tests pass one bound to an ASGI app)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.cosigner.url:
            raise ValueError("a witness client needs the witness's URL")

    @property
    def url(self) -> str:
        assert self.cosigner.url is not None
        return self.cosigner.url.rstrip("/")

    def submit(self, note: str, proofs: ProofSource) -> Cosignature:
        """Submit the signed checkpoint ``note`` and return the witness's cosignature on it."""
        try:
            checkpoint = parse_checkpoint(note).checkpoint
        except CheckpointError as exc:
            raise ValueError(f"not a signed checkpoint: {exc}") from None
        size = checkpoint.size
        old = self.known_size if self.known_size is not None and self.known_size <= size \
            else 0
        http = _client(self.http, self.timeout)
        try:
            for _ in range(MAX_ROUNDS):
                proof = list(proofs(old, size)) if 0 < old < size else []
                body = f"old {old}\n" + "".join(
                    base64.b64encode(node).decode("ascii") + "\n" for node in proof
                ) + "\n" + note
                status, kind, answer = _request(
                    http, "POST", f"{self.url}/add-checkpoint", content=body.encode("utf-8"),
                    headers={"content-type": "text/plain; charset=utf-8"})
                if status == 200:
                    cosignature = self._cosignature(note, answer)
                    self.known_size = size
                    return cosignature
                if status == 409 and kind.split(";")[0].strip() == SIZE_TYPE:
                    held = _size(answer, self.url)
                    self.known_size = held
                    if held > size:
                        raise WitnessRefused(
                            f"the witness at {self.url} already cosigned a tree of {held} "
                            f"events, larger than this checkpoint ({size}): the log was "
                            "rolled back, or this is an old checkpoint", 409)
                    if held == old:
                        break
                    old = held
                    continue
                message = _message(answer)
                if 400 <= status < 500:
                    raise WitnessRefused(f"the witness at {self.url} refused the checkpoint "
                                         f"of size {size} ({status}): {message}", status)
                raise WitnessUnavailable(f"the witness at {self.url} failed ({status}): "
                                         f"{message}")
        finally:
            if http is not self.http:
                http.close()
        raise WitnessUnavailable(f"the witness at {self.url} kept answering 409 Conflict")

    def _cosignature(self, note: str, answer: bytes) -> Cosignature:
        """The witness's own valid cosignature among the lines it answered."""
        try:
            lines = parse_signature_lines(answer.decode("utf-8"))
            signed = parse_checkpoint(with_signature_lines(note, lines))
        except (UnicodeDecodeError, CheckpointError) as exc:
            raise WitnessUnavailable(f"the witness at {self.url} answered no signature lines: "
                                     f"{exc}") from None
        body = signed.checkpoint.body()
        for sig in signed.signatures:
            if not self.cosigner.owns(sig):
                continue
            try:
                cosignature = Cosignature.from_note_signature(sig)
            except CosignatureError:
                continue
            if cosignature.timestamp and verify_cosignature(body, cosignature,
                                                            self.cosigner.public):
                return cosignature
        raise WitnessUnavailable(f"the answer of the witness at {self.url} holds no valid "
                                 "cosignature by the witness key given for it",
                                 "Check that the key file belongs to this witness.")


def _size(answer: bytes, url: str) -> int:
    text = answer.decode("ascii", "replace")
    if not text.endswith("\n") or not text[:-1].isdigit() or len(text) > 21 \
            or (len(text) > 2 and text.startswith("0")):
        raise WitnessUnavailable(f"the witness at {url} answered 409 without a tree size")
    return int(text[:-1])


def _message(answer: bytes) -> str:
    text = answer.decode("utf-8", "replace").strip().splitlines()
    first = text[0] if text else "(no message)"
    return "".join(ch if ch.isprintable() else "?" for ch in first)[:200]


def fetch_cosigned(cosigner: Cosigner, origin: str, *, http: Any = None,
                   timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """The witness's latest cosigned checkpoint of ``origin`` (unverified text), or None when
    it has cosigned none (404)."""
    if not cosigner.url:
        raise ValueError("no URL for this witness")
    url = f"{cosigner.url.rstrip('/')}/{origin_hash(origin)}/checkpoint"
    client = _client(http, timeout)
    try:
        status, _, answer = _request(client, "GET", url)
    finally:
        if client is not http:
            client.close()
    if status == 404:
        return None
    if status != 200:
        raise WitnessUnavailable(f"the witness at {url} answered {status}: {_message(answer)}")
    try:
        return answer.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessUnavailable(f"the witness at {url} answered bytes that are not UTF-8"
                                 ) from None


@dataclass
class CosignResult:
    """What a round of submissions got: the note with every cosignature obtained, and per
    witness (by index) its cosignature or the error it raised."""

    note: str
    cosignatures: dict[int, Cosignature] = field(default_factory=dict)
    errors: dict[int, LedgerError] = field(default_factory=dict)


def cosign(note: str, clients: Sequence[WitnessClient], proofs: ProofSource) -> CosignResult:
    """Submit ``note`` to every witness at once; a witness that fails does not stop the
    others (integrity.md: a witness that is down does not stop writes)."""
    result = CosignResult(note)

    def one(index: int) -> None:
        try:
            result.cosignatures[index] = clients[index].submit(note, proofs)
        except LedgerError as exc:
            result.errors[index] = exc

    if clients:
        with ThreadPoolExecutor(max_workers=min(8, len(clients))) as pool:
            list(pool.map(one, range(len(clients))))
    lines = [result.cosignatures[i].line() for i in sorted(result.cosignatures)]
    result.note = with_signature_lines(note, lines) if lines else note
    return result


__all__ = ["CosignResult", "ProofSource", "WitnessClient", "WitnessRefused",
           "WitnessUnavailable", "cosign", "fetch_cosigned", "origin_hash"]
