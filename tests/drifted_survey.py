"""A survey whose population has clearly moved: the same households with other money, distances,
amenities, schooling and ages. Used to show that `povrisk promote` refuses a model trained on it."""

from __future__ import annotations

import numpy as np

from survey.io import Survey

RICHER = ("income_wages", "income_business", "income_property", "durable_assets", "housing_area_m2")
MORE_LAND = ("arable_land_mu", "livestock_units")
LOWER_COSTS = ("production_costs", "medical_expenses", "schooling_expenses", "debt")
FARTHER = ("distance_road_km", "distance_market_km", "distance_clinic_km")
FLIPPED = ("pension_insurance",)


def drifted_survey(survey: Survey) -> Survey:
    """A valid copy of `survey` in which about a third of the indicators drift (PSI > 0.2) in every round:
    incomes, assets and land x4, costs / 4, distances x3 + 5 km, pension insurance flipped, members
    4 more years of schooling (at most 22) and 12 years older."""
    households = survey.households.copy()
    for column in RICHER + MORE_LAND:
        households[column] = households[column] * 4
    for column in LOWER_COSTS:
        households[column] = households[column] / 4
    for column in FARTHER:
        households[column] = households[column] * 3 + 5
    for column in FLIPPED:
        households[column] = 1.0 - households[column]
    members = None
    if survey.members is not None:
        members = survey.members.copy()
        members["education_years"] = np.minimum(members["education_years"] + 4, 22)
        members["age"] = members["age"] + 12
    return Survey(households, members, survey.villages, survey.truth)
