"""staff accounts and the back office

Revision ID: 8d2f1a4b0c32
Revises: 7c1e0f3a9b21
Create Date: 2026-11-25 13:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8d2f1a4b0c32'
down_revision = '7c1e0f3a9b21'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
