"""A small simulated county, trained once per test session (integration tests only)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def county():
    from survey.simulate import CountySettings, simulate_county

    return simulate_county(CountySettings(households=1000, rounds=3, monte_carlo_draws=50))


@pytest.fixture(scope="session")
def policy():
    from features.policy import load_policy

    return load_policy()


@pytest.fixture(scope="session")
def trained(county, policy):
    from training.train import train_task

    return {task: train_task(county, task, policy) for task in ("poverty", "relapse")}


@pytest.fixture(autouse=True)
def private_mlflow_store(tmp_path, monkeypatch):
    """Every test logs to its own SQLite store, never to the working folder's."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture(scope="session")
def levelled_county():
    """A one-round simulated county with synthetic poverty levels (from the true income) and slices."""
    import numpy as np

    from survey.io import Survey
    from survey.simulate import CountySettings, simulate_county

    county = simulate_county(CountySettings(households=500, rounds=1, monte_carlo_draws=10))
    households = county.households.copy()
    truth = county.truth.set_index(["household_id", "round"])["per_capita_net_income"]
    income = truth.reindex(list(zip(households["household_id"], households["round"], strict=True))).to_numpy()
    line = 2800.0
    # the deepest level below 0.7 lines: about 12 of 500 households, enough for one in each of 5 folds
    level = np.digitize(income, [0.7 * line, line, 2.0 * line]) + 1.0
    households["label_level"] = level
    households["label_poor"] = (level <= 2).astype(float)
    rng = np.random.default_rng(0)
    households["area"] = rng.choice(["urban", "rural"], len(households))
    households["region"] = rng.choice(["north", "south"], len(households))
    households["head_sex"] = rng.choice(["male", "female"], len(households))
    return Survey(households, county.members, county.villages, county.truth)


@pytest.fixture(scope="session")
def quick_settings():
    """Training settings with 2 tuning trials and 3 folds (fast)."""
    from dataclasses import replace

    from training.settings import load_training_settings

    settings = load_training_settings()
    return replace(settings, cv_folds=3, tuning=replace(settings.tuning, n_trials=2, inner_folds=2))
