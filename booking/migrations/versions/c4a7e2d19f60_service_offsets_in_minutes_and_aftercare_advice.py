"""services: reminder and aftercare offsets as minutes; which aftercare advice a service gives

Offsets were kept as the clinic file wrote them ("48h", "90m") and read again at every booking;
now they are JSON lists of whole minutes. The aftercare advice was guessed from "needling" in
the service; existing services that the guess matched get the dry needling advice.

Revision ID: c4a7e2d19f60
Revises: b2c4d6e8f0a1
Create Date: 2026-12-02 03:30:00.000000

"""
import json
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4a7e2d19f60'
down_revision = 'b2c4d6e8f0a1'
branch_labels = None
depends_on = None

# The conversions are written out here: a migration must not change when the code does.
_MINUTES_PER_UNIT = {'m': 1, 'h': 60, 'd': 24 * 60}
_DURATION = re.compile(r'([1-9][0-9]*)([mhd])')

services = sa.table(
    'services',
    sa.column('id', sa.Integer),
    sa.column('slug', sa.String),
    sa.column('name', sa.String),
    sa.column('reminders', sa.JSON),
    sa.column('aftercare', sa.JSON),
)


def _minutes(written):
    amount, unit = _DURATION.fullmatch(written).groups()
    return int(amount) * _MINUTES_PER_UNIT[unit]


def _written(minutes):
    return f'{minutes // 60}h' if minutes % 60 == 0 else f'{minutes}m'


def _convert(convert):
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(services.c.id, services.c.reminders, services.c.aftercare)
    ).all()
    for row in rows:
        reminders = row.reminders if not isinstance(row.reminders, str) else json.loads(row.reminders)
        aftercare = row.aftercare if not isinstance(row.aftercare, str) else json.loads(row.aftercare)
        connection.execute(
            services.update()
            .where(services.c.id == row.id)
            .values(
                reminders=[convert(item) for item in reminders or []],
                aftercare=[convert(item) for item in aftercare or []],
            )
        )


def upgrade():
    op.add_column(
        'services',
        sa.Column('aftercare_advice', sa.String(length=32), server_default='none', nullable=False),
    )
    op.execute(
        "UPDATE services SET aftercare_advice = 'dry-needling' "
        "WHERE slug LIKE '%needling%' OR LOWER(name) LIKE '%needling%'"
    )
    _convert(_minutes)


def downgrade():
    _convert(_written)
    op.drop_column('services', 'aftercare_advice')
