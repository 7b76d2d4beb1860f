"""The web interface's routes (mounted at ``/web`` by ``xinfang serve``; docs/web.md).

Server-rendered pages (Jinja2, autoescaped) over the ledger server's own reads: a page's
reader is the signed-in session's actor (:mod:`server.web.session`), and every case, history,
closure and report comes from :class:`server.LedgerServer`, which authorizes it exactly as the
API does (:mod:`server.access`). Scripts do only what needs the browser: make or load the key,
sign the challenge, poll the verification, send a bundle file.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import re
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import ValidationError

from ledger import (
    AUTH_CONTEXT,
    InputError,
    LedgerError,
    PublicKey,
    closure_record_from_document,
    verify_bundle,
)
from projections import (
    CSV_ENCODING,
    STATUSES,
    Sheet,
    accountability_sheets,
    case_list_sheets,
    cell_text,
    closure_sheets,
    code_labels,
    label,
    reason_text,
    statistics_sheets,
    supervision_sheets,
    write_csv,
    write_xlsx,
)
from server import api
from server.ledger_server import LedgerServer, Problem, problem_of

from . import views
from .caseindex import EXACT, PER_PAGE, SORTS, CaseIndex, Query, today
from .charts import bar_chart
from .forms import WORK_WORDS, Work, case_forms, register_forms, work_lists, work_word
from .integrity import Results, Verifier, witnessing
from .session import (
    COOKIE,
    LANG_COOKIE,
    SignInNeeded,
    Visitor,
    WebProblem,
    clear_session_cookie,
    end_session,
    language,
    same_site,
    session_cookie,
)
from .text import word

log = logging.getLogger("xinfang.web")

PREFIX = "/web"
MAX_UPLOAD = 32 << 20           # a bundle uploaded through the page (base64 in JSON)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
REPORTS = ("supervision", "statistics", "accountability", "closures")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("server.web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(label=label, cell_text=cell_text)
    return env


def _day(value: str | None, what: str) -> date | None:
    if not value:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise WebProblem(400, f"{what}: {value[:40]!r} is not a date (YYYY-MM-DD)") from None


def _next_path(value: str | None) -> str:
    """Where to go after signing in: a path of this interface only (no open redirect)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and \
            "\\" not in value and "\n" not in value and "\r" not in value:
        return value
    return f"{PREFIX}/cases"


class Web:
    """The web interface's state beside the ledger server: templates, the case index, the
    verification jobs and the bundle results."""

    def __init__(self, server: LedgerServer) -> None:
        self.server = server
        self.env = _templates()
        self._index: CaseIndex | None = None
        self.location = server.reads.location
        self.verifier = Verifier(self.location, server.read_view.log_key,
                                 server.read_view.admin_key)
        self.results = Results()
        self.work = Work(server)

    @property
    def index(self) -> CaseIndex:
        if self._index is None:
            self._index = CaseIndex(self.location)
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()

    # ---- plumbing -------------------------------------------------------------------------

    def visitor(self, request: Any, lang: str, public: bool) -> Visitor:
        token = request.cookies.get(COOKIE)
        if not token:
            if public:
                return Visitor(None, lang)
            raise SignInNeeded(False)
        try:
            reader = self.server.authenticate(f"Bearer {token}")
        except Problem as exc:
            if public:
                return Visitor(None, lang)
            raise SignInNeeded(True, exc.message) from None
        return Visitor(reader, lang, token)

    def render(self, request: Any, visitor: Visitor, template: str, status: int = 200,
               **context: Any) -> Any:
        from starlette.responses import HTMLResponse

        lang = visitor.lang
        query = dict(request.query_params)
        query["lang"] = "en" if lang == "zh" else "zh"
        page = self.env.get_template(template).render(
            w=lambda key, **facts: word(key, lang, **facts), lang=lang, visitor=visitor,
            reader=visitor.reader, path=request.url.path, prefix=PREFIX,
            switch=f"{request.url.path}?{urlencode(query)}", **context)
        return HTMLResponse(page, status_code=status)

    def error_page(self, request: Any, visitor: Visitor, status: int, message: str,
                   hint: str | None = None) -> Any:
        title = {403: "forbidden", 404: "not_found", 400: "bad_request"}.get(status, "error")
        return self.render(request, visitor, "error.html", status, title=word(title,
                           visitor.lang), message=message, hint=hint, code=status)

    # ---- signing in -----------------------------------------------------------------------

    def login(self, request: Any, v: Visitor) -> Any:
        notice = {"expired": "expired", "bye": "signed_out", "need": "need_login"}.get(
            request.query_params.get("m", ""))
        return self.render(request, v, "login.html", notice=word(notice, v.lang) if notice
                           else None, next=_next_path(request.query_params.get("next")),
                           context=AUTH_CONTEXT, active="login")

    def challenge(self, body: Any) -> dict[str, Any]:
        answer = self.server.challenge(api.ChallengeRequest.model_validate(body))
        return {**answer, "context": AUTH_CONTEXT}

    def open_session(self, request: Any, body: Any) -> Any:
        from starlette.responses import JSONResponse

        answer = self.server.open_session(api.SessionRequest.model_validate(body))
        response = JSONResponse({"actor": answer["actor"], "scope": answer["scope"]})
        session_cookie(response, request, answer["token"], int(answer["expires_in"]))
        return response

    def logout(self, request: Any, v: Visitor) -> Any:
        from starlette.responses import RedirectResponse

        token = request.cookies.get(COOKIE)
        if token:
            end_session(self.server, token)
        response = RedirectResponse(f"{PREFIX}/login?m=bye", status_code=303)
        clear_session_cookie(response, request)
        return response

    def enrol(self, request: Any, v: Visitor) -> Any:
        return self.render(request, v, "enrol.html", active="enrol")

    def lost(self, request: Any, v: Visitor) -> Any:
        return self.render(request, v, "lost.html", active="lost")

    def qr(self, request: Any, v: Visitor) -> Any:
        from starlette.responses import Response

        key = request.query_params.get("key", "")
        if not _HEX_KEY.match(key):
            raise WebProblem(400, "key: give the raw public key as 64 hex digits")
        facts = views.public_key_facts(bytes.fromhex(key))
        return Response(views.qr_svg(facts["pem"]), media_type="image/svg+xml")

    # ---- the case list ------------------------------------------------------------------------

    def _query(self, params: Any, lang: str) -> tuple[Query, date | None]:
        exact = {}
        for name in EXACT:
            value = (params.get(name) or "").strip()
            if name == "petitioner":
                continue   # searched by name or id below
            if value:
                if len(value) > 64:
                    raise WebProblem(400, f"{name}: too long")
                exact[name] = value
        if exact.get("status") and exact["status"] not in STATUSES:
            raise WebProblem(400, f"status: one of {', '.join(STATUSES)}")
        flags = frozenset(f for f in ("supervised", "overdue") if params.get(f) in ("1", "on",
                                                                                    "true"))
        sort = params.get("sort") or "case"
        if sort not in SORTS:
            raise WebProblem(400, f"sort: one of {', '.join(SORTS)}")
        try:
            page = int(params.get("page") or 1)
            per = int(params.get("per") or 50)
        except ValueError:
            raise WebProblem(400, "page and per are whole numbers") from None
        if per not in PER_PAGE or not 1 <= page <= 10**7:
            raise WebProblem(400, f"per: one of {', '.join(map(str, PER_PAGE))}")
        date_from = _day(params.get("from"), word("registered_from", lang))
        date_to = _day(params.get("to"), word("registered_to", lang))
        if date_from and date_to and date_from > date_to:
            raise WebProblem(400, f"{date_from} > {date_to}: give the earlier date first")
        trigger = (params.get("trigger") or "").strip() or None
        if trigger is not None and trigger not in dict(code_labels("trigger")):
            raise WebProblem(400, f"trigger: unknown code {trigger[:40]!r}")
        text = {k: (params.get(k) or "").strip()[:64] or None for k in ("case", "petitioner")}
        q = Query(case=text["case"], petitioner=text["petitioner"], exact=exact, flags=flags,
                  date_from=date_from.isoformat() if date_from else None,
                  date_to=date_to.isoformat() if date_to else None, trigger=trigger,
                  sort=sort, desc=params.get("dir", "desc") != "asc", page=page, per=per)
        return q, _day(params.get("as_of"), word("as_of", lang))

    def _visible(self, snap: Any, reader: Any) -> set[int] | None:
        if reader.everything:
            return None
        with self.server.read_lock:
            self.server.access.refresh()
            version = self.server.access.after
        found: set[int] = snap.visible(reader.actor, version,
                                       lambda case: self.server.access.may_see(reader, case))
        return found

    def _redacted(self, reader: Any, rows: list[dict[str, Any]], actors: dict[str, str]
                  ) -> list[dict[str, Any]]:
        return [self.server.access.redact(reader, row["case"], row, actors) for row in rows]

    def cases(self, request: Any, v: Visitor) -> Any:
        reader, lang = v.reader, v.lang
        assert reader is not None
        q, as_of = self._query(request.query_params, lang)
        fmt = request.query_params.get("format")
        snap, head = self.index.snapshot(as_of)
        flagged = pending = None
        if q.trigger:
            found = self.index.trigger_set(as_of)
            if found is None:
                pending = True
                flagged = set()
            else:
                flagged = found.flagged(q.trigger)
        if fmt in ("xlsx", "csv"):
            q.page, q.per = 1, max(len(snap.rows), 1)
        result = snap.query(q, visible=self._visible(snap, reader), flagged=flagged,
                            hidden=lambda case: self.server.access.hides_petitioner(reader, case))
        units, actors = self.index.directory_names()
        rows = self._redacted(reader, result.rows, actors)
        if fmt in ("xlsx", "csv"):
            document = {"as_of": snap.as_of, "organization": None, "cases": rows,
                        "filters": {"unit": q.exact.get("unit"),
                                    "handler": q.exact.get("handler"),
                                    "status": q.exact.get("status"),
                                    "category": q.exact.get("category"),
                                    "overdue": "overdue" in q.flags,
                                    "supervised": "supervised" in q.flags,
                                    "from": q.date_from, "to": q.date_to,
                                    "trigger": q.trigger}}
            return self._download(case_list_sheets(document, lang), fmt,
                                  f"cases-{snap.as_of}")
        known_units = sorted(snap.values("unit"), key=lambda u: units.get(u, u))
        known_handlers = sorted(snap.values("handler"), key=lambda a: actors.get(a, a))
        params = {k: v for k, v in request.query_params.items() if k not in ("page", "lang")}
        return self.render(
            request, v, "cases.html", active="cases", q=q, result=result, rows=rows,
            snap=snap, head=head, as_of=as_of.isoformat() if as_of else "",
            pending=pending, units=[(u, units.get(u, u)) for u in known_units],
            handlers=[(a, actors.get(a, a)) for a in known_handlers],
            statuses=STATUSES, categories=code_labels("category", lang=lang),
            channels=code_labels("channel", lang=lang),
            sources=code_labels("source", lang=lang),
            triggers=code_labels("trigger", lang=lang), sorts=SORTS, per_page=PER_PAGE,
            page_url=lambda n: f"{PREFIX}/cases?{urlencode({**params, 'page': n})}",
            download_url=lambda fmt: f"{PREFIX}/cases?{urlencode({**params, 'format': fmt})}")

    # ---- a case ---------------------------------------------------------------------------------

    def case(self, request: Any, v: Visitor) -> Any:
        reader, lang = v.reader, v.lang
        assert reader is not None
        case = request.path_params["case"]
        if not views.CASE_NUMBER.match(case):
            raise WebProblem(404, f"no case {case[:40]!r}", "Case numbers read XF-2025-000001.")
        as_of = _day(request.query_params.get("as_of"), word("as_of", lang)) or today()
        shown = views.case_view(self.server, reader, case, lang, as_of)
        triggers, pending = None, False
        if reader.everything:
            found = self.index.trigger_set(as_of)
            if found is None:
                pending = True
            else:
                units, actors = self.index.directory_names()
                entry = found.by_case.get(case)
                triggers = views.trigger_views(case, entry, found.report, lang, actors, units) \
                    if entry else []
        return self.render(request, v, "case.html", active="cases", c=shown, triggers=triggers,
                           triggers_pending=pending, as_of=as_of.isoformat(),
                           bad=sum(1 for e in shown.events if not e.ok),
                           forms=case_forms(reader, shown.status, lang), work_case=case,
                           ww=lambda key: work_word(key, lang), origin=self.server.origin,
                           work_words={k: work_word(k, lang) for k in WORK_WORDS})

    def my_work(self, request: Any, v: Visitor) -> Any:
        """"My cases" (我的待办): what waits on the signed-in person (forms.work_lists)."""
        reader, lang = v.reader, v.lang
        assert reader is not None
        snap, head = self.index.snapshot(None)
        visible = self._visible(snap, reader)
        rows = [row for i, row in enumerate(snap.rows) if visible is None or i in visible]
        _, actors = self.index.directory_names()
        queues = [(q.key, self._redacted(reader, q.rows, actors))
                  for q in work_lists(reader, rows)]
        return self.render(request, v, "work_list.html", active="work", queues=queues,
                           snap=snap, ww=lambda key: work_word(key, lang))

    def register(self, request: Any, v: Visitor) -> Any:
        """Registration in one screen (登记): the registry's ``register`` form, signed in the
        browser like every other action; petitioners and earlier cases offered as lists."""
        reader, lang = v.reader, v.lang
        assert reader is not None
        snap, _ = self.index.snapshot(None)
        visible = self._visible(snap, reader)
        rows = [row for i, row in enumerate(snap.rows) if visible is None or i in visible]
        petitioners = sorted({(r["petitioner"], r.get("petitioner_name") or r["petitioner"])
                              for r in rows if r.get("petitioner")
                              and not self.server.access.hides_petitioner(reader, r["case"])})
        cases = [(r["case"], f'{r.get("petitioner_name") or ""} {r.get("registered_on") or ""}')
                 for r in rows]
        _, actors = self.index.directory_names()
        return self.render(request, v, "register.html", active="register",
                           forms=register_forms(reader, lang), work_case="",
                           ww=lambda key: work_word(key, lang), origin=self.server.origin,
                           work_words={k: work_word(k, lang) for k in WORK_WORDS},
                           suggestions={"petitioner": petitioners, "repeat_of": cases,
                                        "received_by": sorted(actors.items())})

    def bundle(self, request: Any, v: Visitor) -> Any:
        from starlette.responses import Response

        assert v.reader is not None
        case = request.path_params["case"]
        if not views.CASE_NUMBER.match(case):
            raise WebProblem(404, f"no case {case[:40]!r}")
        data = self.server.export(v.reader, api.ExportRequest(cases=[case]))
        return Response(data, media_type="application/json", headers={
            "content-disposition": f'attachment; filename="{case}.bundle"'})

    # ---- reports --------------------------------------------------------------------------------

    def _download(self, sheets: list[Sheet], fmt: str, name: str) -> Any:
        from starlette.responses import Response

        if fmt == "csv":
            text = io.StringIO()
            write_csv(sheets, text)
            return Response(text.getvalue().encode(CSV_ENCODING),
                            media_type="text/csv; charset=utf-8", headers={
                                "content-disposition": f"attachment; filename=\"{name}.csv\""})
        with tempfile.TemporaryDirectory(prefix="xinfang-web-") as tmp:
            path = Path(tmp) / "report.xlsx"
            write_xlsx(sheets, path)
            data = path.read_bytes()
        return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet", headers={
                            "content-disposition": f"attachment; filename=\"{name}.xlsx\""})

    def report(self, request: Any, v: Visitor) -> Any:
        reader, lang = v.reader, v.lang
        assert reader is not None
        name = request.path_params["name"]
        if name not in REPORTS:
            raise WebProblem(404, f"no report {name[:40]!r}")
        params = request.query_params
        fmt = params.get("format")
        if fmt not in (None, "", "xlsx", "csv"):
            raise WebProblem(400, "format: xlsx or csv")
        as_of = _day(params.get("as_of"), word("as_of", lang))
        query: dict[str, str] = {"as_of": as_of.isoformat() if as_of else ""}
        form: dict[str, Any] = {"as_of": query["as_of"]}
        charts: list[Any] = []
        if name == "statistics":
            end = as_of or today()
            start = _day(params.get("from"), word("period_from", lang)) or date(end.year, 1, 1)
            stop = _day(params.get("to"), word("period_to", lang)) or end
            compare = params.get("compare") or "previous"
            if compare not in ("previous", "year"):
                raise WebProblem(400, "compare: previous or year")
            query.update({"from": start.isoformat(), "to": stop.isoformat(),
                          "compare": compare})
            form.update(query)
        elif name == "supervision":
            for key in ("from", "to"):
                day = _day(params.get(key), key)
                query[key] = form[key] = day.isoformat() if day else ""
        elif name == "accountability":
            unit = (params.get("unit") or "").strip()[:64]
            integrity = params.get("integrity", "1") != "0"
            query.update({"unit": unit, "integrity": "true" if integrity else "false"})
            form.update({"unit": unit, "integrity": integrity})
        answer = self.server.report(reader, name, query)
        document, org = answer["report"], answer.get("organization")
        if name == "supervision":
            sheets = supervision_sheets(document, lang)
        elif name == "statistics":
            sheets = statistics_sheets(document, lang)
            charts = self._charts(document, lang, reader)
        elif name == "accountability":
            sheets = accountability_sheets(document, lang, organization=org)
        else:
            records = [closure_record_from_document(c) for c in document["cases"]]
            _, actors = self.index.directory_names()
            sheets = closure_sheets(records, lang, organization=org, names=actors)
        if fmt:
            stamp = query.get("as_of") or today().isoformat()
            return self._download(sheets, fmt, f"{name}-{stamp}")
        units, _ = self.index.directory_names()
        keep = {k: val for k, val in params.items() if k not in ("format", "lang")}
        return self.render(request, v, "report.html", active=name, name=name, sheets=sheets,
                           charts=charts, form=form, units=sorted(units.items(),
                                                                  key=lambda u: u[1]),
                           download_url=lambda fmt: f"{PREFIX}/reports/{name}?"
                           f"{urlencode({**keep, 'format': fmt})}")

    def _charts(self, doc: dict[str, Any], lang: str, reader: Any) -> list[Any]:
        """The statistics as bar charts: by channel, source and category against the
        comparison period, by month, per unit (cases, reply rate)."""
        previous = doc.get("previous") or {}
        series = (word("this_period", lang), word("previous_period", lang))
        charts = []
        for key, kind in (("by_channel", "channel"), ("by_source", "source"),
                          ("by_category", "category")):
            codes = list(doc.get(key, {}))
            charts.append(bar_chart(
                word(key, lang), [(label(kind, c, lang), doc[key][c]) for c in codes],
                compare=[previous.get(key, {}).get(c) for c in codes], series=series))
        months = self._months(doc)
        if months:
            charts.append(bar_chart(word("by_month", lang), months))
        names = doc.get("unit_names", {})
        by_unit = doc.get("by_unit", {})
        charts.append(bar_chart(word("by_unit_cases", lang),
                                [(names.get(u, label("report", "unassigned", lang)), f["cases"])
                                 for u, f in by_unit.items()]))
        rates = [(names.get(u, label("report", "unassigned", lang)), f.get("reply_rate"))
                 for u, f in by_unit.items()]
        rates.append((label("report", "totals", lang), doc.get("reply_rate")))
        charts.append(bar_chart(word("reply_rate_units", lang), rates, percent=True))
        charts.append(bar_chart(word("change_chart", lang), [
            (label("report", "total", lang), doc.get("total")),
            (label("report", "persons", lang), doc.get("persons")),
            (label("report", "accepted", lang), doc.get("accepted")),
            (label("report", "closed_replied", lang), doc.get("closed_replied")),
            (label("report", "supervised", lang), doc.get("supervised"))],
            compare=[previous.get(k) for k in ("total", "persons", "accepted",
                                               "closed_replied", "supervised")],
            series=series))
        return charts

    def _months(self, doc: dict[str, Any]) -> list[tuple[str, float | None]]:
        """Cases registered per month of the period, from the case list of the same as-of
        day (the read model's rows the statistics count)."""
        period = doc.get("period") or {}
        start, end = period.get("from"), period.get("to")
        if not start or not end:
            return []
        snap, _ = self.index.snapshot(date.fromisoformat(doc["as_of"]))
        counts: dict[str, int] = {}
        month = start[:7]
        while month <= end[:7]:
            counts[month] = 0
            year, mon = int(month[:4]), int(month[5:7])
            month = f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"
            if len(counts) > 240:
                break
        for row in snap.rows:
            day = row["registered_on"] or ""
            if start <= day <= end and day[:7] in counts:
                counts[day[:7]] += 1
        return [(m, n) for m, n in counts.items()]

    # ---- integrity ------------------------------------------------------------------------------

    def integrity(self, request: Any, v: Visitor) -> Any:
        assert v.reader is not None
        info = self.server.checkpoint(v.reader)
        with self.server.read_lock:
            witnessed = witnessing(self.server.reads)
            self.server.access.refresh()
            may_verify = self.server.access.may_read_log(v.reader)
        return self.render(request, v, "integrity.html", active="integrity", info=info,
                           witnessed=witnessed, may_verify=may_verify)

    def start_verify(self, request: Any, v: Visitor) -> Any:
        from starlette.responses import JSONResponse

        assert v.reader is not None
        with self.server.read_lock:
            self.server.access.refresh()
            allowed = self.server.access.may_read_log(v.reader)
        if not allowed:
            raise WebProblem(403, word("verify_log_only", v.lang))
        job = self.verifier.start(v.reader.actor)
        return JSONResponse(job.state(), status_code=202)

    def verify_state(self, request: Any, v: Visitor) -> Any:
        from starlette.responses import JSONResponse

        assert v.reader is not None
        job = self.verifier.job(request.path_params["job"])
        if job is None:
            raise WebProblem(404, "no such verification")
        state = job.state()
        if state["result"] is not None:
            state["failures"] = [
                {**f, "title": views.check_title(f["check"], v.lang),
                 "reason_text": reason_text(f["reason"], v.lang)}
                for f in state["result"]["failures"][:500]]
        return JSONResponse(state)

    def upload_bundle(self, request: Any, v: Visitor, body: Any) -> Any:
        from starlette.responses import JSONResponse

        assert v.reader is not None
        if not isinstance(body, dict) or not isinstance(body.get("bundle"), str):
            raise WebProblem(400, "send {\"bundle\": base64 of the file}")
        try:
            data = base64.b64decode(body["bundle"], validate=True)
        except (binascii.Error, ValueError):
            raise WebProblem(400, "the bundle is not base64") from None
        anchors: dict[str, bytes | None] = {}
        given = False
        for key, default in (("log_key", self.server.read_view.log_key),
                             ("admin_key", self.server.read_view.admin_key)):
            pem = body.get(key)
            if isinstance(pem, str) and pem.strip():
                given = True
                try:
                    anchors[key] = PublicKey.from_pem(pem.strip().encode("ascii")).raw
                except (InputError, UnicodeEncodeError, ValueError) as exc:
                    message = exc.message if isinstance(exc, InputError) else str(exc)
                    raise WebProblem(400, f"{key}: {message}") from None
            else:
                anchors[key] = default
        report = verify_bundle(data, log_key=anchors["log_key"], admin_key=anchors["admin_key"],
                               fetch_witnesses=False)
        key = self.results.keep(v.reader.actor, (data, report, given))
        return JSONResponse({"url": f"{PREFIX}/integrity/bundles/{key}", "ok": report.ok})

    def bundle_result(self, request: Any, v: Visitor) -> Any:
        assert v.reader is not None
        found = self.results.get(v.reader.actor, request.path_params["key"])
        if found is None:
            raise WebProblem(404, "no such bundle result (results are kept for a while only)")
        data, report, given = found
        cases, names, units, judged = views.bundle_cases(data, report)
        shown = [(case, views.event_views(case, events, v.lang, names, units, judged=judged))
                 for case, events in cases]
        failures = [{**f.to_json(), "title": views.check_title(int(f.check), v.lang),
                     "reason_text": reason_text(f.reason, v.lang)}
                    for f in report.failures[:500]]
        return self.render(request, v, "bundle.html", active="integrity", report=report,
                           shown=shown, failures=failures, judged=judged, given=given)


# ---- the Starlette app --------------------------------------------------------------------------

def create_web_app(server: LedgerServer) -> Any:
    """The web interface as a Starlette app, to mount at ``/web`` beside the API."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    web = Web(server)

    def finish(response: Response, lang: str, set_lang: bool) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if set_lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/",
                                samesite="lax")
        return response

    def refusal(exc: BaseException) -> tuple[int, str, str | None]:
        if isinstance(exc, WebProblem):
            return exc.status, exc.message, exc.hint
        if isinstance(exc, Problem):
            return exc.status, exc.message, exc.hint
        if isinstance(exc, ValidationError):
            return 400, "invalid request: " + "; ".join(
                str(e.get("msg")) for e in exc.errors()[:3]), None
        if isinstance(exc, LedgerError):
            problem = problem_of(exc)
            status = 404 if isinstance(exc, InputError) and \
                str(exc.message).startswith("unknown case") else problem.status
            return status, exc.message, exc.hint
        raise exc

    def page(handler: Callable[..., Any], *, public: bool = False, api_call: bool = False,
             body: bool = False, limit: int = api.MAX_SMALL_BODY) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            lang, set_lang = language(request)
            visitor = Visitor(None, lang)
            try:
                if request.method == "POST" and not same_site(request):
                    raise WebProblem(403, word("csrf", lang))
                visitor = await run_in_threadpool(web.visitor, request, lang, public)
                if body:
                    parsed = await _json_body(request, limit)
                    response = await run_in_threadpool(handler, request, visitor, parsed)
                else:
                    response = await run_in_threadpool(handler, request, visitor)
            except SignInNeeded as exc:
                if api_call:
                    response = JSONResponse({"error": word("expired" if exc.expired else
                                                           "need_login", lang)}, 401)
                else:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query
                                                 else "")
                    response = RedirectResponse(
                        f"{PREFIX}/login?m={'expired' if exc.expired else 'need'}"
                        f"&next={quote(target, safe='')}", status_code=303)
                    if exc.expired:
                        clear_session_cookie(response, request)
            except Exception as exc:   # noqa: BLE001 - refusals become pages; others logged
                try:
                    status, message, hint = refusal(exc)
                except Exception:   # noqa: BLE001
                    log.exception("error serving %s %s", request.method, request.url.path)
                    status, message, hint = 500, word("error", lang), "See the server's log."
                if api_call:
                    response = JSONResponse({"error": message, "hint": hint}, status)
                else:
                    response = web.error_page(request, visitor, status, message, hint)
            return finish(response, lang, set_lang)
        return endpoint

    def home(request: Request, v: Visitor) -> Response:
        return RedirectResponse(f"{PREFIX}/cases" if v.reader else f"{PREFIX}/login",
                                status_code=303)

    routes = [
        Route("/", page(home, public=True), methods=["GET"]),
        Route("/login", page(web.login, public=True), methods=["GET"]),
        Route("/enrol", page(web.enrol, public=True), methods=["GET"]),
        Route("/lost", page(web.lost, public=True), methods=["GET"]),
        Route("/enrol/qr.svg", page(web.qr, public=True), methods=["GET"]),
        Route("/auth/challenge", page(lambda rq, v, b: JSONResponse(web.challenge(b)),
                                      public=True, api_call=True, body=True),
              methods=["POST"]),
        Route("/auth/session", page(lambda rq, v, b: web.open_session(rq, b), public=True,
                                    api_call=True, body=True), methods=["POST"]),
        Route("/logout", page(web.logout, public=True), methods=["POST"]),
        Route("/cases", page(web.cases), methods=["GET"]),
        Route("/cases/{case}", page(web.case), methods=["GET"]),
        Route("/cases/{case}/bundle", page(web.bundle), methods=["GET"]),
        Route("/work", page(web.my_work), methods=["GET"]),
        Route("/register", page(web.register), methods=["GET"]),
        Route("/work/prepare", page(lambda rq, v, b: JSONResponse(web.work.prepare(v.reader, b)),
                                    api_call=True, body=True), methods=["POST"]),
        Route("/work/submit", page(lambda rq, v, b: JSONResponse(web.work.submit(v.reader, b)),
                                   api_call=True, body=True), methods=["POST"]),
        Route("/reports/{name}", page(web.report), methods=["GET"]),
        Route("/integrity", page(web.integrity), methods=["GET"]),
        Route("/integrity/verify", page(web.start_verify, api_call=True), methods=["POST"]),
        Route("/integrity/verify/{job}", page(web.verify_state, api_call=True),
              methods=["GET"]),
        Route("/integrity/bundles", page(web.upload_bundle, api_call=True, body=True,
                                         limit=MAX_UPLOAD), methods=["POST"]),
        Route("/integrity/bundles/{key}", page(web.bundle_result), methods=["GET"]),
        Mount("/static", app=StaticFiles(packages=[("server.web", "static")]), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        lang, set_lang = language(request)
        status = getattr(exc, "status_code", 404)
        visitor = Visitor(None, lang)
        response = web.error_page(request, visitor, status, word(
            "not_found", lang) if status == 404 else "method not allowed")
        return finish(response, lang, set_lang)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.web = web
    return app


async def _json_body(request: Any, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise WebProblem(413, f"request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise WebProblem(413, f"request body larger than {limit} bytes")
    try:
        return json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise WebProblem(400, "the request body is not JSON") from None


__all__ = ["PREFIX", "Web", "create_web_app"]
