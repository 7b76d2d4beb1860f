"""The ledger server's request and answer models and its OpenAPI description (docs/api.md).

Requests are pydantic models, frozen and ``extra="forbid"``, with every list and string
bounded; :func:`openapi` assembles the OpenAPI 3.1 document served at ``/openapi.json`` from
these models and the route table of :mod:`server.ledger_server`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BODY_BYTES = 32 << 20        # prepare / submit bodies (an import batch)
MAX_SMALL_BODY = 64 << 10        # sign-in, export requests
MAX_PREPARE = 20000              # commands in one prepare
MAX_SUBMIT = 5000                # signed events in one submit (one transaction)
MAX_SIGNED_B64 = 1_500_000       # a statement is at most 1 MiB; base64 is 4/3 of it
MAX_PAGE = 5000                  # raw log rows per page
ID = 64


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChallengeRequest(Model):
    """Ask for a nonce to sign (the first step of signing in)."""

    actor: str = Field(min_length=1, max_length=ID, description="Your actor id.")


class ChallengeAnswer(Model):
    nonce: str = Field(description="Sign `xinfang-auth/v1\\n<origin>\\n<actor>\\n<nonce>\\n`.")
    origin: str
    expires_in: int = Field(description="Seconds the nonce stays valid (once).")


class SessionRequest(Model):
    """The signed challenge (the second step)."""

    actor: str = Field(min_length=1, max_length=ID)
    nonce: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=128,
                           description="Standard base64 of the 64-byte Ed25519 signature.")


class SessionAnswer(Model):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    expires_in: int
    actor: str
    scope: str = Field(description="all · jurisdiction · unit · own (docs/api.md, reads).")
    log: bool = Field(description="Whether this reader may read the raw log.")


class CommandIn(Model):
    """One command to prepare, as an import line has it (times with an offset)."""

    action: str = Field(min_length=1, max_length=ID)
    case: str | None = Field(default=None, max_length=ID,
                             description="The case number; none for directory actions and "
                                         "for a register that takes the next number.")
    actor: str = Field(min_length=1, max_length=ID, description="Who will sign it.")
    at: str = Field(min_length=1, max_length=64, description="Business time, ISO 8601 with "
                                                              "offset.")
    data: dict[str, Any] = Field(description="The action's fields; `public_key` (64 hex "
                                             "digits) for actor.add / actor.rotate_key.")
    cmd: str | None = Field(default=None, min_length=1, max_length=200,
                            description="Command id: a retried command is recorded once.")
    migration: str | None = Field(default=None, max_length=100)


class PrepareRequest(Model):
    commands: list[CommandIn] = Field(min_length=1, max_length=MAX_PREPARE)
    lines: list[int] | None = Field(default=None, max_length=MAX_PREPARE,
                                    description="Import line numbers: every bad line is "
                                                "listed in the error.")
    dry_run: bool = Field(default=False, description="Judge only; answer what would be "
                                                     "written.")
    receipts: Literal["all", "none"] = Field(
        default="all", description="For commands already recorded: their full receipt (with "
                                   "checkpoint and inclusion proof), or a bare one.")


class PreparedItem(Model):
    index: int
    signed: str | None = Field(default=None, description="Standard base64 of the exact bytes "
                                                         "to sign.")
    duplicate: dict[str, Any] | None = Field(default=None, description="The receipt of the "
                                             "command already recorded under this id.")


class PrepareAnswer(Model):
    items: list[PreparedItem]


class SignedEvent(Model):
    signed: str = Field(min_length=1, max_length=MAX_SIGNED_B64,
                        description="Standard base64 of the bytes `prepare` returned.")
    signature: str = Field(min_length=1, max_length=128,
                           description="Standard base64 of the Ed25519 signature of them.")


class SubmitRequest(Model):
    events: list[SignedEvent] = Field(min_length=1, max_length=MAX_SUBMIT)
    receipts: Literal["all", "last"] = Field(
        default="all", description="Full receipts (checkpoint and inclusion proof) for every "
                                   "event, or for the last one only.")


class Receipt(Model):
    stream: str
    seq: int
    position: int
    type: str
    hash: str = Field(description="SHA-256 of the signed bytes, hex.")
    duplicate: bool
    leaf_index: int | None
    envelope: str | None = Field(default=None, description="The stored envelope, base64.")
    tree_size: int | None = None
    checkpoint: str | None = Field(default=None, description="The signed checkpoint note.")
    proof: list[str] | None = Field(default=None, description="RFC 9162 inclusion proof, "
                                                               "base64 hashes, leaf to root.")


class SubmitAnswer(Model):
    receipts: list[Receipt]


class ExportRequest(Model):
    cases: list[str] = Field(default_factory=list, max_length=1000)
    all_closed: bool = False


class Proof(Model):
    proof: list[str]


class Problem(Model):
    """Every error: the plain message the CLI prints, a hint, and its kind."""

    error: str
    hint: str | None = None
    kind: str = Field(description="input · transition · forbidden · conflict · verification · "
                                  "unauthenticated · not_found · too_large · environment")
    index: int | None = Field(default=None, description="The command or event refused.")


MODELS: tuple[type[Model], ...] = (
    ChallengeRequest, ChallengeAnswer, SessionRequest, SessionAnswer, CommandIn, PrepareRequest,
    PreparedItem, PrepareAnswer, SignedEvent, SubmitRequest, Receipt, SubmitAnswer,
    ExportRequest, Proof, Problem)


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            out.setdefault(name, definition)
        out[model.__name__] = schema
    return out


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi(routes: list[tuple[str, str, str, str | None, str | None, bool, list[str]]],
            version: str) -> dict[str, Any]:
    """The OpenAPI document: ``routes`` are (method, path, summary, request model, answer
    model, signed in?, query parameters)."""
    paths: dict[str, Any] = {}
    for method, path, summary, request, answer, auth, query in routes:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {
                    "schema": _ref(answer) if answer else {"type": "object"}}}},
                "default": {"description": "An error (docs/api.md, errors)",
                            "content": {"application/json": {"schema": _ref("Problem")}}}},
        }
        if request:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _ref(request)}}}
        parameters = [{"name": name, "in": "path", "required": True,
                       "schema": {"type": "string"}}
                      for name in _path_names(path)]
        parameters += [{"name": name, "in": "query", "required": False,
                        "schema": {"type": "string"}} for name in query]
        if parameters:
            operation["parameters"] = parameters
        if auth:
            operation["security"] = [{"session": []}]
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "xinfang-ledger server", "version": version,
                 "description": "The ledger server's API; the signing protocol is described in "
                                "docs/api.md."},
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": {"session": {
            "type": "http", "scheme": "bearer",
            "description": "A session token from POST /v1/auth/session."}}},
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/")
            if part.startswith("{") and part.endswith("}")]


__all__ = ["MAX_BODY_BYTES", "MAX_PAGE", "MAX_PREPARE", "MAX_SMALL_BODY", "MAX_SUBMIT", "MODELS",
           "ChallengeRequest", "CommandIn", "ExportRequest", "PrepareRequest", "SessionRequest",
           "SubmitRequest", "openapi"]
