"""The BentoML scoring service for village cadres and monitoring teams.

Run it with `povrisk serve` (or `bentoml serve serving.service:PovertyRiskService`). At start-up it
loads the policy (the file named by `POVRISK_POLICY`, which `povrisk serve --policy FILE` sets, else the
shipped features/policy.yaml; champions trained under another policy version are refused), the API
keys (`serving.keys`; it refuses to start without them), both champions from
the MLflow registry with those of the counties the policy gives models of their own (or, when the
registry has none or cannot be reached, the local copy of the last champions, said so in `/model` and the
log; it refuses to start when neither is there), and opens the audit trail in the flag store's database
(`POVRISK_DB_URL`). A household the register places in such a county is scored by its county's models
(`serving.scoring.models_for`), or refused with 409 while the policy says so; every answer, audit record
and flag names the models that scored it.

Endpoints (all but the built-in ones need an API key in `X-API-Key`; `serving.keys` for the roles):
- `POST /score`: one household -> risks, tier, monitoring category, reasons, causes, assistance measures;
- `POST /score_batch`: up to `MAX_BATCH_HOUSEHOLDS` households; each checked on its own, so a bad
  household gets its own error entry;
- `POST /whatif`: one household and proposed changes -> both scores and the reasons that changed;
- `GET /model` (analyst): the model card; `POST /admin/reload` (analyst): load the current champions
  without dropping requests in flight (they finish with the models they started with); with several
  worker processes (`POVRISK_WORKERS`) the other workers follow within about a second (`serving.runtime`);
- BentoML's `/livez`, `/healthz`, `/readyz` (ready once the models are loaded), `/metrics`, `/docs.json`.

Concurrent `/score` and `/score_batch` requests are merged by BentoML's adaptive batching dispatcher
(`CorkDispatcher`, the one behind `@bentoml.api(batchable=True)`), run in-process: every household
waiting at that moment is scored in one vectorised pass. A request that arrives while no other is being
scored skips the dispatcher (it has nothing to be merged with, and the dispatcher would wait for company).
Each household is still scored as if alone (`serving.scoring`).

Every household scored is recorded in the audit trail (`monitoring.audit`) and, one line per request, in
the log (`POVRISK_LOG_LEVEL`, default INFO), which names households only by a salted hash
(`serving.privacy`); names and ID-card numbers a request may carry are dropped when it is read. A request
first reserves room for its audit records: when the audit trail cannot take them (its database is down
and the bounded queue is full) it gets 503 and nothing is scored; `/readyz` says why. Bodies over
`MAX_REQUEST_BYTES` get 413, malformed ones (control characters in text included) 400 naming every bad
field, logged as one line without any input value (`serving.middleware.RefusalLog`). A cadre key is
checked against where a household is known to live (`store.cases.known_villages`), not only the
village its request names.

Start-up: `startup_refusal` says why the service cannot start; the deployment hook asks it once in the
server process before any worker starts, so that a refusal ends `bentoml serve` with exit 1 instead of
workers restarted forever. A worker whose server process dies stops (`serving.runtime.ParentWatchdog`).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import anyio
import bentoml
from bentoml._internal.marshal.dispatcher import CorkDispatcher
from bentoml.exceptions import ServiceUnavailable
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from features.frame import FeatureInputError
from features.policy import PolicyError, load_policy
from models.explain import Language
from monitoring.audit import AuditWriter, audit_record, database_error
from serving.keys import ApiKey, load_key_ring
from serving.middleware import (
    REFUSAL_STATE,
    STATE_KEY,
    ApiKeyAuth,
    BodyLimit,
    HealthDetail,
    OpenApiDocs,
    RefusalLog,
    RelativeRedirects,
    quiet_bentoml_refusals,
)
from serving.model_cache import cache_folder
from serving.privacy import household_ref, log_salt
from serving.runtime import (
    ParentWatchdog,
    ReloadSignal,
    ReloadWatcher,
    audit_queue_capacity,
    configure_logging,
    reload_signal_path,
    service_log_level,
    service_workers,
)
from serving.schemas import (
    FROM_REGISTER,
    MAX_REQUEST_BYTES,
    MODEL_SOURCES,
    SUBMITTED_WITH_HISTORY,
    BatchItemOut,
    BatchRequest,
    BatchResponse,
    ErrorOut,
    HouseholdIn,
    ModelCard,
    ModelRef,
    ScoreRequest,
    ScoreResponse,
    WhatIfRequest,
    WhatIfResponse,
)
from serving.scoring import (
    CountyNotScored,
    LoadedModels,
    RegisterContext,
    ServiceStartError,
    WhatIfError,
    load_models,
    register_context,
    registered_input,
    score_households,
    what_if,
)
from store.cases import known_villages
from store.database import create_schema, make_engine
from store.register import registered_household
from survey.text import printable, redact_credentials
from workbench.app import Workbench, WorkbenchSettings
from workbench.landing import LandingPages

logger = logging.getLogger(__name__)

BATCH_MAX_LATENCY_MS = 10_000
"""BentoML's `max_latency_ms`: the dispatcher sheds (503) a request it expects to wait longer. How long
it waits for company is its own estimate from the measured scoring times, far below this."""
BATCH_MAX_REQUESTS = 16
"""Most requests merged into one scoring pass (each up to MAX_BATCH_HOUSEHOLDS households). Counted in
requests, so that the dispatcher never splits one request's households."""


@dataclass(frozen=True)
class _Job:
    """Households of one request, waiting in the batching queue."""

    households: tuple[HouseholdIn, ...]
    lang: Language
    contexts: tuple[RegisterContext | None, ...]


@dataclass(frozen=True)
class _Outcome:
    scores: list[ScoreResponse | ErrorOut]


model_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
workbench_app = Workbench()
"""The workbench's pages (`workbench.app`), mounted at /app: one deployable with the API. Each worker
attaches its own database engine and models to it once they are loaded."""
RETRY_AFTER_SECONDS = 5
"""What a 503 asks the client to wait (the audit trail's database is down or behind)."""


@bentoml.service(name="povrisk", workers=service_workers(), traffic={"timeout": 30})
@bentoml.asgi_app(model_app, path="/")
@bentoml.asgi_app(workbench_app, path="/app")
class PovertyRiskService:
    """Scores households with the champion poverty and relapse models."""

    def __init__(self) -> None:
        self._models: LoadedModels | None = None
        configure_logging(service_log_level())
        quiet_bentoml_refusals()
        self._policy = load_policy()
        load_key_ring()  # refuse to start without valid keys (the middleware reads the same ones)
        self._salt = log_salt()
        self._reload_signal = ReloadSignal(reload_signal_path(cache_folder()))  # before loading: none missed
        self._models = load_models(self._policy)
        self._engine = make_engine()
        create_schema(self._engine)
        self._audit = AuditWriter(self._engine, capacity=audit_queue_capacity(), describe_household=self._ref)
        workbench_app.attach(WorkbenchSettings(engine=self._engine, models=self._current))
        _WORKER_HEALTH.append(self._health)
        self._dispatcher: CorkDispatcher[_Job, _Outcome | None] = CorkDispatcher(
            max_latency_in_ms=BATCH_MAX_LATENCY_MS,
            max_batch_size=BATCH_MAX_REQUESTS,
            fallback=lambda: None,
            get_batch_size=lambda job: 1,
        )
        self._batched = self._dispatcher(self._score_jobs_in_thread)
        self._in_flight = 0  # scoring requests between arrival and answer (the event loop's own count)
        _freeze_long_lived()
        gc.set_threshold(50_000, 20, 100)  # a request allocates ~10^5 objects; collect less often
        self._reload_watcher = ReloadWatcher(self._reload_signal, self._reload_on_signal)
        self._parent_watchdog = ParentWatchdog()  # a worker whose server was killed stops, not serves
        logger.info(
            "povrisk worker %d ready (%s): %s",
            os.getpid(),
            MODEL_SOURCES[self._models.card.source],
            _names(self._models),
        )

    def __is_ready__(self) -> bool:
        """Ready when the models are loaded and the audit trail takes records (its database answers
        and the queue has room): otherwise scoring requests would get 503."""
        if self._models is None:
            return False
        audit = self._audit.state()
        return audit.accepting and audit.database == "reachable"

    def __is_alive__(self) -> bool:
        return self._audit.state().writer_alive

    @bentoml.on_deployment
    def _refuse_to_start_without_what_it_needs() -> None:  # type: ignore[misc]  # BentoML calls it once
        """Runs once in the server process before any worker starts (also under a plain `bentoml
        serve`): without keys, models or a flag-store database that answers, say why once and exit 1
        (otherwise BentoML would restart the refusing workers forever)."""
        refusal = startup_refusal()
        if refusal is not None:
            logger.error("povrisk cannot serve: %s", refusal)
            raise SystemExit(1)

    @bentoml.on_shutdown
    def _close_audit(self) -> None:
        self._reload_watcher.stop()
        self._parent_watchdog.stop()
        self._audit.close()

    async def _admit_one(
        self,
        ctx: bentoml.Context,
        key: ApiKey,
        household: Any,
        endpoint: str,
        context: RegisterContext | None = None,
    ) -> Any:
        """The refusal for one household (403 outside the key's villages, 503 when its residence or the
        audit trail cannot be checked), or None with room for its audit record reserved. Where the
        register knows the household, its village there is where it lives."""
        try:
            if context is not None and context.resident_in is not None:
                refusal = self._residence_refusal(key, household, context.resident_in)
            else:
                refusal = await self._village_refusal(key, [household])
        except _ResidenceUnknown as error:
            return self._unavailable(ctx, key, ctx.request.url.path, str(error))
        if refusal:
            return _error(ctx, 403, refusal[household.household_id])
        if not self._audit.reserve(1):
            return self._audit_unavailable(ctx, key, endpoint)
        return None

    # ------------------------------------------------------------------------------------ endpoints

    @bentoml.api(route="/score")
    async def score(self, request: ScoreRequest, ctx: bentoml.Context) -> ScoreResponse:
        """Risk of being poor now and of falling (back) into poverty, tier, monitoring category, reasons,
        causes of poverty and up to three fitting assistance measures."""
        key = _caller(ctx)
        try:
            prepared = await anyio.to_thread.run_sync(self._with_register, request)
        except SQLAlchemyError as error:
            reason = f"the household register cannot be read ({database_error(error)})"
            return self._unavailable(ctx, key, "/score", reason)  # type: ignore[return-value]
        if prepared is None:
            _note_refusal(ctx, "no such household in the register")
            round_text = "" if request.round is None else f" in round {request.round}"
            return _error(  # type: ignore[return-value]
                ctx,
                404,
                f"the register holds no household {request.household_id} of county "
                f"{request.county_id}{round_text}",
            )
        household, context = prepared
        turned_away = await self._admit_one(ctx, key, household, "/score", context)
        if turned_away is not None:
            return turned_away  # type: ignore[return-value]
        (outcome,) = await self._score(
            key, "/score", [household], request.lang, reserved=1, contexts=(context,)
        )
        if isinstance(outcome, ErrorOut):
            _note_refusal(ctx, "the household cannot be scored")
            return _error(ctx, outcome.status, outcome.error)  # type: ignore[return-value]
        return outcome

    @bentoml.api(route="/score_batch")
    async def score_batch(self, request: BatchRequest, ctx: bentoml.Context) -> BatchResponse:
        """Several households at once (at most 200); each is checked on its own and gets its score or
        its own error entry (400 bad household, 403 outside the key's villages)."""
        key = _caller(ctx)
        results: list[BatchItemOut | None] = [None] * len(request.households)
        accepted: list[tuple[int, HouseholdIn]] = []
        invalid: list[str] = []
        for index, body in enumerate(request.households):
            household_id = body.get("household_id") if isinstance(body.get("household_id"), str) else None
            try:
                household = HouseholdIn.model_validate(body)
            except ValidationError as error:
                results[index] = BatchItemOut(index=index, household_id=household_id, error=_invalid(error))
                invalid.append(self._invalid_entry(index, household_id, error))
                continue
            accepted.append((index, household))
        if invalid:
            logger.warning(
                "/score_batch by key %s: %d household(s) invalid: %s",
                key.key_id,
                len(invalid),
                "; ".join(invalid),
            )
        try:
            refusals = await self._village_refusal(key, [household for _, household in accepted])
        except _ResidenceUnknown as error:
            return self._unavailable(ctx, key, "/score_batch", str(error))  # type: ignore[return-value]
        for index, household in [(index, h) for index, h in accepted if h.household_id in refusals]:
            error_out = ErrorOut(status=403, error=refusals[household.household_id])
            results[index] = BatchItemOut(index=index, household_id=household.household_id, error=error_out)
        accepted = [(index, h) for index, h in accepted if h.household_id not in refusals]
        if accepted and not self._audit.reserve(len(accepted)):
            return self._audit_unavailable(ctx, key, "/score_batch")  # type: ignore[return-value]
        outcomes = (
            await self._score(
                key, "/score_batch", [h for _, h in accepted], request.lang, reserved=len(accepted)
            )
            if accepted
            else []
        )
        for (index, household), outcome in zip(accepted, outcomes, strict=True):
            if isinstance(outcome, ErrorOut):
                results[index] = BatchItemOut(index=index, household_id=household.household_id, error=outcome)
            else:
                results[index] = BatchItemOut(index=index, household_id=household.household_id, score=outcome)
        done = [result for result in results if result is not None]
        failed = sum(result.error is not None for result in done)
        answers = [result.score for result in done if result.score is not None]
        return BatchResponse(
            results=done,
            scored=len(done) - failed,
            failed=failed,
            models=_models_of(answers) if answers else list(self._current().model_refs),
        )

    @bentoml.api(route="/whatif")
    async def whatif(self, request: WhatIfRequest, ctx: bentoml.Context) -> WhatIfResponse:
        """The household as it is and after proposed changes (e.g. a member starts migrant work, medical
        insurance enrolled, a loan received): both scores and the reasons that changed."""
        key = _caller(ctx)
        household = request.household
        turned_away = await self._admit_one(ctx, key, household, "/whatif")
        if turned_away is not None:
            return turned_away  # type: ignore[return-value]
        models = self._current()
        try:
            answer = await anyio.to_thread.run_sync(what_if, models, household, request.changes, request.lang)
        except (WhatIfError, PolicyError, FeatureInputError) as error:
            self._audit.release(1)
            _note_refusal(ctx, f"the changes cannot be applied ({type(error).__name__})")
            return _error(ctx, 400, f"household {household.household_id}: {error}")  # type: ignore[return-value]
        except BaseException:
            self._audit.release(1)
            raise
        self._record(key, "/whatif", [household], [answer.before], reserved=1)
        return answer

    @model_app.get("/model", response_model=ModelCard)
    def model(self) -> ModelCard:
        """The model card of what is being served (analyst keys)."""
        return self._current().card

    @bentoml.api(route="/admin/reload")
    async def reload(self, ctx: bentoml.Context) -> ModelCard:
        """Load the current champions (analyst keys); requests in flight finish with the old ones."""
        key = _caller(ctx)
        try:
            models = await anyio.to_thread.run_sync(load_models, self._policy)
        except ServiceStartError as error:
            said = redact_credentials(str(error))
            logger.error(
                "reload requested by key %s failed; still serving the previous models: %s", key.key_id, said
            )
            _note_refusal(ctx, "the reload failed")
            return _error(ctx, 400, f"reload failed, still serving the previous models: {said}")  # type: ignore[return-value]
        await anyio.to_thread.run_sync(self._serve, models, f"by key {key.key_id}")
        self._reload_signal.announce()  # the other workers load the champions too
        return models.card

    # ------------------------------------------------------------------------------------ internals

    def _reload_on_signal(self) -> None:
        """Another worker answered /admin/reload: load the champions here too (in the watcher's thread;
        requests go on with the previous models until the new ones are in place)."""
        self._serve(load_models(self._policy), "after another worker's /admin/reload")

    def _serve(self, models: LoadedModels, why: str) -> None:
        """Answer with `models` from now on (requests in flight keep the ones they started with)."""
        self._models = models
        _freeze_long_lived()
        logger.info("worker %d reloaded %s: %s", os.getpid(), why, _names(models))

    def _current(self) -> LoadedModels:
        if self._models is None:  # cannot happen after __init__
            raise RuntimeError("models are not loaded")
        return self._models

    def _with_register(self, request: ScoreRequest) -> tuple[HouseholdIn, RegisterContext | None] | None:
        """The household to score and what the register adds to it (module docstring of
        `serving.scoring`); None when a household asked for by reference is not in the register."""
        if request.household is None:
            registered = registered_household(
                self._engine, str(request.county_id), str(request.household_id), request.round
            )
            if registered is None:
                return None
            household = registered_input(registered)
            return household, register_context(registered, household, FROM_REGISTER)
        household = request.household
        if request.county_id is None:
            return household, None
        registered = registered_household(
            self._engine, request.county_id, household.household_id, household.round
        ) or registered_household(self._engine, request.county_id, household.household_id)
        if registered is None:
            return household, None
        return household, register_context(registered, household, SUBMITTED_WITH_HISTORY)

    def _residence_refusal(self, key: ApiKey, household: HouseholdIn, resident_in: str) -> dict[str, str]:
        """A cadre key may score a household the register places in one of its villages, sent as living
        there; anything else is refused (and logged), as `_village_refusal` does."""
        if key.role != "cadre":
            return {}
        if not key.may_score(household.village_id):
            return {household.household_id: self._refuse(key, household, None)}
        if resident_in != household.village_id:
            return {household.household_id: self._refuse(key, household, resident_in)}
        return {}

    async def _score(
        self,
        key: ApiKey,
        endpoint: str,
        households: Sequence[HouseholdIn],
        lang: Language,
        reserved: int,
        contexts: Sequence[RegisterContext | None] | None = None,
    ) -> list[ScoreResponse | ErrorOut]:
        """Score the households (room for their audit records `reserved` beforehand) and record them."""
        contexts = tuple(contexts) if contexts is not None else (None,) * len(households)
        job = _Job(tuple(households), lang, contexts)
        alone = self._in_flight == 0
        self._in_flight += 1
        try:
            # nothing to merge with: score at once. BentoML's dispatcher would wait for company its
            # optimizer expects from the waits it has seen, and those waits feed the next estimate: one
            # client at a time was measured waiting ~50 ms per request once that loop had settled there.
            outcome = (await self._score_jobs_in_thread([job]))[0] if alone else await self._batched(job)
        except BaseException:
            self._audit.release(reserved)
            raise
        finally:
            self._in_flight -= 1
        if outcome is None:  # the dispatcher shed the request (overload) or is shutting down
            self._audit.release(reserved)
            raise ServiceUnavailable("the service is overloaded or shutting down; try again")
        scored = [
            (h, s) for h, s in zip(households, outcome.scores, strict=True) if isinstance(s, ScoreResponse)
        ]
        self._record(key, endpoint, [h for h, _ in scored], [s for _, s in scored], reserved=reserved)
        return outcome.scores

    async def _score_jobs_in_thread(self, jobs: Sequence[_Job]) -> Sequence[_Outcome | None]:
        return await anyio.to_thread.run_sync(self._score_jobs, jobs)

    def _score_jobs(self, jobs: Sequence[_Job]) -> list[_Outcome]:
        """One batch of waiting requests: every household scored in one pass per language."""
        models = self._current()
        answers: dict[tuple[int, int], ScoreResponse | ErrorOut] = {}
        for lang in {job.lang for job in jobs}:
            keys = [
                (j, h) for j, job in enumerate(jobs) if job.lang == lang for h in range(len(job.households))
            ]
            households = [jobs[j].households[h] for j, h in keys]
            contexts = [jobs[j].contexts[h] for j, h in keys]
            scored = self._score_or_isolate(models, households, lang, contexts)
            for position, answer in zip(keys, scored, strict=True):
                answers[position] = answer
        return [_Outcome([answers[(j, h)] for h in range(len(job.households))]) for j, job in enumerate(jobs)]

    def _score_or_isolate(
        self,
        models: LoadedModels,
        households: list[HouseholdIn],
        lang: Language,
        contexts: list[RegisterContext | None],
    ) -> list[ScoreResponse | ErrorOut]:
        """Score together; when the policy refuses a household (e.g. a year before the first poverty
        line, or a county not scored until its own model has a champion: 409) score them one by one, so
        that only that household gets the error."""
        try:
            return list(score_households(models, households, lang, contexts))
        except (PolicyError, FeatureInputError, CountyNotScored) as error:
            if len(households) == 1 and isinstance(error, CountyNotScored):
                return [ErrorOut(status=409, error=error.words(lang))]
            if len(households) == 1:
                household_id = households[0].household_id
                return [ErrorOut(status=400, error=f"household {household_id} cannot be scored: {error}")]
            return [
                answer
                for household, context in zip(households, contexts, strict=True)
                for answer in self._score_or_isolate(models, [household], lang, [context])
            ]

    def _record(
        self,
        key: ApiKey,
        endpoint: str,
        households: Sequence[HouseholdIn],
        scores: Sequence[ScoreResponse],
        reserved: int,
    ) -> None:
        """Queue the audit records of the households scored (into the room `reserved` for them), each
        naming the models that scored it."""
        records = [
            audit_record(
                key_id=key.key_id,
                key_role=key.role,
                endpoint=endpoint,
                household_id=household.household_id,
                village_id=household.village_id,
                round=household.round,
                county_id=score.county_id,
                score=_audited(score),
                model_name=";".join(ref.name for ref in score.models),
                model_version=";".join(ref.version for ref in score.models),
            )
            for household, score in zip(households, scores, strict=True)
        ]
        self._audit.submit(records, reserved=reserved)
        if households and logger.isEnabledFor(logging.INFO):  # one line per request, not per household
            logger.info(
                "%s by key %s: %s",
                endpoint,
                key.key_id,
                "; ".join(
                    f"{household_ref(household.household_id, self._salt)} poverty "
                    f"{_risk(score.poverty_risk)} relapse {_risk(score.relapse_risk)} {score.category}"
                    for household, score in zip(households, scores, strict=True)
                ),
            )

    async def _village_refusal(self, key: ApiKey, households: Sequence[HouseholdIn]) -> dict[str, str]:
        """Households a cadre key may not score, with why (each refusal logged): a village outside the
        key's, or a household known to live elsewhere than the village the request says (its latest
        flag, or a county-wide key's audit record: `store.cases.known_villages`)."""
        if key.role != "cadre" or not households:
            return {}
        refusals = {
            household.household_id: self._refuse(key, household, None)
            for household in households
            if not key.may_score(household.village_id)
        }
        claimed = [household for household in households if household.household_id not in refusals]
        if claimed:
            ids = [household.household_id for household in claimed]
            try:
                known = await anyio.to_thread.run_sync(known_villages, self._engine, ids)
            except SQLAlchemyError as error:
                raise _ResidenceUnknown(
                    "where the household lives cannot be checked: the database does not answer "
                    f"({database_error(error)})"
                ) from error
            for household in claimed:
                lives_in = known.get(household.household_id)
                if lives_in is not None and lives_in != household.village_id:
                    refusals[household.household_id] = self._refuse(key, household, lives_in)
        return refusals

    def _refuse(self, key: ApiKey, household: HouseholdIn, lives_in: str | None) -> str:
        """Log a village refusal; the answer's message (which never says where the household lives)."""
        villages = ", ".join(sorted(key.villages))
        if lives_in is None:
            logger.warning(
                "refused household %s of village %s: key %s may score villages %s only",
                self._ref(household.household_id),
                printable(household.village_id),
                key.key_id,
                villages,
            )
            return (
                f"key {key.key_id} may score households of village(s) {villages} only; "
                f"household {household.household_id} is in village {household.village_id}"
            )
        logger.warning(
            "refused household %s: key %s sent village %s, but the household is known to live in village %s",
            self._ref(household.household_id),
            key.key_id,
            printable(household.village_id),
            printable(lives_in),
        )
        return (
            f"household {household.household_id} is not known to live in village {household.village_id}; "
            f"key {key.key_id} may score households of village(s) {villages} only"
        )

    def _audit_unavailable(self, ctx: bentoml.Context, key: ApiKey, endpoint: str) -> JSONResponse:
        """503: no room for the audit records, so nothing is scored (audit state in /readyz)."""
        state = self._audit.state()
        behind = "does not answer" if state.database == "unreachable" else "is behind"
        return self._unavailable(
            ctx,
            key,
            endpoint,
            f"the audit trail cannot record scores right now (its database {behind}; "
            f"{state.queued + state.reserved} of {state.capacity} records waiting)",
        )

    def _unavailable(self, ctx: bentoml.Context, key: ApiKey, endpoint: str, why: str) -> JSONResponse:
        """503 with Retry-After: nothing was scored."""
        logger.warning("503 %s by key %s: %s", endpoint, key.key_id, why)
        ctx.response.status_code = 503
        ctx.response.metadata["retry-after"] = str(RETRY_AFTER_SECONDS)
        return JSONResponse(
            {"error": f"{why}; nothing was scored; try again in {RETRY_AFTER_SECONDS} s"},
            status_code=503,
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )

    def _invalid_entry(self, index: int, household_id: str | None, error: ValidationError) -> str:
        """One invalid household of a batch, for the log: position, salted hash, field paths and types."""
        problems = ", ".join(
            printable(".".join(str(part) for part in problem["loc"]) + " " + problem["type"])
            for problem in error.errors(include_input=False)
        )
        reference = self._ref(household_id) if household_id is not None else "no id"
        return f"#{index} {reference}: {problems}"

    def _ref(self, household_id: str) -> str:
        return household_ref(household_id, self._salt)

    def _health(self) -> dict[str, Any]:
        """What the health endpoints add: the audit writer's state."""
        return {"audit": self._audit.state().as_dict()}


_WORKER_HEALTH: list[Any] = []
"""The health report of this worker process's service instance (one per process; BentoML builds the
middleware apart from the instance, so this is how `HealthDetail` reaches it)."""


def _worker_health() -> dict[str, Any]:
    return _WORKER_HEALTH[-1]() if _WORKER_HEALTH else {}


def startup_refusal() -> str | None:
    """Why the service cannot start (keys, policy, settings, models, the flag-store database), or None;
    credentials in URIs redacted. `povrisk serve` asks before starting the server, and the service's
    deployment hook asks again under a plain `bentoml serve`."""
    from sqlalchemy.exc import SQLAlchemyError

    from serving.keys import KeyFileError
    from serving.runtime import RuntimeSettingError

    try:
        service_workers()
        service_log_level()
        audit_queue_capacity()
        load_key_ring()
        load_models(load_policy())
    except (KeyFileError, ServiceStartError, RuntimeSettingError, PolicyError) as error:
        return redact_credentials(str(error))
    engine = make_engine()
    try:
        create_schema(engine)
    except (SQLAlchemyError, OSError) as error:
        where = engine.url.render_as_string(hide_password=True)
        return (
            f"the flag store's database {where} does not answer ({type(error).__name__}); "
            "check POVRISK_DB_URL"
        )
    finally:
        engine.dispose()
    return None


_service = cast(Any, PovertyRiskService)  # a bentoml Service at run time
_service.add_asgi_middleware(ApiKeyAuth)
_service.add_asgi_middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)
_service.add_asgi_middleware(RefusalLog, salt=log_salt())
_service.add_asgi_middleware(OpenApiDocs)
_service.add_asgi_middleware(HealthDetail, report=_worker_health)
_service.add_asgi_middleware(RelativeRedirects)
_service.add_asgi_middleware(LandingPages)


def _freeze_long_lived() -> None:
    """Keep the collector from walking what stays for good (libraries, the models): a gen-2 collection
    over them would stall a request by milliseconds. What was frozen before (the previous models, after
    a reload) is unfrozen and collected first, so that it is not kept."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _audited(score: ScoreResponse) -> dict[str, Any]:
    """What the audit trail keeps of an answer (attribute reads: a pydantic dump per household cost ~4 %
    of a batch request)."""
    return {
        "poverty_risk": score.poverty_risk,
        "relapse_risk": score.relapse_risk,
        "risk_tier": score.risk_tier,
        "category": score.category,
        "main_cause": score.main_cause.code,
        "reasons": [
            {"indicator": reason.indicator, "value": reason.value, "contribution": reason.contribution}
            for reason in score.reasons
        ],
    }


def _risk(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.3f}"


def _names(models: LoadedModels) -> str:
    """The models served, for the log: the shared ones, then each county's own (or that it is refused)."""
    shared = ", ".join(f"{ref.name} v{ref.version}" for ref in models.model_refs)
    counties = [
        f"county {county}: " + ", ".join(f"{ref.name} v{ref.version}" for ref in scope.model_refs)
        for county, scope in models.county_models.items()
    ]
    refused = [
        f"county {county}: not scored until its own model has a champion"
        for county in sorted(models.refused_counties)
    ]
    return "; ".join([shared, *counties, *refused])


def _models_of(answers: Sequence[ScoreResponse]) -> list[ModelRef]:
    """Every model that scored one of the answers, once each, in the order met."""
    met = {(ref.name, ref.version): ref for answer in answers for ref in answer.models}
    return list(met.values())


def _error(ctx: bentoml.Context, status: int, message: str) -> JSONResponse:
    """An error answer `{"error": message}` (BentoML's own exceptions would wrap it in a list)."""
    ctx.response.status_code = status  # BentoML sets the response's status from the context
    return JSONResponse({"error": message}, status_code=status)


def _caller(ctx: bentoml.Context) -> ApiKey:
    """The key `ApiKeyAuth` accepted for this request."""
    key = getattr(ctx.request.state, STATE_KEY, None)
    if not isinstance(key, ApiKey):  # the middleware guards every endpoint; never reached in service
        raise RuntimeError("request reached an endpoint without an authenticated key")
    return key


class _ResidenceUnknown(RuntimeError):
    """Where a household lives could not be looked up (the database does not answer)."""


def _note_refusal(ctx: bentoml.Context, why: str) -> None:
    """Tell `RefusalLog` why this request gets 400 from the handler (words, never input values)."""
    setattr(ctx.request.state, REFUSAL_STATE, why)


def _invalid(error: ValidationError) -> ErrorOut:
    fields = [".".join(str(part) for part in problem["loc"]) for problem in error.errors(include_input=False)]
    detail = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors(include_input=False)
    )
    return ErrorOut(status=400, error=f"invalid household: {detail}", fields=fields)
