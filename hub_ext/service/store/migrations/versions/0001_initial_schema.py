"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 01:37:55.789621
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('workload_seq', sa.Integer(), nullable=True),
    sa.Column('user', sa.String(length=255), nullable=True),
    sa.Column('team', sa.String(length=255), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_user'), ['user'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_workload_seq'), ['workload_seq'], unique=False)

    op.create_table('nodes',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('schedulable', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('last_reading_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('teams',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('quota', sa.Float(), nullable=False),
    sa.Column('over_quota_weight', sa.Float(), nullable=False),
    sa.Column('limit', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('workloads',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('user', sa.String(length=255), nullable=False),
    sa.Column('team', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('gpus', sa.Float(), nullable=False),
    sa.Column('min_gpus', sa.Integer(), nullable=True),
    sa.Column('max_gpus', sa.Integer(), nullable=True),
    sa.Column('gpu_model', sa.String(length=255), nullable=True),
    sa.Column('min_gpu_memory_mib', sa.Integer(), nullable=True),
    sa.Column('gpu_memory_mib', sa.Integer(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('preemptible', sa.Boolean(), nullable=False),
    sa.Column('command', sa.JSON(), nullable=True),
    sa.Column('env', sa.JSON(), nullable=True),
    sa.Column('workdir', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.Float(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('preemptions', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('over_quota', sa.Boolean(), nullable=False),
    sa.Column('queue_position', sa.Integer(), nullable=True),
    sa.Column('expected_start', sa.Float(), nullable=True),
    sa.Column('runner_handle', sa.Text(), nullable=True),
    sa.Column('stop_handles', sa.JSON(), nullable=True),
    sa.Column('log_path', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workloads_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_workloads_team'), ['team'], unique=False)
        batch_op.create_index(batch_op.f('ix_workloads_user'), ['user'], unique=False)

    op.create_table('gpus',
    sa.Column('uuid', sa.String(length=255), nullable=False),
    sa.Column('node_name', sa.String(length=255), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=255), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('utilization', sa.Float(), nullable=True),
    sa.Column('memory_used_mib', sa.Integer(), nullable=True),
    sa.Column('processes', sa.JSON(), nullable=True),
    sa.Column('reading_at', sa.Float(), nullable=True),
    sa.Column('idle_since', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['node_name'], ['nodes.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('uuid')
    )
    with op.batch_alter_table('gpus', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gpus_node_name'), ['node_name'], unique=False)

    op.create_table('shares',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('workload_seq', sa.Integer(), nullable=False),
    sa.Column('node_name', sa.String(length=255), nullable=False),
    sa.Column('gpu_uuid', sa.String(length=255), nullable=False),
    sa.Column('gpu_index', sa.Integer(), nullable=False),
    sa.Column('fraction', sa.Float(), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['workload_seq'], ['workloads.seq'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shares_gpu_uuid'), ['gpu_uuid'], unique=False)
        batch_op.create_index(batch_op.f('ix_shares_workload_seq'), ['workload_seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('shares', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shares_workload_seq'))
        batch_op.drop_index(batch_op.f('ix_shares_gpu_uuid'))

    op.drop_table('shares')
    with op.batch_alter_table('gpus', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gpus_node_name'))

    op.drop_table('gpus')
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workloads_user'))
        batch_op.drop_index(batch_op.f('ix_workloads_team'))
        batch_op.drop_index(batch_op.f('ix_workloads_state'))

    op.drop_table('workloads')
    op.drop_table('teams')
    op.drop_table('nodes')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_workload_seq'))
        batch_op.drop_index(batch_op.f('ix_events_user'))
        batch_op.drop_index(batch_op.f('ix_events_at'))

    op.drop_table('events')
