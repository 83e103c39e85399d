"""time limits and expected-start bases: workloads.time_limit_s, expected_start_basis, time_warned_at

Revision ID: 0005
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.add_column(sa.Column("time_limit_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("expected_start_basis", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("time_warned_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch_op:
        batch_op.drop_column("time_warned_at")
        batch_op.drop_column("expected_start_basis")
        batch_op.drop_column("time_limit_s")
