"""Display labels for codes: Chinese by default, English with ``lang="en"``."""

from __future__ import annotations

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "action": {
        "init": ("初始化", "initialize"), "unit.add": ("新增单位", "add unit"),
        "actor.add": ("新增人员", "add actor"), "actor.rotate_key": ("更换密钥", "rotate key"),
        "actor.revoke_key": ("吊销密钥", "revoke key"),
        "register": ("登记", "register"), "accept": ("受理决定", "acceptance decision"),
        "assign": ("交办", "assign"), "supervise": ("督办", "supervise"),
        "remind": ("催办", "remind"), "package": ("领导包案", "leader package"),
        "progress": ("进展报告", "progress report"), "extend": ("延期", "extension"),
        "reply": ("答复", "reply"), "attest": ("承办人确认化解", "handler attestation"),
        "consent": ("单位负责人签字", "unit leader consent"),
        "petitioner_sign": ("信访人签字", "petitioner signature"), "close": ("办结", "close"),
        "desist": ("停访息诉", "desist"), "review_request": ("复查/复核申请", "review request"),
        "review_decide": ("复查/复核决定", "review decision"), "reopen": ("重新办理", "reopen"),
        "reverse_check_open": ("启动倒查", "open reverse-check"),
        "reverse_check_finding": ("倒查认定", "reverse-check finding"),
        "reverse_check_conclude": ("倒查结论", "conclude reverse-check"),
    },
    "channel": {"letter": ("来信", "letter"), "visit": ("来访", "visit"), "call": ("来电", "call"),
                "online": ("网上信访", "online"), "fax": ("传真", "fax"),
                "mailbox": ("局长信箱", "director's mailbox")},
    "source": {
        "direct": ("直接来信来访", "direct"), "petition_bureau": ("信访局转交办", "petition bureau"),
        "higher_police": ("上级公安机关转办", "higher police organ"),
        "congress": ("人大交办", "people's congress"),
        "political_legal_committee": ("政法委交办", "political-legal committee"),
        "procuratorate": ("检察院转来", "procuratorate"), "government": ("政府交办", "government"),
        "leader": ("领导交办", "leader"), "self_initiated": ("自立", "self-initiated"),
    },
    "category": {
        "file_case": ("要求立案查处", "file a case"),
        "police_misconduct": ("举报民警违法违纪", "police misconduct"),
        "household_registration": ("户口问题", "household registration"),
        "solve_case": ("要求破案结案", "solve a case"),
        "improper_handling": ("反映办案不规范", "improper case handling"),
        "perform_duty": ("要求履行管理职责", "perform duties"),
        "consultation_or_non_police": ("咨询及不属公安业务", "consultation / non-police"),
        "mental_health": ("精神异常", "mental health"), "appeal": ("不服处理决定申诉", "appeal"),
        "compensation": ("损失赔偿", "compensation"), "criminal": ("刑事案件", "criminal case"),
        "public_order": ("治安问题", "public order"), "help": ("求助", "help"),
        "other": ("其他", "other"),
    },
    "role": {
        "admin": ("管理员", "admin"), "registrar": ("登记员", "registrar"),
        "petition_office": ("信访部门", "petition office"), "handler": ("承办人", "handler"),
        "unit_leader": ("承办单位负责人", "unit leader"), "leader": ("局领导", "leader"),
        "supervisor": ("督办人", "supervisor"), "inspector": ("督察", "inspector"),
        "reviewer": ("复查复核机关", "reviewer"), "petitioner": ("信访人", "petitioner"),
    },
    "status": {
        "registered": ("已登记", "registered"), "accepted": ("已受理", "accepted"),
        "not_accepted": ("不予受理", "not accepted"), "not_reaccepted": ("不再受理", "not re-accepted"),
        "assigned": ("办理中", "in handling"), "replied": ("已答复", "replied"),
        "closed": ("已办结", "closed"), "final": ("已终结(复核)", "final (rechecked)"),
        "open": ("未办结", "open"),
    },
    "opinion": {"satisfied": ("满意", "satisfied"),
                "basically_satisfied": ("基本满意", "basically satisfied"),
                "dissatisfied": ("不满意", "dissatisfied")},
    "decision": {"accepted": ("受理", "accepted"), "not_accepted": ("不予受理", "not accepted"),
                 "not_reaccepted": ("不再受理", "not re-accepted"), "upheld": ("维持", "upheld"),
                 "changed": ("变更", "changed"), "revoked": ("撤销", "revoked")},
    "outcome": {"support": ("支持", "support"), "explain": ("解释", "explain"),
                "not_support": ("不予支持", "not supported")},
    "resolution": {"problem_solved": ("解决问题到位", "problem solved"),
                   "educated": ("思想教育到位", "educated"), "aided": ("帮扶救助到位", "aided"),
                   "lawfully_handled": ("依法处理", "handled by law")},
    "form": {"key": ("本人密钥签名", "own key"), "witnessed": ("见证纸质签名", "witnessed paper"),
             "refused": ("拒签", "refused")},
    "level": {"review": ("复查", "review"), "recheck": ("复核", "re-review")},
    "deadline": {"acceptance": ("受理告知期限", "acceptance notice due"),
                 "handling": ("办理期限", "handling due"),
                 "supervision": ("督办回告期限", "supervision due"),
                 "review_request": ("复查申请期限", "review request window")},
    "field": {
        "case": ("案件编号", "case"), "seq": ("序号", "seq"), "position": ("日志位置", "position"),
        "type": ("事项", "action"), "at": ("业务时间", "business time"),
        "recorded_at": ("记录时间", "recorded"), "actor": ("操作人", "actor"),
        "role": ("角色", "role"), "unit": ("单位", "unit"), "signature": ("签名", "signature"),
        "authorized": ("授权", "authorized"), "details": ("内容", "details"),
        "status": ("状态", "status"), "deadlines": ("期限", "deadlines"),
        "ok": ("通过", "ok"), "bad": ("不通过", "FAILED"), "yes": ("是", "yes"),
        "no": ("否", "no"),
    },
}


def label(kind: str, code: str | None, lang: str = "zh") -> str:
    if code is None:
        return "—"
    pair = LABELS.get(kind, {}).get(code)
    if pair is None:
        return code
    return pair[0] if lang == "zh" else pair[1]
