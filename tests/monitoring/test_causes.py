"""Causes of poverty from SHAP reasons and indicators (monitoring/causes.py, rule in its docstring)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.frame import FEATURE_NAMES
from monitoring.causes import (
    CauseSettingsError,
    assign_causes,
    household_causes,
    load_cause_settings,
    parse_cause_settings,
)

SETTINGS = load_cause_settings()


def reason(indicator: str, contribution: float) -> dict[str, Any]:
    return {"indicator": indicator, "value": 1.0, "contribution": contribution, "sentence": "..."}


def test_reasons_rank_the_causes_by_summed_contribution() -> None:
    reasons = [
        reason("serious_illness_members", 0.9),
        reason("arable_land_per_capita", 0.5),
        reason("medical_expense_share", 0.3),  # illness again: 1.2 in all
        reason("distance_road_km", 0.6),
    ]
    assert household_causes(reasons, {}, SETTINGS) == ("illness", ("poor_transport", "lack_of_land"))


def test_a_shock_this_round_points_to_its_cause_after_the_reasons() -> None:
    reasons = [reason("share_disabled", 0.4)]
    flags = {"shock_disaster": 1.0, "shock_job_loss": 0.0, "deprived_safe_water": 1.0}
    assert household_causes(reasons, flags, SETTINGS) == ("disability", ("disaster", "lack_of_water"))


def test_no_evidence_gives_other_and_unmapped_reasons_are_ignored() -> None:
    reasons = [reason("per_capita_net_income", 1.2), reason("registered_poor", 0.8)]
    assert household_causes(reasons, {"shock_disaster": np.nan}, SETTINGS) == ("other", ())
    assert household_causes([], {}, SETTINGS) == ("other", ())


def test_at_most_two_secondary_causes() -> None:
    reasons = [
        reason(name, 1.0 - i / 10)
        for i, name in enumerate(
            ["serious_illness_members", "share_disabled", "schooling_gap", "arable_land_per_capita"]
        )
    ]
    main, secondary = household_causes(reasons, {}, SETTINGS)
    assert main == "illness" and secondary == ("disability", "schooling")


def test_assign_causes_on_a_frame() -> None:
    index = pd.MultiIndex.from_tuples([("a", 1), ("b", 1)], names=["household_id", "round"])
    features = pd.DataFrame({"shock_serious_illness": [0.0, 1.0], "other_column": [3.0, 4.0]}, index=index)
    causes = assign_causes(features, [[reason("labour_capable_members", 0.5)], []])
    assert causes.index.equals(index)
    assert causes.loc[("a", 1)].tolist() == ["lack_of_labour", ""]
    assert causes.loc[("b", 1)].tolist() == ["illness", ""]
    with pytest.raises(ValueError, match="2 households but 1 reason lists"):
        assign_causes(features, [[]])


def test_every_mapped_indicator_exists_and_every_cause_has_labels() -> None:
    mapped = set(SETTINGS.reason_causes) | set(SETTINGS.indicator_causes)
    assert mapped <= set(FEATURE_NAMES)
    assert len(SETTINGS.causes) == 12
    assert all({"zh", "en"} <= set(label) for label in SETTINGS.labels.values())
    assert "lack_of_drive" not in set(SETTINGS.reason_causes.values()) | set(
        SETTINGS.indicator_causes.values()
    )


def test_malformed_settings_are_refused_with_the_reason() -> None:
    good = {
        "version": "1",
        "causes": {"illness": {"zh": "因病", "en": "illness"}, "other": {"zh": "其他", "en": "other"}},
        "reason_causes": {"serious_illness_members": "illness"},
        "indicator_causes": {},
    }
    assert parse_cause_settings(good).max_secondary == 2
    with pytest.raises(CauseSettingsError, match=r"unknown cause\(s\) \['flood'\]"):
        parse_cause_settings(good | {"reason_causes": {"shock_disaster": "flood"}})
    with pytest.raises(CauseSettingsError, match="lack"):
        parse_cause_settings({"version": "1"})
    with pytest.raises(CauseSettingsError, match="max_secondary"):
        parse_cause_settings(good | {"max_secondary": -1})
