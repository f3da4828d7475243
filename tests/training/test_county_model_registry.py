"""Counties with models of their own (the policy's county_models), in a real MLflow SQLite store: which
registered model scores a county, and promotion / rollback of a county's own model."""

from __future__ import annotations

import pytest

from features.policy import CountyModels, PolicyError, policy_from_mapping
from training.tracking import (
    MODEL_COUNTY_TAG,
    OwnModelMissing,
    _client,
    load_champion,
    load_champion_predictor,
    log_and_register,
    promote,
    registered_name,
    rollback,
    scoring_versions,
    scoring_versions_by_county,
)


def _with_county_models(policy, counties, until_trained="shared_model"):
    return policy.model_copy(
        update={"county_models": CountyModels(counties=counties, until_trained=until_trained)}
    )


def test_registered_names_of_the_shared_and_a_county_model():
    assert registered_name("poverty") == "povrisk-poverty"
    assert registered_name("relapse", "C02") == "povrisk-relapse-C02"


def test_the_policy_names_counties_by_safe_distinct_identifiers(policy):
    settings = policy.model_dump(mode="json")
    assert policy.county_models.counties == () and not policy.county_models.has_own_model("C01")
    listed = policy_from_mapping(settings | {"county_models": {"counties": ["C02", "C03"]}})
    assert listed.county_models.has_own_model("C02") and not listed.county_models.has_own_model("C01")
    assert not listed.county_models.has_own_model(None)
    assert listed.county_models.until_trained == "shared_model"
    for counties, words in (
        (["C02", "C02"], "listed twice"),
        (["C 02"], "letters, digits"),
        ([""], "empty"),
    ):
        with pytest.raises(PolicyError, match=words):
            policy_from_mapping(settings | {"county_models": {"counties": counties}})
    with pytest.raises(PolicyError, match="until_trained"):
        policy_from_mapping(settings | {"county_models": {"counties": [], "until_trained": "maybe"}})


@pytest.mark.integration
def test_a_county_is_scored_by_its_own_champion_task_by_task(policy, trained):
    for task in ("poverty", "relapse"):
        log_and_register(trained[task], policy)
        assert promote(task, policy)["promoted"]
    registered = log_and_register(trained["poverty"], policy, "county:C02", county="C02")
    assert (registered["model_name"], registered["version"]) == ("povrisk-poverty-C02", 1)
    run = _client().get_run(registered["run_id"])
    assert run.data.tags[MODEL_COUNTY_TAG] == "C02"

    own = _with_county_models(policy, ("C02", "C03"))
    shared = {"poverty": ("povrisk-poverty", "1"), "relapse": ("povrisk-relapse", "1")}
    # a challenger is not a champion: C02 is still scored by the shared models
    assert scoring_versions(own, "C02") == shared
    decision = promote("poverty", own, county="C02")
    assert decision["promoted"] and decision["model_name"] == "povrisk-poverty-C02"
    assert decision["county"] == "C02"

    assert scoring_versions(own, "C02") == shared | {"poverty": ("povrisk-poverty-C02", "1")}
    assert scoring_versions(own, "C01") == shared, "a county the policy does not list: the shared models"
    assert scoring_versions(own, None) == shared
    assert scoring_versions(policy, "C02") == shared, "a policy without county models: the shared models"
    assert scoring_versions(own, "C03") == shared, "until_trained shared_model: the shared models"
    by_county = scoring_versions_by_county(own, ["C01", "C02", "C03"])
    assert by_county["C02"]["poverty"] == ("povrisk-poverty-C02", "1") and by_county["C01"] == shared

    refusing = _with_county_models(policy, ("C02", "C03"), "refuse")
    assert scoring_versions(refusing, "C02") == {"poverty": ("povrisk-poverty-C02", "1")}
    with pytest.raises(OwnModelMissing, match=r"county C03 .*povrisk train --task T --county C03"):
        scoring_versions(refusing, "C03")
    assert scoring_versions(refusing, "C01") == shared

    predictor = load_champion_predictor(own, "C02")
    assert predictor.poverty is not None and predictor.poverty.registered_name == "povrisk-poverty-C02"
    assert predictor.relapse is not None and predictor.relapse.registered_name == "povrisk-relapse"
    assert load_champion("poverty", "C02").registered_name == "povrisk-poverty-C02"


@pytest.mark.integration
def test_a_county_model_is_promoted_and_rolled_back_apart_from_the_shared_one(policy, trained):
    log_and_register(trained["poverty"], policy)
    promote("poverty", policy)
    for _ in range(2):
        log_and_register(trained["poverty"], policy, "county:C02", county="C02")
        promote("poverty", policy, county="C02", force=True, force_reason="test", by="tester")
    assert load_champion("poverty", "C02").registered_version == "2"

    undone = rollback("poverty", county="C02", by="tester")
    assert (undone["model_name"], undone["champion_version"], undone["county"]) == (
        "povrisk-poverty-C02",
        1,
        "C02",
    )
    assert load_champion("poverty", "C02").registered_version == "1"
    assert load_champion("poverty").registered_version == "1", "the shared champion did not move"
