"""A realistic year of petition work for a city bureau, as commands (used by `demo` and `bench`).

Deterministic for a seed (keys aside): the same units, actors, cases, paths and business times.
The mix follows the seed reports: letters and visits dominate, many consultations are not
accepted, a minority are repeat or group petitions, leaders receive visitors on reception days,
some cases are supervised or packaged by leaders, and a few go wrong in each of the ways the
reverse-check (倒查) rules look for. It is written under the rules of the 信访工作条例 (2022)
(rules version 3): receipt before registration, coded grounds for not accepting, extensions
approved by a bureau leader while the period runs, 复查 by the next higher body (a county
bureau for a station, the city bureau otherwise) and 复核 by the city bureau with hearings,
report-backs to supervising authorities, refusals with their reasons and coded measures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ledger import SHANGHAI, Command, Envelope, Statement

COUNTIES = [("county-01", "东城县公安局"), ("county-02", "西山县公安局"), ("county-03", "南湖区公安分局")]
STATIONS = {"county-01": ["城关派出所", "东关派出所"], "county-02": ["西山派出所", "北岭派出所"],
            "county-03": ["南湖派出所", "湖滨派出所"]}
DEPARTMENTS = [("city-xz", "刑侦支队"), ("city-za", "治安支队"), ("city-hz", "户政管理支队")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌"
CHANNELS = [("letter", 30), ("visit", 30), ("call", 8), ("online", 22), ("fax", 2), ("mailbox", 8)]
SOURCES = [("direct", 30), ("petition_bureau", 30), ("higher_police", 12), ("congress", 5),
           ("political_legal_committee", 4), ("procuratorate", 4), ("government", 6),
           ("leader", 4), ("self_initiated", 5)]
CATEGORIES = [("file_case", 13), ("police_misconduct", 3), ("household_registration", 17),
              ("solve_case", 5), ("improper_handling", 9), ("perform_duty", 13),
              ("consultation_or_non_police", 20), ("mental_health", 2), ("appeal", 5),
              ("compensation", 3), ("criminal", 4), ("public_order", 4), ("help", 2)]
SUMMARIES = {
    "file_case": "要求对邻里纠纷中的伤害行为立案查处", "police_misconduct": "举报民警执法态度粗暴",
    "household_registration": "户口迁移申请不予办理", "solve_case": "要求尽快侦破盗窃案件",
    "improper_handling": "反映案件办理程序不规范", "perform_duty": "要求整治夜间噪音扰民",
    "consultation_or_non_police": "咨询土地承包纠纷处理途径", "mental_health": "反映家属精神异常需要救助",
    "appeal": "不服行政处罚决定提出申诉", "compensation": "要求赔偿扣押物品损失",
    "criminal": "反映诈骗案件进展缓慢", "public_order": "反映小区治安秩序混乱", "help": "求助寻找走失老人",
}


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in weighted], weights=[w for _, w in weighted])[0]


@dataclass
class Staff:
    units: list[tuple[str, str, str | None]] = field(default_factory=list)
    actors: list[tuple[str, str, str | None, list[str], bool]] = field(default_factory=list)
    handlers: dict[str, list[str]] = field(default_factory=dict)    # unit -> handlers
    unit_leaders: dict[str, str] = field(default_factory=dict)
    petitioners_keyed: list[str] = field(default_factory=list)
    petitioners_paper: list[str] = field(default_factory=list)
    registrars: list[str] = field(default_factory=list)
    office: list[str] = field(default_factory=list)
    leaders: list[str] = field(default_factory=list)
    supervisors: list[str] = field(default_factory=list)
    inspectors: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)                # the city bureau's
    county_reviewers: dict[str, str] = field(default_factory=dict)    # county -> reviewer


@dataclass
class Scenario:
    """Commands in write order; ``late`` holds those needing hashes of earlier events."""

    staff: Staff
    commands: list[Command]
    year: int
    cases: int
    problems: dict[str, list[str]] = field(default_factory=dict)


class _Builder:
    def __init__(self, seed: int, year: int, cases: int, petitioners: int) -> None:
        self.rng = random.Random(seed)
        # The choices the 2022 rules added (receipt, grounds, report-backs, hearings…) draw
        # from their own stream, so the rest of the year stays as it was for a seed.
        self.extra = random.Random(seed * 7919 + 11)
        self.year = year
        self.n_cases = cases
        self.n_petitioners = petitioners
        self.staff = Staff()
        self.timeline: list[tuple[datetime, int, Command]] = []
        self.counter = 0
        self.case_no = 0
        self.problems: dict[str, list[str]] = {}
        self.closed: list[tuple[str, datetime, str]] = []  # case, closed at, petitioner
        self.finals: list[tuple[str, datetime, str]] = []
        self.last_time: dict[str, datetime] = {}

    # ---- people ----------------------------------------------------------------------------

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choice(GIVEN)
                                                   for _ in range(self.rng.randint(1, 2)))

    def build_staff(self) -> None:
        s = self.staff
        s.units.append(("city", "XX市公安局", None))
        s.units.append(("city-xfb", "市局信访办", "city"))
        for unit, name in DEPARTMENTS:
            s.units.append((unit, name, "city"))
        for county, name in COUNTIES:
            s.units.append((county, name, "city"))
            for i, station in enumerate(STATIONS[county], start=1):
                s.units.append((f"{county}-s{i}", station, county))

        def add(actor: str, unit: str | None, roles: list[str], keyless: bool = False) -> str:
            s.actors.append((actor, self.name(), unit, roles, keyless))
            return actor

        s.registrars = [add(f"registrar-{i:02d}", "city-xfb", ["registrar"]) for i in (1, 2, 3)]
        s.office = [add(f"office-{i:02d}", "city-xfb", ["petition_office"]) for i in (1, 2)]
        s.leaders = [add(f"leader-{i:02d}", "city", ["leader"]) for i in (1, 2, 3)]
        s.supervisors = [add(f"supervisor-{i:02d}", "city", ["supervisor"]) for i in (1, 2)]
        s.inspectors = [add(f"inspector-{i:02d}", "city", ["inspector"]) for i in (1, 2)]
        s.reviewers = [add(f"reviewer-{i:02d}", "city", ["reviewer"]) for i in (1, 2)]
        officer = 0
        for unit, _, parent in s.units:
            if parent is None or unit == "city-xfb":
                continue
            s.unit_leaders[unit] = add(f"lead-{unit}", unit, ["unit_leader"])
            s.handlers[unit] = []
            for _ in range(2 if unit.startswith("county") and "-s" in unit else 1):
                officer += 1
                s.handlers[unit].append(add(f"officer-{officer:02d}", unit, ["handler"]))
        for i in range(1, self.n_petitioners + 1):
            keyed = i % 4 == 0   # online petitioners sign with their own key
            actor = add(f"pet-{i:04d}", None, ["petitioner"], keyless=not keyed)
            (s.petitioners_keyed if keyed else s.petitioners_paper).append(actor)
        for n, (county, _) in enumerate(COUNTIES, start=1):   # 复查 of what a station replied
            name = self.extra.choice(SURNAMES) + self.extra.choice(GIVEN)
            s.actors.append((f"reviewer-c{n}", name, county, ["reviewer"], False))
            s.county_reviewers[county] = f"reviewer-c{n}"

    # ---- time ------------------------------------------------------------------------------

    def at(self, day: date, hour: int | None = None) -> datetime:
        h = hour if hour is not None else self.rng.randint(8, 17)
        return datetime(day.year, day.month, day.day, h, self.rng.choice((0, 15, 30, 45)),
                        tzinfo=SHANGHAI)

    def slot(self, case: str, when: datetime) -> datetime:
        """The time for the case's next event: never back in time (random hours on the same
        day might be), and recorded as the case's latest."""
        last = self.last_time.get(case)
        if last is not None and when <= last:
            when = last + timedelta(minutes=5)
        self.last_time[case] = when
        return when

    def emit(self, when: datetime, action: str, case: str | None, actor: str,
             data: dict[str, Any], *, slotted: bool = False) -> None:
        if case is not None and not slotted:
            when = self.slot(case, when)
        self.counter += 1
        cmd = Command(action, case, data, actor, when, f"demo-{self.counter:06d}")
        self.timeline.append((when, self.counter, cmd))

    def note(self, kind: str, case: str) -> None:
        self.problems.setdefault(kind, []).append(case)

    # ---- directory -------------------------------------------------------------------------

    def directory(self) -> None:
        start = datetime(self.year, 1, 2, 8, 0, tzinfo=SHANGHAI)
        for unit, name, parent in self.staff.units:
            self.emit(start, "unit.add", None, "admin-01",
                      {"unit": unit, "name": name, **({"parent": parent} if parent else {})})
        for actor, name, home, roles, keyless in self.staff.actors:
            data: dict[str, Any] = {"actor": actor, "name": name, "roles": roles}
            if home:
                data["unit"] = home
            if keyless:
                data["keyless"] = True
            self.emit(start, "actor.add", None, "admin-01", data)
        mid = datetime(self.year, 7, 1, 9, 0, tzinfo=SHANGHAI)
        self.emit(mid, "actor.rotate_key", None, "admin-01", {"actor": "officer-01"})

    # ---- cases -----------------------------------------------------------------------------

    def new_case(self, when: datetime) -> str:
        self.case_no += 1
        return f"XF-{self.year}-{self.case_no:06d}"

    def cases(self) -> None:
        rng = self.rng
        start = date(self.year, 1, 3)
        days = 360
        registrations = sorted(start + timedelta(days=rng.randrange(days))
                               for _ in range(self.n_cases))
        packaged_left = 5
        for index, day in enumerate(registrations):
            self.one_case(day, index, packaged=packaged_left > 0 and index % 37 == 5)
            if index % 37 == 5:
                packaged_left -= 1

    def one_case(self, day: date, index: int, packaged: bool) -> None:
        rng = self.rng
        s = self.staff
        case = self.new_case(self.at(day))
        channel = _pick(rng, CHANNELS)
        source = _pick(rng, SOURCES)
        category = _pick(rng, CATEGORIES)
        reception = index % 25 == 3
        repeat_of: list[str] = []
        petitioner = rng.choice(s.petitioners_keyed if channel == "online" and
                                s.petitioners_keyed else s.petitioners_paper)
        reg_time = self.at(day, 9 if reception else None)
        final_prior = [f for f in self.finals if f[1] < reg_time - timedelta(days=1)]
        closed_prior = [c for c in self.closed if c[1] < reg_time - timedelta(days=1)]
        new_facts = False
        if final_prior and index % 29 == 11:
            prior = rng.choice(final_prior)
            repeat_of, petitioner = [prior[0]], prior[2]
            new_facts = self.extra.random() < 0.3   # Art. 36: new facts may be accepted
        elif closed_prior and rng.random() < 0.08:
            prior = rng.choice(closed_prior)
            repeat_of, petitioner = [prior[0]], prior[2]
            self.note("reflow", prior[0])
        persons = rng.choice([2, 3, 5, 8, 12]) if rng.random() < 0.06 else 1
        data: dict[str, Any] = {"channel": "visit" if reception else channel, "source": source,
                                "category": category, "petitioner": petitioner,
                                "persons": persons, "summary": SUMMARIES[category]}
        if source != "direct":
            data["ref"] = f"{source[:3].upper()}〔{self.year}〕{rng.randint(1, 300)}号"
        if repeat_of:
            data["repeat_of"] = repeat_of
        if new_facts:
            data["new_facts"] = "提供了复核后新发现的书证和证人证言"
        # Art. 23: periods run from receipt; letters and referrals arrive before registration,
        # and a few are registered late (Art. 44)
        extra = self.extra
        if not reception and (channel in ("letter", "fax") or source != "direct"):
            lag = extra.choice([0, 1, 1, 2, 3]) if extra.random() > 0.04 else 12
            if lag:
                received = reg_time - timedelta(days=lag)
                if received.date() >= date(self.year, 1, 2):
                    data["received_at"] = received.replace(hour=10, minute=0).isoformat()
                    if lag > 7:
                        self.note("late_registration", case)
        by = rng.choice(s.registrars)
        if reception:
            leader = rng.choice(s.leaders)
            data.update(reception_day=True, received_by=leader)
            by = leader
        self.emit(reg_time, "register", case, by, data)
        # 受理
        if repeat_of and repeat_of[0] in {f[0] for f in self.finals} and not new_facts:
            decided = self.slot(case, self.at(day + timedelta(days=3)))
            self.emit(decided, "accept", case, rng.choice(s.office),
                      {"decision": "not_reaccepted", "ground": "final_recheck",
                       "reason": "同一事实和理由已经复核终结，不再受理",
                       "notice_served_at": (decided + timedelta(hours=1)).isoformat()},
                      slotted=True)
            return
        if category == "consultation_or_non_police" and rng.random() < 0.7:
            ground, why = extra.choice([
                ("outside_remit", "不属于公安机关职责范围，已告知向有关部门反映"),
                ("outside_remit", "不属于公安机关职责范围，已告知向有关部门反映"),
                ("legal_procedure", "属于民事纠纷，已告知通过诉讼途径解决"),
                ("handled_elsewhere", "该事项已由区人民政府受理并正在办理")])
            decided = self.slot(case, self.at(day + timedelta(days=rng.randint(1, 10))))
            self.emit(decided, "accept", case, rng.choice(s.office),
                      {"decision": "not_accepted", "ground": ground, "reason": why,
                       "notice_served_at": (decided + timedelta(hours=1)).isoformat()},
                      slotted=True)
            return
        if day > date(self.year, 12, 20) and rng.random() < 0.6:
            return  # registered at year end, not yet decided
        late_accept = rng.random() < 0.05
        accept_day = day + timedelta(days=rng.randint(17, 25) if late_accept
                                     else rng.randint(0, 7))
        if reception:
            accept_day = day
        if late_accept:
            self.note("late_acceptance", case)
        accept_data: dict[str, Any] = {"decision": "accepted"}
        accepted_at = self.slot(case, self.at(accept_day, 8 if reception else None))
        if extra.random() < 0.95:   # the written notice (告知书), mostly in time
            notice = accepted_at + timedelta(days=extra.choice([0, 1, 2]), minutes=30)
            accept_data["notice_served_at"] = notice.isoformat()
        self.emit(accepted_at, "accept", case, rng.choice(s.office), accept_data, slotted=True)
        # 交办
        unit = rng.choice([u for u in s.handlers if s.handlers[u]])
        cursor = accept_day
        bounces = 3 if rng.random() < 0.03 else 1
        for _ in range(bounces):
            unit = rng.choice([u for u in s.handlers if s.handlers[u]])
            cursor += timedelta(days=0 if reception else rng.randint(0, 2))
            self.emit(self.at(cursor, 9 if reception else None), "assign", case,
                      rng.choice(s.office),
                      {"unit": unit, "handler": rng.choice(s.handlers[unit])})
        if bounces == 3:
            self.note("bounced", case)
        handler_unit = unit
        handler = self.timeline[-1][2].data["handler"]
        leader_of_unit = s.unit_leaders[handler_unit]
        handling_due = accept_day + timedelta(days=60)
        on_spot = reception and rng.random() < 0.6   # 当面答复解决 at the reception itself
        supervised = not on_spot and (source in ("higher_police", "congress",
                                                 "political_legal_committee", "leader")
                                      or rng.random() < 0.08)
        due = None
        if supervised:
            sup_day = cursor + timedelta(days=rng.randint(1, 10))
            due = sup_day + timedelta(days=rng.choice((20, 30, 45)))
            by = rng.choice(s.leaders + s.supervisors)
            form = rng.choice(["letter", "interview", "onsite", "listed"])
            if extra.random() < 0.15:
                form = "notice"   # 通报 (Art. 39-40)
            self.emit(self.at(sup_day), "supervise", case, by,
                      {"authority": source if source != "direct" else "self_initiated",
                       "due": due.isoformat(), "form": form})
            if rng.random() < 0.5:
                self.emit(self.at(sup_day + timedelta(days=10)), "remind", case,
                          rng.choice(s.supervisors), {"note": "请按期办结回告"})
        if packaged and not on_spot:
            self.emit(self.at(cursor + timedelta(days=2)), "package", case, s.leaders[0],
                      {"leader": s.leaders[0]})
        # handling
        outcome_kind = rng.random()
        if on_spot:
            reply_day = day
        elif outcome_kind < 0.06:
            reply_day = handling_due + timedelta(days=rng.randint(5, 30))  # late reply
            self.note("late_reply", case)
        else:
            reply_day = cursor + timedelta(days=rng.randint(5, 50))
            if due is not None and rng.random() < 0.75:   # most supervised cases report in time
                reply_day = min(reply_day, max(cursor + timedelta(days=2),
                                               due - timedelta(days=rng.randint(3, 8))))
        extension = 0
        planned_late = outcome_kind < 0.06 and not on_spot
        if not on_spot and not planned_late and rng.random() < 0.08 and \
                reply_day > cursor + timedelta(days=30):
            extension = rng.choice((15, 30))
            # Art. 34: approved by a head of the accepting organ (the bureau), while it runs
            approved = cursor + timedelta(days=25)
            self.emit(self.at(approved), "extend", case, s.leaders[index % len(s.leaders)],
                      {"days": extension, "reason": "案情复杂，需调取证据",
                       "notified_at": self.at(approved + timedelta(days=1), 10).isoformat()})
        if reply_day > date(self.year, 12, 28) or (rng.random() < 0.05 and not on_spot):
            # still open at year end: some never reported back
            if rng.random() < 0.5:
                self.emit(self.at(cursor + timedelta(days=7)), "progress", case, handler,
                          {"note": "已调查核实，正在协调处理"})
            self.note("open_at_year_end", case)
            return
        for k in range(rng.randint(0, 2)):
            when = cursor + timedelta(days=3 + 5 * k)
            if when < reply_day:
                self.emit(self.at(when), "progress", case, handler,
                          {"note": rng.choice(["已约谈信访人了解诉求", "已调取相关档案材料",
                                               "已协调相关部门会商"])})
        served = self.slot(case, self.at(reply_day, 16 if reception and reply_day == day
                                         else None))
        self.emit(served, "reply", case, handler, slotted=True, data={
            "outcome": rng.choice(["support", "support", "explain", "not_support"]),
            "resolution": rng.choice(["problem_solved", "educated", "aided",
                                      "lawfully_handled"]),
            "served_at": served.isoformat(), "text": "经调查核实，已依法作出处理并书面答复信访人。"})
        after = reply_day + timedelta(days=1)
        unsigned = rng.random() < 0.05
        self.emit(self.at(after, 9), "attest", case, handler,
                  {"evidence": [f"答复书-{case[-6:]}", "谈话笔录"]})
        self.emit(self.at(after, 10), "consent", case, leader_of_unit, {})
        opinion = _pick(rng, [("satisfied", 70), ("basically_satisfied", 20),
                              ("dissatisfied", 10)])
        if unsigned:
            self.emit(self.at(after, 11), "petitioner_sign", case, rng.choice(s.registrars),
                      {"form": "refused", "reason": "信访人对处理结果有异议，拒绝签字"})
            self.note("unsigned_closure", case)
        elif petitioner in s.petitioners_keyed:
            self.emit(self.at(after, 11), "petitioner_sign", case, petitioner,
                      {"form": "key", "opinion": opinion})
        else:
            digest = f"{rng.getrandbits(256):064x}"
            self.emit(self.at(after, 11), "petitioner_sign", case, rng.choice(s.registrars),
                      {"form": "witnessed", "opinion": opinion, "document_sha256": digest})
        if opinion == "dissatisfied" and not unsigned:
            self.note("dissatisfied_closure", case)
        close_at = self.at(after + timedelta(days=1), 15)
        self.emit(close_at, "close", case, rng.choice(s.office),
                  {"override_reason": "信访人拒绝签字，经集体研究予以办结"} if unsigned else {})
        if due is not None:
            self.report_back(case, close_at.date(), due, handler, leader_of_unit)
        if packaged and rng.random() < 0.8:
            self.emit(self.at(after + timedelta(days=5)), "desist", case,
                      rng.choice(s.registrars), {"document_sha256": f"{rng.getrandbits(256):064x}"})
        # review
        if (opinion == "dissatisfied" or rng.random() < 0.04) and \
                reply_day + timedelta(days=70) < date(self.year, 12, 31):
            self.review(case, reply_day, handler, leader_of_unit, petitioner, handler_unit)
            return
        self.closed.append((case, close_at, petitioner))

    def report_back(self, case: str, closed: date, due: date, handler: str,
                    leader_of_unit: str) -> None:
        """The handling body's report-back (回告) to the supervising authority: mostly by the
        due date, some late, a few never (Art. 39-40; no_report_back)."""
        extra = self.extra
        roll = extra.random()
        if roll < 0.08:
            self.note("no_report_back", case)
            return
        day = closed if roll > 0.2 else max(closed, due) + timedelta(days=3)
        when = self.slot(case, self.at(day, 17))   # after the closing
        if when.date() > due:
            self.note("no_report_back", case)
        self.emit(when, "report_back", case, handler if extra.random() < 0.5 else leader_of_unit,
                  {"text": "已办结并书面答复信访人，现将办理情况回告",
                   "served_at": when.isoformat()}, slotted=True)

    def review(self, case: str, reply_day: date, handler: str, leader_of_unit: str,
               petitioner: str, unit: str) -> None:
        rng = self.rng
        s = self.staff
        extra = self.extra
        request = reply_day + timedelta(days=rng.randint(5, 25))
        self.emit(self.at(request), "review_request", case, rng.choice(s.registrars),
                  {"level": "review"})
        decided = request + timedelta(days=rng.randint(10, 28))
        decision = rng.choice(["upheld", "upheld", "changed", "revoked"])
        # Art. 35: the next higher body of the one that replied — a station's county bureau,
        # else the city bureau (whose 复核 would be the province's, outside this ledger)
        county = unit.split("-s")[0] if "-s" in unit else None
        city_reviewer = rng.choice(s.reviewers)
        reviewer = s.county_reviewers[county] if county else city_reviewer
        served = decided + timedelta(days=extra.choice([0, 1, 2, 3]))
        self.emit(self.at(decided), "review_decide", case, reviewer,
                  {"level": "review", "decision": decision,
                   "served_at": self.at(served, 16).isoformat()})
        last = decided
        if decision != "upheld":
            self.note("overturned", case)
            self.emit(self.at(decided + timedelta(days=1)), "reopen", case,
                      rng.choice(s.office), {"reason": "复查决定变更原处理意见，重新办理"})
            again = decided + timedelta(days=rng.randint(5, 20))
            served = self.slot(case, self.at(again))
            self.emit(served, "reply", case, handler, slotted=True, data={
                "outcome": "support", "resolution": "problem_solved",
                "served_at": served.isoformat(), "text": "根据复查意见重新作出处理。"})
            self.emit(self.at(again + timedelta(days=1), 9), "attest", case, handler,
                      {"evidence": [f"重新答复书-{case[-6:]}"]})
            self.emit(self.at(again + timedelta(days=1), 10), "consent", case, leader_of_unit,
                      {})
            self.emit(self.at(again + timedelta(days=1), 11), "petitioner_sign", case,
                      rng.choice(s.registrars),
                      {"form": "witnessed", "opinion": "basically_satisfied",
                       "document_sha256": f"{rng.getrandbits(256):064x}"})
            last = again + timedelta(days=2)
            self.emit(self.at(last, 15), "close", case, rng.choice(s.office), {})
            self.closed.append((case, self.at(last, 16), petitioner))
            return
        if rng.random() < 0.6 and county is not None:
            # Art. 36: within 30 days of the served 复查 decision; the city bureau decides
            recheck = served + timedelta(days=rng.randint(3, 20))
            self.emit(self.at(recheck), "review_request", case, rng.choice(s.registrars),
                      {"level": "recheck"})
            final = recheck + timedelta(days=rng.randint(10, 25))
            if extra.random() < 0.35:   # a hearing (听证), not counted in the 30 days
                start = recheck + timedelta(days=5)
                end = start + timedelta(days=extra.choice([0, 1, 2]))
                final = max(final, end + timedelta(days=3))
                self.emit(self.at(end, 17), "hearing", case, city_reviewer,
                          {"start": self.at(start, 9).isoformat(),
                           "end": self.at(end, 16).isoformat()})
            self.emit(self.at(final), "review_decide", case, city_reviewer,
                      {"level": "recheck", "decision": "upheld",
                       "served_at": self.at(final + timedelta(days=1), 16).isoformat()})
            self.finals.append((case, self.at(final, 18), petitioner))
        else:
            self.closed.append((case, self.at(last, 18), petitioner))

    def build(self) -> Scenario:
        self.build_staff()
        self.directory()
        self.cases()
        self.timeline.sort(key=lambda item: (item[0], item[1]))
        commands = [cmd for _, _, cmd in self.timeline]
        return Scenario(self.staff, commands, self.year, self.case_no, self.problems)


def build_scenario(seed: int = 2025, *, year: int = 2025, cases: int = 320,
                   petitioners: int = 260) -> Scenario:
    return _Builder(seed, year, cases, petitioners).build()


def reverse_check_commands(ledger: Any, scenario: Scenario, limit: int = 3) -> list[Command]:
    """Year-end reverse-checks (倒查) on late replies, citing the stored reply events."""
    commands: list[Command] = []
    inspector = scenario.staff.inspectors[0]
    day = datetime(scenario.year, 12, 30, 10, 0, tzinfo=SHANGHAI)
    for n, case in enumerate(scenario.problems.get("late_reply", [])[:limit], start=1):
        records = ledger.store.stream(case)
        reply = next((r for r in records if r.type == "reply"), None)
        if reply is None:
            continue
        statement = Statement.from_signed_bytes(Envelope.from_bytes(reply.state).signed)
        ref = {"stream": case, "seq": reply.seq, "hash": Envelope.from_bytes(reply.state).hash}
        tag = f"demo-rc-{n:03d}"
        commands += [
            Command("reverse_check_open", case, {"reason": "超期答复，启动倒查"}, inspector, day,
                    f"{tag}-open"),
            Command("reverse_check_finding", case, {"actor": statement.actor,
                                                    "fault": "late_reply", "evidence": [ref],
                                                    "responsibility": "direct"},
                    inspector, day + timedelta(hours=1), f"{tag}-finding"),
            Command("reverse_check_conclude", case,
                    {"measures": ["criticism"] if n % 2 else ["admonition",
                                                              "written_examination"],
                     "note": "超期答复，责令整改"}, inspector,
                    day + timedelta(hours=2), f"{tag}-conclude"),
        ]
    return commands
