"""Discovery by people: a household's declaration and a department's pushed list, each scored at once
and opened as a case (or recorded on the household's open case).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from monitoring.procedure import (
    declared_changes,
    declared_events,
)
from serving.scoring import (
    flag_of,
    score_registered_with,
    score_registered_with_many,
)
from store.accounts import (
    Account,
    WebSession,
)
from store.cases import (
    NOTE_MAX_LENGTH,
    open_case,
)
from store.offline import KEY_PATTERN, DuplicateSubmission, Receipt, receipt_of
from store.register import (
    latest_households,
    registered_history,
    registered_household,
)
from survey.catalogue import Language, label, message
from workbench.pages import (
    BAD_AMOUNT,
    HOUSEHOLD_ROLES,
    PUSH_ROLES,
    SEARCH_MAX_LENGTH,
    PageBase,
    declared_amount,
    form_field,
    latest_row,
    reader_language,
    redirect_to,
    uploaded_file,
)
from workbench.pushes import PushUnreadable, plan_push, read_push
from workbench.security import (
    APP_PATH,
)
from workbench.submissions import KEY_FIELD, Taken


class IntakePages(PageBase):
    # ------------------------------------------------------------------------------------ declarations

    def declaration_form(self, request: Request) -> Response:
        session = self._session_for(request, HOUSEHOLD_ROLES, "declaration")
        if isinstance(session, Response):
            return session
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
        lang = reader_language(request)
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
        account, lang = session.account, reader_language(request)
        values = declaration_values(form)
        key = form_field(form, KEY_FIELD)
        receipt = (
            Receipt(key, account.user_id, "declaration", str(account.county_id), values["household"])
            if KEY_PATTERN.match(key) and values["household"]
            else None
        )
        taken = self._declaration_of(account, values, lang, receipt, request.url.path)
        if taken.outcome not in ("applied", "duplicate"):
            return self._declaration_page(request, session, values, taken.message, status=taken.status)
        return redirect_to(
            f"{APP_PATH}/households/{account.county_id}/{values['household']}?done=declaration"
        )

    def _declaration_of(
        self,
        account: Account,
        values: dict[str, str],
        lang: Language,
        receipt: Receipt | None = None,
        path: str = "",
        details: dict[str, Any] | None = None,
    ) -> Taken:
        """A household's declaration taken by `account`: scored at once with what it declared and opened
        as a case (or recorded on its open case); or every problem with it, in words. The form and a
        phone's queued declarations (`workbench.offline_pages`) both come here."""
        if receipt is not None and receipt_of(self.settings.engine, receipt.key) is not None:
            return Taken("duplicate")  # sent again after a lost answer: applied already
        most = self.settings.models().predictor.policy.money_bounds.max_yearly_amount
        problems = []
        if values["event"] not in declared_events():
            problems.append(message("declaration.bad_event", lang))
        amount = declared_amount(values["amount"], most)
        if amount is BAD_AMOUNT:
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
                self._record(account, "declaration", False, county_id, values["household"], path)
            problems.append(message("declaration.no_household", lang, household=values["household"]))
        if problems:
            return Taken("refused", " ".join(problems), 400)
        latest = history[-1]
        changes = declared_changes(
            values["event"], amount if isinstance(amount, float) else None, latest_row(latest)
        )
        answer = score_registered_with(self.settings.models(), latest, changes, lang)
        try:
            open_case(
                self.settings.engine,
                flag_of(answer, latest.village_id),
                "declaration",
                account.user_id,
                role=account.role,
                note=values["note"][:NOTE_MAX_LENGTH],
                details={
                    "event": values["event"],
                    "amount": amount if isinstance(amount, float) else None,
                    **(details or {}),
                },
                receipt=receipt,
            )
        except DuplicateSubmission:
            return Taken("duplicate")
        return Taken("applied")

    # ------------------------------------------------------------------------------------ department pushes

    def push_form(self, request: Request) -> Response:
        session = self._session_for(request, PUSH_ROLES, "department_push")
        if isinstance(session, Response):
            return session
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
        content, filename = await uploaded_file(form)
        return await run_in_threadpool(
            self._push, request, session, form_field(form, "department").strip()[:100], content, filename
        )

    def _push(
        self, request: Request, session: WebSession, department: str, content: bytes, filename: str
    ) -> Response:
        account, lang, engine = session.account, reader_language(request), self.settings.engine
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
                (found, declared_changes(row.event, row.amount, latest_row(found)))
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


def declaration_values(form: Any) -> dict[str, str]:
    """A declaration form's fields (or a queued copy's), trimmed."""
    values = {name: form_field(form, name).strip() for name in ("household", "event", "amount", "note")}
    values["household"] = values["household"][:SEARCH_MAX_LENGTH]
    return values
