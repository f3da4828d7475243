"""A local copy of the last champions the service loaded, so that it can keep serving when the
registry cannot be reached at start-up.

Layout: `<folder>/<task>/booster.txt` (the LightGBM model), `<folder>/<task>/model.pkl` (the TaskModel
without its booster: calibrator, feature names, metrics, registry identity) and `<folder>/card.json`
(aliases and when the copy was made). The folder is `POVRISK_MODEL_CACHE`, default
`.povrisk/champions` in the working folder. Writing is atomic: a new copy replaces the old one whole.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb

from models.predictor import TaskModel

CACHE_VARIABLE = "POVRISK_MODEL_CACHE"
CARD_FILE = "card.json"


class CacheMissing(LookupError):
    """No complete local copy of the champions."""


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or Path.cwd() / ".povrisk" / "champions")


def save_champions(models: dict[str, TaskModel], aliases: dict[str, list[str]], folder: Path) -> None:
    """Write the task models (and their aliases) as the local copy, replacing any older copy whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.writing-", dir=folder.parent))
    try:
        for task, model in models.items():
            task_folder = staging / task
            task_folder.mkdir()
            booster_text = model._ready_booster().model_to_string()
            (task_folder / "booster.txt").write_text(booster_text, encoding="utf-8")
            with open(task_folder / "model.pkl", "wb") as handle:
                pickle.dump(model.without_booster(), handle)
        card = {"tasks": sorted(models), "aliases": aliases, "saved_at": datetime.now(UTC).isoformat()}
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


def load_champions(folder: Path, tasks: tuple[str, ...]) -> tuple[dict[str, TaskModel], dict[str, Any]]:
    """The task models of the local copy and its card; `CacheMissing` naming what is absent."""
    card_file = folder / CARD_FILE
    if not card_file.exists():
        raise CacheMissing(f"no local copy of the champions in {folder}")
    card = json.loads(card_file.read_text(encoding="utf-8"))
    models: dict[str, TaskModel] = {}
    for task in tasks:
        task_folder = folder / task
        if not (task_folder / "model.pkl").exists() or not (task_folder / "booster.txt").exists():
            raise CacheMissing(f"the local copy in {folder} has no {task} model")
        with open(task_folder / "model.pkl", "rb") as handle:
            model = pickle.load(handle)  # our own file, written by save_champions
        booster = lgb.Booster(model_file=str(task_folder / "booster.txt"))
        models[task] = replace(model, booster=booster)
    return models, card
