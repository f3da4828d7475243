"""Pages about an area rather than a household: the dashboard, the village's review material and public
notice, and the exports of the case list.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from serving.scoring import (
    score_registered_together,
)
from store.accounts import (
    WebSession,
)
from store.cases import (
    case_overview,
    list_flags,
)
from store.register import (
    county_places,
    registered_household,
    registration_changes,
    registration_counts,
)
from survey.catalogue import Language, message
from survey.xlsx import xlsx_workbook
from workbench.case_views import aware
from workbench.dashboard import DASHBOARD_TABLES, DashboardView, dashboard_tables, dashboard_view
from workbench.exports import cases_table, csv_bytes, xlsx_bytes
from workbench.notices import NOTICE_KINDS, REVIEW_KINDS, households_to_review, notice_parts, review_rows
from workbench.pages import (
    EXPORT_TYPES,
    HOUSEHOLD_ROLES,
    SEARCH_MAX_LENGTH,
    PageBase,
    places_text,
    reader_language,
    to_login,
)
from workbench.views import OPEN_STATUSES


class AreaPages(PageBase):
    def dashboard(self, request: Request) -> Response:
        """The account's area at a glance: open and overdue cases by step, channel, category, township
        and village; days from discovery to approval; moves between the last two rounds; the trend."""
        session = self._session(request)
        if session is None:
            return to_login(request)
        account, lang = session.account, reader_language(request)
        if account.role not in HOUSEHOLD_ROLES:
            return self._render(
                request, "message.html", self._message_context("app.name", "page.analyst_home", session)
            )
        context = {
            "session": session,
            "d": self._dashboard(session, lang),
            "area": places_text(account, lang),
        }
        return self._render(request, "dashboard.html", context)

    def _dashboard(self, session: WebSession, lang: Language) -> DashboardView:
        account = session.account
        county_id = str(account.county_id)
        return dashboard_view(
            case_overview(self.settings.engine, county_id, self._villages(account)),
            county_places(self.settings.engine, county_id),
            registration_counts(self.settings.engine, county_id),
            registration_changes(self.settings.engine, county_id),
            self.settings.clock(),
            self._deadlines(),
            lang,
        )

    def export_dashboard(self, request: Request) -> Response:
        """The dashboard's tables: every one as a sheet of one XLSX workbook, or one of them (`?table=`,
        default the villages) as CSV with a byte-order mark; recorded in the access log."""
        session = self._session(request)
        if session is None:
            return to_login(request)
        account, lang, kind = session.account, reader_language(request), request.path_params["kind"]
        if account.role not in HOUSEHOLD_ROLES:
            return self._refuse(request, session, str(account.county_id), "", action="export_dashboard")
        chosen = request.query_params.get("table", "villages")
        if kind not in EXPORT_TYPES or chosen not in DASHBOARD_TABLES:
            return self.not_found(request, LookupError())
        tables = dashboard_tables(self._dashboard(session, lang), lang)
        county_id = str(account.county_id)
        what = "all tables" if kind == "xlsx" else chosen
        self._record(account, "export_dashboard", True, county_id, "", request.url.path, what)
        body = xlsx_workbook(list(tables.values())) if kind == "xlsx" else csv_bytes(tables[chosen][1])
        name = "dashboard" if kind == "xlsx" else f"dashboard-{chosen.replace('_', '-')}"
        return _attachment(body, kind, f"{name}-{date.today().isoformat()}.{kind}")

    def village_review(self, request: Request) -> Response:
        """The material for the village's democratic review, to print for the meeting."""
        checked = self._village_session(request)
        if isinstance(checked, Response):
            return checked
        session, village = checked
        county_id, lang, engine = (
            str(session.account.county_id),
            reader_language(request),
            self.settings.engine,
        )
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
        county_id, lang = str(session.account.county_id), reader_language(request)
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
            return to_login(request)
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
            return to_login(request)
        account, lang, kind = session.account, reader_language(request), request.path_params["kind"]
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
        return _attachment(body, kind, f"cases-{date.today().isoformat()}.{kind}")


def _attachment(body: bytes, kind: str, filename: str) -> Response:
    return Response(
        body,
        media_type=EXPORT_TYPES[kind],
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
