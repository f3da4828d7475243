"""The household's pages: the household page (both risks, the rule, reasons, causes, measures, the
rounds, its cases and their steps, who looked) and what-if.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from features.frame import FeatureInputError
from features.policy import PolicyError
from monitoring.procedure import visit_corrections
from serving.scoring import (
    WhatIfError,
    score_registered_together,
    what_if_registered,
)
from store.accounts import (
    WebSession,
    access_entries,
)
from store.cases import (
    flag_history,
    list_flags,
)
from store.register import (
    RegisteredHousehold,
    registered_history,
    round_members,
)
from survey.catalogue import Language, label, message
from workbench.case_views import STEP_LABELLED, case_views
from workbench.corrections import correction_form
from workbench.pages import (
    HOUSEHOLD_ROLES,
    VIEWERS_SHOWN,
    PageBase,
    latest_row,
    reader_language,
    to_login,
    what_if_changes,
)
from workbench.views import household_view, member_choices, what_if_view


class HouseholdPages(PageBase):
    def household(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return to_login(request)
        county_id = request.path_params["county_id"]
        household_id = request.path_params["household_id"]
        done = request.query_params.get("done", "")
        notice = (
            message(
                "procedure.done", reader_language(request), step=label("step", done, reader_language(request))
            )
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
        typed: dict[str, str] | None = None,
    ) -> Response:
        """`typed`: a refused visit form's corrections, shown again so that nothing has to be retyped."""
        account = session.account
        engine = self.settings.engine
        history = (
            registered_history(engine, county_id, household_id) if account.role in HOUSEHOLD_ROLES else []
        )
        village_id = history[-1].village_id if history else None
        if village_id is None or not self._covers(account, county_id, village_id):
            return self._refuse(request, session, county_id, household_id)
        lang = reader_language(request)
        self._record(account, "view_household", True, county_id, household_id, request.url.path)
        scores = score_registered_together(self.settings.models(), history, lang)
        cases = list_flags(engine, county=county_id, household=household_id)
        steps = flag_history(engine, flag_ids=cases["id"].tolist()) if len(cases) else cases
        context = self._household_context(session, history, scores, cases, steps, lang)
        context.update({"notice": notice, "error": error, "typed": typed or {}})
        return self._render(request, "household.html", context, status=status)

    def _household_context(
        self,
        session: WebSession,
        history: list[RegisteredHousehold],
        scores: list[Any],
        cases: Any,
        steps: Any,
        lang: Language,
    ) -> dict[str, Any]:
        """The household page's context: its rounds `scores`d from the register `history`, its `cases`
        and their `steps`, and who looked at it."""
        latest = history[-1]
        viewers = access_entries(
            self.settings.engine,
            county_id=latest.county_id,
            household_id=latest.household_id,
            limit=VIEWERS_SHOWN,
        )
        viewers = viewers[viewers["allowed"].astype(bool)] if len(viewers) else viewers
        case_list = case_views(
            cases, steps, session.account.role, self.settings.clock(), self._deadlines(), lang
        )
        view = household_view(
            scores, case_list, viewers, latest.village_id, lang, ZoneInfo(self._deadlines().timezone)
        )
        return {
            "session": session,
            "h": view,
            "notice": None,
            "error": None,
            "corrections": self._correction_forms(cases, case_list, history, lang),
            "typed": {},
        }

    def _correction_forms(
        self, cases: Any, case_list: list[Any], history: list[RegisteredHousehold], lang: Language
    ) -> dict[int, Any]:
        """The visit form's inputs of each case the reader may visit now: the register's facts of the
        case's round."""
        visits = visit_corrections().steps
        rounds = (
            {int(case["id"]): int(case["round"]) for case in cases.to_dict("records")} if len(cases) else {}
        )
        by_round = {registered.round: registered for registered in history}
        forms = {}
        for case in case_list:
            registered = by_round.get(rounds.get(case.flag_id, -1))
            if registered is None or not any(action.name in visits for action in case.actions):
                continue
            forms[case.flag_id] = correction_form(
                latest_row(registered), round_members(registered), lang, self._money_bound()
            )
        return forms

    def what_if(self, request: Request) -> Response:
        """The household with a fact changed (insurance, a member's migrant work, medical costs): both
        risks, the tier, the category, the reasons and the measures before and after. Nothing is saved."""
        session = self._session(request)
        if session is None:
            return to_login(request)
        account, lang = session.account, reader_language(request)
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
            changes, error = what_if_changes(
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
