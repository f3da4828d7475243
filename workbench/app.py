"""The workbench's routes: login, the worklist, the household page. Mounted at `/app` in the scoring
service (`serving.service`), so it is one deployable with the API; it reads and acts only through
`store`, `serving.scoring` and the message catalogue.

Every page needs a session (`store.accounts`) except the login page; every household the page names is
checked against the account's area on the server (403, recorded in the access log, when outside it),
and every view of a household page is recorded (who looked at whom). Pages are rendered on the server
(Jinja2, autoescaped) and carry no script.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from features.frame import FeatureInputError
from features.policy import PolicyError, ProcedureDeadlines
from monitoring.procedure import (
    NOTICE_STATUSES,
    StepRefused,
    check_step,
    declared_changes,
    declared_events,
    notice_end,
    procedure_steps,
)
from serving.schemas import MemberChange, WhatIfChanges
from serving.scoring import (
    LoadedModels,
    WhatIfError,
    flag_of,
    score_registered_together,
    score_registered_with,
    score_registered_with_many,
    what_if_registered,
)
from store.accounts import (
    Account,
    LoginRules,
    WebSession,
    access_entries,
    log_in,
    log_out,
    record_access,
    session_of,
)
from store.cases import (
    NOTE_MAX_LENGTH,
    FlagConflict,
    add_case_note,
    case_overview,
    flag_history,
    get_flag,
    list_flags,
    open_case,
    set_status,
    set_statuses,
)
from store.register import (
    county_places,
    latest_households,
    registered_history,
    registered_household,
    registration_changes,
    registration_counts,
    township_of,
)
from survey.catalogue import LANGUAGES, Language, label, message
from workbench.bulk import StepRequest, plan_steps, sheet_requests
from workbench.case_views import OBJECTION, STEP_LABELLED, aware, case_state, case_views, refusal_text
from workbench.dashboard import dashboard_view
from workbench.exports import cases_table, csv_bytes, xlsx_bytes
from workbench.notices import NOTICE_KINDS, REVIEW_KINDS, households_to_review, notice_parts, review_rows
from workbench.pushes import PushUnreadable, plan_push, read_push, read_table
from workbench.security import (
    APP_PATH,
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    LANGUAGE_SECONDS,
    LOGIN_CSRF_COOKIE,
    LOGIN_CSRF_SECONDS,
    SESSION_COOKIE,
    SecurityHeaders,
    new_token,
    safe_next,
    set_cookie,
    tokens_match,
)
from workbench.views import OPEN_STATUSES, household_view, member_choices, what_if_view, worklist

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
HOUSEHOLD_ROLES = frozenset({"cadre", "township", "monitor"})
PUSH_ROLES = frozenset({"township", "monitor"})
"""Who imports a department's data (county and township offices receive it)."""
EXPORT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
VIEWERS_SHOWN = 20
SEARCH_MAX_LENGTH = 64


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkbenchSettings:
    """What the workbench works with: the store's database, the models being served (a callable, so
    that a reload is seen at once), the login rules and the clock (tests move it)."""

    engine: Engine
    models: Callable[[], LoadedModels]
    rules: LoginRules = field(default_factory=LoginRules)
    clock: Callable[[], datetime] = _utc_now


class Workbench:
    """The ASGI app the service mounts at `/app`; it answers 503 until `attach` gives it its settings
    (the service does so once its models and database are ready)."""

    def __init__(self) -> None:
        self._app: Starlette | None = None

    def attach(self, settings: WorkbenchSettings) -> None:
        self._app = build_workbench(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            response = HTMLResponse("workbench starting", status_code=503, headers={"retry-after": "5"})
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


def build_workbench(settings: WorkbenchSettings) -> Starlette:
    pages = _Pages(settings)
    routes = [
        Route("/", pages.worklist, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/language", pages.language, methods=["GET"]),
        Route("/households/{county_id}/{household_id}", pages.household, methods=["GET"]),
        Route("/households/{county_id}/{household_id}/whatif", pages.what_if, methods=["GET"]),
        Route("/cases/bulk", pages.bulk_steps, methods=["POST"]),
        Route("/decisions", pages.decisions_form, methods=["GET"]),
        Route("/decisions", pages.import_decisions, methods=["POST"]),
        Route("/cases/{flag_id:int}/steps", pages.take_step, methods=["POST"]),
        Route("/cases/{flag_id:int}/objections", pages.record_objection, methods=["POST"]),
        Route("/dashboard", pages.dashboard, methods=["GET"]),
        Route("/exports/cases.{kind:str}", pages.export_cases, methods=["GET"]),
        Route("/villages/{village_id}/review", pages.village_review, methods=["GET"]),
        Route("/villages/{village_id}/notice", pages.village_notice, methods=["GET"]),
        Route("/pushes", pages.push_form, methods=["GET"]),
        Route("/pushes", pages.push, methods=["POST"]),
        Route("/declarations", pages.declaration_form, methods=["GET"]),
        Route("/declarations", pages.declare, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: pages.not_found, 405: pages.not_found},
    )


class _Pages:
    def __init__(self, settings: WorkbenchSettings) -> None:
        self.settings = settings
        self.templates = Jinja2Templates(directory=HERE / "templates")

    # ------------------------------------------------------------------------------------ login

    def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return _redirect(f"{APP_PATH}/")
        notice = {"bye": "page.logged_out", "expired": "page.session_ended"}.get(
            request.query_params.get("m", "")
        )
        return self._login_page(request, notice=notice)

    def _login_page(
        self, request: Request, *, error: str | None = None, notice: str | None = None, status: int = 200
    ) -> Response:
        lang = _language(request)
        token = new_token()
        response = self._render(
            request,
            "login.html",
            {"error": error, "notice": None if notice is None else message(notice, lang), "csrf": token},
            status=status,
        )
        set_cookie(response, request, LOGIN_CSRF_COOKIE, token, LOGIN_CSRF_SECONDS)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), _field(form, CSRF_FIELD)):
            return self._bad_form(request, None)
        lang = _language(request)
        username = _field(form, "username").strip()[:SEARCH_MAX_LENGTH]
        password = _field(form, "password")
        if not username or not password:
            return self._login_page(request, error=message("page.login_missing", lang), status=400)
        now = self.settings.clock()
        attempt = log_in(self.settings.engine, username, password, self.settings.rules, now=now)
        record_access(
            self.settings.engine,
            [{"user_id": username, "action": f"login_{attempt.outcome}", "allowed": attempt.outcome == "ok"}],
            now=now,
        )
        if attempt.outcome != "ok" or attempt.token is None:
            error = {
                "wrong": message("page.login_wrong", lang),
                "disabled": message("page.login_disabled", lang),
                "locked": message(
                    "page.login_locked",
                    lang,
                    until=attempt.locked_until.astimezone().strftime("%H:%M") if attempt.locked_until else "",
                ),
            }[attempt.outcome]
            return self._login_page(request, error=error, status=401)
        response = _redirect(f"{APP_PATH}/")
        set_cookie(response, request, SESSION_COOKIE, attempt.token, None)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=APP_PATH)
        return response

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        form = await request.form()
        if session is None:
            return _redirect(f"{APP_PATH}/login")
        if not tokens_match(session.csrf_token, _field(form, CSRF_FIELD)):
            return self._bad_form(request, session)
        log_out(self.settings.engine, request.cookies.get(SESSION_COOKIE, ""), now=self.settings.clock())
        record_access(
            self.settings.engine,
            [{"user_id": session.account.user_id, "action": "logout", "allowed": True}],
            now=self.settings.clock(),
        )
        response = _redirect(f"{APP_PATH}/login?m=bye")
        response.delete_cookie(SESSION_COOKIE, path=APP_PATH)
        return response

    def language(self, request: Request) -> Response:
        """Switch the pages' language (a preference kept by the browser, for every page of the site)."""
        chosen = request.query_params.get("to", "")
        response = _redirect(safe_next(request.query_params.get("next")))
        if chosen in LANGUAGES:
            set_cookie(response, request, LANGUAGE_COOKIE, chosen, LANGUAGE_SECONDS, path="/")
        return response

    # ------------------------------------------------------------------------------------ pages

    def worklist(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        account = session.account
        if account.role not in HOUSEHOLD_ROLES:
            return self._render(
                request, "message.html", self._message_context("app.name", "page.analyst_home", session)
            )
        lang = _language(request)
        villages = self._villages(account)
        query = request.query_params.get("q", "").strip()[:SEARCH_MAX_LENGTH]
        if query:
            return self._search(request, session, query)
        flags = list_flags(
            self.settings.engine, county=account.county_id, villages=villages, statuses=OPEN_STATUSES
        )
        page = _page_number(request.query_params.get("page"))
        work = worklist(flags, account.role, self.settings.clock(), self._deadlines(), lang, page)
        places = _places_text(account, lang)
        return self._render(
            request,
            "worklist.html",
            {
                "session": session,
                "work": work,
                "places": places,
                "query": query,
                "villages": villages if account.role != "monitor" else [],
                "bulk_steps": _bulk_steps(account.role, lang),
            },
        )

    def _search(self, request: Request, session: WebSession, query: str) -> Response:
        account = session.account
        assert account.county_id is not None
        history = registered_history(self.settings.engine, account.county_id, query)
        if history and self._covers(account, account.county_id, history[-1].village_id):
            return _redirect(f"{APP_PATH}/households/{account.county_id}/{query}")
        lang = _language(request)
        flags = list_flags(
            self.settings.engine,
            county=account.county_id,
            villages=self._villages(account),
            statuses=OPEN_STATUSES,
        )
        work = worklist(flags, account.role, self.settings.clock(), self._deadlines(), lang)
        return self._render(
            request,
            "worklist.html",
            {
                "session": session,
                "work": work,
                "places": _places_text(account, lang),
                "query": query,
                "villages": [],
                "search_none": message("page.search_none", lang, query=query),
            },
            status=404,
        )

    def household(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        county_id = request.path_params["county_id"]
        household_id = request.path_params["household_id"]
        done = request.query_params.get("done", "")
        notice = (
            message("procedure.done", _language(request), step=label("step", done, _language(request)))
            if done in STEP_LABELLED
            else None
        )
        return self._household_page(request, session, county_id, household_id, notice=notice)

    def _household_page(
        self,
        request: Request,
        session: WebSession,
        county_id: str,
        household_id: str,
        *,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        account = session.account
        engine = self.settings.engine
        history = (
            registered_history(engine, county_id, household_id) if account.role in HOUSEHOLD_ROLES else []
        )
        village_id = history[-1].village_id if history else None
        if village_id is None or not self._covers(account, county_id, village_id):
            return self._refuse(request, session, county_id, household_id)
        lang = _language(request)
        now = self.settings.clock()
        self._record(account, "view_household", True, county_id, household_id, request.url.path)
        scores = score_registered_together(self.settings.models(), history, lang)
        cases = list_flags(engine, county=county_id, household=household_id)
        steps = flag_history(engine, flag_ids=cases["id"].tolist()) if len(cases) else cases
        case_list = case_views(cases, steps, account.role, now, self._deadlines(), lang)
        viewers = access_entries(engine, county_id=county_id, household_id=household_id, limit=VIEWERS_SHOWN)
        viewers = viewers[viewers["allowed"].astype(bool)] if len(viewers) else viewers
        view = household_view(
            scores, case_list, viewers, village_id, lang, ZoneInfo(self._deadlines().timezone)
        )
        context = {"session": session, "h": view, "notice": notice, "error": error}
        return self._render(request, "household.html", context, status=status)

    def what_if(self, request: Request) -> Response:
        """The household with a fact changed (insurance, a member's migrant work, medical costs): both
        risks, the tier, the category, the reasons and the measures before and after. Nothing is saved."""
        session = self._session(request)
        if session is None:
            return _to_login(request)
        account, lang = session.account, _language(request)
        county_id, household_id = request.path_params["county_id"], request.path_params["household_id"]
        history = (
            registered_history(self.settings.engine, county_id, household_id)
            if account.role in HOUSEHOLD_ROLES
            else []
        )
        if not history or not self._covers(account, county_id, history[-1].village_id):
            return self._refuse(request, session, county_id, household_id)
        latest = history[-1]
        self._record(account, "what_if", True, county_id, household_id, request.url.path)
        values = {
            name: request.query_params.get(name, "").strip()[:12]
            for name in ("insurance", "member", "months", "medical")
        }
        members = member_choices(latest.members, lang)
        context: dict[str, Any] = {
            "session": session,
            "county_id": county_id,
            "household_id": household_id,
            "members": members,
            "values": values,
            "result": None,
            "error": None,
        }
        if any(values.values()):
            changes, error = _what_if_changes(
                values, {member for member, _ in members}, lang, self._money_bound()
            )
            if error is None and changes is not None:
                try:
                    answer = what_if_registered(self.settings.models(), latest, changes, lang)
                except (WhatIfError, PolicyError, FeatureInputError) as refused:
                    error = str(refused)
                else:
                    context["result"] = what_if_view(answer, lang)
            context["error"] = error
        return self._render(request, "whatif.html", context, status=200 if context["error"] is None else 400)

    def dashboard(self, request: Request) -> Response:
        """The account's area at a glance: open and overdue cases by step, channel, category, township
        and village; days from discovery to approval; moves between the last two rounds; the trend."""
        session = self._session(request)
        if session is None:
            return _to_login(request)
        account, lang = session.account, _language(request)
        if account.role not in HOUSEHOLD_ROLES:
            return self._render(
                request, "message.html", self._message_context("app.name", "page.analyst_home", session)
            )
        county_id = str(account.county_id)
        places = county_places(self.settings.engine, county_id)
        villages = self._villages(account)
        cases = case_overview(self.settings.engine, county_id, villages)
        view = dashboard_view(
            cases,
            places,
            registration_counts(self.settings.engine, county_id),
            registration_changes(self.settings.engine, county_id),
            self.settings.clock(),
            self._deadlines(),
            lang,
        )
        context = {"session": session, "d": view, "area": _places_text(account, lang)}
        return self._render(request, "dashboard.html", context)

    def village_review(self, request: Request) -> Response:
        """The material for the village's democratic review, to print for the meeting."""
        checked = self._village_session(request)
        if isinstance(checked, Response):
            return checked
        session, village = checked
        county_id, lang, engine = str(session.account.county_id), _language(request), self.settings.engine
        cases = list_flags(engine, county=county_id, village=village, statuses=list(REVIEW_KINDS))
        registered = [
            found
            for household in households_to_review(cases)
            if (found := registered_household(engine, county_id, household)) is not None
        ]
        answers = score_registered_together(self.settings.models(), registered, lang) if registered else []
        rows = review_rows(cases, {answer.household_id: answer for answer in answers}, lang)
        context = {
            "session": session,
            "title": message("review.title", lang, village=village),
            "lead": message(
                "review.lead",
                lang,
                inclusions=len(rows["inclusions"]),
                eliminations=len(rows["eliminations"]),
            ),
            "parts": [
                (message("review.inclusions", lang), rows["inclusions"]),
                (message("review.eliminations", lang), rows["eliminations"]),
            ],
        }
        return self._render(request, "review.html", context)

    def village_notice(self, request: Request) -> Response:
        """The village's public notice, in A4 print layout: the households on notice (allow-listed
        columns only), the notice period, where to object."""
        checked = self._village_session(request)
        if isinstance(checked, Response):
            return checked
        session, village = checked
        county_id, lang = str(session.account.county_id), _language(request)
        cases = list_flags(
            self.settings.engine, county=county_id, village=village, statuses=list(NOTICE_KINDS)
        )
        deadlines = self._deadlines()
        parts = notice_parts(cases, self.settings.models().causes, deadlines, lang)
        today = aware(self.settings.clock()).astimezone(ZoneInfo(deadlines.timezone)).date().isoformat()
        kind = (
            "elimination"
            if parts and all(s == "elimination_notice" for s in cases["status"])
            else "inclusion"
        )
        context = {
            "session": session,
            "title": message(f"notice.title_{kind}", lang, village=village),
            "parts": parts,
            "signed": message("notice.signed", lang, village=village, date=today),
        }
        return self._render(request, "notice.html", context)

    def _village_session(self, request: Request) -> tuple[WebSession, str] | Response:
        """The session and the village a village page is about, or the refusal (login, 403)."""
        session = self._session(request)
        if session is None:
            return _to_login(request)
        account = session.account
        village = request.path_params["village_id"][:SEARCH_MAX_LENGTH]
        if account.role not in HOUSEHOLD_ROLES or not self._covers(account, str(account.county_id), village):
            return self._refuse(request, session, str(account.county_id), "", action="view_village")
        return session, village

    def export_cases(self, request: Request) -> Response:
        """The open cases of the account's area as XLSX or CSV (UTF-8 with a byte-order mark), column
        names and values in the reader's language; recorded in the access log."""
        session = self._session(request)
        if session is None:
            return _to_login(request)
        account, lang, kind = session.account, _language(request), request.path_params["kind"]
        if account.role not in HOUSEHOLD_ROLES:
            return self._refuse(request, session, str(account.county_id), "", action="export_cases")
        if kind not in EXPORT_TYPES:
            return self.not_found(request, LookupError())
        county_id = str(account.county_id)
        flags = list_flags(
            self.settings.engine, county=county_id, villages=self._villages(account), statuses=OPEN_STATUSES
        )
        table = cases_table(
            flags,
            county_places(self.settings.engine, county_id),
            self.settings.models().causes,
            self.settings.clock(),
            self._deadlines(),
            lang,
        )
        self._record(account, "export_cases", True, county_id, "", request.url.path, f"{len(table)} rows")
        sheet = message("export.sheet_cases", lang)
        body = xlsx_bytes(table, sheet) if kind == "xlsx" else csv_bytes(table)
        filename = f"cases-{date.today().isoformat()}.{kind}"
        return Response(
            body,
            media_type=EXPORT_TYPES[kind],
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    def _money_bound(self) -> float:
        return float(self.settings.models().predictor.policy.money_bounds.max_yearly_amount)

    # ------------------------------------------------------------------------------------ cases

    async def take_step(self, request: Request) -> Response:
        """A step of the procedure on a case, from the form on its household's page."""
        form = await request.form()
        checked = await run_in_threadpool(self._checked_case, request, form)
        if isinstance(checked, Response):
            return checked
        session, case = checked
        account, lang, now = session.account, _language(request), self.settings.clock()
        step_name, note = _field(form, "step"), _field(form, "note").strip() or None
        seen_version = _int_field(form, "version")
        if seen_version is not None and seen_version != int(case["version"]):  # moved on since the page
            error = message("procedure.conflict", lang, status=label("status", str(case["status"]), lang))
            return await self._case_refused(request, session, case, error)
        try:
            step = check_step(step_name, account.role, case_state(case), note, now)
        except StepRefused as refused:
            error = refusal_text(
                refused, step_name, str(case["status"]), account.role, lang, self._deadlines()
            )
            return await self._case_refused(request, session, case, error)
        notice_ends = notice_end(now, self._deadlines()) if step.starts_notice else None
        try:
            await run_in_threadpool(
                lambda: set_status(
                    self.settings.engine,
                    int(case["id"]),
                    step.to_status,
                    account.user_id,
                    note,
                    role=account.role,
                    details={"step": step.name},
                    notice_ends=notice_ends,
                    expected_version=_int_field(form, "version"),
                    expected_status=_field(form, "status") or None,
                )
            )
        except FlagConflict as conflict:
            error = message("procedure.conflict", lang, status=label("status", conflict.current_status, lang))
            return await self._case_refused(request, session, case, error)
        return _redirect(f"{APP_PATH}/households/{case['county_id']}/{case['household_id']}?done={step.name}")

    async def record_objection(self, request: Request) -> Response:
        """An objection raised while a case's public notice runs (kept on the case, which stays put)."""
        form = await request.form()
        checked = await run_in_threadpool(self._checked_case, request, form)
        if isinstance(checked, Response):
            return checked
        session, case = checked
        lang, note = _language(request), _field(form, "note").strip()
        error = None
        if str(case["status"]) not in NOTICE_STATUSES:
            error = message(
                "procedure.refused_out_of_order",
                lang,
                status=label("status", str(case["status"]), lang),
                step=label("step", OBJECTION, lang),
            )
        elif not note:
            error = message("procedure.refused_no_note", lang, step=label("step", OBJECTION, lang))
        if error is None:
            await run_in_threadpool(
                add_case_note,
                self.settings.engine,
                int(case["id"]),
                session.account.user_id,
                note,
                role=session.account.role,
                details={"kind": OBJECTION},
            )
            return _redirect(
                f"{APP_PATH}/households/{case['county_id']}/{case['household_id']}?done={OBJECTION}"
            )
        return await self._case_refused(request, session, case, error)

    # ------------------------------------------------------------------------------------ declarations

    def declaration_form(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        if session.account.role not in HOUSEHOLD_ROLES:
            return self._refuse(request, session, str(session.account.county_id), "")
        household = request.query_params.get("household", "")[:SEARCH_MAX_LENGTH]
        return self._declaration_page(request, session, {"household": household})

    def _declaration_page(
        self,
        request: Request,
        session: WebSession,
        values: dict[str, str],
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        lang = _language(request)
        events = [(name, label("event", name, lang)) for name in declared_events()]
        context = {"session": session, "events": events, "values": values, "error": error}
        return self._render(request, "declaration.html", context, status=status)

    async def declare(self, request: Request) -> Response:
        """A household's own declaration: scored at once with what it declared, opened as a case (or
        recorded on its open case)."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        return await run_in_threadpool(self._declare, request, session, form)

    def _declare(self, request: Request, session: WebSession, form: Any) -> Response:
        account, lang = session.account, _language(request)
        values = {name: _field(form, name).strip() for name in ("household", "event", "amount", "note")}
        values["household"] = values["household"][:SEARCH_MAX_LENGTH]
        most = self.settings.models().predictor.policy.money_bounds.max_yearly_amount
        problems = []
        if values["event"] not in declared_events():
            problems.append(message("declaration.bad_event", lang))
        amount = _amount(values["amount"], most)
        if amount is _BAD_AMOUNT:
            problems.append(message("declaration.bad_amount", lang, most=f"{most:,.0f}"))
        if not values["note"]:
            problems.append(message("declaration.no_note", lang))
        county_id = str(account.county_id)
        history = (
            registered_history(self.settings.engine, county_id, values["household"])
            if values["household"]
            else []
        )
        if (
            account.role not in HOUSEHOLD_ROLES
            or not history
            or not self._covers(account, county_id, history[-1].village_id)
        ):
            if values["household"]:
                self._record(account, "declaration", False, county_id, values["household"], request.url.path)
            problems.append(message("declaration.no_household", lang, household=values["household"]))
        if problems:
            return self._declaration_page(request, session, values, " ".join(problems), status=400)
        latest = history[-1]
        changes = declared_changes(
            values["event"], amount if isinstance(amount, float) else None, _latest_row(latest)
        )
        answer = score_registered_with(self.settings.models(), latest, changes, lang)
        open_case(
            self.settings.engine,
            flag_of(answer, latest.village_id),
            "declaration",
            account.user_id,
            role=account.role,
            note=values["note"][:NOTE_MAX_LENGTH],
            details={"event": values["event"], "amount": amount if isinstance(amount, float) else None},
        )
        return _redirect(f"{APP_PATH}/households/{county_id}/{values['household']}?done=declaration")

    async def _case_refused(
        self, request: Request, session: WebSession, case: dict[str, Any], error: str
    ) -> Response:
        """The case's household page again, saying why nothing was done (409)."""
        return await run_in_threadpool(
            self._household_page,
            request,
            session,
            str(case["county_id"]),
            str(case["household_id"]),
            error=error,
            status=409,
        )

    # ------------------------------------------------------------------------------------ bulk work

    async def bulk_steps(self, request: Request) -> Response:
        """The cases ticked on the worklist, moved one step together (all or none)."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        chosen = [int(value) for value in form.getlist("case") if isinstance(value, str) and value.isdigit()]
        requests = [
            StepRequest(step=_field(form, "step"), note=_field(form, "note").strip(), flag_id=flag_id)
            for flag_id in chosen
        ]
        return await run_in_threadpool(self._apply_steps, request, session, requests, "bulk", False)

    def decisions_form(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        if session.account.role not in HOUSEHOLD_ROLES:
            return self._refuse(
                request, session, str(session.account.county_id), "", action="import_decisions"
            )
        return self._render(request, "bulk.html", self._bulk_context(request, session, upload=True))

    async def import_decisions(self, request: Request) -> Response:
        """A sheet of field decisions (household, step, note): every row checked, all applied or none."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        content, filename = await _uploaded(form)
        lang = _language(request)
        try:
            requests = sheet_requests(read_table(content, filename, lang))
        except PushUnreadable as unreadable:
            context = self._bulk_context(request, session, upload=True, error=str(unreadable))
            return self._render(request, "bulk.html", context, status=400)
        except ValueError as missing:
            error = message("bulk.missing_columns", lang, columns=str(missing))
            return self._render(request, "bulk.html", self._bulk_context(request, session, True, error), 400)
        return await run_in_threadpool(self._apply_steps, request, session, requests, "sheet", True)

    def _apply_steps(
        self, request: Request, session: WebSession, requests: list[StepRequest], via: str, upload: bool
    ) -> Response:
        account, lang = session.account, _language(request)
        if account.role not in HOUSEHOLD_ROLES:
            return self._refuse(request, session, str(account.county_id), "", action=f"{via}_steps")
        if not requests:
            context = self._bulk_context(request, session, upload, message("bulk.none_selected", lang))
            return self._render(request, "bulk.html", context, status=400)
        cases = list_flags(
            self.settings.engine,
            county=str(account.county_id),
            villages=self._villages(account),
            statuses=(*OPEN_STATUSES, "rejected"),
        )
        now = self.settings.clock()
        planned, problems = plan_steps(requests, cases, account.role, now, self._deadlines(), lang, via)
        if problems:
            context = self._bulk_context(
                request, session, upload, message("bulk.refused", lang, count=len(problems)), problems
            )
            return self._render(request, "bulk.html", context, status=409)
        try:
            moved = set_statuses(self.settings.engine, planned, account.user_id, role=account.role)
        except FlagConflict as conflict:
            error = message("procedure.conflict", lang, status=label("status", conflict.current_status, lang))
            return self._render(
                request, "bulk.html", self._bulk_context(request, session, upload, error), 409
            )
        context = self._bulk_context(request, session, upload)
        context["done"] = message("bulk.done", lang, count=moved)
        return self._render(request, "bulk.html", context)

    def _bulk_context(
        self,
        request: Request,
        session: WebSession,
        upload: bool,
        error: str | None = None,
        problems: list[str] | None = None,
    ) -> dict[str, Any]:
        lang = _language(request)
        return {
            "session": session,
            "heading": message("bulk.import_title" if upload else "bulk.submit", lang),
            "lead": message("bulk.import_lead", lang) if upload else "",
            "upload": upload,
            "error": error,
            "problems": problems or [],
            "done": None,
        }

    # ------------------------------------------------------------------------------------ department pushes

    def push_form(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        if session.account.role not in PUSH_ROLES:
            return self._refuse(
                request, session, str(session.account.county_id), "", action="department_push"
            )
        return self._render(request, "push.html", {"session": session, "department": ""})

    async def push(self, request: Request) -> Response:
        """A department's file: every row checked and matched to the register in the account's area;
        matched households scored with the pushed event and opened as cases (channel "department"), or
        recorded on their open case; the rows that could not be used listed back."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        if session.account.role not in PUSH_ROLES:
            return self._refuse(
                request, session, str(session.account.county_id), "", action="department_push"
            )
        content, filename = await _uploaded(form)
        return await run_in_threadpool(
            self._push, request, session, _field(form, "department").strip()[:100], content, filename
        )

    def _push(
        self, request: Request, session: WebSession, department: str, content: bytes, filename: str
    ) -> Response:
        account, lang, engine = session.account, _language(request), self.settings.engine
        county_id = str(account.county_id)
        context: dict[str, Any] = {"session": session, "department": department, "rejected": []}
        if not department:
            return self._render(
                request, "push.html", {**context, "error": message("push.no_department", lang)}, 400
            )
        try:
            table = read_push(content, filename, lang)
        except PushUnreadable as unreadable:
            return self._render(request, "push.html", {**context, "error": str(unreadable)}, 400)
        area = self._villages(account)
        known = {
            household: village
            for household, village in latest_households(engine, county_id).items()
            if area is None or village in area
        }
        plan = plan_push(table, known, self._money_bound(), lang)
        opened = joined = 0
        if plan.matched:
            registered = [registered_household(engine, county_id, row.household_id) for row in plan.matched]
            pairs = [
                (found, declared_changes(row.event, row.amount, _latest_row(found)))
                for row, found in zip(plan.matched, registered, strict=True)
                if found is not None
            ]
            answers = score_registered_with_many(self.settings.models(), pairs, lang)
            for row, (found, _), answer in zip(plan.matched, pairs, answers, strict=True):
                outcome = open_case(
                    engine,
                    flag_of(answer, found.village_id),
                    "department",
                    account.user_id,
                    role=account.role,
                    note=row.note[:NOTE_MAX_LENGTH] or None,
                    details={
                        "department": department,
                        "event": row.event,
                        "amount": row.amount,
                        "line": row.line,
                    },
                )
                opened, joined = opened + outcome.created, joined + (not outcome.created)
        self._record(
            account,
            "department_push",
            True,
            county_id,
            "",
            request.url.path,
            f"{department}: {opened} opened, {joined} joined, {len(plan.problems)} rows not used",
        )
        result = message("push.result", lang, opened=opened, joined=joined, rejected=len(plan.problems))
        return self._render(request, "push.html", {**context, "result": result, "rejected": plan.problems})

    def _checked_case(self, request: Request, form: Any) -> tuple[WebSession, dict[str, Any]] | Response:
        """The session and the case a form acts on, or the refusal: no session (to login), no CSRF token
        (403), an unknown case (404), a case outside the account's area (403, recorded)."""
        session = self._session(request)
        if session is None:
            return _to_login(request)
        if not tokens_match(session.csrf_token, _field(form, CSRF_FIELD)):
            return self._bad_form(request, session)
        case = get_flag(self.settings.engine, int(request.path_params["flag_id"]))
        if case is None:
            return self.not_found(request, LookupError())
        account = session.account
        if account.role not in HOUSEHOLD_ROLES or not self._covers(
            account, str(case["county_id"]), str(case["village_id"])
        ):
            return self._refuse(request, session, str(case["county_id"]), str(case["household_id"]))
        return session, case

    def not_found(self, request: Request, _error: Exception) -> Response:
        session = self._session(request)
        context = self._message_context("page.not_found_title", "page.not_found", session)
        return self._render(request, "message.html", context, status=404)

    # ------------------------------------------------------------------------------------ helpers

    async def _posted(self, request: Request) -> tuple[WebSession, Any] | Response:
        """A posted form with its session, once the session is live and the form carries its CSRF
        token; otherwise the answer (to the login page, or 403)."""
        form = await request.form()
        session = await run_in_threadpool(self._session, request)
        if session is None:
            return _to_login(request)
        if not tokens_match(session.csrf_token, _field(form, CSRF_FIELD)):
            return self._bad_form(request, session)
        return session, form

    def _session(self, request: Request) -> WebSession | None:
        return session_of(
            self.settings.engine,
            request.cookies.get(SESSION_COOKIE),
            self.settings.rules,
            now=self.settings.clock(),
        )

    def _deadlines(self) -> ProcedureDeadlines:
        return self.settings.models().predictor.policy.procedure

    def _record(
        self,
        account: Account,
        action: str,
        allowed: bool,
        county_id: str,
        household_id: str,
        path: str,
        detail: str | None = None,
    ) -> None:
        record_access(
            self.settings.engine,
            [
                {
                    "user_id": account.user_id,
                    "action": action,
                    "allowed": allowed,
                    "county_id": county_id[:SEARCH_MAX_LENGTH],
                    "household_id": household_id[:SEARCH_MAX_LENGTH],
                    "path": path,
                    "detail": detail,
                }
            ],
            now=self.settings.clock(),
        )

    def _villages(self, account: Account) -> list[str] | None:
        """The villages whose cases the account sees (None: every village of its county)."""
        if account.role == "cadre":
            return sorted(account.villages)
        if account.role == "township":
            places = county_places(self.settings.engine, str(account.county_id))
            return sorted(village for village, township in places.items() if township in account.townships)
        return None

    def _covers(self, account: Account, county_id: str, village_id: str) -> bool:
        township = (
            township_of(self.settings.engine, county_id, village_id) if account.role == "township" else None
        )
        return account.covers(county_id, village_id, township)

    def _refuse(
        self,
        request: Request,
        session: WebSession,
        county_id: str,
        household_id: str,
        action: str = "view_household",
    ) -> Response:
        account = session.account
        logger.warning(
            "workbench refused %s (%s) the household page %s/%s: outside the account's area",
            account.user_id,
            account.role,
            county_id[:SEARCH_MAX_LENGTH],
            household_id[:SEARCH_MAX_LENGTH],
        )
        self._record(
            account,
            action,
            False,
            county_id,
            household_id,
            request.url.path,
            "outside the account's area, or not in the register",
        )
        context = self._message_context("page.forbidden_title", "page.forbidden", session)
        return self._render(request, "message.html", context, status=403)

    def _bad_form(self, request: Request, session: WebSession | None) -> Response:
        context = self._message_context("page.bad_form_title", "page.bad_form", session)
        return self._render(request, "message.html", context, status=403)

    def _message_context(self, title: str, text: str, session: WebSession | None) -> dict[str, Any]:
        return {"title_key": title, "text_key": text, "session": session}

    def _render(
        self, request: Request, template: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        lang = _language(request)
        session = context.get("session")
        other: Language = "en" if lang == "zh" else "zh"

        def t(name: str, **values: Any) -> str:
            return message(name, lang, **values)

        return self.templates.TemplateResponse(
            request,
            template,
            {
                **context,
                "t": t,
                "lang": lang,
                "html_lang": "zh-CN" if lang == "zh" else "en",
                "other_lang": other,
                "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                "app": APP_PATH,
                "csrf_field": CSRF_FIELD,
                "csrf_token": session.csrf_token if session is not None else "",
                "role_label": label("role", session.account.role, lang) if session is not None else "",
            },
            status_code=status,
        )


def _language(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "zh")
    return "en" if chosen == "en" else "zh"


def _what_if_changes(
    values: dict[str, str], members: set[str], lang: Language, most_money: float
) -> tuple[WhatIfChanges | None, str | None]:
    """The changes a what-if form asks for, or what is wrong with it (in words)."""
    household: dict[str, Any] = {}
    member_changes = []
    problems = []
    if values["insurance"] == "1":
        household["medical_insurance"] = True
    if values["medical"]:
        medical = _number_in(values["medical"], most_money)
        if medical is None:
            problems.append(
                message(
                    "whatif.bad_number",
                    lang,
                    field=message("whatif.medical", lang),
                    most=f"{most_money:,.0f}",
                )
            )
        else:
            household["medical_expenses"] = medical
    if values["member"]:
        months = _number_in(values["months"] or "12", 12)
        if values["member"] not in members or months is None:
            problems.append(
                message("whatif.bad_number", lang, field=message("whatif.months", lang), most="12")
            )
        else:
            member_changes.append(
                MemberChange(member_id=values["member"], changes={"migrant_work_months": months})
            )
    if problems:
        return None, " ".join(problems)
    if not household and not member_changes:
        return None, message("whatif.nothing", lang)
    return WhatIfChanges(household=household, members=member_changes), None


def _number_in(text: str, most: float) -> float | None:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return None
    return value if 0 <= value <= most else None


_BAD_AMOUNT = object()


def _amount(text: str, most: float) -> float | object | None:
    """The declared amount: None when not given, _BAD_AMOUNT when not a number from 0 to `most`."""
    if not text:
        return None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return _BAD_AMOUNT
    return value if 0 <= value <= most else _BAD_AMOUNT


def _int_field(form: Any, name: str) -> int | None:
    value = _field(form, name)
    return int(value) if value.isdigit() and len(value) < 10 else None


def _bulk_steps(role: str, lang: Language) -> list[tuple[str, str]]:
    """The steps a role may take on several cases at once (those that need no notice to have run)."""
    return [
        (step.name, label("step", step.name, lang))
        for step in procedure_steps().values()
        if role in step.roles and step.from_status != "rejected"
    ]


async def _uploaded(form: Any) -> tuple[bytes, str]:
    """The content and name of a form's uploaded file (empty when none was sent)."""
    upload = form.get("file")
    if not isinstance(upload, StarletteUpload):
        return b"", ""
    return await upload.read(), upload.filename or ""


def _latest_row(registered: Any) -> dict[str, Any]:
    return {str(key): value for key, value in registered.households.iloc[-1].items()}


def _page_number(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() and len(value) < 7 else 1


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _places_text(account: Account, lang: Language) -> str:
    places = sorted(account.villages) or sorted(account.townships) or [str(account.county_id)]
    return ("、" if lang == "zh" else ", ").join(places)


def _redirect(target: str) -> Response:
    return RedirectResponse(target, status_code=303)


def _to_login(request: Request) -> Response:
    expired = SESSION_COOKIE in request.cookies
    response = _redirect(f"{APP_PATH}/login" + ("?m=expired" if expired else ""))
    if expired:
        response.delete_cookie(SESSION_COOKIE, path=APP_PATH)
    return response
