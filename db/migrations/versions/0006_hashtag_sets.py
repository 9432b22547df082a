"""Hashtag sets: a person's saved hashtags under a name, added to a caption with one click.

Revision ID: 0006_hashtag_sets
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_hashtag_sets"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hashtag_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False, server_default=""),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hashtag_sets"),
        sa.UniqueConstraint("owner", "name", name="uq_hashtag_sets_owner_name"),
    )


def downgrade() -> None:
    op.drop_table("hashtag_sets")
