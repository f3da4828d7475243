"""Shared fixtures of the serving tests: a small simulated county, both tasks trained on it, and a
temporary MLflow registry in which both trained models are registered and promoted to champion.

Session-scoped: simulating and training take a few seconds and are done once.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from features.policy import Policy, load_policy
from models.predictor import RiskPredictor
from serving.schemas import ModelRef
from survey.io import Survey
from survey.simulate import CountySettings, simulate_county
from training.tracking import log_and_register, promote
from training.train import TrainedTask, train_task

SMALL_COUNTY = CountySettings(households=1_000, villages=10, rounds=3, seed=0, monte_carlo_draws=5)
OTHER_COUNTY = CountySettings(households=600, villages=6, rounds=3, seed=7, monte_carlo_draws=5)
"""A county unlike the small one, whose models are registered as counties' own (`county_registry`)."""
TASKS = ("poverty", "relapse")
OWN_BOTH, OWN_POVERTY = "C02", "C03"
"""In `county_registry`: C02 has its own champion of both tasks, C03 of the poverty task only."""

# A household in hardship: exited poverty, low income, a seriously ill head, a dangerous house. Every block
# of the survey answered, so that its data is complete (features/completeness.py).
HOUSEHOLD: dict[str, Any] = {
    "household_id": "H-test",
    "village_id": "V-test",
    "round": 2,
    "survey_year": 2016,
    "income_wages": 2_000.0,
    "income_agriculture_net": 500.0,
    "income_business": 0.0,
    "income_transfers": 800.0,
    "income_property": 0.0,
    "production_costs": 600.0,
    "medical_expenses": 3_000.0,
    "schooling_expenses": 400.0,
    "debt": 5_000.0,
    "arable_land_mu": 2.0,
    "livestock_units": 0.5,
    "housing_area_m2": 60.0,
    "housing_structure": "earth_wood",
    "dangerous_house": True,
    "safe_drinking_water": True,
    "electricity": True,
    "cooking_fuel": "firewood",
    "distance_road_km": 3.0,
    "distance_market_km": 12.0,
    "distance_clinic_km": 6.0,
    "durable_assets": 1.0,
    "medical_insurance": True,
    "pension_insurance": False,
    "shock_serious_illness": True,
    "shock_disability": False,
    "shock_disaster": False,
    "shock_accident": False,
    "shock_job_loss": False,
    "shock_industry_failure": False,
    "shock_schooling_cost": False,
    "poverty_status": "exited",
    "receiving_assistance": True,
    "assistance_ends": False,
    "members": [
        {
            "member_id": "1",
            "relation_to_head": "head",
            "sex": "male",
            "age": 58,
            "education_years": 5,
            "in_school": False,
            "health_status": "serious_illness",
            "disability": False,
            "labour_capacity": "none",
            "migrant_work_months": 0,
        },
        {
            "member_id": "2",
            "relation_to_head": "spouse",
            "sex": "female",
            "age": 55,
            "education_years": 3,
            "in_school": False,
            "health_status": "healthy",
            "disability": False,
            "labour_capacity": "weak",
            "migrant_work_months": 0,
        },
        {
            "member_id": "3",
            "relation_to_head": "grandchild",
            "sex": "male",
            "age": 9,
            "education_years": 3,
            "in_school": True,
            "health_status": "healthy",
            "disability": False,
            "labour_capacity": "none",
            "migrant_work_months": 0,
        },
    ],
}


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="session")
def county() -> Survey:
    return simulate_county(SMALL_COUNTY)


@pytest.fixture(scope="session")
def trained(county: Survey, policy: Policy) -> dict[str, TrainedTask]:
    return {task: train_task(county, task, policy, seed=0) for task in TASKS}


@pytest.fixture(scope="session")
def predictor(trained: dict[str, TrainedTask], policy: Policy) -> RiskPredictor:
    return RiskPredictor(policy, poverty=trained["poverty"].model, relapse=trained["relapse"].model)


@pytest.fixture
def household_body() -> dict[str, Any]:
    """A valid `HouseholdIn` body (a fresh copy per test)."""
    return copy.deepcopy(HOUSEHOLD)


@pytest.fixture(scope="session")
def registry(
    trained: dict[str, TrainedTask], policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Tracking URI of a temporary MLflow store holding both tasks, registered and promoted to champion.

    The environment variable is set only while registering; tests that need it set it themselves.
    """
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for task in TASKS:
            log_and_register(trained[task], policy)
            decision = promote(task, policy)
            assert decision["promoted"], decision
    return uri


@pytest.fixture(scope="session")
def other_county() -> Survey:
    return simulate_county(OTHER_COUNTY)


@pytest.fixture(scope="session")
def county_trained(other_county: Survey, policy: Policy) -> dict[str, TrainedTask]:
    """Both tasks trained on `other_county`: models of a county of its own."""
    return {task: train_task(other_county, task, policy, seed=0) for task in TASKS}


@pytest.fixture(scope="session")
def county_registry(
    trained: dict[str, TrainedTask],
    county_trained: dict[str, TrainedTask],
    policy: Policy,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """Tracking URI of a temporary MLflow store holding the shared champions (version 1 of
    povrisk-<task>, as `registry`) and counties' own champions: both tasks of `OWN_BOTH`
    (povrisk-<task>-C02), the poverty task of `OWN_POVERTY` (povrisk-poverty-C03), all trained on
    `other_county`. No other county has a model of its own."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow-counties') / 'mlflow.db'}"
    own = [(OWN_BOTH, task) for task in TASKS] + [(OWN_POVERTY, "poverty")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for task in TASKS:
            log_and_register(trained[task], policy)
            assert promote(task, policy)["promoted"]
        for county, task in own:
            log_and_register(county_trained[task], policy, f"county:{county}", county=county)
            assert promote(task, policy, county=county)["promoted"]
    return uri


def county_policy(policy: Policy, *counties: str, until_trained: str = "shared_model") -> Policy:
    """`policy` giving `counties` models of their own."""
    from features.policy import CountyModels

    update = CountyModels.model_validate({"counties": counties, "until_trained": until_trained})
    return policy.model_copy(update={"county_models": update})


@pytest.fixture(scope="session")
def loaded(trained: dict[str, TrainedTask], policy: Policy) -> Any:
    """The trained models as the service holds them (no registry): predictor, refs, card, causes."""
    from monitoring.causes import load_cause_settings
    from serving.scoring import LoadedModels, model_card

    models = {task: trained[task].model.registered_as(f"povrisk-{task}", "1") for task in TASKS}
    refs = tuple(ModelRef(name=f"povrisk-{task}", version="1") for task in TASKS)
    return LoadedModels(
        predictor=RiskPredictor(policy, poverty=models["poverty"], relapse=models["relapse"]),
        model_refs=refs,
        card=model_card(models, {task: ["champion"] for task in TASKS}, policy, "registry", "sqlite:///test"),
        causes=load_cause_settings(),
    )


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A key file with one key per role (the cadre bound to V-test and V0001); `path` and the keys."""
    from serving.keys import add_key

    path = tmp_path_factory.mktemp("keys") / "keys.yaml"
    return {
        "path": path,
        "cadre": add_key(path, "cadre-li", "cadre", ("V-test", "V0001")),
        "monitor": add_key(path, "monitor-county", "monitor"),
        "analyst": add_key(path, "analyst-wang", "analyst"),
    }


@pytest.fixture(scope="session")
def service_app() -> Any:
    """The service's ASGI app, built once per process: BentoML registers its Prometheus metrics when an
    app first starts, and a second app would register them again. Each test client entering it starts a
    new service instance, which reads the environment of the moment (registry, policy, keys, database)."""
    from serving.service import PovertyRiskService

    return PovertyRiskService.to_asgi()


def service_variables(registry: str, api_keys: dict[str, Any], folder: Path) -> dict[str, str]:
    """Registry, keys, audit database and model cache in `folder`, and a fixed log salt."""
    return {
        "MLFLOW_TRACKING_URI": registry,
        "POVRISK_API_KEYS_FILE": str(api_keys["path"]),
        "POVRISK_DB_URL": f"sqlite:///{folder / 'povrisk.db'}",
        "POVRISK_MODEL_CACHE": str(folder / "cache"),
        "POVRISK_LOG_SALT": "test-salt",
    }


@pytest.fixture
def service_env(
    registry: str, api_keys: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment a service process needs: registry, keys, audit database, cache, log salt."""
    environment = service_variables(registry, api_keys, tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment
