"""The local copy of the champions: written whole, read back identical, used when the registry fails."""

from __future__ import annotations

import shutil
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.policy import Policy
from serving.model_cache import (
    CacheMissing,
    Champions,
    load_champions,
    load_county_champions,
    save_champions,
)
from serving.schemas import HouseholdIn
from serving.scoring import ServiceStartError, load_models, score_household
from training.train import TrainedTask


def _models(trained: dict[str, TrainedTask]) -> dict[str, Any]:
    return {task: trained[task].model.registered_as(f"povrisk-{task}", "4") for task in trained}


def test_a_saved_copy_predicts_exactly_as_the_original(
    trained: dict[str, TrainedTask], county: Any, tmp_path: Path
) -> None:
    models = _models(trained)
    save_champions(models, {"poverty": ["champion"], "relapse": ["champion"]}, tmp_path / "cache")
    loaded, card = load_champions(tmp_path / "cache", ("poverty", "relapse"))
    assert card["aliases"]["poverty"] == ["champion"]
    rows = trained["relapse"].held_out.drop(columns=["label", "held_out_risk"])
    for task in models:
        assert loaded[task].registered_version == "4"
        np.testing.assert_array_equal(loaded[task].predict_proba(rows), models[task].predict_proba(rows))


def test_a_copy_with_county_models_reads_them_back_exactly(
    trained: dict[str, TrainedTask], tmp_path: Path
) -> None:
    """The counties' own champions beside the shared ones (`counties/<county>/<task>`), with their
    aliases; a county recorded without any has none, a county not recorded is left out."""
    models = _models(trained)
    own = {task: trained[task].model.registered_as(f"povrisk-{task}-C02", "2") for task in trained}
    counties = {
        "C02": Champions(own, {"poverty": ["champion"], "relapse": ["champion"]}),
        "C03": Champions({"poverty": own["poverty"]}, {"poverty": ["champion"]}),
        "C04": Champions(),
    }
    save_champions(models, {}, tmp_path / "cache", counties)
    assert sorted(path.name for path in (tmp_path / "cache" / "counties").iterdir()) == ["C02", "C03"]
    read = load_county_champions(tmp_path / "cache", ("C02", "C03", "C04", "C05"))
    assert set(read) == {"C02", "C03", "C04"} and not read["C04"].models
    assert set(read["C03"].models) == {"poverty"} and read["C03"].aliases == {"poverty": ["champion"]}
    rows = trained["relapse"].held_out.drop(columns=["label", "held_out_risk"])
    for task, model in read["C02"].models.items():
        assert (model.registered_name, model.registered_version) == (f"povrisk-{task}-C02", "2")
        np.testing.assert_array_equal(model.predict_proba(rows), own[task].predict_proba(rows))
    shutil.rmtree(tmp_path / "cache" / "counties" / "C03" / "poverty")
    with pytest.raises(CacheMissing, match=r"counties/C03 has no poverty model"):
        load_county_champions(tmp_path / "cache", ("C03",))
    assert set(load_champions(tmp_path / "cache", ("poverty", "relapse"))[0]) == {"poverty", "relapse"}


def test_an_incomplete_copy_is_missing(trained: dict[str, TrainedTask], tmp_path: Path) -> None:
    with pytest.raises(CacheMissing, match="no local copy"):
        load_champions(tmp_path / "nothing", ("poverty", "relapse"))
    save_champions({"poverty": _models(trained)["poverty"]}, {}, tmp_path / "half")
    with pytest.raises(CacheMissing, match="no relapse model"):
        load_champions(tmp_path / "half", ("poverty", "relapse"))


def _failing_registry(uri: str = "http://mlflow.example:5000") -> Any:
    def fail(*_: Any) -> Any:
        raise ConnectionError(f"cannot reach {uri}")

    return types.SimpleNamespace(tracking_uri=lambda: uri, load_champion=fail, version_aliases=fail)


def test_without_the_registry_the_service_serves_the_local_copy_and_says_so(
    trained: dict[str, TrainedTask],
    policy: Policy,
    household_body: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "cache"))
    save_champions(_models(trained), {"poverty": ["champion"], "relapse": ["champion"]}, tmp_path / "cache")
    with caplog.at_level("WARNING", logger="serving.scoring"):
        models = load_models(policy, tracking=_failing_registry())
    assert models.card.source == "cache"
    assert [(ref.name, ref.version) for ref in models.model_refs] == [
        ("povrisk-poverty", "4"),
        ("povrisk-relapse", "4"),
    ]
    assert "serving the local copy" in caplog.text and "cannot reach" in caplog.text
    assert score_household(models, HouseholdIn.model_validate(household_body)).poverty_risk is not None


def test_without_registry_and_copy_the_service_refuses_to_start(
    policy: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ServiceStartError, match=r"no usable champion .* and no local copy"):
        load_models(policy, tracking=_failing_registry())


def test_loading_from_the_registry_refreshes_the_copy(
    registry: str, policy: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    monkeypatch.setenv("POVRISK_MODEL_CACHE", str(tmp_path / "cache"))
    models = load_models(policy)
    assert models.card.source == "registry"
    assert all("champion" in model.aliases for model in models.card.models)
    copied, _ = load_champions(tmp_path / "cache", ("poverty", "relapse"))
    assert {task: model.registered_version for task, model in copied.items()} == {
        "poverty": "1",
        "relapse": "1",
    }
