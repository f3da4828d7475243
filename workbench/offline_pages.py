"""The workbench without a signal: what a cadre's phone keeps, and the sync that sends what she recorded.

- `GET /app/sw.js`: the service worker (`static/sw.js`), scoped to `/app/`: pages from the network while
  there is one (a weak signal gives up after a few seconds), from the phone's copy otherwise; a step or
  a declaration that cannot reach the server is queued on the phone (IndexedDB) instead.
- `GET /app/offline/manifest`: what a cadre's phone keeps (her worklist, the pages an offline phone shows
  in place of what needs the service, her villages' bundles); other roles keep nothing.
- `GET /app/offline/villages/{village}`: every household page of one of her villages, rendered exactly as
  online, in one answer (scored in one pass); each copy is recorded in the access log.
- `POST /app/offline/grant`: the token that lets this phone send what she records offline under her name
  (`store.offline`); `POST /app/offline/grant/revoke` ends it once nothing is left to send.
- `POST /app/sync`: queued submissions, each applied once (its idempotency key), checked against the
  area of the person who recorded it as it is at send time; a step on a case that moved on meanwhile is
  not applied but answered with both versions, for the person to choose.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from monitoring.procedure import StepRefused, check_step
from serving.scoring import score_registered_together
from store.accounts import Account, WebSession, record_access
from store.cases import NOTE_MAX_LENGTH, FlagNotFound, add_case_note, flag_history, get_flag, list_flags
from store.offline import DuplicateSubmission, Receipt, grant_account, issue_grant, receipt_of, revoke_grant
from store.register import latest_households, registered_histories
from survey.catalogue import LANGUAGES, Language, label, message
from workbench.case_pages import CasePages, Found
from workbench.case_views import SUPERSEDED, aware, case_state, step_text
from workbench.intake_pages import IntakePages, declaration_values
from workbench.pages import HERE, HOUSEHOLD_ROLES, offline_texts, reader_language
from workbench.security import APP_PATH, tokens_match
from workbench.submissions import BadSubmission, Queued, StepAsked, Taken, queued, queued_case, step_asked
from workbench.views import OFFLINE_COPY, OPEN_STATUSES, worklist

OFFLINE_ROLES = frozenset({"cadre"})
"""Who keeps households on the phone: a cadre, whose villages are few (a township's are many)."""
MOST_SUBMISSIONS = 500
"""Submissions in one sync request (a phone sends its queue in chunks)."""
MOST_SYNC_BYTES = 4_000_000
CSRF_HEADER = "x-csrf-token"


class OfflinePages(CasePages, IntakePages):
    # ---------------------------------------------------------------------------- what the phone keeps

    def service_worker(self, _request: Request) -> Response:
        return FileResponse(
            HERE / "static" / "sw.js",
            media_type="text/javascript",
            headers={"service-worker-allowed": f"{APP_PATH}/", "cache-control": "no-cache"},
        )

    def texts(self, request: Request) -> Response:
        lang = request.path_params["lang"]
        if lang not in LANGUAGES:
            return self.not_found(request, LookupError())
        return JSONResponse(offline_texts(lang), headers={"cache-control": "no-cache"})

    def offline_page(self, request: Request) -> Response:
        """What an offline phone shows for a what-if (the risk needs the service) or for a page it does
        not keep."""
        kind = request.path_params["kind"]
        if kind not in ("whatif", "unavailable"):
            return self.not_found(request, LookupError())
        context = self._message_context(
            f"offline.{kind}_title", f"offline.{kind}_text", self._session(request)
        )
        return self._render(request, "message.html", context)

    def manifest(self, request: Request) -> Response:
        session = self._session_for(request, OFFLINE_ROLES, "offline_manifest")
        if isinstance(session, Response):
            return _json_refusal(session)
        account, lang = session.account, reader_language(request)
        villages = sorted(account.villages)
        flags = list_flags(
            self.settings.engine, county=account.county_id, villages=villages, statuses=OPEN_STATUSES
        )
        pages = worklist(flags, account.role, self.settings.clock(), self._deadlines(), lang).pages
        return JSONResponse(
            {
                "user": account.user_id,
                "villages": villages,
                "pages": [
                    f"{APP_PATH}/",
                    *(f"{APP_PATH}/?page={page}" for page in range(2, pages + 1)),
                    f"{APP_PATH}/declarations",
                    f"{APP_PATH}/offline/whatif",
                    f"{APP_PATH}/offline/unavailable",
                ],
                "assets": [
                    f"{APP_PATH}/static/workbench.css",
                    f"{APP_PATH}/static/queue-store.js",
                    f"{APP_PATH}/static/offline.js",
                    f"{APP_PATH}/offline/texts.{lang}.json",
                ],
                "bundles": [f"{APP_PATH}/offline/villages/{village}" for village in villages],
            },
            headers={"cache-control": "no-store"},
        )

    def village_pages(self, request: Request) -> Response:
        """Every household page of one of the cadre's villages (latest round), as the phone keeps them."""
        session = self._session_for(request, OFFLINE_ROLES, "offline_copy")
        if isinstance(session, Response):
            return _json_refusal(session)
        account, village = session.account, request.path_params["village_id"]
        if village not in account.villages:
            self._refuse(request, session, str(account.county_id), "", action=OFFLINE_COPY)
            return JSONResponse({"error": "outside the account's villages"}, status_code=403)
        pages = self._village_pages(session, village, reader_language(request))
        now = self.settings.clock()
        body = json.dumps(
            {"village": village, "synced_at": now.isoformat(timespec="seconds"), "pages": pages},
            ensure_ascii=False,
        ).encode()
        headers = {"cache-control": "no-store", "vary": "accept-encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):  # a weak signal: 2.6 MB of pages -> 0.15 MB
            body, headers["content-encoding"] = gzip.compress(body, compresslevel=6), "gzip"
        return Response(body, media_type="application/json", headers=headers)

    def _village_pages(self, session: WebSession, village: str, lang: Language) -> dict[str, str]:
        account, engine = session.account, self.settings.engine
        county = str(account.county_id)
        households = sorted(h for h, v in latest_households(engine, county).items() if v == village)
        read = registered_histories(engine, county, households)
        histories = [read[h] for h in households if h in read and read[h][-1].village_id == village]
        everyone = [registered for history in histories for registered in history]
        scored = iter(score_registered_together(self.settings.models(), everyone, lang))
        scores = [[next(scored) for _ in history] for history in histories]
        cases = list_flags(engine, county=county, villages=[village])
        steps = flag_history(engine, flag_ids=cases["id"].tolist()) if len(cases) else cases
        record_access(
            engine,
            [
                {
                    "user_id": account.user_id,
                    "action": OFFLINE_COPY,
                    "allowed": True,
                    "county_id": county,
                    "household_id": history[-1].household_id,
                    "path": f"{APP_PATH}/offline/villages/{village}",
                }
                for history in histories
            ],
            now=self.settings.clock(),
        )
        pages = {}
        for history, household_scores in zip(histories, scores, strict=True):
            household = history[-1].household_id
            own = cases[cases["household_id"] == household] if len(cases) else cases
            own_steps = steps[steps["flag_id"].isin(own["id"])] if len(steps) else steps
            context = self._household_context(session, history, household_scores, own, own_steps, lang)
            path = f"{APP_PATH}/households/{quote(county, safe='')}/{quote(household, safe='')}"
            pages[path] = self._render_text("household.html", context, lang, path)
        return pages

    async def grant(self, request: Request) -> Response:
        session = await run_in_threadpool(self._session, request)
        if session is None:
            return JSONResponse({"error": "no session"}, status_code=401)
        if not tokens_match(session.csrf_token, request.headers.get(CSRF_HEADER)):
            return JSONResponse({"error": "the CSRF token is missing or wrong"}, status_code=403)
        given = await run_in_threadpool(
            issue_grant,
            self.settings.engine,
            session.account.user_id,
            self.settings.rules,
            self.settings.clock(),
        )
        return JSONResponse(
            {"user": given.user_id, "grant": given.token, "expires_at": given.expires_at.isoformat()},
            headers={"cache-control": "no-store"},
        )

    async def revoke(self, request: Request) -> Response:
        body = await _json_body(request, 10_000)
        token = body.get("grant") if isinstance(body, dict) else None
        if isinstance(token, str):
            await run_in_threadpool(revoke_grant, self.settings.engine, token, self.settings.clock())
        return JSONResponse({"revoked": isinstance(token, str)})

    # ------------------------------------------------------------------------------------ the sync

    async def sync(self, request: Request) -> Response:
        """A phone's queued submissions, each answered: applied, duplicate (applied before: nothing
        done), conflict (with both versions), refused or forbidden (why, in words), unauthorised (the
        phone's grant for that person ended: the submission stays on the phone)."""
        body = await _json_body(request, MOST_SYNC_BYTES)
        items = body.get("submissions") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) > MOST_SUBMISSIONS:
            return JSONResponse(
                {"error": f"a JSON object with 'submissions': a list of at most {MOST_SUBMISSIONS}"},
                status_code=400,
            )
        lang = reader_language(request)
        results = await run_in_threadpool(self._sync_all, items, lang)
        return JSONResponse({"results": results}, headers={"cache-control": "no-store"})

    def _sync_all(self, items: list[Any], lang: Language) -> list[dict[str, Any]]:
        """Each submission admitted (its shape, its grant, its case in the sender's area, not sent
        before), the visits among them that correct the register read and scored together, then each
        applied in its own transaction."""
        accounts: dict[str, Account | None] = {}
        admitted = [self._admit(item, lang, accounts) for item in items]
        visits = [
            (one.submission.key, (one.case, one.asked.step, one.asked.fixes))
            for one in admitted
            if isinstance(one, _Admitted) and one.submission.kind == "step" and one.case is not None
        ]
        found = self._visits_found([visit for _, visit in visits], lang)
        found_for = {key: findings for (key, _), findings in zip(visits, found, strict=True)}
        results = []
        for item, one in zip(items, admitted, strict=True):
            taken = (
                one if isinstance(one, Taken) else self._apply(one, lang, found_for.get(one.submission.key))
            )
            key = item.get("key") if isinstance(item, dict) else None
            results.append(
                {
                    "key": key if isinstance(key, str) else None,
                    "outcome": taken.outcome,
                    "message": taken.message,
                    "conflict": taken.conflict,
                }
            )
        return results

    def _admit(self, item: Any, lang: Language, accounts: dict[str, Account | None]) -> _Admitted | Taken:
        """A queued submission ready to apply, or the answer it gets without being applied."""
        try:
            submission = queued(item)
            case_id = None if submission.kind == "declaration" else queued_case(submission)
        except BadSubmission as bad:
            return Taken("refused", message("offline.bad_submission", lang, problem=str(bad)), 400)
        if submission.grant not in accounts:
            accounts[submission.grant] = grant_account(
                self.settings.engine, submission.grant, self.settings.clock()
            )
        account = accounts[submission.grant]
        if account is None or account.user_id != submission.user:
            return Taken("unauthorised", message("offline.grant_ended", lang, user=submission.user), 401)
        if receipt_of(self.settings.engine, submission.key) is not None:
            return Taken("duplicate")
        asked = step_asked(submission.fields, submission.made_at)
        if case_id is None:
            return _Admitted(submission, account, None, asked)
        case = get_flag(self.settings.engine, case_id)
        if case is None:
            return Taken("refused", message("offline.no_case", lang, case=case_id), 404)
        county, household = str(case["county_id"]), str(case["household_id"])
        if account.role not in HOUSEHOLD_ROLES or not self._covers(account, county, str(case["village_id"])):
            self._record(account, "sync", False, county, household, f"{APP_PATH}/sync", "outside the area")
            return Taken("forbidden", message("offline.forbidden", lang, user=account.user_id), 403)
        return _Admitted(submission, account, case, asked)

    def _apply(self, admitted: _Admitted, lang: Language, found: Found | None) -> Taken:
        submission, account, case, asked = admitted
        if case is None:
            values = declaration_values(submission.fields)
            receipt = Receipt(
                submission.key,
                account.user_id,
                "declaration",
                str(account.county_id),
                values["household"],
                submission.made_at,
            )
            return self._declaration_of(
                account, values, lang, receipt, f"{APP_PATH}/sync", details=_offline_details(submission)
            )
        receipt = Receipt(
            submission.key,
            account.user_id,
            submission.kind,
            str(case["county_id"]),
            str(case["household_id"]),
            submission.made_at,
        )
        if submission.kind == "note":
            return self._superseded_note(account, case, asked, receipt)
        taken = self._step_on_case(account, case, asked, lang, receipt, found)
        if taken.outcome != "conflict":
            return taken
        return Taken(
            "conflict", taken.message, 409, self._conflict(account, int(case["id"]), asked, submission, lang)
        )

    def _superseded_note(self, account: Account, case: dict[str, Any], asked: Any, receipt: Receipt) -> Taken:
        """A step recorded offline that the case had moved past, kept on the case as a note (the
        person chose so); the corrections she typed are kept with it, not applied."""
        details = {"kind": SUPERSEDED, "step": asked.step, "typed": asked.fixes, **asked.details}
        try:
            add_case_note(
                self.settings.engine,
                int(case["id"]),
                account.user_id,
                (asked.note or "")[:NOTE_MAX_LENGTH],
                role=account.role,
                details=details,
                receipt=receipt,
            )
        except DuplicateSubmission:
            return Taken("duplicate")
        except FlagNotFound:
            return Taken("refused", "", 404)
        return Taken("applied")

    def _conflict(
        self, account: Account, case_id: int, asked: Any, submission: Queued, lang: Language
    ) -> dict[str, Any]:
        """Both versions of a case that moved on while a step waited on the phone: the case now (its
        status and the steps others took since the person saw it) and her step, and whether her step
        can still be taken from where the case is."""
        case = get_flag(self.settings.engine, case_id) or {}
        zone = ZoneInfo(self._deadlines().timezone)
        steps = flag_history(self.settings.engine, case_id)
        since = submission.seen_at
        later = [row for row in steps.to_dict("records") if since is None or aware(row["at"]) > since][-5:]
        try:
            check_step(asked.step, account.role, case_state(case), asked.note, self.settings.clock())
            fits = True
        except StepRefused:
            fits = False
        status = label("status", str(case.get("status")), lang)
        return {
            "case": case_id,
            "version": int(case.get("version", 0)),
            "status": str(case.get("status")),
            "status_label": status,
            "theirs": [step_text(row, lang, zone) for row in later],
            "mine": label("step", asked.step, lang) + (f"（{asked.note}）" if asked.note else ""),
            "can_apply": fits,
            "cannot_apply": "" if fits else message("offline.cannot_apply_mine", lang, status=status),
        }


class _Admitted(NamedTuple):
    """A queued submission admitted: whose it is, its case (None for a declaration), what it asks."""

    submission: Queued
    account: Account
    case: dict[str, Any] | None
    asked: StepAsked


def _offline_details(submission: Queued) -> dict[str, Any]:
    return {} if submission.made_at is None else {"recorded_offline": submission.made_at.isoformat()}


def _json_refusal(answer: Response) -> Response:
    """A page's refusal (to the login page, or 403) as the phone's script reads it."""
    status = 401 if answer.status_code in (302, 303, 307) else answer.status_code
    return JSONResponse({"error": "no session" if status == 401 else "forbidden"}, status_code=status)


async def _json_body(request: Request, most: int) -> Any:
    body = await request.body()
    if len(body) > most:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
