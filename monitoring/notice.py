"""The public-notice list: the flagged households a village posts for review, and nothing private.

A village posts who is under monitoring so that neighbours can object to a wrong inclusion or a missed
household. The list names the household by its survey id and says why it is watched (monitoring
category, main cause) and where its case stands (status). It never carries names, ID-card numbers,
scores, reasons or the notes of field visits: the columns are an allow-list, so whatever else a flag
comes to hold stays out of the notice.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

# flag column -> notice column, in the notice's order
NOTICE_COLUMNS: Mapping[str, str] = {
    "village_id": "village",
    "household_id": "household",
    "category": "category",
    "main_cause": "main_cause",
    "status": "status",
}


REJECTED = "rejected"


def public_notice(flags: pd.DataFrame, include_rejected: bool = False) -> pd.DataFrame:
    """The notice rows of a flag list (as `store.cases.list_flags` returns it), by village and
    household; `main_cause` stays empty for flags whose cause is not assigned yet. Flags a field visit
    rejected are left out unless `include_rejected`: posting them would publicly mark households the
    village found not to be at risk."""
    missing = [column for column in NOTICE_COLUMNS if column not in flags.columns]
    if missing:
        raise ValueError(f"flag list lacks column(s) the public notice needs: {', '.join(missing)}")
    kept = flags if include_rejected else flags.loc[flags["status"] != REJECTED]
    notice = kept.loc[:, list(NOTICE_COLUMNS)].rename(columns=dict(NOTICE_COLUMNS))
    return notice.sort_values(["village", "household"], kind="stable").reset_index(drop=True)
