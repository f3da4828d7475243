"""MLflow edge: log a trained task, register it as `challenger`, promote it to `champion` when it wins.

Registry: one registered model per task, `povrisk-<task>`, shared by the counties; and for each county
the policy gives a model of its own (`Policy.county_models`), `povrisk-<task>-<county>`. Aliases
`challenger` (newest version) and `champion` (the version serving uses: `models:/povrisk-<task>@champion`).
Every function below that names a task takes `county` for a county's own model (None: the shared one);
`scoring_models` says which model scores a county. Nothing here touches MLflow at
import time; every function resolves the tracking URI when called.

Promotion compares the two models on the challenger's held-out rows (logged with its run as
`held_out/held_out.parquet`: the model's features, `label`, and `held_out_risk` from a model that did not
see the row, indexed by `household_ref`, a keyed hash of the household id (`training.pseudonyms`): no
household id is logged to MLflow), on the metric and margin of `training/settings.yaml`:
- champion trained on another survey (different `data_hash`, e.g. fewer rounds): the champion scores
  the challenger's held-out rows, which lie in a round it never saw, and is compared with the
  challenger's held-out probabilities;
- champion trained on the same survey: it has seen those rows, so scoring them would be in-sample and
  unfair to the challenger; both models' own held-out risks on the same rows are compared instead, rows
  matched by their `household_ref`. When the two runs hashed the ids with different keys (tag
  `household_key`, the key's fingerprint) their rows cannot be matched, and their logged held-out metrics,
  which the same procedure computed on the same survey, are compared; the decision says so.

A caller may pass `promote` a drift check (the CLI passes `monitoring.training_drift`'s): it compares the
champion's training data with the challenger's before anything moves, and a drift above the policy
threshold refuses the promotion unless forced. `log_drift` records such a comparison as its own run,
tagged with the training run it compares against.

Every run povrisk starts carries its owner (host, pid, process start time: `training.unfinished_runs`),
and the first time a process opens a store, runs left RUNNING by a povrisk process that provably died
(killed with SIGKILL, say) are marked FAILED, one line on stderr each (`end_abandoned_runs`). A model is
registered only once its logged files are complete, and a champion with missing files is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from features.policy import Policy, PolicyError, load_policy
from models.predictor import (
    BOOSTER_ARTIFACT,
    TASKS,
    PackagedPredictor,
    RiskPredictor,
    TaskModel,
    load_task_model,
)
from survey.io import Survey
from survey.text import redact_credentials
from training.areas import row_areas
from training.bootstrap import paired_bootstrap
from training.metrics import binary_metrics
from training.pseudonyms import (
    HOUSEHOLD_ID,
    HOUSEHOLD_REF,
    household_key,
    key_fingerprint,
    pseudonymised,
    pseudonymised_folder,
)
from training.settings import TrainingSettings, load_training_settings
from training.train import HELD_OUT_RISK, LABEL, TrainedTask
from training.unfinished_runs import RunNotEnded, UnfinishedRun, end_run, review, this_process

EXPERIMENT_NAME = "povrisk"
CHALLENGER, CHAMPION = "challenger", "champion"
PREVIOUS_CHAMPION_TAG = "previous_champion"
"""Tag of a champion version: the version it replaced (empty for the first), what `rollback` returns to."""
HELD_OUT_ARTIFACT = "held_out/held_out.parquet"
AREAS_ARTIFACT = "held_out/areas.parquet"
"""The held-out rows' `township_id` and `village_id`, keyed like them (`training.areas`)."""
DRIFT_ARTIFACT = "drift/drift_report.json"
EXPLANATORY_WEIGHT_ARTIFACT = "explanatory_weight.json"
"""Each feature's share of the mean |SHAP| over the training rows: what data completeness weighs by."""
INPUT_EXAMPLE_ROWS = 5
PROGRESS_BAR_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
PYFUNC_LOGGER = "mlflow.pyfunc"
# MLflow's notice on every `log_model` with a Python object: we log our own `PackagedPredictor` and load
# only models this package registered, so the notice is noise in the CLI output.
CLOUDPICKLE_NOTICE = "Passing a Python object as `python_model`"
HOUSEHOLD_KEY_TAG = "household_key"
SOURCE_TAG = "source"
"""Which data a training run learned from: `county:<id>` for a county of the register, else the survey
folder's name (empty for a run logged before the tag existed or trained in memory)."""
MODEL_COUNTY_TAG = "model_county"
"""A run's tag: the county whose own model it trained (empty: the shared model)."""
BOOSTER_FILE = "booster.txt"
# The files of a logged model that loading the predictor needs (`PackagedPredictor.load_context`).
MODEL_FILES = ("MLmodel", "python_model.pkl", f"artifacts/{BOOSTER_FILE}")
logger = logging.getLogger(__name__)


class IncompleteModel(RuntimeError):
    """A logged model that was never finished, or whose files are missing or empty."""


class _DropMessage(logging.Filter):
    """Drops log records whose message starts with `prefix`."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """While inside: no artifact upload/download progress bars (MLflow reads
    `MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR` at each transfer) and no cloudpickle notice from
    `mlflow.pyfunc`. The variable (unless the caller set it) and the logger are restored on exit."""
    previous = os.environ.get(PROGRESS_BAR_VARIABLE)
    if previous is None:
        os.environ[PROGRESS_BAR_VARIABLE] = "false"
    notice_filter = _DropMessage(CLOUDPICKLE_NOTICE)
    logger = logging.getLogger(PYFUNC_LOGGER)
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)
        if previous is None:
            os.environ.pop(PROGRESS_BAR_VARIABLE, None)


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` when set, else a SQLite store `mlflow.db` in the current folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def artifact_root(uri: str) -> str | None:
    """For a SQLite store: the `mlartifacts` folder beside the database file; else the server decides."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.parent / "mlartifacts").resolve().as_uri()


def registered_name(task: str, county: str | None = None) -> str:
    """`povrisk-<task>`, the shared model; `povrisk-<task>-<county>`, a county's own model."""
    return f"povrisk-{task}" if county is None else f"povrisk-{task}-{county}"


def key_folder(uri: str) -> Path:
    """Where the household id key file lives (`training.pseudonyms`): beside a SQLite store's database
    (with the store it serves), else the working folder."""
    if urlparse(uri).scheme == "sqlite":
        return Path(uri.removeprefix("sqlite:///")).parent
    return Path.cwd()


# Stores this process has already looked at for abandoned runs: once per process is enough.
_SWEPT_STORES: set[str] = set()


def _client(sweep: bool = True) -> MlflowClient:
    """A client of the tracking store. The first time the process opens a store (unless `sweep` is
    false), runs left RUNNING by a povrisk process that died are ended (`end_abandoned_runs`)."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    if uri not in _SWEPT_STORES:
        _SWEPT_STORES.add(uri)
        if sweep:
            _end_abandoned_runs_quietly(client)
    return client


def _end_abandoned_runs_quietly(client: MlflowClient) -> None:
    """`end_abandoned_runs`, one line on stderr per run ended; never fails the command that opened the
    store (a store that cannot be searched is that command's problem, with its own error)."""
    try:
        ended = end_abandoned_runs(client)
    except Exception as error:  # MLflow raises many types for an unreachable store
        logger.debug("could not look for abandoned MLflow runs: %s", error)
        return
    for run in ended:
        print(f"ended MLflow run {run.run_id} ({run.name}): {run.reason}", file=sys.stderr)


def end_abandoned_runs(client: MlflowClient) -> list[UnfinishedRun]:
    """End the RUNNING runs of the povrisk experiment whose owner is provably dead on this host (marked
    FAILED, with why and when, their pending logged models FAILED); returns them. Runs of other hosts or
    without owner tags are never ended here (`unfinished_runs` lists them)."""
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return []
    return [run for run in review(client, str(experiment.experiment_id), end_abandoned=True) if run.ended]


def unfinished_runs(end_abandoned: bool = True) -> list[UnfinishedRun]:
    """Every RUNNING run of the povrisk experiment and what was judged of its owner; with `end_abandoned`,
    those whose owner is provably dead are ended (`UnfinishedRun.ended`)."""
    client = _client(sweep=False)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return []
    return review(client, str(experiment.experiment_id), end_abandoned)


def end_unfinished_run(run_id: str) -> UnfinishedRun:
    """End a RUNNING povrisk run an analyst has checked (e.g. one of another host). Raises `RunNotEnded`
    when there is no such run, it is not running, or its owner on this host is still alive."""
    client = _client(sweep=False)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        raise RunNotEnded(f"the MLflow store at {tracking_uri()} has no {EXPERIMENT_NAME!r} experiment")
    return end_run(client, str(experiment.experiment_id), run_id)


def _owned(tags: Mapping[str, str]) -> dict[str, str]:
    """A new run's tags with its owner's (this process)."""
    return dict(tags) | this_process().tags()


def _experiment_id(client: MlflowClient) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(EXPERIMENT_NAME, artifact_location=artifact_root(tracking_uri())))


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if not math.isnan(value)}


def _input_example(model: TaskModel, held_out: pd.DataFrame) -> pd.DataFrame:
    """A few feature rows as plain float64 columns (no index: MLflow stores the example as JSON)."""
    return model.feature_matrix(held_out.head(INPUT_EXAMPLE_ROWS)).reset_index(drop=True)


def log_and_register(
    trained: TrainedTask,
    policy: Policy | None = None,
    source: str = "",
    survey: Survey | None = None,
    county: str | None = None,
) -> dict[str, Any]:
    """Log params, held-out metrics, tags, figures, the held-out rows (household ids replaced by keyed
    hashes) and the packaged predictor; once the logged model's files are complete, register a new version
    of `povrisk-<task>` and point alias `challenger` at it. `source` names the data (`county:C` for a
    county of the register, else the survey folder's name): tagged on the run and the version, with the
    rounds, data hash, candidate and headline metrics, and a description saying the same in words.
    `survey`, the data it was trained on, gives the held-out rows' township and village
    (`AREAS_ARTIFACT`, what `povrisk compare` breaks down by). `county`: registered as that county's own
    model, `povrisk-<task>-<county>` (tagged `model_county`). Returns what was done.

    Raises `IncompleteModel` (nothing registered, the run marked FAILED) when they are not."""
    policy = policy or trained.policy or load_policy()
    model = trained.model
    client = _client()
    key = household_key(key_folder(tracking_uri()))
    with (
        quiet_mlflow(),
        mlflow.start_run(
            experiment_id=_experiment_id(client),
            run_name=f"{model.task}-{model.data_hash}",
            tags=_owned({}),
        ) as run,
        tempfile.TemporaryDirectory() as scratch,
    ):
        mlflow.log_params(
            model.spec.as_dict()
            | {"task": model.task, "calibrator": model.calibrator.name, "seed": trained.seed}
            | {
                "n_features": len(model.feature_names),
                "n_trees": model.booster.num_trees() if model.booster else 0,
                "candidate": model.candidate,
                "blend_weight": model.blend_weight,
                "calibrated_against": trained.calibrated_against,
            }
        )
        mlflow.log_metrics(
            _finite(trained.metrics)
            | {f"calibrator_brier_{k}": v for k, v in trained.calibrator_brier.items()}
            | {f"candidate_brier_{k}": v for k, v in trained.model.candidate_brier.items()}
        )
        mlflow.set_tag("candidate_reason", trained.candidate_reason[:5000])
        _log_field_labels(trained.field_labels)
        _log_counts(VERIFICATION_LABELS_PREFIX, trained.verification_labels)
        mlflow.log_metric("calibrated_on_rows", float(trained.calibrated_on))
        mlflow.set_tags(
            {
                "task": model.task,
                "data_hash": model.data_hash,
                "trained_rounds": json.dumps(list(model.trained_rounds)),
                "policy_version": policy.version,
                HOUSEHOLD_KEY_TAG: key_fingerprint(key),
                SOURCE_TAG: source,
                MODEL_COUNTY_TAG: county or "",
            }
        )
        mlflow.log_dict({"feature_names": list(model.feature_names)}, "features.json")
        mlflow.log_dict(dict(model.explanatory_weight), EXPLANATORY_WEIGHT_ARTIFACT)
        for name, figure in trained.figures.items():
            mlflow.log_figure(figure, f"figures/{name}")
        held_out_path = Path(scratch) / Path(HELD_OUT_ARTIFACT).name
        pseudonymised(trained.held_out, key).reset_index().to_parquet(held_out_path, index=False)
        mlflow.log_artifact(str(held_out_path), artifact_path=str(Path(HELD_OUT_ARTIFACT).parent))
        if survey is not None:
            areas_path = Path(scratch) / Path(AREAS_ARTIFACT).name
            areas = row_areas(survey.households, survey.villages, trained.held_out.index)
            pseudonymised(areas, key).reset_index().to_parquet(areas_path, index=False)
            mlflow.log_artifact(str(areas_path), artifact_path=str(Path(AREAS_ARTIFACT).parent))
        booster_path = Path(scratch) / BOOSTER_FILE
        booster_path.write_text(model._ready_booster().model_to_string(), encoding="utf-8")
        example = _input_example(model, trained.held_out)
        packaged = PackagedPredictor(model, policy)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=packaged,
            artifacts={BOOSTER_ARTIFACT: str(booster_path)},
            signature=infer_signature(example, packaged.predict(None, example)),
            input_example=example,
        )
        booster_size = {f"artifacts/{BOOSTER_FILE}": booster_path.stat().st_size}
        problems = logged_model_problems(client, info.model_id, booster_size)
        if problems:
            raise IncompleteModel(
                f"the model logged by run {run.info.run_id} ({info.model_id}) is incomplete: "
                f"{'; '.join(problems)}; nothing was registered"
            )
        name = registered_name(model.task, county)
        version = mlflow.register_model(info.model_uri, name)
    _describe_version(client, trained, name, str(version.version), source)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return {
        "task": model.task,
        "county": county,
        "run_id": run.info.run_id,
        "model_name": name,
        "version": int(version.version),
        "alias": CHALLENGER,
        "model_uri": f"models:/{name}@{CHALLENGER}",
        "metrics": _finite(trained.metrics),
        "field_labels": trained.field_labels,
        "verification_labels": trained.verification_labels,
    }


VERSION_METRICS = ("roc_auc", "pr_auc", "brier", "ece", "exclusion_error")
"""The held-out metrics each registered version carries as tags (`metric.<name>`) and in its description."""


def version_description(trained: TrainedTask, source: str) -> str:
    """What a registered version is, in words: task, candidate and why, data, rounds, held-out metrics."""
    model = trained.model
    metrics = ", ".join(
        f"{name} {trained.metrics[name]:.4f}" for name in VERSION_METRICS if name in _finite(trained.metrics)
    )
    return (
        f"{model.task} model: {model.candidate} (logistic weight {model.blend_weight:g}); "
        f"{trained.candidate_reason}. Trained on {source or 'an unnamed survey'}, rounds "
        f"{', '.join(str(r) for r in model.trained_rounds)}, data hash {model.data_hash}, policy "
        f"{model.policy_version}; held out ({len(trained.held_out)} rows, survey labels): {metrics}; "
        f"calibrated on {trained.calibrated_against} labels."
    )


def _describe_version(
    client: MlflowClient, trained: TrainedTask, name: str, version: str, source: str
) -> None:
    """The version's description and tags: source, rounds, data hash, candidate, headline metrics."""
    client.update_model_version(name, version, description=version_description(trained, source))
    finite = _finite(trained.metrics)
    tags = {
        SOURCE_TAG: source,
        "trained_rounds": json.dumps(list(trained.model.trained_rounds)),
        "data_hash": trained.model.data_hash,
        "candidate": trained.model.candidate,
        "blend_weight": f"{trained.model.blend_weight:g}",
        "policy_version": trained.model.policy_version,
    } | {f"metric.{key}": f"{finite[key]:.6g}" for key in VERSION_METRICS if key in finite}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def logged_model_problems(
    client: MlflowClient, model_id: str, expected_sizes: Mapping[str, int] | None = None
) -> list[str]:
    """What makes a logged model unfit to register or load: it was never finished (status not READY:
    its process died while logging it, or logging failed), or a file of `MODEL_FILES` is missing, empty
    or not of its `expected_sizes`. Empty when it is complete."""
    problems = []
    status = client.get_logged_model(model_id).status
    if status != LoggedModelStatus.READY:
        problems.append(f"its status is {status}, not READY (it was never finished)")
    folders = {str(Path(name).parent) for name in MODEL_FILES} - {"."}
    listed = [*client.list_logged_model_artifacts(model_id)]
    for folder in sorted(folders):
        listed += client.list_logged_model_artifacts(model_id, folder)
    sizes = {file.path: file.file_size for file in listed if not file.is_dir}
    for name in MODEL_FILES:
        if name not in sizes:
            problems.append(f"{name} is missing")
        elif not sizes[name]:
            problems.append(f"{name} is empty")
        elif expected_sizes and name in expected_sizes and sizes[name] != expected_sizes[name]:
            problems.append(f"{name} holds {sizes[name]} bytes, not {expected_sizes[name]}")
    return problems


def version_problems(client: MlflowClient, version: Any) -> list[str]:
    """`logged_model_problems` of a registered version's model (none for a version whose source is not a
    logged model: versions registered before MLflow 3)."""
    source = str(version.source)
    if not source.startswith("models:/m-"):
        return []
    return logged_model_problems(client, source.removeprefix("models:/"))


FIELD_LABELS_PREFIX = "field_labels"
VERIFICATION_LABELS_PREFIX = "verification_labels"


def _log_field_labels(counts: dict[str, int] | None) -> None:
    """Whether field decisions corrected the labels (param `field_labels`: used / not used) and, when
    they did, their counts as metrics `field_labels_<count>` (confirmed, flipped_to_poor, ...)."""
    _log_counts(FIELD_LABELS_PREFIX, counts)


def _log_counts(prefix: str, counts: dict[str, int] | None) -> None:
    """Param `prefix`: used / not used; when used, each count as metric `<prefix>_<count>`."""
    mlflow.log_param(prefix, "not used" if counts is None else "used")
    if counts is not None:
        mlflow.log_metrics({f"{prefix}_{name}": float(value) for name, value in counts.items()})


def _alias_version(client: MlflowClient, task: str, alias: str, county: str | None = None) -> Any | None:
    try:
        return client.get_model_version_by_alias(registered_name(task, county), alias)
    except MlflowException:
        return None


def held_out_areas(run_id: str) -> pd.DataFrame | None:
    """A training run's held-out rows' township and village (indexed as `held_out_rows`); None for a run
    logged without them."""
    client = _client()
    if not any(item.path == AREAS_ARTIFACT for item in client.list_artifacts(run_id, "held_out")):
        return None
    with quiet_mlflow():
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=AREAS_ARTIFACT)
    return pd.read_parquet(path).set_index([HOUSEHOLD_REF, "round"])


def held_out_rows(run_id: str) -> pd.DataFrame:
    """A training run's held-out rows (the model's features, `label`, `held_out_risk`), indexed
    (household_ref, round); (household_id, round) for a run logged before ids were hashed."""
    _client()
    with quiet_mlflow():
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HELD_OUT_ARTIFACT)
    rows = pd.read_parquet(path)
    identifier = HOUSEHOLD_REF if HOUSEHOLD_REF in rows.columns else HOUSEHOLD_ID
    return rows.set_index([identifier, "round"])


DriftCheck = Callable[[str, str], Mapping[str, Any]]
"""(champion's training run id, challenger's training run id) -> a drift verdict with at least
`exceeds_policy` (bool) and `reason` (str); whatever else it holds goes into the decision."""


def promote(
    task: str,
    policy: Policy | None = None,
    settings: TrainingSettings | None = None,
    drift_check: DriftCheck | None = None,
    force: bool = False,
    *,
    by: str = "",
    force_reason: str = "",
    county: str | None = None,
) -> dict[str, Any]:
    """Move `champion` to the `challenger` version (of `county`'s own model when given) when
    `_promotion_decision` says it wins, or, with `force`, whatever the drift and the metric say (the
    person's `force_reason` is recorded). The new champion version is tagged with who promoted it, when,
    why, and which version it replaced (what `rollback` returns to). Returns the decision, the metric
    values and the reason."""
    decision = _promotion_decision(task, policy, settings, drift_check, force, county=county)
    if (
        force
        and not decision["promoted"]
        and decision.get("challenger_version") != decision.get("champion_version")
    ):
        decision = decision | {
            "promoted": True,
            "forced": True,
            "reason": f"{decision['reason']}; promoted by --force: {force_reason or 'no reason given'}",
        }
    elif force and decision["promoted"] and decision.get("drift", {}).get("exceeds_policy"):
        # the drift refusal was overridden: the person's reason for that is recorded too
        decision = decision | {
            "forced": True,
            "reason": f"{decision['reason']} ({force_reason or 'no reason given'})",
        }
    if decision["promoted"]:
        _crown(
            registered_name(task, county),
            str(decision["challenger_version"]),
            decision.get("champion_version"),
            decision["reason"],
            by,
        )
    return decision


def _crown(name: str, version: str, previous: int | None, reason: str, by: str) -> None:
    """Set `champion` on `version` of model `name` and record on it who, when, why, and the champion it
    replaced."""
    client = _client()
    client.set_registered_model_alias(name, CHAMPION, version)
    tags = {
        PREVIOUS_CHAMPION_TAG: "" if previous is None else str(previous),
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "promoted_by": by or "unknown",
        "promotion_reason": reason[:5000],
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


class RollbackRefused(LookupError):
    """No champion, or no earlier champion recorded to go back to; nothing was changed."""


def rollback(task: str, *, by: str = "", county: str | None = None) -> dict[str, Any]:
    """Move `champion` (of `county`'s own model when given) back to the version it replaced (recorded by
    `promote`); the version rolled back from is tagged with who and when. `RollbackRefused` when there is
    nothing to go back to."""
    client = _client()
    name = registered_name(task, county)
    champion = _alias_version(client, task, CHAMPION, county)
    if champion is None:
        raise RollbackRefused(f"{name} has no '{CHAMPION}' version: nothing to roll back")
    previous = (champion.tags or {}).get(PREVIOUS_CHAMPION_TAG, "")
    if not previous:
        raise RollbackRefused(
            f"{name} version {champion.version} records no earlier champion (it was the first, or was made "
            "champion before promotions were recorded): nothing to roll back to"
        )
    try:
        client.get_model_version(name, previous)
    except MlflowException as error:
        raise RollbackRefused(f"{name} version {previous}, the earlier champion, is gone: {error}") from error
    client.set_registered_model_alias(name, CHAMPION, previous)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.set_model_version_tag(name, champion.version, "rolled_back_at", at)
    client.set_model_version_tag(name, champion.version, "rolled_back_by", by or "unknown")
    return {
        "task": task,
        "county": county,
        "model_name": name,
        "rolled_back_from": int(champion.version),
        "champion_version": int(previous),
        "reason": f"champion moved back from version {champion.version} to version {previous}",
    }


def _promotion_decision(
    task: str,
    policy: Policy | None = None,
    settings: TrainingSettings | None = None,
    drift_check: DriftCheck | None = None,
    force: bool = False,
    paired: PairedHeldOut | None = None,
    intervals: Mapping[str, tuple[float, float]] | None = None,
    county: str | None = None,
) -> dict[str, Any]:
    """Whether `champion` moves to the `challenger` version: if it wins on the challenger's held-out rows
    (or if there is no champion yet, or the champion was trained under policy settings no longer in force and
    the challenger under the current ones). Returns the decision, the metric values and the reason.

    With a `drift_check`, a challenger facing a champion is first checked for drift between the two
    models' training data: when the verdict `exceeds_policy`, the promotion is refused
    (`refused_by: "drift"`) unless `force` (then the metric is compared; `promote` overrides a loss too).
    `paired`: the two models' held-out risks when the caller has them already (`compare`), and
    `intervals` their bootstrap intervals by metric when drawn as the rule draws them (`rule.replicates`
    resamples, seed 0). Changes nothing."""
    policy = policy or load_policy()
    rule = (settings or load_training_settings()).promotion
    client = _client()
    name = registered_name(task, county)
    challenger = _alias_version(client, task, CHALLENGER, county)
    if challenger is None:
        raise LookupError(f"{name} has no '{CHALLENGER}' version; train one first")
    champion = _alias_version(client, task, CHAMPION, county)
    decision: dict[str, Any] = {
        "task": task,
        "county": county,
        "model_name": name,
        "challenger_version": int(challenger.version),
        "champion_version": int(champion.version) if champion is not None else None,
        "metric": rule.metric,
        "min_improvement": rule.min_improvement,
    }
    if champion is not None and champion.version == challenger.version:
        return decision | {"promoted": False, "reason": "the challenger already is the champion"}
    if champion is None:
        return decision | {"promoted": True, "reason": "no champion yet: the first challenger is promoted"}
    champion_policy = client.get_run(champion.run_id).data.tags.get("policy_version")
    challenger_policy = client.get_run(challenger.run_id).data.tags.get("policy_version")
    if champion_policy != policy.version and challenger_policy == policy.version:
        # the service refuses a champion trained under other policy settings: it cannot serve at all
        reason = (
            f"the champion was trained under policy {champion_policy!r}, which is no longer in force; the "
            f"challenger, trained under the current policy {policy.version!r}, replaces it"
        )
        return decision | {"promoted": True, "reason": reason}
    if drift_check is not None:
        drift = dict(drift_check(champion.run_id, challenger.run_id))
        decision |= {"drift": drift, "forced": force}
        if drift["exceeds_policy"] and not force:
            reason = (
                "refused: the challenger's training data drifted from the champion's beyond the policy "
                f"threshold ({drift['reason']}); rerun with --force to promote it anyway if it wins"
            )
            return decision | {"promoted": False, "refused_by": "drift", "reason": reason}

    champion_run = client.get_run(champion.run_id)
    challenger_run = client.get_run(challenger.run_id)
    champion_source = champion_run.data.tags.get(SOURCE_TAG, "")
    challenger_source = challenger_run.data.tags.get(SOURCE_TAG, "")
    if rule.other_source_gives_way and _other_county(champion_source, challenger_source):
        reason = (
            f"the champion was trained on {champion_source}, the challenger on {challenger_source}: a model "
            "of another county's data gives way to one trained on this county's"
        )
        if decision.get("drift", {}).get("exceeds_policy"):
            reason += "; the drift above the policy threshold was overridden by --force"
        return decision | {"promoted": True, "reason": reason}
    if paired is None:
        paired = paired_held_out(name, champion, challenger, client)
    coverage = policy.flag_coverage
    labels = paired.labels
    challenger_value = binary_metrics(labels, paired.challenger_risk, coverage)[rule.metric]
    interval: tuple[float, float] | None = None
    if paired.champion_risk is None:
        challenger_value = float(challenger_run.data.metrics.get(rule.metric, challenger_value))
        champion_value = float(champion_run.data.metrics.get(rule.metric, math.nan))
    else:
        champion_value = binary_metrics(labels, paired.champion_risk, coverage)[rule.metric]
        if rule.interval_floor is not None and intervals is not None and rule.metric in intervals:
            interval = intervals[rule.metric]
        elif rule.interval_floor is not None:
            interval = paired_bootstrap(
                labels,
                paired.challenger_risk,
                paired.champion_risk,
                paired.groups,
                coverage,
                rule.replicates,
            )[rule.metric]
    wins = rule.challenger_wins(challenger_value, champion_value, interval)
    compared_by = paired.how
    if paired.champion_risk is None:
        compared_by = paired.how.replace("logged held-out metrics", f"logged held-out {rule.metric}", 1)
    better = "higher" if rule.higher_is_better else "lower"
    verdict = "beats" if wins else "does not beat"
    reason = (
        f"on {len(labels)} held-out rows the challenger's {rule.metric} {challenger_value:.4f} {verdict} the "
        f"champion's {champion_value:.4f}: {rule.describe(challenger_value, champion_value, interval)} "
        f"({better} is better; compared by {compared_by})"
    )
    if decision.get("drift", {}).get("exceeds_policy"):
        reason += "; the drift above the policy threshold was overridden by --force"
    return decision | {
        "promoted": wins,
        "reason": reason,
        "challenger_value": challenger_value,
        "champion_value": champion_value,
        "difference_interval": None if interval is None else list(interval),
        "comparison": paired.how,
        "n_rows": len(labels),
    }


COUNTY_SOURCE = "county:"


def _other_county(champion_source: str, challenger_source: str) -> bool:
    """Whether the two runs learned from different counties of the register (`county:<id>` sources). A
    survey folder's name does not say which county it holds (a new round's folder has a new name), so
    runs trained on folders are never judged to be of another county: their metrics decide."""
    both_counties = champion_source.startswith(COUNTY_SOURCE) and challenger_source.startswith(COUNTY_SOURCE)
    return both_counties and champion_source != challenger_source


@dataclass(frozen=True)
class PairedHeldOut:
    """The challenger's held-out rows with both models' held-out risks on them (`champion_risk` None when
    the rows cannot be paired: `how` says why), `groups` the household of each row."""

    rows: pd.DataFrame
    labels: np.ndarray
    challenger_risk: np.ndarray
    champion_risk: np.ndarray | None
    groups: np.ndarray
    how: str


def paired_held_out(name: str, champion: Any, challenger: Any, client: MlflowClient) -> PairedHeldOut:
    """Both models' risks on the same held-out households: the challenger's held-out rows, and for the
    champion its own held-out risks on those rows when both runs learned from the same survey (their
    household ids hashed with the same key), else the champion scoring the challenger's rows (it never
    saw them: it was trained on other data). Same survey but unmatched keys: no champion risks."""
    rows = held_out_rows(challenger.run_id)
    labels = rows[LABEL].to_numpy(dtype=np.float64)
    risk = rows[HELD_OUT_RISK].to_numpy(dtype=np.float64)
    groups = rows.index.get_level_values(0).to_numpy()
    champion_tags = client.get_run(champion.run_id).data.tags
    challenger_tags = client.get_run(challenger.run_id).data.tags
    same_survey = champion_tags.get("data_hash") == challenger_tags.get("data_hash")
    champion_key = champion_tags.get(HOUSEHOLD_KEY_TAG)
    same_key = champion_key is not None and champion_key == challenger_tags.get(HOUSEHOLD_KEY_TAG)
    if same_survey and not same_key:
        # Same survey, but rows that cannot be matched: the champion has seen these rows, so it must not
        # score them; the metric each run logged, computed by the same procedure on the same survey.
        how = (
            "both runs' logged held-out metrics, since their household ids were hashed with different keys "
            "(or the champion's run predates hashed ids) and their rows cannot be matched"
        )
        return PairedHeldOut(rows, labels, risk, None, groups, how)
    champion_rows = held_out_rows(champion.run_id) if same_survey else None
    if champion_rows is not None and rows.index.isin(champion_rows.index).all():
        # Same survey, same held-out rows: the champion's own held-out risks, scored against the
        # challenger's labels (which may carry field corrections the champion's run did not have).
        how = "both models' held-out risks on the same rows, against the challenger's labels"
        champion_risk = champion_rows[HELD_OUT_RISK].reindex(rows.index).to_numpy(dtype=np.float64)
        return PairedHeldOut(rows, labels, risk, champion_risk, groups, how)
    with quiet_mlflow():
        champion_model = load_task_model(f"models:/{name}/{champion.version}")
    how = "the champion scoring the challenger's held-out rows"
    return PairedHeldOut(rows, labels, risk, champion_model.predict_proba(rows), groups, how)


def champion_run_id(task: str, county: str | None = None) -> str | None:
    """The training run of the current champion of `task` (None without a champion)."""
    champion = _alias_version(_client(), task, CHAMPION, county)
    return str(champion.run_id) if champion is not None else None


def log_drift(
    task: str,
    report: Mapping[str, Any],
    metrics: Mapping[str, float],
    reference_run_id: str,
    current_run_id: str | None = None,
) -> str:
    """Log a drift comparison as its own run: tags `kind=drift`, `task`, `reference_run_id` (the
    training run it compares against, e.g. the champion's), `current_run_id` when the current data is a
    training run too; the headline `metrics`; the whole `report` as the JSON artifact `DRIFT_ARTIFACT`.
    Returns the run id."""
    from mlflow.entities import Metric

    client = _client()
    tags = {"kind": "drift", "task": task, "reference_run_id": reference_run_id}
    if current_run_id is not None:
        tags["current_run_id"] = current_run_id
    run = client.create_run(
        _experiment_id(client), run_name=f"drift-{task}-vs-{reference_run_id[:8]}", tags=_owned(tags)
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    finite = {key: float(value) for key, value in metrics.items() if math.isfinite(value)}
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in finite.items()])
    with quiet_mlflow():
        client.log_dict(run_id, dict(report), DRIFT_ARTIFACT)
    client.set_terminated(run_id)
    return str(run_id)


def load_champion(task: str, county: str | None = None) -> TaskModel:
    """The current champion's TaskModel (`models:/povrisk-<task>@champion`; `county`: that county's own
    model), carrying its registered name and version. Raises `IncompleteModel` when the champion's logged
    files are incomplete."""
    client = _client()
    name = registered_name(task, county)
    version = client.get_model_version_by_alias(name, CHAMPION)
    problems = version_problems(client, version)
    if problems:
        raise IncompleteModel(
            f"the champion of {name} (version {version.version}) cannot be loaded: {'; '.join(problems)}; "
            "promote a complete version"
        )
    with quiet_mlflow():
        return load_task_model(f"models:/{name}/{version.version}")


def load_champion_predictor(policy: Policy | None = None, county: str | None = None) -> RiskPredictor:
    """A RiskPredictor with each task's champion that scores `county` (`scoring_versions`: its own model's
    when the policy gives it one, else the shared model's); a task without a champion is left out (None).

    The predictor scores under `policy`, the policy in force (default: `load_policy()`, i.e.
    POVRISK_POLICY or the shipped file), not under the copy of the policy pickled in the packaged
    predictor: that copy is a record, and what a champion carries into scoring is the version it was
    trained under (`TaskModel.policy_version`). A champion trained under another version is refused
    (`PolicyError`), as the service refuses it (`serving.scoring.load_models`): its features and its
    tiers would follow other lines, ages or thresholds than it learnt. Score with the policy it was
    trained under (`--policy FILE` / POVRISK_POLICY), or retrain and promote under the new one.

    Raises `LookupError` when neither task has a champion (`OwnModelMissing` for a county whose own model
    the policy requires).
    """
    policy = policy or load_policy()
    return load_predictor_versions(scoring_versions(policy, county), policy)


ModelVersions = dict[str, tuple[str, str]]
"""task -> (registered model name, version): the models that score a county's households."""


class OwnModelMissing(LookupError):
    """The policy gives a county its own model, with `until_trained: refuse`, and that model has no
    champion for either task: the county's households are not scored."""


def scoring_versions(policy: Policy, county: str | None = None) -> ModelVersions:
    """Which champion version scores each task for `county` now (None: a county-less survey, the shared
    model). A county the policy gives its own model (`Policy.county_models`) is scored by its own
    champion of a task; where it has none yet, by the shared one (`until_trained: shared_model`), and
    with `until_trained: refuse` not at all (`OwnModelMissing` when neither task has its own champion).
    Tasks without a champion are left out; `LookupError` when none has one. What a province's workers
    load (`load_predictor_versions`), so that every part of a round is scored by the same models even if
    a champion moves meanwhile."""
    client = _client()
    own = policy.county_models.has_own_model(county)
    versions: ModelVersions = {}
    for task in TASKS:
        version = _alias_version(client, task, CHAMPION, county) if own else None
        if version is not None:
            versions[task] = (registered_name(task, county), str(version.version))
        elif not own or policy.county_models.until_trained == "shared_model":
            shared = _alias_version(client, task, CHAMPION)
            if shared is not None:
                versions[task] = (registered_name(task), str(shared.version))
    if own and not versions and policy.county_models.until_trained == "refuse":
        raise OwnModelMissing(
            f"county {county} is scored by models of its own (policy {policy.version}, county_models), and "
            f"neither {registered_name('poverty', county)} nor {registered_name('relapse', county)} has a "
            f"champion in the MLflow registry at {redact_credentials(tracking_uri())}; train one (povrisk "
            f"train --task T --county {county}) and promote it (povrisk promote --task T --county {county})"
        )
    if not versions:
        raise LookupError(
            f"no champion for any task in the MLflow registry at {redact_credentials(tracking_uri())}"
            f"{f' for county {county}' if county is not None else ''}; promote one first"
        )
    return versions


def scoring_versions_by_county(policy: Policy, counties: Sequence[str]) -> dict[str, ModelVersions]:
    """`scoring_versions` of each county (the shared champions looked up once for the counties without
    models of their own); `OwnModelMissing` / `LookupError` as there, naming the county."""
    shared: ModelVersions | None = None
    chosen: dict[str, ModelVersions] = {}
    for county in counties:
        if policy.county_models.has_own_model(county):
            chosen[county] = scoring_versions(policy, county)
        else:
            shared = shared if shared is not None else scoring_versions(policy)
            chosen[county] = shared
    return chosen


def load_predictor_versions(
    versions: Mapping[str, tuple[str, str]], policy: Policy | None = None
) -> RiskPredictor:
    """A RiskPredictor of these registered versions (task -> (name, version)), checked as the champions
    are: complete logged files (`IncompleteModel`) and trained under the policy in force (`PolicyError`)."""
    policy = policy or load_policy()
    client = _client()
    models: dict[str, TaskModel | None] = {task: None for task in TASKS}
    for task, (name, number) in versions.items():
        version = client.get_model_version(name, str(number))
        problems = version_problems(client, version)
        if problems:
            raise IncompleteModel(
                f"{name} (version {number}) cannot be loaded: {'; '.join(problems)}; "
                "promote a complete version"
            )
        with quiet_mlflow():
            models[task] = load_task_model(f"models:/{name}/{number}")
    for task, model in models.items():
        if model is not None and model.policy_version and model.policy_version != policy.version:
            raise PolicyError(
                f"the {task} champion was trained under policy {model.policy_version!r} but policy "
                f"{policy.version!r} is in force; score with the policy it was trained under (--policy FILE "
                "or POVRISK_POLICY), or retrain and promote under this one"
            )
    return RiskPredictor(policy, poverty=models["poverty"], relapse=models["relapse"])


METRIC_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    """An MLflow-safe metric key: parts joined by '/', characters MLflow rejects replaced by '_'."""
    return METRIC_KEY_UNSAFE.sub("_", "/".join(parts))


def _finite_metrics(values: dict[str, Any], *prefix: str) -> dict[str, float]:
    """Numeric, finite entries (not `*_std` of None) under `prefix`."""
    return {
        metric_key(*prefix, key): float(value)
        for key, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def summary_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The evaluation report flattened: `model/<metric>`, `baseline/<name>/<metric>`,
    `slice/<slice>/<metric>` (and `oracle/<metric>`, `vs_oracle/<gap>`)."""
    metrics = _finite_metrics(report["model"], "model")
    for name, values in report.get("baselines", {}).items():
        metrics |= _finite_metrics(values, "baseline", name)
    for name, values in report.get("slices", {}).items():
        metrics |= _finite_metrics(values, "slice", name)
    if "oracle" in report:
        metrics |= _finite_metrics(report["oracle"], "oracle")
    if "vs_oracle" in report:
        metrics |= _finite_metrics(report["vs_oracle"], "vs_oracle")
    return metrics


def log_evaluation(evaluation: Any, data_hash: str, settings: TrainingSettings | None = None) -> str:
    """Log an evaluation (`training.evaluate.Evaluation`) as one parent run — tags task, data hash,
    seeds, policy version; the summary metrics; the reliability plot of the model's held-out
    probabilities — and one nested child run per (model or baseline, seed, fold) with that fold's metrics
    and the model's fold choices (tuned parameters, kept features, calibrator). Child runs are written with
    one `log_batch` each. Returns the parent run id."""
    from mlflow.entities import Metric, Param, RunTag

    from training.train import reliability_figure

    report = evaluation.report
    client = _client()
    experiment_id = _experiment_id(client)
    task = report["task"]
    parent = client.create_run(
        experiment_id,
        run_name=f"evaluate-{task}-{data_hash}",
        tags=_owned(
            {
                "task": task,
                "data_hash": data_hash,
                "seeds": json.dumps(report["seeds"]),
                "policy_version": str(report.get("policy_version")),
                "kind": "evaluation",
            }
        ),
    )
    parent_id = parent.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        parent_id,
        metrics=[Metric(key, value, now, 0) for key, value in summary_metrics(report).items()],
        params=[
            Param("task", task),
            Param("seeds", json.dumps(report["seeds"])),
            Param("n_test", str(report["n_test"])),
        ],
    )
    with quiet_mlflow():
        client.log_dict(parent_id, report, "evaluation.json")
        if len(evaluation.held_out_y):
            figure = reliability_figure(evaluation.held_out_y, np.clip(evaluation.held_out_p, 0.0, 1.0))
            client.log_figure(parent_id, figure, "figures/calibration.png")
    for run in evaluation.fold_runs:
        child = client.create_run(
            experiment_id,
            run_name=f"{run['name']}-seed{run['seed']}-fold{run['fold']}",
            tags=_owned({"mlflow.parentRunId": parent_id, "model": run["name"], "task": task}),
        )
        params = {"model": run["name"], "seed": run["seed"], "fold": run["fold"]} | run["params"]
        client.log_batch(
            child.info.run_id,
            metrics=[Metric(key, value, now, 0) for key, value in _finite_metrics(run["metrics"]).items()],
            params=[Param(str(key), str(value)[:6000]) for key, value in params.items()],
            tags=[RunTag("seed", str(run["seed"])), RunTag("fold", str(run["fold"]))],
        )
        client.set_terminated(child.info.run_id)
    client.set_terminated(parent_id)
    return str(parent_id)


def log_monitoring(summary: Mapping[str, Any], folder: Path) -> str:
    """Log a `povrisk monitor` comparison as its own run: tags `kind=monitoring` and the two rounds, the
    summary's counts as metrics, and every file of `folder` (report, tables) as artifacts, household ids
    replaced by keyed hashes (`training.pseudonyms.pseudonymised_folder`). Returns the run id."""
    from mlflow.entities import Metric

    client = _client()
    key = household_key(key_folder(tracking_uri()))
    tags = {
        "kind": "monitoring",
        "previous_round": str(summary["previous_round"]),
        "current_round": str(summary["current_round"]),
        "policy_version": str(summary.get("policy_version")),
        HOUSEHOLD_KEY_TAG: key_fingerprint(key),
    }
    run = client.create_run(
        _experiment_id(client),
        run_name=f"monitor-{summary['previous_round']}-{summary['current_round']}",
        tags=_owned(tags),
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    counts = {
        key: float(value)
        for key, value in summary.items()
        if isinstance(value, int | float) and not key.endswith("_round") and math.isfinite(value)
    }
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in counts.items()])
    with quiet_mlflow(), tempfile.TemporaryDirectory() as scratch:
        pseudonymised_folder(folder, Path(scratch), key)
        client.log_artifacts(run_id, scratch, artifact_path="monitoring")
    client.set_terminated(run_id)
    return str(run_id)


def version_aliases(task: str, version: str, county: str | None = None) -> list[str]:
    """The aliases (champion, challenger, ...) that point at version `version` of the task's model."""
    client = _client()
    with quiet_mlflow():
        return sorted(client.get_model_version(registered_name(task, county), str(version)).aliases)
