"""a course's insurance authorisation: how many visits, and until when

Revision ID: e8c2a4f6b1d3
Revises: d7e5b3a1c9f2
Create Date: 2026-12-02 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e8c2a4f6b1d3'
down_revision = 'd7e5b3a1c9f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('appointment_series', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authorised_visits', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('authorised_until', sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table('appointment_series', schema=None) as batch_op:
        batch_op.drop_column('authorised_until')
        batch_op.drop_column('authorised_visits')
