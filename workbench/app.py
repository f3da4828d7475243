"""The workbench's routes: login, the worklist, the household page. Mounted at `/app` in the scoring
service (`serving.service`), so it is one deployable with the API; it reads and acts only through
`store`, `serving.scoring` and the message catalogue.

Every page needs a session (`store.accounts`) except the login page; every household the page names is
checked against the account's area on the server (403, recorded in the access log, when outside it),
and every view of a household page is recorded (who looked at whom). Pages are rendered on the server
(Jinja2, autoescaped) and work without script; one small script of this site's own
(`static/offline.js`, with the service worker `static/sw.js`) keeps a cadre's villages on her phone and
queues what she records without a signal (`workbench.offline_pages`).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from serving.scoring import CountyNotScored
from store.accounts import (
    WebSession,
    log_in,
    log_out,
    record_access,
)
from store.cases import (
    list_flags,
)
from store.register import (
    registered_history,
)
from survey.catalogue import LANGUAGES, message
from workbench.area_pages import AreaPages
from workbench.offline_pages import OfflinePages
from workbench.pages import (
    HERE,
    HOUSEHOLD_ROLES,
    SEARCH_MAX_LENGTH,
    WorkbenchSettings,
    bulk_step_choices,
    form_field,
    page_number,
    places_text,
    reader_language,
    redirect_to,
    to_login,
)
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
from workbench.views import OPEN_STATUSES, worklist


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
        Route("/exports/dashboard.{kind:str}", pages.export_dashboard, methods=["GET"]),
        Route("/villages/{village_id}/review", pages.village_review, methods=["GET"]),
        Route("/villages/{village_id}/notice", pages.village_notice, methods=["GET"]),
        Route("/pushes", pages.push_form, methods=["GET"]),
        Route("/pushes", pages.push, methods=["POST"]),
        Route("/declarations", pages.declaration_form, methods=["GET"]),
        Route("/declarations", pages.declare, methods=["POST"]),
        Route("/sw.js", pages.service_worker, methods=["GET"]),
        Route("/offline/manifest", pages.manifest, methods=["GET"]),
        Route("/offline/texts.{lang}.json", pages.texts, methods=["GET"]),
        Route("/offline/villages/{village_id}", pages.village_pages, methods=["GET"]),
        Route("/offline/grant", pages.grant, methods=["POST"]),
        Route("/offline/grant/revoke", pages.revoke, methods=["POST"]),
        Route("/offline/{kind}", pages.offline_page, methods=["GET"]),
        Route("/sync", pages.sync, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            404: pages.not_found,
            405: pages.not_found,
            CountyNotScored: pages.county_not_scored,
        },
    )


class _Pages(OfflinePages, AreaPages):
    """Every page of the workbench (the page groups are mixins over `PageBase`)."""

    # ------------------------------------------------------------------------------------ login

    def login_form(self, request: Request) -> Response:
        if self._session(request) is not None:
            return redirect_to(f"{APP_PATH}/")
        notice = {"bye": "page.logged_out", "expired": "page.session_ended"}.get(
            request.query_params.get("m", "")
        )
        return self._login_page(request, notice=notice)

    def _login_page(
        self, request: Request, *, error: str | None = None, notice: str | None = None, status: int = 200
    ) -> Response:
        lang = reader_language(request)
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
        if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), form_field(form, CSRF_FIELD)):
            return self._bad_form(request, None)
        lang = reader_language(request)
        username = form_field(form, "username").strip()[:SEARCH_MAX_LENGTH]
        password = form_field(form, "password")
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
        response = redirect_to(f"{APP_PATH}/")
        set_cookie(response, request, SESSION_COOKIE, attempt.token, None)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=APP_PATH)
        return response

    async def logout(self, request: Request) -> Response:
        session = self._session(request)
        form = await request.form()
        if session is None:
            return redirect_to(f"{APP_PATH}/login")
        if not tokens_match(session.csrf_token, form_field(form, CSRF_FIELD)):
            return self._bad_form(request, session)
        log_out(self.settings.engine, request.cookies.get(SESSION_COOKIE, ""), now=self.settings.clock())
        record_access(
            self.settings.engine,
            [{"user_id": session.account.user_id, "action": "logout", "allowed": True}],
            now=self.settings.clock(),
        )
        response = redirect_to(f"{APP_PATH}/login?m=bye")
        response.delete_cookie(SESSION_COOKIE, path=APP_PATH)
        return response

    def language(self, request: Request) -> Response:
        """Switch the pages' language (a preference kept by the browser, for every page of the site)."""
        chosen = request.query_params.get("to", "")
        response = redirect_to(safe_next(request.query_params.get("next")))
        if chosen in LANGUAGES:
            set_cookie(response, request, LANGUAGE_COOKIE, chosen, LANGUAGE_SECONDS, path="/")
        return response

    # ------------------------------------------------------------------------------------ pages

    def worklist(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return to_login(request)
        account = session.account
        if account.role not in HOUSEHOLD_ROLES:
            return self._render(
                request, "message.html", self._message_context("app.name", "page.analyst_home", session)
            )
        lang = reader_language(request)
        villages = self._villages(account)
        query = request.query_params.get("q", "").strip()[:SEARCH_MAX_LENGTH]
        if query:
            return self._search(request, session, query)
        flags = list_flags(
            self.settings.engine, county=account.county_id, villages=villages, statuses=OPEN_STATUSES
        )
        page = page_number(request.query_params.get("page"))
        work = worklist(flags, account.role, self.settings.clock(), self._deadlines(), lang, page)
        places = places_text(account, lang)
        return self._render(
            request,
            "worklist.html",
            {
                "session": session,
                "work": work,
                "places": places,
                "query": query,
                "villages": villages if account.role != "monitor" else [],
                "bulk_steps": bulk_step_choices(account.role, lang),
            },
        )

    def _search(self, request: Request, session: WebSession, query: str) -> Response:
        account = session.account
        assert account.county_id is not None
        history = registered_history(self.settings.engine, account.county_id, query)
        if history and self._covers(account, account.county_id, history[-1].village_id):
            return redirect_to(f"{APP_PATH}/households/{account.county_id}/{query}")
        lang = reader_language(request)
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
                "places": places_text(account, lang),
                "query": query,
                "villages": [],
                "search_none": message("page.search_none", lang, query=query),
            },
            status=404,
        )
