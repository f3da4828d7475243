"""The flag store: flags (one household in one round) and their append-only status history.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

This is the schema `Base.metadata.create_all` made before the store had migrations; `create_schema`
stamps such a database at this revision instead of creating anything.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = ("flagged", "verified", "rejected", "assisted", "risk_eliminated")


def upgrade() -> None:
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("category_rule", sa.Text(), nullable=False),
        sa.Column("poverty_risk", sa.Float(), nullable=True),
        sa.Column("relapse_risk", sa.Float(), nullable=True),
        sa.Column("risk_tier", sa.String(length=16), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("household_id", "round", name="uq_flags_household_round"),
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in STATUSES) + ")", name="ck_flags_status"
        ),
    )
    op.create_index("ix_flags_household_id", "flags", ["household_id"])
    op.create_index("ix_flags_village_id", "flags", ["village_id"])
    op.create_index("ix_flags_round", "flags", ["round"])
    op.create_index("ix_flags_status", "flags", ["status"])
    op.create_table(
        "flag_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["flag_id"], ["flags.id"]),
    )
    op.create_index("ix_flag_history_flag_id", "flag_history", ["flag_id"])


def downgrade() -> None:
    op.drop_table("flag_history")
    op.drop_table("flags")
