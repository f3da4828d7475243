"""The public-notice list keeps only what a village may post."""

from __future__ import annotations

import pandas as pd
import pytest

from monitoring.notice import public_notice


def _flag_list() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [3, 1, 2],
            "household_id": ["h3", "h1", "h2"],
            "village_id": ["v2", "v1", "v1"],
            "round": [2, 2, 2],
            "category": ["marginal", "poor", "sudden_hardship"],
            "category_rule": ["relapse risk 0.34 >= 0.20", "poverty risk 0.81", "shock"],
            "poverty_risk": [0.1, 0.8, 0.3],
            "reasons": ["[]", "[]", "[]"],
            "main_cause": ["illness", None, "disaster"],
            "status": ["verified", "flagged", "rejected"],
            "head_name": ["Wang Fang", "Li Wei", "Zhang Min"],
            "id_card_number": ["110101199003074512"] * 3,
            "note": ["owes the clinic"] * 3,
        }
    )


def test_notice_has_only_the_public_columns_in_order() -> None:
    notice = public_notice(_flag_list(), include_rejected=True)
    assert list(notice.columns) == ["village", "household", "category", "main_cause", "status"]
    assert notice.fillna("").values.tolist() == [
        ["v1", "h1", "poor", "", "flagged"],
        ["v1", "h2", "sudden_hardship", "disaster", "rejected"],
        ["v2", "h3", "marginal", "illness", "verified"],
    ]


def test_rejected_flags_are_not_posted_by_default() -> None:
    assert public_notice(_flag_list())["household"].tolist() == ["h1", "h3"]


def test_notice_carries_no_private_value() -> None:
    text = public_notice(_flag_list(), include_rejected=True).to_csv(index=False)
    for private in ("Wang Fang", "110101199003074512", "owes the clinic", "0.8", "poverty risk"):
        assert private not in text


def test_flag_list_without_main_cause_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="main_cause"):
        public_notice(_flag_list().drop(columns=["main_cause"]))
