"""Raters as long as identities: ``ratings.rater`` and ``votes.rater`` take 254 characters (was 80).

Signed in, a person's ratings are stored under their identity, a lower-case e-mail address of up to 254
characters; an address longer than 80 could not rate at all (refused by the rater rule, and by
PostgreSQL's VARCHAR(80)). Names typed in the sidebar without sign-in stay at most 80 characters (the
box's limit). Every row is kept; downgrading refuses (and changes nothing) while a rater is longer
than 80 characters, which the older columns cannot hold.

Revision ID: 0007_rater_identity
Revises: 0005_owners
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_rater_identity"
down_revision = "0005_owners"
branch_labels = None
depends_on = None

OLD, NEW = sa.String(80), sa.String(254)
TABLES = ("ratings", "votes")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("rater", type_=NEW, existing_type=OLD, existing_nullable=False)


def downgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        longer = bind.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE LENGTH(rater) > 80")).scalar()
        if longer:
            raise RuntimeError(f"cannot downgrade below 0007_rater_identity: {longer} row(s) of {table} have a "
                               "rater longer than 80 characters, which the older schema cannot hold; nothing "
                               "was changed")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("rater", type_=OLD, existing_type=NEW, existing_nullable=False)
