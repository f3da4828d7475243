"""The analyst's round notebook runs top to bottom through `jupyter nbconvert` from the venv, on a small
simulated county and a scratch registry, and keeps its plots as PNG outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "analyst_round.ipynb"


def _png_outputs(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def test_the_round_runs_through_nbconvert_and_decides_both_promotions(tmp_path: Path) -> None:
    jupyter = Path(sys.executable).with_name("jupyter")
    environment = os.environ | {
        "POVRISK_NOTEBOOK_WORK": str(tmp_path),
        "POVRISK_NOTEBOOK_HOUSEHOLDS": "800",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    environment.pop("POVRISK_COUNTY", None)
    environment.pop("POVRISK_ROUND_DATA", None)
    completed = subprocess.run(
        [
            str(jupyter),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output-dir",
            str(tmp_path),
            "--ExecutePreprocessor.timeout=900",
            str(NOTEBOOK),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    executed = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert _png_outputs(executed) >= 4  # intervals and calibration, both tasks
    assert "<Figure" not in str(outputs)
    text = str(outputs)
    assert "promoted" in text and "roc_auc" in text
    # the notebook read the survey folder it was given (here: the one it simulated into)
    assert (tmp_path / "county" / "households.parquet").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for task in ("poverty", "relapse"):
        versions = client.search_model_versions(f"name='povrisk-{task}'")
        assert len(versions) == 2  # the champion it made, the challenger it trained
        assert str(client.get_model_version_by_alias(f"povrisk-{task}", "champion").version) in {"1", "2"}


def test_the_saved_notebook_shows_its_plots() -> None:
    """The notebook in the repository was saved executed: a reader sees the PNG plots without running it."""
    saved = nbformat.read(NOTEBOOK, as_version=4)
    assert _png_outputs(saved) >= 4
    assert "<Figure" not in str([cell.get("outputs", []) for cell in saved.cells])
