"""the patient's details as given with each booking

Revision ID: 4f6a8c2e1b57
Revises: 4c7d2e9f1a60
Create Date: 2026-12-02 03:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4f6a8c2e1b57'
down_revision = '4c7d2e9f1a60'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_phone', sa.String(length=40), server_default='', nullable=False))
        batch_op.add_column(sa.Column('patient_date_of_birth', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('patient_guardian_name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('patient_language', sa.String(length=16), server_default='en', nullable=False))
    # Bookings made before this kept their details on the patient's record only.
    op.execute(
        "UPDATE appointments SET"
        " patient_phone = (SELECT phone FROM patients WHERE patients.id = appointments.patient_id),"
        " patient_date_of_birth = (SELECT date_of_birth FROM patients"
        " WHERE patients.id = appointments.patient_id),"
        " patient_guardian_name = (SELECT guardian_name FROM patients"
        " WHERE patients.id = appointments.patient_id)"
    )


def downgrade():
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_column('patient_language')
        batch_op.drop_column('patient_guardian_name')
        batch_op.drop_column('patient_date_of_birth')
        batch_op.drop_column('patient_phone')
