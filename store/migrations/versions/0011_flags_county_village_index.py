"""An index on the flags' (county_id, village_id): the worklist, the exports and the village sheets read a
county's cases of some villages; with single-column indexes only, SQLite may pick the county index and
read every case of the county.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flags_county_village", "flags", ["county_id", "village_id"])


def downgrade() -> None:
    op.drop_index("ix_flags_county_village", table_name="flags")
