"""Packaging: the run-time pins, the packaged champions, and a real `bentoml build` whose Bento serves
the packaged champions when its registry has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from features.policy import Policy
from serving.bento import (
    PACKAGED_MODEL,
    REQUIREMENTS,
    PackagingError,
    build_bento,
    package_champions,
    packaged_model_tag,
    pinned_requirements,
    runtime_pins,
)
from serving.launch import running_service


def test_the_runtime_pins_hold_what_the_service_imports_and_no_test_tools() -> None:
    names = {pin.split("==")[0] for pin in runtime_pins()}
    assert {"bentoml", "lightgbm", "mlflow", "shap", "pandas", "sqlalchemy", "psycopg-binary"} <= names
    assert not names & {"pytest", "schemathesis", "hypothesis", "mypy", "ruff", "povrisk"}
    assert all("==" in pin for pin in runtime_pins())


def test_the_committed_requirements_match_the_installed_packages() -> None:
    """requirements-serve.txt is what the Bento installs: `make lock` keeps it equal to the pins."""
    assert REQUIREMENTS.read_text(encoding="utf-8") == pinned_requirements()


def test_the_packaged_model_tag_comes_from_the_environment_or_the_bentos_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POVRISK_PACKAGED_MODEL", raising=False)
    bento_file = tmp_path / "bento.yaml"
    assert packaged_model_tag(bento_file) is None  # not in a Bento
    models = [{"tag": "other:1"}, {"tag": f"{PACKAGED_MODEL}:abc"}]
    bento_file.write_text(yaml.safe_dump({"models": models}), encoding="utf-8")
    assert packaged_model_tag(bento_file) == f"{PACKAGED_MODEL}:abc"
    monkeypatch.setenv("POVRISK_PACKAGED_MODEL", f"{PACKAGED_MODEL}:xyz")
    assert packaged_model_tag(bento_file) == f"{PACKAGED_MODEL}:xyz"


def test_packaging_without_a_champion_is_a_clear_error(
    policy: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    with pytest.raises(PackagingError, match="no champion to package"):
        package_champions(policy)


@pytest.mark.integration
def test_a_built_bento_serves_its_packaged_champions_when_the_registry_has_none(
    registry: str,
    policy: Policy,
    service_env: dict[str, str],
    api_keys: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    packaged = package_champions(policy)
    assert packaged.labels["poverty_version"] == "1" and packaged.labels["policy_version"] == policy.version
    tag = build_bento()
    bento = home / "bentos" / tag.replace(":", "/")
    manifest = yaml.safe_load((bento / "bento.yaml").read_text(encoding="utf-8"))
    assert [model["tag"] for model in manifest["models"]] == [packaged.model_tag]
    assert "libgomp1" in (bento / "env" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    pinned = (bento / "env" / "python" / "requirements.txt").read_text(encoding="utf-8")
    assert "lightgbm==" in pinned and "pytest" not in pinned
    assert (bento / "src" / "serving" / "service.py").exists() and not (bento / "src" / "tests").exists()

    environment = {
        **service_env,
        "BENTOML_HOME": str(home),
        "POVRISK_MODEL_CACHE": str(tmp_path / "no-copy"),
    }
    empty_registry = f"sqlite:///{tmp_path / 'empty.db'}"
    log = tmp_path / "bento.log"
    with running_service(tracking_uri=empty_registry, log=log, environment=environment, service=tag) as url:
        card = httpx.get(f"{url}/model", headers={"X-API-Key": api_keys["analyst"]}, timeout=30).json()
    assert card["source"] == "packaged"
    assert [model["version"] for model in card["models"]] == ["1", "1"]
    assert "serving the champions packaged in the Bento" in log.read_text()
