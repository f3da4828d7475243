"""A county scored by models of its own (`Policy.county_models`) on the workbench: the household page of
a registered household of such a county shows its county model's answer, and a county the policy does
not score until its own model has a champion gets a page saying so (409), in the reader's words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from features.policy import Policy
from monitoring.causes import load_cause_settings
from serving.model_cache import Champions
from serving.scoring import LoadedModels, assembled_models, score_registered
from store.register import registered_household
from tests.serving.conftest import county_policy
from training.train import TrainedTask
from workbench.app import WorkbenchSettings, build_workbench

from .conftest import CADRE_VILLAGES, COUNTY, Clock, household_in, log_in
from .test_procedure_pages import _fresh

TASKS = ("poverty", "relapse")


def _models(
    policy: Policy,
    trained: dict[str, TrainedTask],
    own: dict[str, TrainedTask] | None,
    until_trained: str = "shared_model",
) -> LoadedModels:
    """The shared models, and `own` as the workbench county's own champions (none: it has none yet)."""
    shared = {task: trained[task].model.registered_as(f"povrisk-{task}", "1") for task in TASKS}
    counties = {}
    if own is not None:
        county_models = {
            task: own[task].model.registered_as(f"povrisk-{task}-{COUNTY}", "1") for task in TASKS
        }
        counties[COUNTY] = Champions(county_models, {task: ["champion"] for task in TASKS})
    return assembled_models(
        county_policy(policy, COUNTY, until_trained=until_trained),
        Champions(shared, {task: ["champion"] for task in TASKS}),
        counties,
        "registry",
        "sqlite:///test",
        load_cause_settings(),
    )


@contextmanager
def _client(store_engine: Engine, models: LoadedModels) -> Iterator[TestClient]:
    settings = WorkbenchSettings(store_engine, lambda: models, clock=Clock())
    app = Starlette(routes=[Mount("/app", app=build_workbench(settings))])
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        response = log_in(client, "li.cadre")
        assert response.status_code == 303, response.text
        yield client


@pytest.fixture
def own_model_models(
    policy: Policy, trained: dict[str, TrainedTask], county_trained: dict[str, TrainedTask]
) -> LoadedModels:
    return _models(policy, trained, county_trained)


def test_a_household_of_a_county_of_its_own_model_is_shown_its_county_models_answer(
    store_engine: Engine, own_model_models: LoadedModels, loaded: Any
) -> None:
    household = household_in(store_engine, CADRE_VILLAGES)
    registered = registered_household(store_engine, COUNTY, household)
    assert registered is not None
    expected = score_registered(own_model_models, registered, "zh")
    shared = score_registered(loaded, registered, "zh")
    assert [ref.name for ref in expected.models] == [f"povrisk-poverty-{COUNTY}", f"povrisk-relapse-{COUNTY}"]
    shown_expected = [f"{expected.poverty_risk:.2f}", f"{expected.relapse_risk:.2f}"]
    assert shown_expected != [f"{shared.poverty_risk:.2f}", f"{shared.relapse_risk:.2f}"]
    with _client(store_engine, own_model_models) as client:
        page = client.get(f"/app/households/{COUNTY}/{household}")
    assert page.status_code == 200, page.text
    assert re.findall(r'<p class="value">([^<]+)</p>', page.text)[:2] == shown_expected
    for reason in expected.reasons:
        assert reason.sentence in page.text


def test_a_county_refused_until_its_own_model_has_a_champion_gets_a_page_saying_so(
    store_engine: Engine, policy: Policy, trained: dict[str, TrainedTask]
) -> None:
    household = household_in(store_engine, CADRE_VILLAGES)
    with _client(store_engine, _models(policy, trained, None, until_trained="refuse")) as client:
        page = client.get(f"/app/households/{COUNTY}/{household}")
    assert page.status_code == 409
    assert "本县暂不评分" in page.text and f"{COUNTY} 县的农户由本县自己的模型评分" in page.text


def test_a_phones_visit_in_a_county_refused_for_now_is_refused_in_words_and_the_rest_applied(
    store_engine: Engine, policy: Policy, trained: dict[str, TrainedTask], loaded: Any
) -> None:
    """A phone's queue sent after the policy stopped scoring the county (its own model has no champion,
    `refuse`): the visit whose corrections would be scored comes back refused with the reason, written
    nowhere; a step without corrections in the same sync is applied."""
    from store.amendments import household_amendments

    from .test_offline import _case_form, _grant, _submission

    corrected, plain = _fresh(store_engine, 0), _fresh(store_engine, 1)
    serving = {"models": loaded}
    settings = WorkbenchSettings(store_engine, lambda: serving["models"], clock=Clock())
    app = Starlette(routes=[Mount("/app", app=build_workbench(settings))])
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        assert log_in(client, "li.cadre").status_code == 303
        grant = _grant(client)
        visit = {**_case_form(client, corrected), "step": "visit_at_risk", "fix.income_wages": "0"}
        step = {**_case_form(client, plain), "step": "visit_at_risk", "note": "no corrections"}
        serving["models"] = _models(policy, trained, None, until_trained="refuse")  # the policy changed
        answer = client.post(
            "/app/sync",
            json={"submissions": [_submission(grant, "step", visit), _submission(grant, "step", step)]},
        )
    assert answer.status_code == 200, answer.text
    refused, applied = answer.json()["results"]
    assert refused["outcome"] == "refused" and f"{COUNTY} 县的农户由本县自己的模型评分" in refused["message"]
    assert applied["outcome"] == "applied"
    assert household_amendments(store_engine, COUNTY, corrected).empty
