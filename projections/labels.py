"""Display labels for codes: Chinese by default, English with ``lang="en"``."""

from __future__ import annotations

from collections.abc import Iterable

from ledger.domain.actions import ACTIONS
from schemas.actions import CODE_LABELS

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    # Actions from the action registry (ledger/domain/actions.py), ``init`` being no action
    # anyone performs but the ledger's first event.
    "action": {"init": ("初始化", "initialize"),
               **{a.name: (a.zh, a.en) for a in ACTIONS}},
    # The vocabulary's code lists (schemas/actions.py): channel, source, category, role,
    # opinion, decision, outcome, resolution, form, level, supervision_form, ground, measure,
    # responsibility.
    **{kind: dict(codes) for kind, codes in CODE_LABELS.items()},
    "status": {
        "registered": ("已登记", "registered"), "accepted": ("已受理", "accepted"),
        "not_accepted": ("不予受理", "not accepted"),
        "not_reaccepted": ("不再受理", "not re-accepted"),
        "assigned": ("办理中", "in handling"), "replied": ("已答复", "replied"),
        "closed": ("已办结", "closed"), "final": ("已终结(复核)", "final (rechecked)"),
        "open": ("未办结", "open"),
    },
    "deadline": {"acceptance": ("受理告知期限", "acceptance notice due"),
                 "handling": ("办理期限", "handling due"),
                 "supervision": ("督办回告期限", "supervision due"),
                 "review_request": ("复查申请期限", "review request window"),
                 "review_decision": ("复查复核决定期限", "review decision due"),
                 "registration": ("登记期限", "registration due")},
    "closure": {
        "handler": ("承办人确认化解", "handler attestation"),
        "unit_leader": ("单位负责人签字", "unit leader consent"),
        "petitioner": ("信访人签字", "petitioner signature"),
        "closed_at": ("办结时间", "closed at"), "closed_by": ("办结人", "closed by"),
        "verdict": ("三签结论", "closure"), "valid": ("有效", "valid"),
        "invalid": ("无效", "INVALID"), "signature": ("签字", "signature"),
        "signer": ("签字人", "signer"), "key": ("密钥", "key"), "verified": ("验证", "verified"),
        "problems": ("问题", "problems"), "missing": ("缺", "missing"),
        "not_closed": ("未办结", "not closed"),
        "records": ("三签结案记录", "Closure records"),
        "reopened": ("办结后已重新办理", "reopened after closing"),
        "no_reply": ("办结前无答复", "no reply before closing"),
        "missing_attest": ("缺承办人确认化解", "handler attestation missing"),
        "missing_consent": ("缺单位负责人签字", "unit leader consent missing"),
        "missing_petitioner": ("缺信访人签字", "petitioner signature missing"),
        "refused": ("信访人拒签", "petitioner refused to sign"),
        "override": ("未经三签强行办结", "closed by override"),
        "bad_signature": ("签名无效", "invalid signature"),
        "unauthorized": ("签字人无权签字", "signer not authorized"),
        "broken_chain": ("哈希链断裂", "hash chain broken"),
        "no_document": ("见证签名缺文件摘要", "witnessed signature without document digest"),
        "wrong_order": ("签字顺序不当", "signatures out of order"),
        "after_close": ("办结后签字", "signed after closing"),
        "bad_close": ("办结事件未通过验证", "closing does not verify"),
    },
    "field": {
        "case": ("案件编号", "case"), "seq": ("序号", "seq"), "position": ("日志位置", "position"),
        "type": ("事项", "action"), "at": ("业务时间", "business time"),
        "recorded_at": ("记录时间", "recorded"), "actor": ("操作人", "actor"),
        "role": ("角色", "role"), "unit": ("单位", "unit"), "signature": ("签名", "signature"),
        "authorized": ("授权", "authorized"), "details": ("内容", "details"),
        "status": ("状态", "status"), "deadlines": ("期限", "deadlines"),
        "ok": ("通过", "ok"), "bad": ("不通过", "FAILED"), "yes": ("是", "yes"),
        "no": ("否", "no"), "verdict": ("验证", "verified"),
        "late": ("补录", "entered late"), "days": ("天", "days"), "check": ("检查", "check"),
    },
}


def label(kind: str, code: str | None, lang: str = "zh") -> str:
    if code is None:
        return "—"
    pair = LABELS.get(kind, {}).get(code)
    if pair is None:
        return code
    return pair[0] if lang == "zh" else pair[1]


# ---- reports: supervision ledger (督办台账) and statistics (信访工作统计) ------------------------

LABELS["report"] = {
    # titles and sheet names
    "supervision": ("督办台账", "Supervision ledger"),
    "statistics": ("信访工作统计", "Petition statistics"),
    "by_unit": ("按承办单位", "By handling unit"),
    "as_of": ("截至", "as of"), "period": ("统计期间", "period"), "to": ("至", "to"),
    "compare_previous": ("上期", "previous period"),
    "compare_year": ("去年同期", "same period last year"),
    "totals": ("合计", "total"), "unassigned": ("未交办", "unassigned"),
    # supervision columns
    "case": ("案件编号", "case"), "authority": ("督办机关", "supervising authority"),
    "supervised_at": ("督办日期", "supervised"), "form": ("督办形式", "form"),
    "petitioner": ("信访人", "petitioner"), "summary": ("信访事项", "summary"),
    "leader": ("包案领导", "package leader"), "unit": ("承办单位", "handling unit"),
    "handler": ("承办人", "handler"), "due": ("回告期限", "report-back due"),
    "progress_reports": ("进展报告", "progress reports"), "reminders": ("催办", "reminders"),
    "status": ("状态", "status"), "closed_at": ("办结日期", "closed"),
    "on_time": ("按期办结", "on time"), "overdue_days": ("超期天数", "days overdue"),
    "opinion": ("信访人意见", "petitioner's opinion"),
    "supervised": ("督办件", "supervised"), "closed": ("已办结", "closed"),
    "closed_on_time": ("按期办结", "closed on time"), "overdue": ("超期", "overdue"),
    # statistics columns and figures
    "figure": ("指标", "figure"), "current": ("本期", "this period"),
    "previous": ("对比期", "comparison"), "delta": ("增减", "change"),
    "pct": ("增减幅度", "change %"), "points": ("个百分点", " pts"),
    "total": ("信访总量（件次）", "petitions"), "persons": ("信访人次", "persons"),
    "by_channel": ("按渠道", "by channel"), "by_source": ("按来源", "by source"),
    "by_category": ("按内容分类", "by category"),
    "first_time": ("初信初访", "first petitions"), "repeat": ("重信重访", "repeat petitions"),
    "of_which_closed": ("其中已办结", "of which closed"),
    "repeat_share": ("重复信访占比", "repeat share"),
    "group_batches": ("集体访（批次）", "group petitions (batches)"),
    "group_persons": ("集体访（人次）", "group petitions (persons)"),
    "accepted": ("受理", "accepted"),
    "not_accepted": ("不予受理（含不再受理）", "not accepted (incl. not re-accepted)"),
    "undecided": ("待作受理决定", "awaiting decision"),
    "closed_replied": ("办结回复", "closed with reply"),
    "in_handling": ("正在办理", "in handling"), "reply_rate": ("办结回复率", "reply rate"),
    "reception_day": ("局长接待日", "director's reception day"),
    "reception_cases": ("接待来访（起）", "visits received (cases)"),
    "reception_persons": ("接待来访（人）", "visits received (persons)"),
    "reception_repeat": ("其中重访", "of which repeat"),
    "answered_on_spot": ("当面答复解决", "answered on the spot"),
    "deadline_reply": ("限期办结回告", "reply within a deadline"),
    "supervised_share": ("督办件占信访总量", "supervised share"),
    "supervised_close_rate": ("督办件办结率", "supervised close rate"),
    "supervised_by_authority": ("督办件按交办机关", "supervised by authority"),
    "packaged": ("领导包案", "leader-packaged"),
    "packaged_desisted": ("其中停访息诉", "of which desisted"),
    "desisted": ("停访息诉（全部）", "desisted (all)"),
    "cases": ("信访件", "cases"),
}


# ---- accountability (倒查) report: trigger codes, detail templates, columns ----------------------

LABELS["trigger"] = {
    "late_registration": ("登记迟延", "late registration"),
    "late_acceptance": ("受理决定超期", "late acceptance decision"),
    "late_notice": ("受理告知超期", "late acceptance notice"),
    "late_reply": ("答复超期", "late reply"),
    "overdue_open": ("超期未答复", "overdue without reply"),
    "no_feedback": ("交办后无反馈", "no feedback after assignment"),
    "supervision_missed": ("督办逾期未办结", "supervision deadline missed"),
    "no_report_back": ("督办逾期未回告", "no report-back by the supervision due date"),
    "unsigned_closure": ("未经三签结案", "closed without three signatures"),
    "dissatisfied_closure": ("不满意结案", "closed with petitioner dissatisfied"),
    "reflow": ("结而不息（回流）", "reflow after closing"),
    "bounced": ("反复交办", "bounced between handlers"),
    "overturned": ("复查复核改变原处理", "overturned on review"),
    "late_review_decision": ("复查复核决定超期", "late review decision"),
    "late_entry": ("补录", "late entry"),
    "integrity": ("完整性验证失败", "integrity failure"),
}
# Detail sentences: "code" or "code:variant", formatted with the trigger's facts.
LABELS["trigger_detail"] = {
    "late_acceptance": ("{decided}作出受理决定，期限{due}，超期{days}天",
                        "decided on {decided}, due {due}: {days} days late"),
    "late_acceptance:undecided": ("截至{as_of}未作受理决定，期限{due}，已超期{days}天",
                                  "no acceptance decision by {as_of}, due {due}: "
                                  "{days} days overdue"),
    "late_registration": ("{received}收到，{registered}才登记，登记期限{due}，迟延{days}天",
                          "received on {received}, registered on {registered}, due {due}: "
                          "{days} days late"),
    "late_notice": ("{served}送达受理告知书，期限{due}，超期{days}天",
                    "acceptance notice served on {served}, due {due}: {days} days late"),
    "late_notice:missing": ("截至{as_of}未记录送达受理告知书，期限{due}，已超期{days}天",
                            "no acceptance notice served by {as_of}, due {due}: "
                            "{days} days overdue"),
    "late_reply": ("{served}送达答复，办理期限{due}，超期{days}天",
                   "reply served on {served}, handling due {due}: {days} days late"),
    "overdue_open": ("截至{as_of}未答复，办理期限{due}，已超期{days}天",
                     "no reply by {as_of}, handling due {due}: {days} days overdue"),
    "no_feedback": ("交办后无进展报告也无答复，办理期限{due}，已超期{days}天",
                    "no progress report and no reply since assignment, handling due {due}: "
                    "{days} days overdue"),
    "supervision_missed": ("督办回告期限{due}，{closed}办结，超期{days}天",
                           "supervision due {due}, closed on {closed}: {days} days late"),
    "supervision_missed:open": ("督办回告期限{due}，截至{as_of}未办结，已超期{days}天",
                                "supervision due {due}, still open on {as_of}: "
                                "{days} days overdue"),
    "no_report_back": ("督办回告期限{due}，{reported}才回告，超期{days}天",
                       "supervision due {due}, reported back on {reported}: {days} days late"),
    "no_report_back:none": ("督办回告期限{due}，截至{as_of}未回告，已超期{days}天",
                            "supervision due {due}, no report-back by {as_of}: "
                            "{days} days overdue"),
    "unsigned_closure": ("{closed}办结，三签不全：{missing}",
                         "closed on {closed}, signatures incomplete: {missing}"),
    "unsigned_closure:override": ("{closed}办结，三签不全：{missing}；强行办结理由：{override}",
                                  "closed on {closed}, signatures incomplete: {missing}; "
                                  "override reason: {override}"),
    "unsigned_closure:refused": ("{closed}办结，信访人拒签（理由：{reason}），不计为工作人员过错；"
                                 "办结理由：{override}",
                                 "closed on {closed} after the petitioner refused to sign "
                                 "(reason: {reason}), no staff fault by itself; closing "
                                 "reason: {override}"),
    "dissatisfied_closure": ("{closed}办结，信访人意见：不满意",
                             "closed on {closed} with the petitioner dissatisfied"),
    "reflow": ("{closed}办结后，{later}于{registered}就同一事项再次信访",
               "closed on {closed}; {later}, registered on {registered}, is the same matter"),
    "reflow:desisted": ("{desisted}停访息诉后，{later}于{registered}就同一事项再次信访",
                        "desisted on {desisted}; {later}, registered on {registered}, is the "
                        "same matter"),
    "bounced": ("交办{count}次：{units}", "assigned {count} times: {units}"),
    "overturned": ("{decided}{level}决定：{decision}", "{level} decision on {decided}: {decision}"),
    "late_review_decision": ("{requested}申请{level}，{decided}作出决定，期限{due}，超期{days}天",
                             "{level} requested on {requested}, decided on {decided}, due {due}: "
                             "{days} days late"),
    "late_review_decision:pending": ("{requested}申请{level}，截至{as_of}未作决定，期限{due}，"
                                     "已超期{days}天",
                                     "{level} requested on {requested}, undecided on {as_of}, "
                                     "due {due}: {days} days overdue"),
    "late_entry": ("{action}业务时间{at}，{recorded}才记录，相隔{days}天",
                   "{action} dated {at} was recorded on {recorded}, {days} days later"),
    "late_entry:deadline": ("{action}业务时间{at}未超{deadline}{due}，但{recorded}才记录，"
                            "记录时已超期",
                            "{action} dated {at}, within the {deadline} {due}, was recorded "
                            "on {recorded}, after it"),
    "integrity": ("验证未通过（检查{checks}）：{reasons}",
                  "verification failed (check {checks}): {reasons}"),
}
LABELS["accountability"] = {
    "title": ("倒查报告", "Accountability report"),
    "triggers": ("倒查触发事项", "Reverse-check triggers"),
    "reverse_checks": ("倒查记录", "Reverse-checks"),
    "by_actor": ("按责任人", "By responsible actor"),
    "by_unit": ("按责任单位", "By responsible unit"),
    "custody": ("办理经过", "Chain of custody"),
    "as_of": ("截至", "as of"), "unit_filter": ("承办单位", "handling unit"),
    "case": ("案件编号", "case"), "code": ("触发事项", "trigger"), "on": ("日期", "date"),
    "due": ("期限", "due"), "days_late": ("超期天数", "days late"),
    "responsible": ("责任人", "responsible"), "units": ("责任单位", "units"),
    "evidence": ("证据事件", "evidence"), "detail": ("情况", "detail"),
    "opened_by": ("启动人", "opened by"), "opened_on": ("启动日期", "opened"),
    "reason": ("启动理由", "reason"), "finding_actor": ("认定责任人", "found responsible"),
    "fault": ("过错", "fault"), "measures": ("处理措施", "measures"),
    "confirmed": ("规则印证", "confirmed by rules"),
    "status": ("状态", "status"), "open": ("倒查中", "open"), "concluded": ("已结论", "concluded"),
    "actor": ("责任人", "actor"), "unit": ("单位", "unit"), "total": ("合计", "total"),
    "cases": ("案件数", "cases"), "findings": ("倒查认定", "findings"),
    "step": ("环节", "step"), "ref": ("事件", "event"), "details": ("内容", "details"),
    "signer": ("事件署名人", "actor named by the event"),
    "unattributed": ("未归属", "unattributed"), "none": ("无", "none"),
    "integrity_ok": ("完整性验证：通过", "integrity: verified, no failure"),
    "integrity_failed": ("完整性验证：{n}处失败", "integrity: {n} failures"),
    "integrity_skipped": ("完整性验证：未运行（--no-integrity）",
                          "integrity: not checked (--no-integrity)"),
    "outside_cases": ("不属于案件的验证失败", "failure outside any case"),
    "bad_ref": ("（哈希不符）", " (hash does not match)"),
    "unverified_handler": ("承办人确认化解未通过验证", "handler attestation does not verify"),
    "unverified_unit_leader": ("单位负责人签字未通过验证", "unit leader consent does not verify"),
    "unverified_petitioner": ("信访人签字未通过验证", "petitioner signature does not verify"),
    # migration batches (迁移补录): imports marked --migration, listed once each
    "migrations": ("迁移补录批次", "Migration batches"),
    "migration": ("批次", "batch"), "events": ("事件数", "events"),
    "signers": ("签名人", "signers"), "business_from": ("业务时间自", "business time from"),
    "business_to": ("业务时间至", "business time to"),
    "recorded_from": ("记录时间自", "recorded from"), "recorded_to": ("记录时间至", "recorded to"),
    "no_migrations": ("无迁移补录批次", "no migration batch"),
}


# ---- lookups: a code from its code or label (input that fits habits, issue 17) ---------------

def code_of(kind: str, text: str, codes: Iterable[str] | None = None) -> str | None:
    """The code of ``kind`` that ``text`` names, as the code itself or its Chinese or English
    label (``户口问题`` → ``household_registration``); None if it names none. ``codes`` limits
    the answer to the codes an option allows (``decision`` labels serve two code lists)."""
    allowed = set(codes) if codes is not None else set(LABELS.get(kind, {}))
    wanted = text.strip()
    if wanted in allowed:
        return wanted
    for code, (zh, en) in LABELS.get(kind, {}).items():
        if code in allowed and (wanted == zh or wanted.casefold() == en.casefold()):
            return code
    return None


def code_labels(kind: str, codes: Iterable[str] | None = None,
                lang: str = "zh") -> list[tuple[str, str]]:
    """(code, label) pairs of ``kind`` (limited to ``codes``, in their order), for help texts."""
    order = list(codes) if codes is not None else list(LABELS.get(kind, {}))
    return [(code, label(kind, code, lang)) for code in order]


# ---- printed reports (issue 17): headings, meta and sign-off lines, page footer -----------------

LABELS["print"] = {
    "supervision": ("信访督办台账", "Petition supervision ledger"),
    "statistics": ("信访工作统计", "Petition statistics"),
    "grid": ("信访统计表", "Statistics table"),
    "accountability": ("信访倒查报告", "Petition accountability report"),
    "closures": ("三签结案记录", "Closure records"),
    "unit": ("制表单位", "Unit"), "as_of_now": ("截至", "As of"),
    "prepared_by": ("制表人", "Prepared by"), "reviewed_by": ("审核人", "Reviewed by"),
    "prepared_on": ("制表日期", "Date"),
    "footer": ("第 &P 页 共 &N 页", "Page &P of &N"),
}
