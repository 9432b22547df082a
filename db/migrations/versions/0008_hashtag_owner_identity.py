"""Hashtag sets' owners as long as identities: ``hashtag_sets.owner`` takes 254 characters (was 200).

A signed-in person's sets are kept under their identity, a lower-case e-mail address of up to 254
characters; with an address longer than 200, PostgreSQL refused to save a set (VARCHAR(200)). Every row is
kept; downgrading refuses (and changes nothing) while an owner is longer than 200 characters.

Revision ID: 0008_hashtag_owner_identity
Revises: 0007_rater_identity
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_hashtag_owner_identity"
down_revision = "0007_rater_identity"
branch_labels = None
depends_on = None

OLD, NEW = sa.String(200), sa.String(254)


def upgrade() -> None:
    with op.batch_alter_table("hashtag_sets") as batch:
        batch.alter_column("owner", type_=NEW, existing_type=OLD, existing_nullable=False, existing_server_default="")


def downgrade() -> None:
    longer = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM hashtag_sets WHERE LENGTH(owner) > 200")).scalar()
    if longer:
        raise RuntimeError(f"cannot downgrade below 0008_hashtag_owner_identity: {longer} hashtag set(s) have an "
                           "owner longer than 200 characters, which the older schema cannot hold; nothing was changed")
    with op.batch_alter_table("hashtag_sets") as batch:
        batch.alter_column("owner", type_=OLD, existing_type=NEW, existing_nullable=False, existing_server_default="")
