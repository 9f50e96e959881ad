"""notifications: the `skipped` status (a reminder that came due after its visit began)

Revision ID: 4c7d2e9f1a60
Revises: c4a7e2d19f60
Create Date: 2026-12-02 03:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '4c7d2e9f1a60'
down_revision = 'c4a7e2d19f60'
branch_labels = None
depends_on = None

_WITHOUT = "status IN ('pending', 'sending', 'sent', 'failed', 'dropped')"
_WITH = "status IN ('pending', 'sending', 'sent', 'failed', 'dropped', 'skipped')"


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('notification_status', type_='check')
        batch_op.create_check_constraint('notification_status', _WITH)


def downgrade():
    # A skipped message was never sent: before this revision that was `dropped`.
    op.execute("UPDATE notifications SET status = 'dropped' WHERE status = 'skipped'")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint('notification_status', type_='check')
        batch_op.create_check_constraint('notification_status', _WITHOUT)
