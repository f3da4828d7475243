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
