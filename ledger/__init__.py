"""xinfang-ledger write side and verification: signed, chained events in one Merkle log.

This module is the library's public API: the command line (``cli/``) and the coming server
import only from here; the sub-packages behind it may be reorganised without notice. The map
(docs/architecture.md; the rules themselves are docs/integrity.md):

Writing (:mod:`ledger.writing`)
    :class:`Ledger` — open or create a ledger, execute signed commands (one or many), read
    its checked :class:`LedgerView`; :class:`Command`, :class:`Receipt`; :func:`import_file`
    (JSON Lines, all validated before anything is written) and its :class:`ImportResult`;
    :func:`default_keystore`.
Domain rules (:mod:`ledger.domain`)
    :class:`Policy` (deadlines, day counting, categories, permissions), :func:`load_policy_file`;
    :data:`SHANGHAI`, the business time zone.
Log primitives (:mod:`ledger.log`)
    :class:`PublicKey` (a key that verifies), :class:`Signer` (a key that only signs),
    :class:`Keystore`; :class:`Envelope` (one signed event) and its :class:`Statement`,
    :func:`parse_time`;
    :func:`parse_checkpoint` (a C2SP signed checkpoint).
Storage (:mod:`ledger.storage`)
    :class:`Store` and :func:`open_store` (the ledger's tables on SQLite or PostgreSQL),
    :func:`parse_location`, :func:`default_ledger_url`.
Verification (:mod:`ledger.verification`)
    :func:`verify_ledger` → :class:`VerifyReport`; checks as values: :class:`Check`,
    :class:`Failure`, :data:`CHECK_NAMES`; :func:`case_history` → :class:`CaseHistory`,
    :func:`case_status`; closure records (三签): :func:`closure_record`,
    :func:`closure_report`, :func:`closed_cases`, :class:`ClosureRecord`,
    :class:`ClosureSignature`; offline bundles: :func:`export_bundle`, :func:`bundle_bytes`,
    :func:`verify_bundle` → :class:`BundleReport`, :data:`BUNDLE_CHECK_NAMES`,
    :data:`MAX_BUNDLE_BYTES`.
Witnesses (docs/witness.md)
    C2SP ``cosignature/v1``: :class:`Cosigner` (a trusted witness key), :class:`Cosignature`,
    :func:`sign_cosignature`, :func:`verify_cosignature`, :func:`cosigner_vkey`,
    :func:`parse_cosigner_vkey`, :func:`judge_witnessed` → :class:`WitnessedCheckpoint`;
    the C2SP ``tlog-witness`` client: :class:`WitnessClient`, :func:`cosign`,
    :func:`fetch_cosigned`, :class:`WitnessRefused`, :class:`WitnessUnavailable`; a ledger's
    checkpoints cosigned and kept: :func:`cosign_latest`, :func:`cosigned_note`; the
    verifier's trust: :class:`WitnessPolicy`, :class:`TrustPolicy`, :func:`load_trust_policy`,
    :func:`witness_policy`; for a witness's own checks: :func:`verify_checkpoint`,
    :func:`note_key_id`, :func:`parse_verifier_key`, :func:`verify_consistency`,
    :class:`CheckpointError`.
Errors (:mod:`ledger.errors`)
    :class:`LedgerError` and its kinds, each with the CLI exit code it maps to.
"""

from ledger.domain.policy import SHANGHAI, Policy, load_policy_file
from ledger.errors import (
    ConflictError,
    EnvironmentProblem,
    ForbiddenError,
    InputError,
    KeyUnavailableError,
    LedgerError,
    StorageError,
    TransitionError,
    VerificationError,
)
from ledger.log.checkpoint import (
    CheckpointError,
    SignedCheckpoint,
    note_key_id,
    parse_checkpoint,
    parse_verifier_key,
    verify_checkpoint,
)
from ledger.log.cosignature import (
    Cosignature,
    CosignatureError,
    Cosigner,
    WitnessedCheckpoint,
    cosigner_vkey,
    judge_witnessed,
    parse_cosigner_vkey,
    sign_cosignature,
    verify_cosignature,
)
from ledger.log.keys import Keystore, PublicKey, Signer
from ledger.log.merkle import verify_consistency
from ledger.log.statement import Envelope, Statement, parse_time
from ledger.log.witness_client import (
    WitnessClient,
    WitnessRefused,
    WitnessUnavailable,
    cosign,
    fetch_cosigned,
)
from ledger.storage import Store, default_ledger_url, open_store, parse_location
from ledger.verification.bundle import CHECK_NAMES as BUNDLE_CHECK_NAMES
from ledger.verification.bundle import (
    MAX_BUNDLE_BYTES,
    BundleReport,
    bundle_bytes,
    export_bundle,
    verify_bundle,
)
from ledger.verification.checks import CHECK_NAMES, Check, Failure
from ledger.verification.closure import (
    ClosureRecord,
    ClosureSignature,
    closed_cases,
    closure_record,
    closure_report,
)
from ledger.verification.history import CaseHistory, case_history, case_status
from ledger.verification.trust import (
    TrustPolicy,
    WitnessPolicy,
    load_trust_policy,
    witness_policy,
)
from ledger.verification.verify import VerifyReport, verify_ledger
from ledger.verification.view import LedgerView
from ledger.writing.commands import Command, Receipt
from ledger.writing.importer import ImportResult, import_file
from ledger.writing.service import Ledger, default_keystore
from ledger.writing.witnessing import cosign_latest, cosigned_note

__all__ = [
    "BUNDLE_CHECK_NAMES", "CHECK_NAMES", "MAX_BUNDLE_BYTES", "SHANGHAI", "BundleReport",
    "CaseHistory", "Check", "CheckpointError", "ClosureRecord", "ClosureSignature", "Command",
    "ConflictError", "Cosignature", "CosignatureError", "Cosigner", "Envelope",
    "EnvironmentProblem", "Failure", "ForbiddenError", "ImportResult", "InputError",
    "KeyUnavailableError", "Keystore", "Ledger", "LedgerError", "LedgerView", "Policy", "PublicKey",
    "Receipt", "SignedCheckpoint", "Signer", "Statement", "StorageError", "Store",
    "TransitionError", "TrustPolicy",
    "VerificationError", "VerifyReport", "WitnessClient", "WitnessPolicy", "WitnessRefused",
    "WitnessUnavailable", "WitnessedCheckpoint", "bundle_bytes", "case_history", "case_status",
    "closed_cases", "closure_record", "closure_report", "cosign", "cosign_latest", "cosigned_note",
    "cosigner_vkey", "default_keystore", "default_ledger_url", "export_bundle", "fetch_cosigned",
    "import_file", "judge_witnessed", "load_policy_file", "load_trust_policy", "note_key_id",
    "open_store", "parse_checkpoint", "parse_cosigner_vkey", "parse_location", "parse_time",
    "parse_verifier_key", "sign_cosignature", "verify_bundle", "verify_checkpoint",
    "verify_consistency", "verify_cosignature", "verify_ledger", "witness_policy",
]
