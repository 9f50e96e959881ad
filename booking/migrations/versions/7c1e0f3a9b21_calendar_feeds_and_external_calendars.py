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
    pass


def downgrade():
    pass
