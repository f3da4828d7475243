"""A local copy of the last champions the service loaded, so that it can keep serving when the
registry cannot be reached at start-up.

Layout: `<folder>/<task>/booster.txt` (the LightGBM model), `<folder>/<task>/model.pkl` (the TaskModel
without its booster: calibrator, feature names, metrics, registry identity) and `<folder>/card.json`
(aliases and when the copy was made). The champions of the counties the policy gives models of their own
(`Policy.county_models`) lie beside them, `<folder>/counties/<county>/<task>/...`, one folder per task
that county has its own champion for, and the card lists each county's tasks and aliases; a copy made
before counties had models of their own has no `counties` and still loads. The folder is
`POVRISK_MODEL_CACHE`, default `.povrisk/champions` in the working folder. Writing is atomic: a new copy
replaces the old one whole.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb

from models.predictor import TaskModel

CACHE_VARIABLE = "POVRISK_MODEL_CACHE"
CARD_FILE = "card.json"
COUNTIES_FOLDER = "counties"
BOOSTER_FILE = "booster.txt"
MODEL_FILE = "model.pkl"


class CacheMissing(LookupError):
    """No complete local copy of the champions."""


@dataclass(frozen=True)
class Champions:
    """Champion task models by task, with the aliases of each one's registered version."""

    models: Mapping[str, TaskModel] = field(default_factory=dict)
    aliases: Mapping[str, list[str]] = field(default_factory=dict)


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or Path.cwd() / ".povrisk" / "champions")


def save_champions(
    models: Mapping[str, TaskModel],
    aliases: Mapping[str, list[str]],
    folder: Path,
    counties: Mapping[str, Champions] | None = None,
) -> None:
    """Write the task models (and their aliases) as the local copy, with each county's own champions
    (`counties`: county -> its own champions; a county listed without any is recorded as having none),
    replacing any older copy whole."""
    counties = counties or {}
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.writing-", dir=folder.parent))
    try:
        _write_models(models, staging)
        for county, own in counties.items():
            _write_models(own.models, staging / COUNTIES_FOLDER / county)
        card = {
            "tasks": sorted(models),
            "aliases": dict(aliases),
            "counties": {
                county: {"tasks": sorted(own.models), "aliases": dict(own.aliases)}
                for county, own in counties.items()
            },
            "saved_at": datetime.now(UTC).isoformat(),
        }
        (staging / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
        retired = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        if folder.exists():
            folder.rename(retired)
        staging.rename(folder)
        shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_models(models: Mapping[str, TaskModel], folder: Path) -> None:
    """Each task model as `<folder>/<task>/booster.txt` and `model.pkl`."""
    for task, model in models.items():
        task_folder = folder / task
        task_folder.mkdir(parents=True)
        booster_text = model._ready_booster().model_to_string()
        (task_folder / BOOSTER_FILE).write_text(booster_text, encoding="utf-8")
        with open(task_folder / MODEL_FILE, "wb") as handle:
            pickle.dump(model.without_booster(), handle)


def load_champions(folder: Path, tasks: tuple[str, ...]) -> tuple[dict[str, TaskModel], dict[str, Any]]:
    """The task models of the local copy and its card; `CacheMissing` naming what is absent."""
    card = _card(folder)
    return {task: _read_model(folder, task) for task in tasks}, card


def load_county_champions(folder: Path, counties: Sequence[str]) -> dict[str, Champions]:
    """The own champions the local copy holds of each of `counties` (those it has no record of, e.g. a
    copy made before the county was given models of its own, are left out; a county recorded without
    any has empty `Champions`); `CacheMissing` naming what is absent."""
    recorded = _card(folder).get("counties") or {}
    own: dict[str, Champions] = {}
    for county in counties:
        if county not in recorded:
            continue
        tasks = [str(task) for task in recorded[county].get("tasks", [])]
        models = {task: _read_model(folder / COUNTIES_FOLDER / county, task) for task in tasks}
        aliases = {task: list(recorded[county].get("aliases", {}).get(task, [])) for task in tasks}
        own[county] = Champions(models, aliases)
    return own


def _card(folder: Path) -> dict[str, Any]:
    card_file = folder / CARD_FILE
    if not card_file.exists():
        raise CacheMissing(f"no local copy of the champions in {folder}")
    card: dict[str, Any] = json.loads(card_file.read_text(encoding="utf-8"))
    return card


def _read_model(folder: Path, task: str) -> TaskModel:
    task_folder = folder / task
    if not (task_folder / MODEL_FILE).exists() or not (task_folder / BOOSTER_FILE).exists():
        raise CacheMissing(f"the local copy in {folder} has no {task} model")
    with open(task_folder / MODEL_FILE, "rb") as handle:
        model = pickle.load(handle)  # our own file, written by save_champions
    booster = lgb.Booster(model_file=str(task_folder / BOOSTER_FILE))
    return replace(model, booster=booster)
