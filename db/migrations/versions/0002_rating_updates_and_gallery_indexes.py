"""Ratings remember when they were last changed; indexes for the gallery's newest-first and rater filters.

Existing ratings get updated_at = created_at (they were never changed after being given).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE ratings SET updated_at = created_at")
    with op.batch_alter_table("ratings") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index("ix_ratings_rater", ["rater"])
    op.create_index("ix_captions_created_at", "captions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_captions_created_at", table_name="captions")
    with op.batch_alter_table("ratings") as batch:
        batch.drop_index("ix_ratings_rater")
        batch.drop_column("updated_at")
