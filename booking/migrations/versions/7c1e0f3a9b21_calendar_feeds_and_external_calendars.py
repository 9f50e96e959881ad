"""calendar feeds and external busy calendars

Revision ID: 7c1e0f3a9b21
Revises: 5b2d9c41e7a3
Create Date: 2026-11-25 13:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e0f3a9b21'
down_revision = '5b2d9c41e7a3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_details', sa.String(length=32), server_default='service-and-initials', nullable=False))
        batch_op.add_column(sa.Column('feed_rotation', sa.Integer(), server_default='0', nullable=False))

    op.create_table('external_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('etag', sa.String(length=300), nullable=False),
    sa.Column('last_modified', sa.String(length=100), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('succeeded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('expanded_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('external_calendars', schema=None) as batch_op:
        batch_op.create_index('ix_external_calendars_therapist', ['therapist_id'], unique=False)

    op.create_table('external_busy_times',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('therapist_id', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['external_calendars.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['therapist_id'], ['therapists.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('external_busy_times', schema=None) as batch_op:
        batch_op.create_index('ix_external_busy_times_therapist_start', ['therapist_id', 'start_at'], unique=False)
        batch_op.create_index('ix_external_busy_times_calendar', ['calendar_id'], unique=False)


def downgrade():
    with op.batch_alter_table('external_busy_times', schema=None) as batch_op:
        batch_op.drop_index('ix_external_busy_times_calendar')
        batch_op.drop_index('ix_external_busy_times_therapist_start')

    op.drop_table('external_busy_times')
    with op.batch_alter_table('external_calendars', schema=None) as batch_op:
        batch_op.drop_index('ix_external_calendars_therapist')

    op.drop_table('external_calendars')
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('feed_rotation')
        batch_op.drop_column('feed_details')
