"""preemption notice (workloads.preempt_at, preempt_reason) and decayed usage history

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.add_column(sa.Column("preempt_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("preempt_reason", sa.Text(), nullable=True))
    op.create_table(
        "usage_history",
        sa.Column("team", sa.String(255), primary_key=True),
        sa.Column("user", sa.String(255), primary_key=True, server_default=""),
        sa.Column("average_gpus", sa.Float(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("usage_history")
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.drop_column("preempt_reason")
        batch_op.drop_column("preempt_at")
