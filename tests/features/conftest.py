"""Small hand-built surveys for the features tests: three households, two rounds, every block present."""

from __future__ import annotations

import pandas as pd
import pytest

from features.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


def full_households() -> pd.DataFrame:
    """Households a (rounds 0, 1), b (round 0), c (round 0) with every optional block of the schema."""
    return pd.DataFrame(
        {
            "household_id": pd.Series(["a", "a", "b", "c"], dtype="str"),
            "village_id": pd.Series(["v1", "v1", "v1", "v2"], dtype="str"),
            "round": [0, 1, 0, 0],
            "income_wages": [6000.0, 9000.0, 0.0, 20000.0],
            "income_agriculture_net": [1500.0, 1500.0, 800.0, -1000.0],
            "income_business": [0.0, 0.0, 0.0, 5000.0],
            "income_transfers": [500.0, 500.0, 1200.0, 0.0],
            "income_property": [0.0, 0.0, 0.0, 1000.0],
            "production_costs": [1000.0, 1000.0, 400.0, 3000.0],
            "medical_expenses": [300.0, 200.0, 1500.0, 0.0],
            "schooling_expenses": [800.0, 800.0, 0.0, 1000.0],
            "debt": [0.0, 5000.0, 2000.0, 0.0],
            "arable_land_mu": [4.0, 4.0, 2.0, 0.0],
            "livestock_units": [1.0, 2.0, 0.0, 0.0],
            "housing_area_m2": [80.0, 80.0, 30.0, 120.0],
            "housing_structure": pd.Series(["brick_wood", "brick_wood", "earth_wood", "reinforced_concrete"]),
            "dangerous_house": [0.0, 0.0, 1.0, 0.0],
            "safe_drinking_water": [1.0, 1.0, 0.0, 1.0],
            "electricity": [1.0, 1.0, 1.0, 1.0],
            "cooking_fuel": pd.Series(["firewood", "gas", "firewood", "electricity"]),
            "rooms": [4.0, 4.0, 1.0, 5.0],
            "bedrooms": [2.0, 2.0, 0.0, 3.0],
            "toilet": [1.0, 1.0, 0.0, 1.0],
            "tenure": pd.Series(["owned", "owned", "precarious", "rented"]),
            "rent_paid": [0.0, 0.0, 0.0, 24000.0],
            "wall_state": pd.Series(["regular", "regular", "bad", "good"]),
            "roof_state": pd.Series(["good", "good", "bad", "good"]),
            "floor_state": pd.Series(["regular", "good", None, "good"]),
            "floor_material": pd.Series(["cement", "cement", "natural", "tiles"]),
            "ceiling": [0.0, 1.0, 0.0, 1.0],
            "mobile_phones": [1.0, 2.0, 0.0, 2.0],
            "distance_road_km": [1.0, 1.0, 6.5, 0.2],
            "distance_market_km": [8.0, 8.0, 20.0, 2.0],
            "distance_clinic_km": [2.0, 2.0, 5.0, 1.0],
            "durable_assets": [3.0, 4.0, 1.0, 8.0],
            "medical_insurance": [1.0, 1.0, 1.0, 0.0],
            "pension_insurance": [1.0, 1.0, 0.0, 1.0],
            "shock_serious_illness": [0.0, 0.0, 1.0, 0.0],
            "shock_disability": [0.0, 0.0, 0.0, 0.0],
            "shock_disaster": [1.0, 0.0, 1.0, 0.0],
            "shock_accident": [0.0, 0.0, 0.0, 0.0],
            "shock_job_loss": [0.0, 1.0, 0.0, 0.0],
            "shock_industry_failure": [0.0, 0.0, 0.0, 0.0],
            "shock_schooling_cost": [0.0, 0.0, 0.0, 0.0],
            "poverty_status": pd.Series(["poor", "exited", "poor", "never_poor"]),
            "receiving_assistance": [1.0, 0.0, 1.0, 0.0],
            "assistance_ends": [0.0, 1.0, 0.0, 0.0],
        }
    )


def full_members() -> pd.DataFrame:
    """a: two adults and a 10-year-old (out of school and a year behind in round 0); b: an elderly,
    seriously ill widow; c: a couple, one a migrant worker."""
    rows = [
        # household, member, round, age, education, in_school, health, disability, capacity,
        # migrant months, years behind in school
        ("a", "1", 0, 42.0, 6.0, 0.0, "healthy", 0.0, "ordinary", 8.0, None),
        ("a", "2", 0, 40.0, 9.0, 0.0, "chronic", 0.0, "weak", 0.0, None),
        ("a", "3", 0, 10.0, 3.0, 0.0, "healthy", 0.0, "none", 0.0, 1.0),
        ("a", "1", 1, 43.0, 6.0, 0.0, "healthy", 0.0, "ordinary", 10.0, None),
        ("a", "2", 1, 41.0, 9.0, 0.0, "chronic", 0.0, "weak", 0.0, None),
        ("a", "3", 1, 11.0, 4.0, 1.0, "healthy", 0.0, "none", 0.0, 0.0),
        ("b", "1", 0, 72.0, 2.0, 0.0, "serious_illness", 1.0, "lost", 0.0, None),
        ("c", "1", 0, 35.0, 12.0, 0.0, "healthy", 0.0, "skilled", 12.0, None),
        ("c", "2", 0, 33.0, 12.0, 0.0, "healthy", 0.0, "skilled", 3.0, None),
    ]
    columns = [
        "household_id",
        "member_id",
        "round",
        "age",
        "education_years",
        "in_school",
        "health_status",
        "disability",
        "labour_capacity",
        "migrant_work_months",
        "school_years_behind",
    ]
    members = pd.DataFrame(rows, columns=columns)
    members["relation_to_head"] = pd.Series(
        ["head", "spouse", "child", "head", "spouse", "child", "head", "head", "spouse"]
    )
    for name in ("household_id", "member_id", "health_status", "labour_capacity", "relation_to_head"):
        members[name] = members[name].astype("str")
    return members


@pytest.fixture
def households() -> pd.DataFrame:
    return full_households()


@pytest.fixture
def members() -> pd.DataFrame:
    return full_members()
