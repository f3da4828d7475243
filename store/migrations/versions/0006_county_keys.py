"""Keys carry the county: flags, their history and the audit trail gain `county_id`, and a flag is
unique by (county_id, household_id, round), so two counties' `H000001` never collide.

Rows written before this revision were scored from survey folders that named no county: they keep the
empty county id (`store.cases.NO_COUNTY`), as do flags scored from a folder today.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _county_column() -> sa.Column:
    return sa.Column("county_id", sa.String(length=64), nullable=False, server_default="")


def upgrade() -> None:
    with op.batch_alter_table("flags") as table:
        table.add_column(_county_column())
        table.drop_constraint("uq_flags_household_round", type_="unique")
        table.create_unique_constraint(
            "uq_flags_county_household_round", ["county_id", "household_id", "round"]
        )
        table.create_index("ix_flags_county_id", ["county_id"])
    with op.batch_alter_table("flag_history") as table:
        table.add_column(_county_column())
    with op.batch_alter_table("score_audit") as table:
        table.add_column(_county_column())


def downgrade() -> None:
    with op.batch_alter_table("score_audit") as table:
        table.drop_column("county_id")
    with op.batch_alter_table("flag_history") as table:
        table.drop_column("county_id")
    with op.batch_alter_table("flags") as table:
        table.drop_index("ix_flags_county_id")
        table.drop_constraint("uq_flags_county_household_round", type_="unique")
        table.create_unique_constraint("uq_flags_household_round", ["household_id", "round"])
        table.drop_column("county_id")
