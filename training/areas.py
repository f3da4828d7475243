"""Township and village of held-out rows: what `povrisk compare` breaks its comparison down by.

Training logs them beside the held-out rows (`training.tracking.log_and_register`, artifact
`held_out/areas.parquet`, keyed like the rows by hashed household id and round), so that a comparison
needs nothing but the registry; for a run logged before that, `compare` can take the survey instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AREA_LEVELS = ("township_id", "village_id")


def row_areas(
    households: pd.DataFrame,
    villages: pd.DataFrame | None,
    index: pd.Index,
    id_column: str = "household_id",
) -> pd.DataFrame:
    """`township_id` and `village_id` (None where unknown) of each (household, round) of `index`, read
    from a survey's `households` (`id_column`: the column holding the index's first level, e.g. the
    hashed `household_ref` of a pseudonymised copy) and its village register `villages`."""
    key = pd.MultiIndex.from_arrays([households[id_column].astype(str), households["round"].astype(np.int64)])
    village_of_row = pd.Series(households["village_id"].astype(str).to_numpy(), index=key)
    village_of_row = village_of_row[~village_of_row.index.duplicated()]
    wanted = pd.MultiIndex.from_arrays(
        [index.get_level_values(0).astype(str), index.get_level_values(1).astype(np.int64)]
    )
    village = village_of_row.reindex(wanted).to_numpy(dtype=object)
    township = np.full(len(index), None, dtype=object)
    if villages is not None and "township_id" in villages.columns:
        register = villages.drop_duplicates("village_id")
        township_of = pd.Series(register["township_id"].to_numpy(), index=register["village_id"].astype(str))
        township = pd.Series(village).map(township_of).to_numpy(dtype=object)
    frame = pd.DataFrame({"township_id": township, "village_id": village}, index=index)
    return frame.where(frame.notna(), None)
