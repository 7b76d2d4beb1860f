"""Cosigning the ledger's checkpoints by witnesses, and keeping the cosignatures with them.

The embedded mode (``xinfang checkpoint --witness URL=WITNESS.pub … --quorum K``) calls
:func:`cosign_latest`; the ledger server will call the same after its writes. Proofs come from
the store's Merkle nodes (the witness checks them: a wrong one is refused, never trusted), and
each witness is first asked with the size it last cosigned according to ``xf_cosignatures``
(a 409 corrects a wrong guess). Cosignatures obtained are stored with the checkpoint
(``Store.add_cosignatures``) so that ``xinfang checkpoint`` can print the cosigned note later
and ``verify`` finds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import VerificationError
from ledger.log.checkpoint import parse_checkpoint
from ledger.log.cosignature import Cosigner, with_signature_lines
from ledger.log.keys import event_key_id
from ledger.log.merkle import consistency_proof
from ledger.log.witness_client import CosignResult, WitnessClient, WitnessRefused, cosign
from ledger.storage.store import Store
from ledger.verification.witnessed import cosigned_note


@dataclass
class CosignOutcome:
    """The checkpoint, the cosigned note, and per witness its cosignature or its error."""

    size: int
    result: CosignResult
    quorum: int
    witnesses: Sequence[Cosigner]

    @property
    def note(self) -> str:
        return self.result.note

    @property
    def ok(self) -> bool:
        return len(self.result.cosignatures) >= self.quorum

    def error(self) -> VerificationError | Any:
        """The error to raise when the quorum was not reached: a refusal (exit 1) if any
        witness refused, else the first unavailability (exit 3)."""
        errors = [self.result.errors[i] for i in sorted(self.result.errors)]
        summary = "; ".join(f"{self.witnesses[i].label}: {self.result.errors[i].message}"
                            for i in sorted(self.result.errors))
        message = (f"{len(self.result.cosignatures)} of the {self.quorum} witness "
                   f"cosignature(s) needed for checkpoint {self.size}: {summary}")
        if any(isinstance(e, WitnessRefused) for e in errors):
            return VerificationError(message, "A witness refusing a checkpoint is evidence "
                                     "that the log was rewritten: run `xinfang verify`.")
        kind = type(errors[0]) if errors else VerificationError
        return kind(message, "Check that the witnesses are running; writes go on meanwhile.")


def clients_for(store: Store, witnesses: Sequence[Cosigner], **options: Any
                ) -> list[WitnessClient]:
    """One client per witness, starting from the size it last cosigned here (a guess)."""
    clients = []
    for witness in witnesses:
        sizes = store.cosigned_sizes(event_key_id(witness.public))
        clients.append(WitnessClient(witness, known_size=sizes[-1] if sizes else None,
                                     **options))
    return clients


def cosign_latest(store: Store, note: str, witnesses: Sequence[Cosigner], quorum: int,
                  **options: Any) -> CosignOutcome:
    """Submit the ledger's latest checkpoint ``note`` to every witness, store what they
    cosign, and return the outcome (``ok`` when at least ``quorum`` cosigned)."""
    size = parse_checkpoint(note).checkpoint.size
    clients = clients_for(store, witnesses, **options)
    result = cosign(note, clients,
                    lambda old, new: consistency_proof(old, new, store.get_node))
    rows = [(event_key_id(witnesses[i].public), cosignature.line(),
             with_signature_lines(note, [cosignature.line()]))
            for i, cosignature in sorted(result.cosignatures.items())]
    store.add_cosignatures(size, rows)
    return CosignOutcome(size, result, quorum, witnesses)


__all__ = ["CosignOutcome", "clients_for", "cosign_latest", "cosigned_note"]
