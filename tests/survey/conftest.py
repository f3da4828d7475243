"""Small hand-built surveys shared by the survey tests."""

from __future__ import annotations

import pandas as pd
import pytest

from survey.io import Survey


@pytest.fixture
def small_survey() -> Survey:
    """Three households in two villages over two rounds, with members, villages, truth and two
    verification findings."""
    households = pd.DataFrame(
        {
            "household_id": ["H001", "H002", "H003", "H001", "H002", "H003"],
            "village_id": ["V01", "V01", "V02", "V01", "V01", "V02"],
            "round": [0, 0, 0, 1, 1, 1],
            "income_wages": [12_000.0, 0.0, 30_000.0, 14_000.0, 2_000.0, 31_000.0],
            "income_agriculture_net": [3_000.0, -500.0, 1_000.0, 3_500.0, 800.0, None],
            "housing_structure": ["brick_wood", "earth_wood", "brick_concrete"] * 2,
            "dangerous_house": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            "poverty_status": ["never_poor", "poor", "never_poor", "never_poor", "exited", "never_poor"],
        }
    )
    members = pd.DataFrame(
        {
            "household_id": ["H001", "H001", "H002", "H003", "H001", "H001", "H002", "H003"],
            "member_id": [
                "H001-01",
                "H001-02",
                "H002-01",
                "H003-01",
                "H001-01",
                "H001-02",
                "H002-01",
                "H003-01",
            ],
            "round": [0, 0, 0, 0, 1, 1, 1, 1],
            "age": [45.0, 12.0, 70.0, 33.0, 46.0, 13.0, 71.0, 34.0],
            "sex": ["male", "female", "female", "male"] * 2,
            "health_status": ["healthy", "healthy", "serious_illness", "chronic"] * 2,
        }
    )
    villages = pd.DataFrame({"village_id": ["V01", "V02"], "township_id": ["T01", "T01"]})
    truth = pd.DataFrame(
        {
            "household_id": ["H001", "H002", "H003"],
            "round": [0, 0, 0],
            "poor": [0.0, 1.0, 0.0],
            "per_capita_net_income": [7_500.0, 2_000.0, 31_000.0],
            "p_poor_next": [0.05, 0.7, 0.01],
        }
    )
    verification = pd.DataFrame({"household_id": ["H002", "H003"], "round": [1, 0], "poor": [1.0, 0.0]})
    return Survey(
        households=households, members=members, villages=villages, truth=truth, verification=verification
    )
