"""Register amendments: facts a person corrected (a visit's findings), field by field, with who, in which
role, when and from which case, on top of the version of the round they correct. Nothing ingested is
changed; the register reads the latest amendment of a field as its value.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "register_amendments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ingest_id", sa.Integer(), sa.ForeignKey("register_ingests.id"), nullable=False),
        sa.Column("county_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("flag_id", sa.Integer(), nullable=True),
        sa.Column("amended_by", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("amended_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_register_amendments_ingest_id", "register_amendments", ["ingest_id"])
    op.create_index("ix_register_amendments_household", "register_amendments", ["county_id", "household_id"])


def downgrade() -> None:
    op.drop_index("ix_register_amendments_household", table_name="register_amendments")
    op.drop_index("ix_register_amendments_ingest_id", table_name="register_amendments")
    op.drop_table("register_amendments")
