"""Shared by the workbench's pages: settings, the session and CSRF checks, the reader's area, refusals
(403, recorded), the access log, rendering in the reader's language, and the small readers of forms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from features.policy import ProcedureDeadlines
from monitoring.procedure import (
    procedure_steps,
)
from serving.schemas import MemberChange, WhatIfChanges
from serving.scoring import (
    LoadedModels,
)
from store.accounts import (
    Account,
    LoginRules,
    WebSession,
    record_access,
    session_of,
)
from store.cases import (
    get_flag,
)
from store.register import (
    county_places,
    township_of,
)
from survey.catalogue import Language, catalogue_section, label, message
from workbench.security import (
    APP_PATH,
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    tokens_match,
)

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


class PageBase:
    """What every page needs: the settings, the templates, the session, the reader's area, refusals,
    the access log and rendering."""

    def __init__(self, settings: WorkbenchSettings) -> None:
        self.settings = settings
        self.templates = Jinja2Templates(directory=HERE / "templates")

    def not_found(self, request: Request, _error: Exception) -> Response:
        session = self._session(request)
        context = self._message_context("page.not_found_title", "page.not_found", session)
        return self._render(request, "message.html", context, status=404)

    def county_not_scored(self, request: Request, error: Exception) -> Response:
        """409 for a page that would score households of a county the policy does not score until its
        own model has a champion (`serving.scoring.CountyNotScored`)."""
        session = self._session(request)
        context = self._message_context(
            "scoring.county_not_scored_title", "scoring.county_not_scored", session
        )
        context["text_values"] = {"county": getattr(error, "county_id", "")}
        return self._render(request, "message.html", context, status=409)

    # ------------------------------------------------------------------------------------ helpers

    def _session_for(self, request: Request, roles: frozenset[str], action: str) -> WebSession | Response:
        """The live session of an account whose role may open the page; otherwise the answer (to the
        login page, or 403 recorded as `action`)."""
        session = self._session(request)
        if session is None:
            return to_login(request)
        if session.account.role not in roles:
            return self._refuse(request, session, str(session.account.county_id), "", action=action)
        return session

    async def _posted(self, request: Request) -> tuple[WebSession, Any] | Response:
        """A posted form with its session, once the session is live and the form carries its CSRF
        token; otherwise the answer (to the login page, or 403)."""
        form = await request.form()
        session = await run_in_threadpool(self._session, request)
        if session is None:
            return to_login(request)
        if not tokens_match(session.csrf_token, form_field(form, CSRF_FIELD)):
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
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.templates.TemplateResponse(
            request,
            template,
            self._page_context(context, reader_language(request), here),
            status_code=status,
        )

    def _render_text(self, template: str, context: dict[str, Any], lang: Language, here: str) -> str:
        """A page as text, as `_render` would answer it at `here` (the pages a phone keeps offline)."""
        return self.templates.get_template(template).render(self._page_context(context, lang, here))

    def _page_context(self, context: dict[str, Any], lang: Language, here: str) -> dict[str, Any]:
        """What every page's template reads beside its own context: the words, the session's CSRF token,
        the reader and what the offline script needs (`workbench.offline_pages`)."""
        session = context.get("session")
        other: Language = "en" if lang == "zh" else "zh"

        def t(name: str, **values: Any) -> str:
            return message(name, lang, **values)

        return {
            **context,
            "t": t,
            "lang": lang,
            "html_lang": "zh-CN" if lang == "zh" else "en",
            "other_lang": other,
            "here": here,
            "app": APP_PATH,
            "csrf_field": CSRF_FIELD,
            "csrf_token": session.csrf_token if session is not None else "",
            "role_label": label("role", session.account.role, lang) if session is not None else "",
            "rendered_at": self.settings.clock().isoformat(timespec="seconds"),
        }

    def _money_bound(self) -> float:
        return float(self.settings.models().predictor.policy.money_bounds.max_yearly_amount)

    def _checked_case(self, request: Request, form: Any) -> tuple[WebSession, dict[str, Any]] | Response:
        """The session and the case a form acts on, or the refusal: no session (to login), no CSRF token
        (403), an unknown case (404), a case outside the account's area (403, recorded)."""
        session = self._session(request)
        if session is None:
            return to_login(request)
        if not tokens_match(session.csrf_token, form_field(form, CSRF_FIELD)):
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


def offline_texts(lang: Language) -> dict[str, Any]:
    """The words the offline script shows (the catalogue's `offline` section and the steps' and
    events' names), in the page's language: the script holds no words of its own."""
    return {
        **{name: texts[lang] for name, texts in catalogue_section("offline").items()},
        "steps": {name: label("step", name, lang) for name in procedure_steps()},
        "events": {name: texts[lang] for name, texts in catalogue_section("event").items()},
    }


def reader_language(request: Request) -> Language:
    chosen = request.cookies.get(LANGUAGE_COOKIE, "zh")
    return "en" if chosen == "en" else "zh"


def what_if_changes(
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


BAD_AMOUNT = object()


def declared_amount(text: str, most: float) -> float | object | None:
    """The declared amount: None when not given, BAD_AMOUNT when not a number from 0 to `most`."""
    if not text:
        return None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return BAD_AMOUNT
    return value if 0 <= value <= most else BAD_AMOUNT


def int_field(form: Any, name: str) -> int | None:
    value = form_field(form, name)
    return int(value) if value.isdigit() and len(value) < 10 else None


def bulk_step_choices(role: str, lang: Language) -> list[tuple[str, str]]:
    """The steps a role may take on several cases at once (those that need no notice to have run)."""
    return [
        (step.name, label("step", step.name, lang))
        for step in procedure_steps().values()
        if role in step.roles and step.from_status != "rejected"
    ]


async def uploaded_file(form: Any) -> tuple[bytes, str]:
    """The content and name of a form's uploaded file (empty when none was sent)."""
    upload = form.get("file")
    if not isinstance(upload, StarletteUpload):
        return b"", ""
    return await upload.read(), upload.filename or ""


def latest_row(registered: Any) -> dict[str, Any]:
    return {str(key): value for key, value in registered.households.iloc[-1].items()}


def page_number(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() and len(value) < 7 else 1


def form_field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def places_text(account: Account, lang: Language) -> str:
    places = sorted(account.villages) or sorted(account.townships) or [str(account.county_id)]
    return ("、" if lang == "zh" else ", ").join(places)


def redirect_to(target: str) -> Response:
    return RedirectResponse(target, status_code=303)


def to_login(request: Request) -> Response:
    expired = SESSION_COOKIE in request.cookies
    response = redirect_to(f"{APP_PATH}/login" + ("?m=expired" if expired else ""))
    if expired:
        response.delete_cookie(SESSION_COOKIE, path=APP_PATH)
    return response
