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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from serving.scoring import LoadedModels, score_registered_rounds
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
from store.cases import flag_history, list_flags
from store.register import registered_history, township_of
from survey.catalogue import LANGUAGES, Language, label, message
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
from workbench.views import OPEN_STATUSES, household_view, worklist

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
HOUSEHOLD_ROLES = frozenset({"cadre", "township", "monitor"})
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
        work = worklist(
            flags, self.settings.clock(), self.settings.models().predictor.policy.procedure, lang, page
        )
        places = _places_text(account, lang)
        return self._render(
            request,
            "worklist.html",
            {"session": session, "work": work, "places": places, "query": query},
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
        work = worklist(flags, self.settings.clock(), self.settings.models().predictor.policy.procedure, lang)
        return self._render(
            request,
            "worklist.html",
            {
                "session": session,
                "work": work,
                "places": _places_text(account, lang),
                "query": query,
                "search_none": message("page.search_none", lang, query=query),
            },
            status=404,
        )

    def household(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _to_login(request)
        account = session.account
        county_id = request.path_params["county_id"]
        household_id = request.path_params["household_id"]
        engine = self.settings.engine
        history = (
            registered_history(engine, county_id, household_id) if account.role in HOUSEHOLD_ROLES else []
        )
        village_id = history[-1].village_id if history else None
        if village_id is None or not self._covers(account, county_id, village_id):
            return self._refuse(request, session, county_id, household_id)
        lang = _language(request)
        record_access(
            engine,
            [
                {
                    "user_id": account.user_id,
                    "action": "view_household",
                    "allowed": True,
                    "county_id": county_id,
                    "household_id": household_id,
                    "path": request.url.path,
                }
            ],
            now=self.settings.clock(),
        )
        scores = score_registered_rounds(self.settings.models(), history, lang)
        cases = list_flags(engine, county=county_id, household=household_id)
        steps = flag_history(engine, flag_ids=cases["id"].tolist()) if len(cases) else cases
        viewers = access_entries(engine, county_id=county_id, household_id=household_id, limit=VIEWERS_SHOWN)
        viewers = viewers[viewers["allowed"].astype(bool)] if len(viewers) else viewers
        zone = ZoneInfo(self.settings.models().predictor.policy.procedure.timezone)
        view = household_view(scores, cases, steps, viewers, village_id, lang, zone)
        return self._render(request, "household.html", {"session": session, "h": view})

    def not_found(self, request: Request, _error: Exception) -> Response:
        session = self._session(request)
        context = self._message_context("page.not_found_title", "page.not_found", session)
        return self._render(request, "message.html", context, status=404)

    # ------------------------------------------------------------------------------------ helpers

    def _session(self, request: Request) -> WebSession | None:
        return session_of(
            self.settings.engine,
            request.cookies.get(SESSION_COOKIE),
            self.settings.rules,
            now=self.settings.clock(),
        )

    def _villages(self, account: Account) -> list[str] | None:
        """The villages whose cases the account sees (None: every village of its county)."""
        if account.role == "cadre":
            return sorted(account.villages)
        if account.role == "township":
            from store.register import county_places

            places = county_places(self.settings.engine, str(account.county_id))
            return sorted(village for village, township in places.items() if township in account.townships)
        return None

    def _covers(self, account: Account, county_id: str, village_id: str) -> bool:
        township = (
            township_of(self.settings.engine, county_id, village_id) if account.role == "township" else None
        )
        return account.covers(county_id, village_id, township)

    def _refuse(self, request: Request, session: WebSession, county_id: str, household_id: str) -> Response:
        account = session.account
        logger.warning(
            "workbench refused %s (%s) the household page %s/%s: outside the account's area",
            account.user_id,
            account.role,
            county_id[:SEARCH_MAX_LENGTH],
            household_id[:SEARCH_MAX_LENGTH],
        )
        record_access(
            self.settings.engine,
            [
                {
                    "user_id": account.user_id,
                    "action": "view_household",
                    "allowed": False,
                    "county_id": county_id[:SEARCH_MAX_LENGTH],
                    "household_id": household_id[:SEARCH_MAX_LENGTH],
                    "path": request.url.path,
                    "detail": "outside the account's area, or not in the register",
                }
            ],
            now=self.settings.clock(),
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
