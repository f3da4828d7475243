"""The audit trail hardened: the role of the key that scored, compacted rows, and records the database
refused kept aside instead of blocking the trail.

- `score_audit.key_role`: the role of the scoring key; the village check trusts only where county-wide
  keys (monitor, analyst) saw a household, never a cadre's own claim.
- `score_audit.compacted_scores`: NULL for one score; on a row that retention compacted, how many scores
  of that household and day it stands for (`monitoring.audit.apply_retention`).
- `score_audit_rejected`: an audit record the database would not take (e.g. text it cannot store), as
  escaped JSON with the reason, so that one bad record never stops the others.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("score_audit") as table:
        table.add_column(sa.Column("key_role", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("compacted_scores", sa.Integer(), nullable=True))
    op.create_table(
        "score_audit_rejected",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("score_audit_rejected")
    with op.batch_alter_table("score_audit") as table:
        table.drop_column("compacted_scores")
        table.drop_column("key_role")
