"""Flags keep their data completeness: the share of the models' explanatory weight whose inputs were known
for the household when it was scored (features/completeness.py). Flags written before have none (NULL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flags") as table:
        table.add_column(sa.Column("data_completeness", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flags") as table:
        table.drop_column("data_completeness")
