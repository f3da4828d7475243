"""What a household's village looks like in a round, as counts over its households' raw answers.

Village-level indicators never come from one household: the register keeps these counts per village
and round (refreshed on ingest), and a feature frame built from a whole round computes the same counts
from its rows (`features.frame`), so batch scoring and the service read the same village context.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from survey.schema import SHOCK_COLUMNS

CONTEXT_COLUMNS = ("households", "answering_shocks", "with_shocks")
"""Per village and round: households, those that answered at least one shock question, and those that
reported at least one shock."""


def shock_answers(households: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether the household answered at least one shock question the survey asks, and whether
    it reported at least one shock (an unanswered question is skipped)."""
    present = [column for column in SHOCK_COLUMNS if column in households.columns]
    if not present:
        none = np.zeros(len(households), dtype=bool)
        return none, none
    # column by column: DataFrame.apply costs milliseconds, a service request of one household feels them
    values = np.column_stack(
        [pd.to_numeric(households[column], errors="coerce").to_numpy(dtype=np.float64) for column in present]
    )
    answered = ~np.isnan(values)
    return answered.any(axis=1), (answered & (values > 0)).any(axis=1)


def village_round_context(households: pd.DataFrame) -> pd.DataFrame:
    """Counts per (village_id, round) over the table's rows (columns CONTEXT_COLUMNS, int64)."""
    answered, reported = shock_answers(households)
    frame = pd.DataFrame(
        {
            "village_id": households["village_id"].astype(str).to_numpy(),
            "round": pd.to_numeric(households["round"]).to_numpy(dtype=np.int64),
            "households": 1,
            "answering_shocks": answered.astype(np.int64),
            "with_shocks": reported.astype(np.int64),
        }
    )
    return frame.groupby(["village_id", "round"], as_index=False, sort=True).sum()
