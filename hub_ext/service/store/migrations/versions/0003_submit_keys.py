"""submit_keys: idempotency keys of submissions, unique per user

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submit_keys",
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("workload_seq", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["workload_seq"], ["workloads.seq"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user", "key"),
    )
    with op.batch_alter_table("submit_keys") as batch_op:
        batch_op.create_index(batch_op.f("ix_submit_keys_workload_seq"), ["workload_seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("submit_keys") as batch_op:
        batch_op.drop_index(batch_op.f("ix_submit_keys_workload_seq"))
    op.drop_table("submit_keys")
