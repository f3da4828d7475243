"""What the service computes, without the service: load the champions, score households, compare a
household before and after proposed changes, describe the models. Pure apart from `load_models`.

One path for every answer: households -> canonical frames -> `features.build_feature_frames` -> the champions
(`models.predictor.RiskPredictor`) -> category (`monitoring.categories`) -> causes (`monitoring.causes`)
-> assistance measures (`monitoring.assistance`, the policy's table). Several households are scored in
one vectorised pass, each as if it were alone: the frames are keyed by position, so that neither the
trend indicators nor the village indicators read another household of the request, and a household's
answer never depends on what else was sent with it.

Which models score a household: the shared champions (`povrisk-<task>`), unless the register places it
in a county the policy gives models of its own (`Policy.county_models`): then that county's, resolved as
`training.tracking.scoring_versions` resolves them (its own champion of a task where it has one; else the
shared one under `until_trained: shared_model`, none under `refuse`), and under `refuse` a county without
any own champion is not scored (`CountyNotScored`). A request mixing counties is scored one pass per
county's models, answers in the request's order; every answer names the models that scored it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from features.completeness import COMPLETENESS, MISSING_BLOCKS, SUFFICIENT, block_labels
from features.frame import VILLAGE_CONTEXT, build_feature_frames, survey_years
from features.policy import Policy
from models.explain import Language
from models.predictor import RiskPredictor, TaskModel
from monitoring.assistance import recommend_measures
from monitoring.categories import NOT_MONITORED, monitoring_category
from monitoring.causes import CauseSettings, household_causes, load_cause_settings
from serving.batch import model_reference, tier_values
from serving.bento import packaged_champions_folder
from serving.model_cache import (
    CacheMissing,
    Champions,
    cache_folder,
    load_champions,
    load_county_champions,
    save_champions,
)
from serving.schemas import (
    FROM_REGISTER,
    MODEL_SOURCES,
    NO_HISTORY,
    SUBMITTED_WITH_HISTORY,
    Basis,
    CauseOut,
    ChangedReason,
    CountyCard,
    CountyModelsCard,
    DataBlockOut,
    HouseholdIn,
    MeasureOut,
    ModelCard,
    ModelRef,
    ModelSource,
    ReasonOut,
    ScoreResponse,
    TaskCard,
    WhatIfChanges,
    WhatIfResponse,
    frames_of,
    household_from_survey,
)
from store.cases import NO_COUNTY
from store.register import RegisteredHousehold
from survey.catalogue import message
from survey.io import Survey
from survey.text import redact_credentials
from survey.village_context import shock_answers

logger = logging.getLogger(__name__)

TASKS = ("poverty", "relapse")
TOP_REASONS = 3


class ServiceStartError(RuntimeError):
    """The service cannot start: no champion in the registry (nor a local copy), or one that does not
    fit the policy."""


class WhatIfError(ValueError):
    """Proposed changes that cannot be applied (an unknown member, a field that may not change, a value
    out of range); the message names each."""


class CountyNotScored(LookupError):
    """A household of a county the policy gives models of its own, none of which has a champion yet,
    under `until_trained: refuse`: it is not scored. `words` says so to a person."""

    def __init__(self, county_id: str) -> None:
        super().__init__(
            f"county {county_id} is scored by models of its own (policy county_models), and neither has a "
            "champion yet (until_trained: refuse): its households are not scored until one has"
        )
        self.county_id = county_id

    def words(self, lang: Language) -> str:
        return message("scoring.county_not_scored", lang, county=self.county_id)


@dataclass(frozen=True)
class LoadedModels:
    """What the service scores with, for one scope (the shared champions, or one county's models): the
    predictor, the registry identity of its models, the policy, the causes table, and the model card.
    The shared scope also holds `county_models`, the scopes of the counties whose models differ from the
    shared ones (`models_for`), and `refused_counties`, those not scored at all."""

    predictor: RiskPredictor
    model_refs: tuple[ModelRef, ...]
    card: ModelCard
    causes: CauseSettings
    county_models: Mapping[str, LoadedModels] = field(default_factory=dict)
    refused_counties: frozenset[str] = frozenset()


def models_for(models: LoadedModels, county_id: str | None) -> LoadedModels:
    """The models that score households of `county_id` (None: a household without a county, scored by
    the shared models). `CountyNotScored` for a county the policy refuses to score for now."""
    if county_id is not None and county_id in models.refused_counties:
        raise CountyNotScored(county_id)
    if county_id is not None and county_id in models.county_models:
        return models.county_models[county_id]
    return models


def _scope_of(models: LoadedModels, context: RegisterContext | None) -> str | None:
    """The county whose own models score a household with this context; None for the shared models
    (also for a county scored by the shared models alone). `CountyNotScored` as `models_for`."""
    county = None if context is None else context.county_id
    models_for(models, county)
    return county if county is not None and county in models.county_models else None


# --------------------------------------------------------------------------------------------- loading


def load_models(policy: Policy, tracking: Any = None) -> LoadedModels:
    """Each task's champion from the MLflow registry, with the champions of the counties the policy gives
    models of their own, saved as the local copy; when the registry has no shared champion, cannot be
    reached or gives a county's champion that cannot be loaded, the local copy of the last champions, said
    so in the card and the log; `ServiceStartError` when neither is there, or when a champion was trained
    under another policy version.

    `tracking` is the module with `load_champion`, `version_aliases`, `tracking_uri` and, when the policy
    lists counties, `scoring_versions`, `registered_name` and `OwnModelMissing` (default
    `training.tracking`; tests pass a stand-in registry that fails).
    """
    if tracking is None:
        from training import tracking
    uri = tracking.tracking_uri()
    source: ModelSource = "registry"
    try:
        task_models, aliases = registry_champions(tracking)
        counties = registry_county_champions(policy, tracking)
        shared = Champions(task_models, aliases)
    except Exception as error:  # MLflow raises many types for "no such alias" or "cannot connect"
        shared, counties, source = _from_cache(uri, error, policy)
    else:
        try:
            save_champions(shared.models, shared.aliases, cache_folder(), counties)
        except OSError as error:  # serving goes on; only the fallback is lost
            logger.warning("could not save the local copy of the champions in %s: %s", cache_folder(), error)
    for own in [shared, *counties.values()]:
        for model in own.models.values():
            _check_policy(model, policy)
    return assembled_models(policy, shared, counties, source, uri, load_cause_settings())


def registry_champions(tracking: Any = None) -> tuple[dict[str, TaskModel], dict[str, list[str]]]:
    """Each task's champion in the MLflow registry and the aliases of its version. Raises what MLflow
    raises when there is none or the registry cannot be reached. (`tracking` as in `load_models`.)"""
    if tracking is None:
        from training import tracking
    task_models = {task: tracking.load_champion(task) for task in TASKS}
    aliases = {task: tracking.version_aliases(task, _version(model)) for task, model in task_models.items()}
    return task_models, aliases


def registry_county_champions(policy: Policy, tracking: Any = None) -> dict[str, Champions]:
    """Every county the policy gives models of its own, with its own champion of each task that has one
    (`scoring_versions` says which) and the aliases of its version; empty `Champions` for a county
    without any. Raises what MLflow raises. (`tracking` as in `load_models`.)"""
    if tracking is None:
        from training import tracking
    counties: dict[str, Champions] = {}
    for county in policy.county_models.counties:
        models = {
            task: tracking.load_champion(task, county=county) for task in _own_tasks(policy, county, tracking)
        }
        aliases = {
            task: tracking.version_aliases(task, _version(model), county=county)
            for task, model in models.items()
        }
        counties[county] = Champions(models, aliases)
    return counties


def _own_tasks(policy: Policy, county: str, tracking: Any) -> list[str]:
    """The tasks `county` has its own champion for in the registry."""
    try:
        versions = tracking.scoring_versions(policy, county)
    except tracking.OwnModelMissing:
        return []
    return [task for task, (name, _) in versions.items() if name == tracking.registered_name(task, county)]


def _version(model: TaskModel) -> str:
    return model_reference(model)[1]


def _from_cache(
    uri: str, error: Exception, policy: Policy
) -> tuple[Champions, dict[str, Champions], ModelSource]:
    """The local copy of the last champions, else the champions packaged in the Bento, with the own
    champions of the policy's counties each holds; with the source."""
    copies: list[tuple[ModelSource, Path]] = [("cache", cache_folder())]
    packaged = packaged_champions_folder()
    if packaged is not None:
        copies.append(("packaged", packaged))
    missing: list[str] = []
    for source, folder in copies:
        try:
            task_models, card = load_champions(folder, TASKS)
            counties = load_county_champions(folder, policy.county_models.counties)
        except CacheMissing as absent:
            missing.append(str(absent))
            continue
        logger.warning(
            "the MLflow registry at %s gave no champion (%s: %s); serving %s saved %s from %s",
            redact_credentials(uri),
            type(error).__name__,
            redact_credentials(str(error)),
            MODEL_SOURCES[source],
            card.get("saved_at"),
            folder,
        )
        unknown = [county for county in policy.county_models.counties if county not in counties]
        if unknown:
            logger.warning(
                "%s records no models of county %s (saved before the policy listed it): scored as a county "
                "without a champion of its own (until_trained: %s)",
                MODEL_SOURCES[source],
                ", ".join(unknown),
                policy.county_models.until_trained,
            )
        aliases = {task: list(card.get("aliases", {}).get(task, [])) for task in TASKS}
        return Champions(task_models, aliases), counties, source
    raise ServiceStartError(
        f"no usable champion in the MLflow registry at {redact_credentials(uri)} ({type(error).__name__}: "
        f"{redact_credentials(str(error))}) and "
        f"{' and '.join(missing)}. Train and promote both models first (povrisk train --task T; povrisk "
        f"promote --task T), or point MLFLOW_TRACKING_URI at the registry."
    ) from error


def _check_policy(task_model: TaskModel, policy: Policy) -> None:
    if task_model.policy_version and task_model.policy_version != policy.version:
        name, version = model_reference(task_model)
        raise ServiceStartError(
            f"the {task_model.task} champion ({name} version {version}) was trained under policy "
            f"{task_model.policy_version!r} but the service loaded policy {policy.version!r}; retrain or "
            "serve with the matching policy"
        )


def county_task_models(
    policy: Policy, shared: Mapping[str, TaskModel], own: Mapping[str, TaskModel]
) -> dict[str, TaskModel | None] | None:
    """The models that score a county the policy gives models of its own, by task, as
    `training.tracking.scoring_versions` resolves them: its `own` champion of a task; else the `shared`
    one under `until_trained: shared_model`, and none (None) under `refuse`. None when the county is not
    scored at all (`refuse`, and no own champion)."""
    fallback = policy.county_models.until_trained == "shared_model"
    if not own and not fallback:
        return None
    return {task: own[task] if task in own else shared[task] if fallback else None for task in TASKS}


def assembled_models(
    policy: Policy,
    shared: Champions,
    counties: Mapping[str, Champions],
    source: ModelSource,
    uri: str,
    causes: CauseSettings,
) -> LoadedModels:
    """The models the service scores with: the `shared` champions, and for every county the policy
    gives models of its own (its own champions in `counties`; a county absent there has none) the models
    that score it (`county_task_models`); the card describes them all."""
    scopes: dict[str, LoadedModels] = {}
    refused: set[str] = set()
    cards: list[CountyCard] = []
    for county in policy.county_models.counties:
        own = counties.get(county, Champions())
        task_models = county_task_models(policy, shared.models, own.models)
        if task_models is None:
            refused.add(county)
            cards.append(CountyCard(county_id=county, scored=False, models=[]))
            continue
        present = {task: model for task, model in task_models.items() if model is not None}
        aliases = {
            task: list((own if task in own.models else shared).aliases.get(task, [])) for task in present
        }
        cards.append(CountyCard(county_id=county, scored=True, models=task_cards(present, aliases)))
        if any(present.get(task) is not shared.models.get(task) for task in TASKS):
            scopes[county] = _scope(policy, present, aliases, source, uri, causes)
    top = _scope(policy, shared.models, shared.aliases, source, uri, causes, cards)
    return LoadedModels(
        predictor=top.predictor,
        model_refs=top.model_refs,
        card=top.card,
        causes=causes,
        county_models=scopes,
        refused_counties=frozenset(refused),
    )


def _scope(
    policy: Policy,
    task_models: Mapping[str, TaskModel],
    aliases: Mapping[str, list[str]],
    source: ModelSource,
    uri: str,
    causes: CauseSettings,
    counties: Sequence[CountyCard] = (),
) -> LoadedModels:
    """The models of one scope as the service holds them."""
    predictor = RiskPredictor(policy, poverty=task_models.get("poverty"), relapse=task_models.get("relapse"))
    refs = tuple(
        ModelRef(name=name, version=version) for name, version in map(model_reference, task_models.values())
    )
    card = model_card(dict(task_models), dict(aliases), policy, source, uri, counties)
    return LoadedModels(predictor=predictor, model_refs=refs, card=card, causes=causes)


def model_card(
    task_models: dict[str, TaskModel],
    aliases: dict[str, list[str]],
    policy: Policy,
    source: ModelSource,
    uri: str,
    counties: Sequence[CountyCard] = (),
) -> ModelCard:
    """The card `GET /model` returns: per model its registry identity, aliases, training rounds, data
    hash, held-out metrics, features, policy version and calibrator; and for each county the policy gives
    models of its own, the models that score it."""
    return ModelCard(
        models=task_cards(task_models, aliases),
        policy_version=policy.version,
        source=source,
        tracking_uri=redact_credentials(uri),
        loaded_at=datetime.now(UTC).isoformat(),
        county_models=CountyModelsCard(
            until_trained=policy.county_models.until_trained, counties=list(counties)
        ),
    )


def task_cards(task_models: Mapping[str, TaskModel], aliases: Mapping[str, list[str]]) -> list[TaskCard]:
    """One card per task model: its registry identity, aliases and what it learnt from."""
    cards = []
    for task, model in task_models.items():
        name, version = model_reference(model)
        cards.append(
            TaskCard(
                task=task,
                name=name,
                version=version,
                aliases=list(aliases.get(task, [])),
                trained_rounds=list(model.trained_rounds),
                data_hash=model.data_hash,
                metrics={key: _optional(value) for key, value in model.metrics.items()},
                features=list(model.feature_names),
                policy_version=model.policy_version,
                calibrator=model.calibrator.name,
                candidate=model.candidate,
                blend_weight=model.blend_weight,
                candidate_brier=dict(model.candidate_brier),
            )
        )
    return cards


# --------------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class _Scored:
    responses: list[ScoreResponse]
    features: pd.DataFrame


@dataclass(frozen=True)
class RegisterContext:
    """What the household register adds to a household scored alone: its rows of earlier rounds (for the
    trend indicators) and its village's counts in the round (`features.frame.VILLAGE_CONTEXT`, the
    household itself left out), so that it gets the answer batch scoring of the whole round gives it;
    and the village the register places it in that round (`resident_in`, for the cadre's scope)."""

    county_id: str
    basis: Basis
    resident_in: str | None = None
    history: pd.DataFrame | None = None
    history_members: pd.DataFrame | None = None
    village_others: tuple[float, float] | None = None


def register_context(
    registered: RegisteredHousehold, household: HouseholdIn, basis: Basis
) -> RegisterContext:
    """The context of `household` (its round, its village) from what the register holds of it: the
    stored rows before that round, and the village's counts of that round without the stored row of the
    household itself when it lives in that village."""
    rows = registered.households
    earlier = rows[rows["round"] < household.round]
    members = registered.members
    earlier_members = None if members is None else members[members["round"] < household.round]
    others = None
    counts = registered.village_counts
    if (
        counts is not None
        and registered.round == household.round
        and registered.village_id == household.village_id
    ):
        answered, reported = shock_answers(rows[rows["round"] == household.round])
        others = (
            float(counts["answering_shocks"] - int(answered.sum())),
            float(counts["with_shocks"] - int(reported.sum())),
        )
    return RegisterContext(
        county_id=registered.county_id,
        basis=basis,
        # where it lives, when the register holds the round asked for (a later round may have moved it)
        resident_in=registered.village_id if registered.round == household.round else None,
        history=earlier if len(earlier) else None,
        history_members=earlier_members if earlier_members is not None and len(earlier_members) else None,
        village_others=others,
    )


def registered_input(registered: RegisteredHousehold) -> HouseholdIn:
    """The register's row of the household in its round, as a request would carry it."""
    survey = Survey(households=registered.households, members=registered.members)
    return household_from_survey(survey, registered.household_id, registered.round)


def score_registered(
    models: LoadedModels, registered: RegisteredHousehold, lang: Language = "zh"
) -> ScoreResponse:
    """Score a household by reference: as the register holds it in its round, with its earlier rounds
    and its village's context (the answer batch scoring of that round gives it)."""
    household = registered_input(registered)
    return score_household(models, household, lang, register_context(registered, household, FROM_REGISTER))


def score_registered_together(
    models: LoadedModels, history: Sequence[RegisteredHousehold], lang: Language = "zh"
) -> list[ScoreResponse]:
    """Registered households (several households, or the rounds of one household's history from
    `store.register.registered_history`) each as batch scoring of its round scores it, in one pass."""
    households = [registered_input(registered) for registered in history]
    contexts = [
        register_context(registered, household, FROM_REGISTER)
        for registered, household in zip(history, households, strict=True)
    ]
    return score_households(models, households, lang, contexts)


def score_registered_with(
    models: LoadedModels, registered: RegisteredHousehold, changes: Mapping[str, Any], lang: Language = "zh"
) -> ScoreResponse:
    """A registered household as it is now after `changes` to its latest row (what it declared, what a
    visit found), on top of its stored history and its village's context. `WhatIfError` for a change
    the household's schema refuses."""
    return score_registered_with_many(models, [(registered, changes)], lang)[0]


def score_registered_with_many(
    models: LoadedModels,
    changed: Sequence[tuple[RegisteredHousehold, Mapping[str, Any]]],
    lang: Language = "zh",
) -> list[ScoreResponse]:
    """`score_registered_with` for several households, in one pass."""
    households = [
        apply_changes(registered_input(registered), WhatIfChanges(household=dict(changes)))
        for registered, changes in changed
    ]
    contexts = [
        register_context(registered, household, SUBMITTED_WITH_HISTORY)
        for (registered, _), household in zip(changed, households, strict=True)
    ]
    return score_households(models, households, lang, contexts)


def flag_of(answer: ScoreResponse, village_id: str) -> dict[str, Any]:
    """An answer as one row of a flag frame (`store.cases`), for a case a person opens."""
    return {
        "county_id": answer.county_id or NO_COUNTY,
        "household_id": answer.household_id,
        "village_id": village_id,
        "round": answer.round,
        "category": answer.category,
        "category_rule": answer.category_rule,
        "poverty_risk": answer.poverty_risk,
        "relapse_risk": answer.relapse_risk,
        "risk_tier": answer.risk_tier,
        "reasons_json": json.dumps([reason.model_dump() for reason in answer.reasons], ensure_ascii=False),
        "model_name": ";".join(ref.name for ref in answer.models),
        "model_version": ";".join(ref.version for ref in answer.models),
        "main_cause": answer.main_cause.code,
        "data_completeness": answer.data_completeness,
    }


def score_household(
    models: LoadedModels,
    household: HouseholdIn,
    lang: Language = "zh",
    context: RegisterContext | None = None,
) -> ScoreResponse:
    """Score one household (on top of what the register holds of it, when `context` is given). Raises
    `PolicyError`/`FeatureInputError` for a household the policy cannot score (e.g. a year before the
    first poverty line)."""
    return score_households(models, [household], lang, [context])[0]


def score_households(
    models: LoadedModels,
    households: Sequence[HouseholdIn],
    lang: Language = "zh",
    contexts: Sequence[RegisterContext | None] | None = None,
) -> list[ScoreResponse]:
    """Score several households in one pass per county's models, each as if alone (module docstring).
    `CountyNotScored` when one is of a county the policy does not score for now."""
    return _score(models, households, lang, contexts or [None] * len(households)).responses


def _score(
    models: LoadedModels,
    households: Sequence[HouseholdIn],
    lang: Language,
    contexts: Sequence[RegisterContext | None],
) -> _Scored:
    """Each group of households scored by its county's models (`_scope_of`), the answers and the feature
    rows put back in the order of `households`."""
    groups: dict[str | None, list[int]] = {}
    for position, context in enumerate(contexts):
        groups.setdefault(_scope_of(models, context), []).append(position)
    if len(groups) <= 1:
        return _score_with(models_for(models, next(iter(groups), None)), households, lang, contexts)
    parts = [
        _score_with(
            models_for(models, county),
            [households[position] for position in positions],
            lang,
            [contexts[position] for position in positions],
        )
        for county, positions in groups.items()
    ]
    back = np.argsort([position for positions in groups.values() for position in positions], kind="stable")
    responses = [answer for part in parts for answer in part.responses]
    features = pd.concat([part.features for part in parts])
    return _Scored([responses[index] for index in back], features.iloc[back])


def _score_with(
    models: LoadedModels,
    households: Sequence[HouseholdIn],
    lang: Language,
    contexts: Sequence[RegisterContext | None],
) -> _Scored:
    """The households scored in one pass by `models` (one scope's)."""
    household_rows, member_rows = _independent_frames(households)
    household_rows, history, member_rows = _with_register(household_rows, member_rows, contexts)
    policy = models.predictor.policy
    frames = build_feature_frames(household_rows, member_rows if len(member_rows) else None, policy, history)
    features = frames.features
    scores = models.predictor.score_features(
        features, lang=lang, top_k=TOP_REASONS, known_inputs=frames.known_inputs
    )
    years = survey_years(household_rows, household_rows["round"].to_numpy(dtype=np.int64), policy)
    categories = monitoring_category(features, scores, policy, years, lang)
    names = [str(name) for name in features.columns]
    rows = _Rows(
        indicators=[dict(zip(names, values, strict=True)) for values in features.to_numpy().tolist()],
        poverty_risk=scores["poverty_risk"].tolist(),
        relapse_risk=scores["relapse_risk"].tolist(),
        risk_tier=tier_values(scores["risk_tier"]).tolist(),
        completeness=scores[COMPLETENESS].tolist(),
        sufficient=scores[SUFFICIENT].tolist(),
        missing_blocks=scores[MISSING_BLOCKS].tolist(),
        reasons=scores["reasons"].tolist(),
        category=categories["category"].tolist(),
        rule=categories["rule"].tolist(),
    )
    responses = [
        _response(models, household, rows, position, lang, contexts[position])
        for position, household in enumerate(households)
    ]
    return _Scored(responses, features)


@dataclass(frozen=True)
class _Rows:
    """The scored households as plain Python lists (row access in pandas costs more than the scoring)."""

    indicators: list[dict[str, float]]
    poverty_risk: list[float]
    relapse_risk: list[float]
    risk_tier: list[str | None]
    completeness: list[float]
    sufficient: list[bool]
    missing_blocks: list[tuple[str, ...]]
    reasons: list[list[dict[str, Any]]]
    category: list[str]
    rule: list[str]


def _independent_frames(households: Sequence[HouseholdIn]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All households' frames in one, keyed by position (household and village ids replaced), so that
    each is built as if alone."""
    return frames_of(households, keys=[str(position) for position in range(len(households))])


def _with_register(
    household_rows: pd.DataFrame, member_rows: pd.DataFrame, contexts: Sequence[RegisterContext | None]
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """The current rows with their village context, the earlier rounds' rows as history, and the
    members of both, every row keyed by its household's position (as `_independent_frames`)."""
    if all(context is None for context in contexts):
        return household_rows, None, member_rows
    others = np.full((len(contexts), 2), np.nan)
    history, members = [], [member_rows]
    for position, context in enumerate(contexts):
        if context is None:
            continue
        key = str(position)
        if context.village_others is not None:
            others[position] = context.village_others
        if context.history is not None:
            history.append(context.history.assign(household_id=key, village_id=key))
        if context.history_members is not None:
            members.append(context.history_members.assign(household_id=key))
    household_rows = household_rows.assign(**dict(zip(VILLAGE_CONTEXT, others.T, strict=True)))
    members = [frame for frame in members if len(frame)]
    member_frame = pd.concat(members, ignore_index=True) if members else member_rows
    return household_rows, pd.concat(history, ignore_index=True) if history else None, member_frame


def _response(
    models: LoadedModels,
    household: HouseholdIn,
    rows: _Rows,
    position: int,
    lang: Language,
    context: RegisterContext | None,
) -> ScoreResponse:
    reasons, indicators, category = rows.reasons[position], rows.indicators[position], rows.category[position]
    main, secondary = household_causes(reasons, indicators, models.causes)
    measures = (
        recommend_measures(
            main, secondary, indicators, models.predictor.policy.assistance, models.causes, lang
        )
        if category != NOT_MONITORED
        else []
    )
    return ScoreResponse(
        household_id=household.household_id,
        county_id=None if context is None else context.county_id,
        round=household.round,
        basis=NO_HISTORY if context is None else context.basis,
        poverty_risk=_optional(rows.poverty_risk[position]),
        relapse_risk=_optional(rows.relapse_risk[position]),
        risk_tier=rows.risk_tier[position],
        category=category,
        category_rule=rows.rule[position],
        data_completeness=_optional(rows.completeness[position]),
        income_to_line_ratio=_optional(indicators.get("income_to_line_ratio")),
        sufficient_data=bool(rows.sufficient[position]),
        missing_blocks=[_block(code, lang) for code in rows.missing_blocks[position]],
        reasons=[_reason(reason) for reason in reasons],
        main_cause=_cause(main, models.causes, lang),
        secondary_causes=[_cause(cause, models.causes, lang) for cause in secondary],
        measures=[MeasureOut(**vars(measure)) for measure in measures],
        models=list(models.model_refs),
    )


def _block(code: str, lang: Language) -> DataBlockOut:
    return DataBlockOut(code=code, label=block_labels()[code][lang])


def _cause(code: str, causes: CauseSettings, lang: Language) -> CauseOut:
    return CauseOut(code=code, label=causes.labels[code][lang])


def _reason(reason: dict[str, Any]) -> ReasonOut:
    return ReasonOut(
        indicator=str(reason["indicator"]),
        value=_optional(reason["value"]),
        contribution=float(reason["contribution"]),
        effect_pp=_optional(reason.get("effect_pp")),
        sentence=str(reason["sentence"]),
    )


def _optional(value: Any) -> float | None:
    return None if value is None or pd.isna(value) or math.isinf(float(value)) else float(value)


# --------------------------------------------------------------------------------------------- what if

FIXED_FIELDS = ("household_id", "village_id", "round", "members")


def apply_changes(household: HouseholdIn, changes: WhatIfChanges) -> HouseholdIn:
    """The household with the proposed changes; `WhatIfError` naming every change that cannot apply."""
    problems = [
        f"changes.household.{name}: cannot change" for name in changes.household if name in FIXED_FIELDS
    ]
    body = household.model_dump(exclude_none=True)
    body.update({name: value for name, value in changes.household.items() if name not in FIXED_FIELDS})
    members = {member["member_id"]: member for member in body["members"]}
    for number, change in enumerate(changes.members):
        if change.member_id not in members:
            problems.append(
                f"changes.members.{number}.member_id: no member {change.member_id!r} in the household"
            )
            continue
        if "member_id" in change.changes:
            problems.append(f"changes.members.{number}.changes.member_id: cannot change")
        members[change.member_id] = {
            **members[change.member_id],
            **change.changes,
            "member_id": change.member_id,
        }
    if problems:
        raise WhatIfError("; ".join(problems))
    body["members"] = list(members.values())
    try:
        return HouseholdIn.model_validate(body)
    except ValidationError as error:
        raise WhatIfError(_changed_field_errors(error)) from error


def _changed_field_errors(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in error.errors(include_input=False)
    )


def what_if(
    models: LoadedModels, household: HouseholdIn, changes: WhatIfChanges, lang: Language
) -> WhatIfResponse:
    """The household scored as it is and after `changes`, with the reasons that changed."""
    return _what_if(models, household, apply_changes(household, changes), lang, (None, None))


def what_if_registered(
    models: LoadedModels, registered: RegisteredHousehold, changes: WhatIfChanges, lang: Language
) -> WhatIfResponse:
    """`what_if` on a household as the register holds it: both sides on its stored history and its
    village's context, so that "before" is the answer batch scoring gives it."""
    household = registered_input(registered)
    changed = apply_changes(household, changes)
    contexts = (
        register_context(registered, household, FROM_REGISTER),
        register_context(registered, changed, SUBMITTED_WITH_HISTORY),
    )
    return _what_if(models, household, changed, lang, contexts)


def _what_if(
    models: LoadedModels,
    household: HouseholdIn,
    changed: HouseholdIn,
    lang: Language,
    contexts: tuple[RegisterContext | None, RegisterContext | None],
) -> WhatIfResponse:
    scored = _score(models, [household, changed], lang, list(contexts))
    before, after = scored.responses
    return WhatIfResponse(
        household_id=household.household_id,
        before=before,
        after=after,
        poverty_risk_change=_difference(after.poverty_risk, before.poverty_risk),
        relapse_risk_change=_difference(after.relapse_risk, before.relapse_risk),
        changed_reasons=_changed_reasons(before, after, scored.features),
        models=list(before.models),
    )


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _changed_reasons(
    before: ScoreResponse, after: ScoreResponse, features: pd.DataFrame
) -> list[ChangedReason]:
    """Indicators among the top reasons on either side that entered, left, or changed value or weight."""
    old = {reason.indicator: reason for reason in before.reasons}
    new = {reason.indicator: reason for reason in after.reasons}
    changed = []
    for indicator in dict.fromkeys([*old, *new]):
        value_before = _optional(features.iloc[0].get(indicator))
        value_after = _optional(features.iloc[1].get(indicator))
        was, now = old.get(indicator), new.get(indicator)
        same = (
            was is not None
            and now is not None
            and value_before == value_after
            and math.isclose(was.contribution, now.contribution, abs_tol=1e-9)
        )
        if same:
            continue
        changed.append(
            ChangedReason(
                indicator=indicator,
                value_before=value_before,
                value_after=value_after,
                contribution_before=None if was is None else was.contribution,
                contribution_after=None if now is None else now.contribution,
                effect_pp_before=None if was is None else was.effect_pp,
                effect_pp_after=None if now is None else now.effect_pp,
                sentence_after=None if now is None else now.sentence,
            )
        )
    return changed
