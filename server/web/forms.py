"""Doing the work in the browser (issue 16): forms generated from the action registry, and the
prepare/submit calls the page's signing script makes (docs/web.md, "Doing work").

Every form comes from :func:`ledger.action_catalogue` — one definition per action: its labels,
help, fields with their kinds, defaults and coded choices with their labels. The page
(``static/sign.js``) sends the form's command to :meth:`Work.prepare` (the server's own
``prepare``: every rule of a local write), decodes the canonical bytes it gets back, compares
every field with the form, refuses on any difference, and only then signs the exact bytes
with the person's non-extractable key and sends them to :meth:`Work.submit`. The actor of
every command is the signed-in session's actor: nobody prepares in another's name here.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger import ConflictError, InputError, Statement, action_catalogue, unb64
from ledger import action as registry_action
from server import api

from .session import WebProblem

#: The page's own words for doing work (Chinese first; ``?lang=en``).
WORK_WORDS: dict[str, tuple[str, str]] = {
    "work": ("办理", "Work on this case"),
    "work_hint": ("以下为您的角色可办理的事项。提交前页面显示待签内容及其哈希；浏览器核对服务器"
                  "准备的规范字节与表单一致后，才用本机密钥签名。",
                  "The actions your roles may take. Before signing, the page shows the "
                  "statement and its hash; your browser signs the server's canonical bytes "
                  "only after checking they say exactly what the form says."),
    "no_work": ("您的角色在此案件上没有可办理的事项。", "Your roles have no action on this case."),
    "roles": ("可办理角色", "Roles"),
    "business_time": ("业务时间（北京时间）", "Business time (Beijing time)"),
    "prepare": ("准备待签内容", "Prepare the statement"),
    "review": ("核对待签内容", "Check what you sign"),
    "sign": ("签名并提交", "Sign and submit"),
    "cancel": ("取消", "Cancel"),
    "statement_hash": ("待签字节 SHA-256", "SHA-256 of the bytes to sign"),
    "checked": ("已核对：服务器准备的字节与表单一致。", "Checked: the server's bytes say what the "
                "form says."),
    "tampered": ("拒绝签名：服务器准备的内容与表单不一致", "Refused to sign: the server prepared "
                 "a statement that differs from the form"),
    "nothing_signed": ("未签名，未写入任何内容。", "Nothing was signed or written."),
    "refused": ("已拒绝", "Refused"),
    "conflict": ("其他人刚刚办理了此案件，请重新准备后再签名。", "Someone else acted on this case "
                 "meanwhile: prepare again and sign again."),
    "reprepare": ("重新准备", "Prepare again"),
    "written": ("已写入", "Written"),
    "receipt": ("回执", "Receipt"),
    "position": ("日志位置", "Log position"),
    "event_hash": ("事件哈希", "Event hash"),
    "tree_size": ("检查点大小", "Checkpoint size"),
    "leaf_index": ("叶序号", "Leaf index"),
    "proof": ("包含证明", "Inclusion proof"),
    "checkpoint": ("检查点", "Checkpoint"),
    "kept": ("回执已保存在本浏览器中。", "The receipt is kept in this browser."),
    "no_key": ("本浏览器没有当前用户的密钥，无法签名。", "This browser holds no key of the "
               "signed-in actor: nothing can be signed."),
    "one_per_line": ("每行一项", "one per line"),
    "refs_hint": ("JSON 列表，如 [{\"stream\": \"XF-2025-000001\", \"seq\": 3}]",
                  "a JSON list, e.g. [{\"stream\": \"XF-2025-000001\", \"seq\": 3}]"),
    "field": ("字段", "Field"),
    "value": ("内容", "Value"),
    "action": ("事项", "Action"),
    "case": ("案件", "Case"),
    "actor": ("签名人", "Signed by"),
    "reload": ("刷新案件页", "Reload the case"),
    "my_work": ("我的待办", "My cases"),
    "my_work_hint": ("等待您办理的案件，已超期的在前，其余按办理期限排序。",
                     "What waits on you: overdue first, then by handling deadline."),
    "queue_mine": ("交我承办的案件", "Cases assigned to me"),
    "queue_unit": ("本单位承办的案件", "My unit's cases"),
    "queue_office": ("待受理或交办的案件", "Cases awaiting acceptance or assignment"),
    "queue_supervised": ("督办中的案件", "Supervised cases"),
    "register": ("登记", "Register"),
    "register_hint": ("登记一件新信访事项：案件编号由服务器按顺序分配，页面核对其格式。",
                      "Register a new petition: the server gives the next case number; the "
                      "page checks its form."),
    "no_register": ("您的角色不能登记信访事项。", "Your roles may not register petitions."),
    "nothing_waits": ("没有等待您办理的案件。", "Nothing waits on you."),
}


def work_word(key: str, lang: str) -> str:
    zh, en = WORK_WORDS[key]
    return zh if lang == "zh" else en


@dataclass(frozen=True)
class FieldView:
    name: str
    type: str            # code, codes, text, texts, int, flag, time, date, refs
    label: str
    help: str
    required: bool
    default: Any
    choices: list[tuple[str, str]] = field(default_factory=list)
    open_choices: bool = False


@dataclass(frozen=True)
class FormView:
    name: str
    label: str
    help: str
    scope: str
    article: str | None
    roles: list[str]
    fields: list[FieldView]


_CATALOGUE: list[dict[str, Any]] | None = None


def catalogue() -> list[dict[str, Any]]:
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = action_catalogue()
    return _CATALOGUE


def _model_default(name: str, field_name: str) -> Any:
    """The default the action's model fills in for an omitted field (adapter: the catalogue
    lists a field's default only when the registry names one, not the model's own, such as
    a registration's ``persons: 1`` and ``repeat_of: []``); None when there is none."""
    info = registry_action(name).model.model_fields.get(field_name)
    if info is None or info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    return None if value is None else json.loads(json.dumps(value, default=str))


def _form(entry: Mapping[str, Any], lang: str) -> FormView:
    fields = []
    for f in entry["fields"]:
        default = f["default"] if f["default"] is not None else \
            _model_default(entry["name"], f["name"])
        choices = [(c["code"], c[lang]) for c in f["choices"] or []]
        fields.append(FieldView(f["name"], f["type"], f["label"][lang], f["help"],
                                bool(f["required"]), default, choices,
                                bool(f["open_choices"])))
    return FormView(entry["name"], entry["label"][lang], entry["help"], entry["scope"],
                    entry["article"], list(entry["roles"]), fields)


def case_forms(reader: Any, status: str | None, lang: str) -> list[FormView]:
    """The case actions the reader's roles may take (registration is its own screen).

    Filtered by role only (and ``register`` left out); the rest of the rules — unit,
    assignment, state, deadlines — are judged by the server's ``prepare``, whose one-line
    reason the page shows, and nothing is written on refusal."""
    roles = set(reader.roles)
    return [_form(entry, lang) for entry in catalogue()
            if entry["stream"] == "case" and entry["name"] != "register"
            and roles & set(entry["roles"])]


@dataclass(frozen=True)
class Queue:
    key: str
    rows: list[dict[str, Any]]


def _by_deadline(row: Mapping[str, Any]) -> tuple[bool, str, str]:
    return (not row.get("overdue"), row.get("handling_due") or "\uffff", row["case"])


def work_lists(reader: Any, rows: list[dict[str, Any]]) -> list[Queue]:
    """ "My cases": the open cases that wait on the reader, one list per role that has one —
    a handler's own, a unit leader's unit's, the petition office's cases not yet with a
    handling unit, a leader's or supervisor's supervised cases — overdue first, then by
    handling deadline. ``rows`` are the case list rows the reader may see."""
    roles = set(reader.roles)
    open_rows = [r for r in rows if r.get("status") == "open"]
    queues = []
    if "handler" in roles:
        queues.append(Queue("queue_mine", [r for r in open_rows
                                           if r.get("handler") == reader.actor]))
    if "unit_leader" in roles and reader.unit:
        queues.append(Queue("queue_unit", [r for r in open_rows
                                           if r.get("unit") == reader.unit]))
    if "petition_office" in roles:
        queues.append(Queue("queue_office", [r for r in open_rows if not r.get("unit")]))
    if roles & {"leader", "supervisor"}:
        queues.append(Queue("queue_supervised", [r for r in open_rows if r.get("supervised")]))
    return [Queue(q.key, sorted(q.rows, key=_by_deadline)) for q in queues]


def register_forms(reader: Any, lang: str) -> list[FormView]:
    """The registration form, for a reader whose roles may register (else none)."""
    return [_form(entry, lang) for entry in catalogue()
            if entry["name"] == "register" and set(reader.roles) & set(entry["roles"])]


_CMD = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_cmd() -> str:
    return "web-" + secrets.token_hex(12)


class Work:
    """The two calls the signing script makes, as the signed-in actor only."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def prepare(self, reader: Any, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise WebProblem(400, "send {\"action\", \"case\", \"at\", \"data\", \"cmd\"}")
        known = {entry["name"]: entry for entry in catalogue()}
        name = body.get("action")
        if not isinstance(name, str) or name not in known:
            raise WebProblem(400, f"unknown action {str(name)[:40]!r}")
        cmd = body.get("cmd")
        if not isinstance(cmd, str) or not _CMD.match(cmd):
            raise WebProblem(400, "cmd: 8-128 letters, digits or ._:-")
        case = body.get("case")
        if known[name]["stream"] == "case" and name != "register" and \
                not isinstance(case, str):
            raise WebProblem(400, "case: give the case number")
        command = {"action": name, "case": case, "actor": reader.actor, "at": body.get("at"),
                   "data": body["data"], "cmd": cmd}
        answer = self.server.prepare(reader, api.PrepareRequest.model_validate(
            {"commands": [command]}))
        item = answer["items"][0]
        return {"origin": self.server.origin, "actor": reader.actor, **item}

    def submit(self, reader: Any, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("signed"), str) or \
                not isinstance(body.get("signature"), str):
            raise WebProblem(400, "send {\"signed\": base64, \"signature\": base64}")
        try:
            statement = Statement.from_signed_bytes(unb64(body["signed"], "signed"))
        except (InputError, ValueError) as exc:
            raise WebProblem(400, f"the signed bytes are no statement: {exc}") from None
        if statement.actor != reader.actor:
            raise WebProblem(403, f"signed in as {reader.actor}: a statement of "
                             f"{statement.actor} is not yours to submit here")
        try:
            answer = self.server.submit(reader, api.SubmitRequest.model_validate(
                {"events": [{"signed": body["signed"], "signature": body["signature"]}],
                 "receipts": "all"}))
        except ConflictError as exc:
            return {"conflict": exc.message}
        return {"receipt": answer["receipts"][0]}


__all__ = ["WORK_WORDS", "FieldView", "FormView", "Queue", "Work", "case_forms", "catalogue",
           "new_cmd", "register_forms", "work_lists", "work_word"]
