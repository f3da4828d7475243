"""No household id reaches MLflow: the held-out rows carry keyed hashes, the monitoring tables and report
too; promotion still matches the rows of two runs hashed with the same key, and says so when it cannot."""

from __future__ import annotations

import stat
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from training import tracking
from training.pseudonyms import (
    HOUSEHOLD_REF,
    household_key,
    household_ref,
    key_fingerprint,
    pseudonymised,
    pseudonymised_folder,
    pseudonymised_text,
)


def client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking.tracking_uri())


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def ids_found(folder: Path, household_ids: set[str]) -> dict[str, list[str]]:
    """For each file under `folder` holding a household id: the ids found, in its bytes or, for a
    Parquet file, in any of its cells, columns or index labels."""
    found: dict[str, list[str]] = {}
    for path in files_under(folder):
        data = path.read_bytes()
        hits = {household_id for household_id in household_ids if household_id.encode() in data}
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path).reset_index()
            cells = {str(value) for column in frame.columns for value in frame[column].unique()}
            hits |= household_ids & (cells | {str(column) for column in frame.columns})
        if hits:
            found[str(path.relative_to(folder))] = sorted(hits)[:5]
    return found


@pytest.mark.integration
def test_no_household_id_is_logged_with_a_training_run(tmp_path, county, trained, policy, monkeypatch):
    monkeypatch.delenv("POVRISK_ID_SALT", raising=False)
    result = tracking.log_and_register(trained["poverty"], policy)
    run_folder = Path(
        mlflow.artifacts.download_artifacts(run_id=result["run_id"], dst_path=str(tmp_path / "run"))
    )
    model_folder = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{result['model_name']}/{result['version']}",
            dst_path=str(tmp_path / "model"),
        )
    )
    assert (run_folder / "held_out" / "held_out.parquet").is_file()
    assert (model_folder / "MLmodel").is_file()
    household_ids = {str(value) for value in county.households["household_id"].unique()}
    assert ids_found(run_folder, household_ids) == {}
    assert ids_found(model_folder, household_ids) == {}
    run = client().get_run(result["run_id"])
    logged = " ".join([*run.data.tags.values(), *run.data.params.values(), *run.data.metrics.keys()])
    assert not [household_id for household_id in household_ids if household_id in logged]

    key_file = tmp_path / ".povrisk" / "id-key"  # beside the SQLite store, made on first use
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = household_key(tmp_path)
    assert run.data.tags["household_key"] == key_fingerprint(key)
    rows = tracking.held_out_rows(result["run_id"])
    assert rows.index.names == [HOUSEHOLD_REF, "round"]
    held_out = trained["poverty"].held_out
    expected = [household_ref(str(household), key) for household in held_out.index.get_level_values(0)]
    assert rows.index.get_level_values(0).tolist() == expected
    assert rows.columns.tolist() == held_out.columns.tolist()


@pytest.mark.integration
def test_promotion_matches_rows_of_the_same_key_and_says_so_when_keys_differ(trained, policy, monkeypatch):
    good = trained["poverty"]
    monkeypatch.setenv("POVRISK_ID_SALT", "the first key")
    tracking.log_and_register(good, policy)
    assert tracking.promote("poverty", policy)["promoted"]

    monkeypatch.setenv("POVRISK_ID_SALT", "another key")
    tracking.log_and_register(good, policy)
    decision = tracking.promote("poverty", policy)
    assert not decision["promoted"]
    assert (
        "hashed with different keys" in decision["comparison"]
        and "logged held-out roc_auc" in decision["reason"]
    )
    assert decision["champion_value"] == pytest.approx(good.metrics["roc_auc"])
    assert decision["challenger_value"] == pytest.approx(good.metrics["roc_auc"])

    monkeypatch.setenv("POVRISK_ID_SALT", "the first key")
    tracking.log_and_register(good, policy)
    decision = tracking.promote("poverty", policy)
    assert (
        decision["comparison"]
        == "both models' held-out risks on the same rows, against the challenger's labels"
    )
    assert decision["champion_value"] == pytest.approx(decision["challenger_value"])


def test_a_monitoring_run_logs_its_tables_and_report_without_household_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("POVRISK_ID_SALT", "monitoring key")
    folder = tmp_path / "monitoring"
    folder.mkdir()
    pd.DataFrame(
        {"household_id": ["H000001", "H000002"], "village_id": ["V1", "V1"], "newly_monitored": [1, 0]}
    ).to_csv(folder / "household-transitions.csv", index=False)
    pd.DataFrame({"village_id": ["V1"], "households": [2]}).to_csv(
        folder / "transitions-by-village.csv", index=False
    )
    (folder / "report.html").write_text(
        "<table><tr><td>H000001</td><td>H000001-01</td><td>V1</td></tr></table>", encoding="utf-8"
    )
    (folder / "plot.png").write_bytes(b"\x89PNG not text")
    summary = {"previous_round": 1, "current_round": 2, "missed": 3}

    run_id = tracking.log_monitoring(summary, folder)

    logged = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "logged")))
    assert ids_found(logged, {"H000001", "H000002"}) == {"monitoring/report.html": ["H000001"]}, (
        "only inside a member id, which is not a household id"
    )
    key = b"monitoring key"
    transitions = pd.read_csv(logged / "monitoring" / "household-transitions.csv")
    assert transitions.columns.tolist() == [HOUSEHOLD_REF, "village_id", "newly_monitored"]
    assert transitions[HOUSEHOLD_REF].tolist() == [
        household_ref("H000001", key),
        household_ref("H000002", key),
    ]
    report = (logged / "monitoring" / "report.html").read_text(encoding="utf-8")
    assert f"<td>{household_ref('H000001', key)}</td><td>H000001-01</td>" in report
    assert (logged / "monitoring" / "plot.png").read_bytes() == b"\x89PNG not text"
    assert (folder / "household-transitions.csv").read_text().count("H000001") == 1, (
        "the local files keep ids"
    )
    assert client().get_run(run_id).data.tags["household_key"] == key_fingerprint(key)


def test_the_key_is_the_variable_else_a_private_file_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv("POVRISK_ID_SALT", raising=False)
    first = household_key(tmp_path)
    assert household_key(tmp_path) == first and len(first) == 64
    assert stat.S_IMODE((tmp_path / ".povrisk" / "id-key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".povrisk").stat().st_mode) == 0o700
    assert household_key(tmp_path / "elsewhere") != first
    monkeypatch.setenv("POVRISK_ID_SALT", "shared secret")
    assert household_key(tmp_path) == b"shared secret"
    assert key_fingerprint(b"shared secret") == key_fingerprint(b"shared secret") != key_fingerprint(first)


def test_pseudonymised_replaces_the_id_column_or_index_level_and_nothing_else():
    key = b"k"
    frame = pd.DataFrame({"household_id": ["H1", "H2"], "round": [0, 1], "income": [1.0, 2.0]}).set_index(
        ["household_id", "round"]
    )
    indexed = pseudonymised(frame, key)
    assert indexed.index.names == [HOUSEHOLD_REF, "round"]
    assert indexed.index.get_level_values(0).tolist() == [household_ref("H1", key), household_ref("H2", key)]
    assert indexed["income"].tolist() == [1.0, 2.0]
    assert frame.index.names == ["household_id", "round"], "the frame given is not changed"
    flat = pseudonymised(frame.reset_index(), key)
    assert flat.columns.tolist() == [HOUSEHOLD_REF, "round", "income"]
    assert household_ref("H1", key) != household_ref("H1", b"other") and household_ref("H1", key).startswith(
        "hr-"
    )

    refs = {"H1": "hr-1"}
    assert pseudonymised_text("<td>H1</td> H1-01 H10 'H1',H1", refs) == "<td>hr-1</td> H1-01 H10 'hr-1',hr-1"


def test_a_folder_without_household_tables_is_copied_as_is(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "notes.txt").write_text("H1 stays: no table names it", encoding="utf-8")
    pseudonymised_folder(tmp_path / "in", tmp_path / "out", b"k")
    assert (tmp_path / "out" / "sub" / "notes.txt").read_text(
        encoding="utf-8"
    ) == "H1 stays: no table names it"
