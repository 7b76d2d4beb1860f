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
    :data:`SHANGHAI`, the business time zone; :data:`RULES_VERSION`. The action registry
    (docs/actions.md): :data:`ACTIONS` (each :class:`Action` defined once), :func:`action`,
    :func:`fields_of` → :class:`FieldInfo`, :func:`action_catalogue` (JSON for generated
    forms), :func:`import_schema` (the import line's JSON Schema, ``xinfang schema``).
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
The ledger server and its clients (docs/api.md)
    Server side, no private key needed: :func:`prepare_commands` (commands → the exact bytes
    to sign, a :class:`Preparation`), :func:`submit_signed` (judge signed statements as a
    whole and append them), :func:`receipt_documents`, :func:`inclusion_proof_at`,
    :func:`consistency_proof_between`. The client that signs on the person's device:
    :class:`LedgerClient` (the ``Ledger`` methods the CLI calls, a mirror of the raw log for
    independent verification, kept receipts: :class:`KeptReceipt`), :func:`actor_keys`. What
    crosses the wire (:mod:`ledger.writing.wire`): :func:`auth_message` and
    :data:`AUTH_CONTEXT`, :func:`b64`/:func:`unb64`, :func:`command_document`,
    :func:`command_from_document`, :func:`check_receipt`, :func:`check_kept_receipt`,
    :func:`directory_document`, :func:`directory_from_document`,
    :func:`history_from_document`, :func:`closure_record_from_document`, :func:`iso`;
    :func:`parse_import_lines` (an import file's lines as commands).
Errors (:mod:`ledger.errors`)
    :class:`LedgerError` and its kinds, each with the CLI exit code it maps to.
"""

from ledger.domain.actions import (
    ACTIONS,
    Action,
    FieldInfo,
    action,
    fields_of,
    import_schema,
)
from ledger.domain.actions import catalogue as action_catalogue
from ledger.domain.policy import RULES_VERSION, SHANGHAI, Policy, load_policy_file
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
from ledger.writing.client import KeptReceipt, LedgerClient, actor_keys
from ledger.writing.commands import Command, Receipt
from ledger.writing.importer import ImportResult, import_file
from ledger.writing.importer import parse_lines as parse_import_lines
from ledger.writing.service import Ledger, default_keystore
from ledger.writing.submission import (
    Preparation,
    consistency_proof_between,
    inclusion_proof_at,
    prepare_commands,
    receipt_documents,
    submit_signed,
)
from ledger.writing.wire import (
    AUTH_CONTEXT,
    auth_message,
    b64,
    check_kept_receipt,
    check_receipt,
    closure_record_from_document,
    command_document,
    command_from_document,
    directory_document,
    directory_from_document,
    history_from_document,
    iso,
    unb64,
)
from ledger.writing.witnessing import cosign_latest, cosigned_note

__all__ = [
    "ACTIONS", "AUTH_CONTEXT", "BUNDLE_CHECK_NAMES", "CHECK_NAMES", "MAX_BUNDLE_BYTES",
    "RULES_VERSION", "SHANGHAI", "Action", "BundleReport", "CaseHistory", "Check",
    "CheckpointError", "ClosureRecord", "ClosureSignature", "Command", "ConflictError",
    "Cosignature", "CosignatureError", "Cosigner", "Envelope", "EnvironmentProblem", "Failure",
    "FieldInfo", "ForbiddenError", "ImportResult", "InputError", "KeptReceipt",
    "KeyUnavailableError", "Keystore", "Ledger", "LedgerClient", "LedgerError", "LedgerView",
    "Policy", "Preparation", "PublicKey", "Receipt", "SignedCheckpoint", "Signer", "Statement",
    "StorageError", "Store", "TransitionError", "TrustPolicy", "VerificationError", "VerifyReport",
    "WitnessClient", "WitnessPolicy", "WitnessRefused", "WitnessUnavailable",
    "WitnessedCheckpoint", "action", "action_catalogue", "actor_keys", "auth_message", "b64",
    "bundle_bytes", "case_history", "case_status", "check_kept_receipt", "check_receipt",
    "closed_cases", "closure_record", "closure_record_from_document", "closure_report",
    "command_document", "command_from_document", "consistency_proof_between", "cosign",
    "cosign_latest", "cosigned_note", "cosigner_vkey", "default_keystore", "default_ledger_url",
    "directory_document", "directory_from_document", "export_bundle", "fetch_cosigned",
    "fields_of", "history_from_document", "import_file", "import_schema", "inclusion_proof_at",
    "iso", "judge_witnessed", "load_policy_file", "load_trust_policy", "note_key_id", "open_store",
    "parse_checkpoint", "parse_cosigner_vkey", "parse_import_lines", "parse_location",
    "parse_time", "parse_verifier_key", "prepare_commands", "receipt_documents",
    "sign_cosignature", "submit_signed", "unb64", "verify_bundle", "verify_checkpoint",
    "verify_consistency", "verify_cosignature", "verify_ledger", "witness_policy"
]
