"""the clinic's languages, and service names and descriptions in them

Revision ID: e5b1c9a7d3f2
Revises: d7e1c3a5b9f2
Create Date: 2026-12-02 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5b1c9a7d3f2'
down_revision = 'd7e1c3a5b9f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.add_column(sa.Column('languages', sa.JSON(), server_default='["en"]', nullable=False))
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('translations', sa.JSON(), server_default='{}', nullable=False))


def downgrade():
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('translations')
    with op.batch_alter_table('clinic', schema=None) as batch_op:
        batch_op.drop_column('languages')
