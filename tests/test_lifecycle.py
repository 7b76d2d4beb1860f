"""The life of a case: every action, every refusal, every role (both backends)."""

from __future__ import annotations

import pytest

from ledger.domain.policy import DEFAULT_PERMISSIONS
from ledger.errors import ForbiddenError, InputError, KeyUnavailableError, TransitionError
from ledger.verification.verify import verify_ledger
from schemas.actions import CASE_ACTIONS
from tests.world import ACTORS, World, t

SAMPLE_DATA = {
    "register": {"channel": "visit", "source": "direct", "category": "help",
                 "petitioner": "pet-0001", "summary": "求助"},
    "accept": {"decision": "accepted"},
    "assign": {"unit": "station-03", "handler": "officer-07"},
    "supervise": {"authority": "leader", "due": "2025-04-30"},
    "remind": {"note": "请加快"},
    "package": {"leader": "leader-01"},
    "progress": {"note": "进展"},
    "extend": {"days": 10, "reason": "需调查"},
    "reply": {"outcome": "explain", "resolution": "educated",
              "served_at": "2025-03-20T10:00:00+08:00", "text": "答复"},
    "attest": {"evidence": ["doc"]},
    "consent": {},
    "petitioner_sign": {"form": "witnessed", "opinion": "satisfied", "document_sha256": "ab" * 32},
    "close": {"override_reason": "测试"},
    "desist": {"document_sha256": "cd" * 32},
    "review_request": {"level": "review"},
    "review_decide": {"level": "review", "decision": "upheld"},
    "hearing": {"start": "2025-03-05T09:00:00+08:00", "end": "2025-03-05T11:00:00+08:00"},
    "report_back": {"text": "回告"},
    "reopen": {"reason": "回流"},
    "reverse_check_open": {"reason": "结而不息"},
    "reverse_check_finding": {"actor": "officer-07", "fault": "late_reply", "evidence": []},
    "reverse_check_conclude": {"measures": ["criticism"]},
}
ROLE_OF = {actor: roles[0] for actor, _, _, roles in ACTORS}


def test_every_action_in_a_full_life(world: World) -> None:
    do = world.do
    case = world.register(t("2025-03-02"), persons=3, reception_day=True,
                          received_by="leader-01")
    do("accept", case, {"decision": "accepted", "notice_served_at": "2025-03-05T10:00:00+08:00"},
       by="office-01", at=t("2025-03-03"))
    do("assign", case, {"unit": "county-01", "handler": "officer-08"}, by="office-01",
       at=t("2025-03-03", 10))
    do("assign", case, {"unit": "station-03", "handler": "officer-07", "due": "2025-05-01"},
       by="office-01", at=t("2025-03-04"))
    do("supervise", case, {"authority": "leader", "due": "2025-04-30", "form": "letter"},
       by="leader-01", at=t("2025-03-05"))
    do("remind", case, {"note": "请加快办理"}, by="supervisor-01", at=t("2025-03-20"))
    do("package", case, {"leader": "leader-01"}, by="leader-01", at=t("2025-03-06"))
    do("progress", case, {"note": "已约谈信访人"}, by="officer-07", at=t("2025-03-10"))
    do("report_back", case, {"text": "正在办理", "served_at": "2025-03-25T10:00:00+08:00"},
       by="officer-07", at=t("2025-03-25"))
    do("extend", case, {"days": 30, "reason": "需调取档案",
                        "notified_at": "2025-04-21T10:00:00+08:00"},
       by="leader-01", at=t("2025-04-20"))
    do("reply", case, {"outcome": "support", "resolution": "problem_solved",
                       "served_at": "2025-05-25T10:00:00+08:00", "text": "已办理落户"},
       by="officer-07", at=t("2025-05-25"))
    do("progress", case, {"note": "回访", "follow_up": True}, by="officer-07",
       at=t("2025-05-26"))
    do("attest", case, {"evidence": ["答复书-1"]}, by="officer-07", at=t("2025-05-26", 10))
    do("consent", case, {}, by="lead-03", at=t("2025-05-27"))
    do("petitioner_sign", case, {"form": "key", "opinion": "dissatisfied"}, by="pet-0001",
       at=t("2025-05-28"))
    do("close", case, {}, by="office-01", at=t("2025-05-29"))
    do("review_request", case, {"level": "review"}, by="registrar-01", at=t("2025-06-10"))
    do("review_decide", case, {"level": "review", "decision": "changed",
                               "served_at": "2025-07-02T10:00:00+08:00"}, by="reviewer-02",
       at=t("2025-07-01"))
    do("reopen", case, {"reason": "复查变更"}, by="office-01", at=t("2025-07-02"))
    do("reply", case, {"outcome": "support", "resolution": "aided",
                       "served_at": "2025-07-20T10:00:00+08:00", "text": "重新答复"},
       by="officer-07", at=t("2025-07-20"))
    do("attest", case, {"evidence": ["答复书-2"]}, by="officer-07", at=t("2025-07-21"))
    do("consent", case, {}, by="lead-03", at=t("2025-07-21", 10))
    do("petitioner_sign", case, {"form": "witnessed", "opinion": "basically_satisfied",
                                 "document_sha256": "ab" * 32}, by="registrar-01",
       at=t("2025-07-22"))
    do("close", case, {}, by="office-01", at=t("2025-07-23"))
    do("review_request", case, {"level": "recheck"}, by="registrar-01", at=t("2025-07-25"))
    do("hearing", case, {"start": "2025-07-28T09:00:00+08:00",
                         "end": "2025-07-29T17:00:00+08:00"}, by="reviewer-01",
       at=t("2025-07-30"))
    do("review_decide", case, {"level": "recheck", "decision": "upheld"}, by="reviewer-01",
       at=t("2025-08-10"))
    do("desist", case, {"document_sha256": "cd" * 32}, by="registrar-01", at=t("2025-08-11"))
    with pytest.raises(TransitionError, match="final"):
        do("reopen", case, {"reason": "再次"}, by="office-01", at=t("2025-08-12"))
    # the inspector may still audit a final matter
    do("reverse_check_open", case, {"reason": "结而不息"}, by="inspector-01", at=t("2025-09-01"))
    ref = world.ledger.store.event_at(case, 10)
    from ledger.log.statement import Envelope

    do("reverse_check_finding", case, {"actor": "officer-07", "fault": "late_reply",
                                       "evidence": [{"stream": case, "seq": 10, "hash":
                                                     Envelope.from_bytes(ref.state).hash}]},
       by="inspector-01", at=t("2025-09-02"))
    do("reverse_check_conclude", case, {"measures": ["criticism"], "note": "批评教育"},
       by="inspector-01", at=t("2025-09-03"))
    # a new petition on the final matter: registered, and only not_reaccepted
    again = world.register(t("2025-09-10"), repeat_of=[case])
    with pytest.raises(TransitionError, match="not_reaccepted"):
        do("accept", again, {"decision": "accepted"}, by="office-01", at=t("2025-09-11"))
    do("accept", again, {"decision": "not_reaccepted", "reason": "复核终结"}, by="office-01",
       at=t("2025-09-11"))
    assert set(CASE_ACTIONS) <= {e.type for e in world.ledger.store.stream(case)} | {"register"}
    report = verify_ledger(world.ledger.store)
    assert report.ok, report.failures


def _refused(world: World, exc: type[Exception], match: str, action: str, case: str,
             data: dict, by: str, at) -> None:  # noqa: ANN001
    before = world.ledger.store.leaf_count()
    with pytest.raises(exc, match=match):
        world.do(action, case, data, by=by, at=at)
    assert world.ledger.store.leaf_count() == before, "a refused write wrote something"


def test_transition_refusals(world: World) -> None:
    case = world.register(t("2025-03-02"))
    reply = SAMPLE_DATA["reply"]
    _refused(world, TransitionError, "not been accepted", "reply", case, reply, "officer-07",
             t("2025-03-03"))
    _refused(world, TransitionError, "before the case's registration", "accept", case,
             {"decision": "accepted"}, "office-01", t("2025-03-01"))
    _refused(world, TransitionError, "not_reaccepted needs", "accept", case,
             {"decision": "not_reaccepted", "reason": "x"}, "office-01", t("2025-03-03"))
    world.do("accept", case, {"decision": "accepted"}, by="office-01", at=t("2025-03-03"))
    _refused(world, TransitionError, "already made", "accept", case, {"decision": "accepted"},
             "office-01", t("2025-03-03"))
    _refused(world, TransitionError, "belongs to", "assign", case,
             {"unit": "county-01", "handler": "officer-07"}, "office-01", t("2025-03-03"))
    world.do("assign", case, {"unit": "station-03", "handler": "officer-07"}, by="office-01",
             at=t("2025-03-03"))
    _refused(world, TransitionError, "at most 30 days", "extend", case,
             {"days": 31, "reason": "x"}, "leader-01", t("2025-04-01"))
    world.do("extend", case, {"days": 20, "reason": "x"}, by="leader-01", at=t("2025-04-01"))
    _refused(world, TransitionError, "extended once", "extend", case,
             {"days": 10, "reason": "x"}, "leader-01", t("2025-04-02"))
    _refused(world, TransitionError, "no reply", "attest", case, {"evidence": ["d"]},
             "officer-07", t("2025-04-02"))
    _refused(world, TransitionError, "supervised", "remind", case, {}, "supervisor-01",
             t("2025-04-02"))
    world.do("reply", case, {**reply, "served_at": "2025-04-03T10:00:00+08:00"},
             by="officer-07", at=t("2025-04-03"))
    _refused(world, TransitionError, "three signatures", "close", case, {}, "office-01",
             t("2025-04-04"))
    _refused(world, TransitionError, "review", "review_decide", case,
             {"level": "review", "decision": "upheld"}, "reviewer-01", t("2025-04-04"))
    _refused(world, TransitionError, "window closed", "review_request", case,
             {"level": "review"}, "registrar-01", t("2025-05-04"))
    _refused(world, TransitionError, "decided review", "review_request", case,
             {"level": "recheck"}, "registrar-01", t("2025-04-05"))
    world.do("close", case, {"override_reason": "信访人失联"}, by="office-01",
             at=t("2025-04-04"))
    _refused(world, TransitionError, "closed", "progress", case, {"note": "x"}, "officer-07",
             t("2025-04-05"))
    _refused(world, InputError, "unknown case", "accept", "XF-2025-000099",
             {"decision": "accepted"}, "office-01", t("2025-04-05"))
    _refused(world, InputError, "in the future", "desist", case,
             {"document_sha256": "ab" * 32}, "registrar-01", t("2099-01-01"))


def test_register_refusals(world: World) -> None:
    base = SAMPLE_DATA["register"]
    _refused(world, TransitionError, "unknown category", "register", None,
             {**base, "category": "ufo"}, "registrar-01", t("2025-03-02"))
    _refused(world, TransitionError, "not a registered petitioner", "register", None,
             {**base, "petitioner": "officer-07"}, "registrar-01", t("2025-03-02"))
    _refused(world, TransitionError, "not registered", "register", None,
             {**base, "repeat_of": ["XF-2024-000001"]}, "registrar-01", t("2025-03-02"))
    _refused(world, ForbiddenError, "reception-day", "register", None, base, "leader-01",
             t("2025-03-02"))
    _refused(world, InputError, "summary", "register", None, {**base, "summary": ""},
             "registrar-01", t("2025-03-02"))
    world.do("register", None, {**base, "reception_day": True}, by="leader-01",
             at=t("2025-03-02"))


def test_scoped_authorization(world: World) -> None:
    case = world.accepted_case(handler="officer-07", unit="station-03")
    _refused(world, ForbiddenError, "not the handler", "progress", case, {"note": "x"},
             "officer-08", t("2025-03-05"))
    _refused(world, ForbiddenError, "needs the role leader", "extend", case,
             {"days": 5, "reason": "x"}, "lead-01", t("2025-03-05"))
    world.do("reply", case, SAMPLE_DATA["reply"], by="officer-07", at=t("2025-03-20"))
    _refused(world, ForbiddenError, "not the handling unit", "consent", case, {}, "lead-01",
             t("2025-03-21"))
    world.ledger.add_actor("pet-0003", "孙某", roles=["petitioner"], as_actor="admin-01",
                           at=t("2025-03-01"))
    _refused(world, ForbiddenError, "own petitioner", "petitioner_sign", case,
             {"form": "key", "opinion": "satisfied"}, "pet-0003", t("2025-03-21"))
    other = world.register(t("2025-03-02"), petitioner="pet-0002")
    with pytest.raises(ForbiddenError, match="without a key"):
        world.do("desist", other, {"document_sha256": "ab" * 32}, by="pet-0002",
                 at=t("2025-03-03"))
    with pytest.raises(KeyUnavailableError):
        world.ledger.keystore.load("pet-0002")


@pytest.mark.parametrize("action", sorted(CASE_ACTIONS))
def test_every_wrong_role_is_refused(world: World, action: str) -> None:
    case = world.accepted_case()
    allowed = {role for role, actions in DEFAULT_PERMISSIONS.items() if action in actions}
    wrong = [actor for actor, role in ROLE_OF.items() if role not in allowed]
    assert wrong
    for actor in wrong:
        _refused(world, ForbiddenError, "may not", action,
                 None if action == "register" else case, SAMPLE_DATA[action], actor,
                 t("2025-03-10"))
