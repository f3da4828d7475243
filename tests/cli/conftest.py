"""Shared by the end-to-end command tests: one temporary folder per test module holding its own MLflow
store and flag store, set through the environment as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def workplace(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def local_stores(workplace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLFLOW_TRACKING_URI and POVRISK_DB_URL pointing into the module's workplace."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workplace / 'mlflow.db'}")
    monkeypatch.setenv("POVRISK_DB_URL", f"sqlite:///{workplace / 'flags.db'}")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
