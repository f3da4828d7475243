"""Where the tests find the real survey files shared beside the repository (never copied into it)."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def costa_rica_train_csv() -> Path:
    """The shared Costa Rica train.csv: $POVRISK_COSTA_RICA, else ../shared/data beside the repository."""
    configured = os.environ.get("POVRISK_COSTA_RICA")
    if configured:
        return Path(configured)
    return REPOSITORY.parent / "shared" / "data" / "costa-rica" / "train.csv"
