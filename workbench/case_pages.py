"""The monitoring procedure's forms: a step on one case, an objection during a notice, bulk steps on the
worklist and an imported sheet of field decisions (all or nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from monitoring.procedure import (
    NOTICE_STATUSES,
    StepRefused,
    check_step,
    notice_end,
    visit_corrections,
)
from serving.scoring import CountyNotScored, flag_of, models_for, score_registered_together
from store.accounts import (
    Account,
    WebSession,
)
from store.cases import (
    Corrections,
    FlagConflict,
    add_case_note,
    list_flags,
    set_status,
    set_statuses,
)
from store.offline import DuplicateSubmission, Receipt, receipt_of
from store.register import amended, registered_histories, round_members
from survey.catalogue import Language, label, message
from workbench.bulk import StepRequest, plan_steps, sheet_requests
from workbench.case_views import OBJECTION, case_state, refusal_text
from workbench.corrections import correction_details, read_corrections
from workbench.household_pages import HouseholdPages
from workbench.pages import (
    HOUSEHOLD_ROLES,
    form_field,
    latest_row,
    reader_language,
    redirect_to,
    uploaded_file,
)
from workbench.pushes import PushUnreadable, read_table
from workbench.security import (
    APP_PATH,
)
from workbench.submissions import StepAsked, Taken, form_receipt, step_asked
from workbench.views import OPEN_STATUSES

Found = tuple[Corrections | None, dict[str, Any]] | str
"""What a visit found: its corrections of the register and what the history keeps of them, or what is
wrong with them in words."""


class CasePages(HouseholdPages):
    async def _case_refused(
        self,
        request: Request,
        session: WebSession,
        case: dict[str, Any],
        error: str,
        status: int = 409,
        typed: dict[str, str] | None = None,
    ) -> Response:
        """The case's household page again, saying why nothing was done (409, or 400 for a bad form, with
        the corrections typed in it)."""
        return await run_in_threadpool(
            lambda: self._household_page(
                request,
                session,
                str(case["county_id"]),
                str(case["household_id"]),
                error=error,
                status=status,
                typed=typed,
            )
        )

    def _visit_findings(
        self, case: dict[str, Any], step_name: str, fixes: dict[str, str], lang: Language
    ) -> Found:
        """A visit's corrections of the register (the case's round) and the case scored with them, with
        what the step's history keeps of both; or what is wrong with them, in words."""
        return self._visits_found([(case, step_name, fixes)], lang)[0]

    def _visits_found(
        self, visits: Sequence[tuple[dict[str, Any], str, dict[str, str]]], lang: Language
    ) -> list[Found]:
        """`_visit_findings` of several visits (case, step, corrections: a phone's queue), with one
        register read per county and one scoring pass for all."""
        found: list[Found | None] = [None] * len(visits)
        read: dict[str, list[int]] = {}
        for at, (case, step_name, fixes) in enumerate(visits):
            if not any(value.strip() for value in fixes.values()):
                found[at] = (None, {})
            elif step_name not in visit_corrections().steps:
                found[at] = message("visit.not_a_visit", lang)
            else:
                read.setdefault(str(case["county_id"]), []).append(at)
        pending = []
        for county, ats in read.items():
            try:
                models_for(self.settings.models(), county)
            except CountyNotScored as refused:  # the policy scores none of its households for now
                for at in ats:
                    found[at] = refused.words(lang)
                continue
            histories = registered_histories(
                self.settings.engine, county, [str(visits[at][0]["household_id"]) for at in ats]
            )
            for at in ats:
                case, _, fixes = visits[at]
                round_ = int(case["round"])
                history = histories.get(str(case["household_id"]), [])
                registered = next((one for one in history if one.round == round_), None)
                if registered is None:
                    found[at] = message("visit.no_round", lang, round=round_)
                    continue
                members = round_members(registered)
                changes, problems = read_corrections(
                    fixes, latest_row(registered), members, lang, self._money_bound()
                )
                if problems or not changes:
                    found[at] = " ".join(problems) if problems else (None, {})
                else:
                    pending.append((at, registered, changes, members))
        together = [
            one for _, registered, changes, _ in pending for one in (registered, amended(registered, changes))
        ]
        scores = score_registered_together(self.settings.models(), together, lang) if together else []
        for number, (at, registered, changes, members) in enumerate(pending):
            before, after = scores[2 * number], scores[2 * number + 1]
            findings = {
                "corrected": correction_details(changes, members),
                "rescored": {
                    "poverty_risk": [before.poverty_risk, after.poverty_risk],
                    "relapse_risk": [before.relapse_risk, after.relapse_risk],
                },
            }
            rescored = flag_of(after, registered.village_id)
            found[at] = (
                Corrections(ingest_id=registered.ingest_id, changes=changes, rescored=rescored),
                findings,
            )
        return [one if one is not None else (None, {}) for one in found]

    # ------------------------------------------------------------------------------------ cases

    async def take_step(self, request: Request) -> Response:
        """A step of the procedure on a case, from the form on its household's page (sent again by a
        phone that lost the answer: applied once, by its `submission_key`)."""
        form = await request.form()
        checked = await run_in_threadpool(self._checked_case, request, form)
        if isinstance(checked, Response):
            return checked
        session, case = checked
        asked = step_asked(form)
        receipt = form_receipt(form, session.account.user_id, "step", case)
        taken = await run_in_threadpool(
            self._step_on_case, session.account, case, asked, reader_language(request), receipt
        )
        if taken.outcome in ("applied", "duplicate"):
            return redirect_to(
                f"{APP_PATH}/households/{case['county_id']}/{case['household_id']}?done={asked.step}"
            )
        typed = asked.fixes if taken.status == 400 else None
        return await self._case_refused(request, session, case, taken.message, taken.status, typed)

    def _step_on_case(
        self,
        account: Account,
        case: dict[str, Any],
        asked: StepAsked,
        lang: Language,
        receipt: Receipt | None = None,
        found: Found | None = None,
    ) -> Taken:
        """Take `asked` on `case` for `account` (whose area covers it): applied, or why not in words
        (`conflict` when the case moved on since the version the person saw). The form and a phone's
        queued submissions (`workbench.offline_pages`, their visits `found` together beforehand) both come
        here."""
        if receipt is not None and receipt_of(self.settings.engine, receipt.key) is not None:
            return Taken("duplicate")  # sent again after a lost answer: applied already
        now = self.settings.clock()
        if asked.version is not None and asked.version != int(case["version"]):  # moved on since the page
            error = message("procedure.conflict", lang, status=label("status", str(case["status"]), lang))
            return Taken("conflict", error, 409)
        try:
            step = check_step(asked.step, account.role, case_state(case), asked.note, now)
        except StepRefused as refused:
            error = refusal_text(
                refused, asked.step, str(case["status"]), account.role, lang, self._deadlines()
            )
            return Taken("refused", error, 409)
        notice_ends = notice_end(now, self._deadlines()) if step.starts_notice else None
        if found is None:
            found = self._visit_findings(case, step.name, asked.fixes, lang)
        if isinstance(found, str):
            return Taken("refused", found, 400)
        corrections, findings = found
        try:
            set_status(
                self.settings.engine,
                int(case["id"]),
                step.to_status,
                account.user_id,
                asked.note,
                role=account.role,
                details={"step": step.name, **findings, **asked.details},
                notice_ends=notice_ends,
                expected_version=asked.version,
                expected_status=asked.status,
                corrections=corrections,
                receipt=receipt,
            )
        except FlagConflict as conflict:
            error = message("procedure.conflict", lang, status=label("status", conflict.current_status, lang))
            return Taken("conflict", error, 409)
        except DuplicateSubmission:
            return Taken("duplicate")
        return Taken("applied")

    async def record_objection(self, request: Request) -> Response:
        """An objection raised while a case's public notice runs (kept on the case, which stays put)."""
        form = await request.form()
        checked = await run_in_threadpool(self._checked_case, request, form)
        if isinstance(checked, Response):
            return checked
        session, case = checked
        lang, note = reader_language(request), form_field(form, "note").strip()
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
            return redirect_to(
                f"{APP_PATH}/households/{case['county_id']}/{case['household_id']}?done={OBJECTION}"
            )
        return await self._case_refused(request, session, case, error)

    # ------------------------------------------------------------------------------------ bulk work

    async def bulk_steps(self, request: Request) -> Response:
        """The cases ticked on the worklist, moved one step together (all or none)."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        chosen = [int(value) for value in form.getlist("case") if isinstance(value, str) and value.isdigit()]
        requests = [
            StepRequest(step=form_field(form, "step"), note=form_field(form, "note").strip(), flag_id=flag_id)
            for flag_id in chosen
        ]
        return await run_in_threadpool(self._apply_steps, request, session, requests, "bulk", False)

    def decisions_form(self, request: Request) -> Response:
        session = self._session_for(request, HOUSEHOLD_ROLES, "import_decisions")
        if isinstance(session, Response):
            return session
        return self._render(request, "bulk.html", self._bulk_context(request, session, upload=True))

    async def import_decisions(self, request: Request) -> Response:
        """A sheet of field decisions (household, step, note): every row checked, all applied or none."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        session, form = posted
        content, filename = await uploaded_file(form)
        lang = reader_language(request)
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
        account, lang = session.account, reader_language(request)
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
        lang = reader_language(request)
        return {
            "session": session,
            "heading": message("bulk.import_title" if upload else "bulk.submit", lang),
            "lead": message("bulk.import_lead", lang) if upload else "",
            "upload": upload,
            "error": error,
            "problems": problems or [],
            "done": None,
        }
