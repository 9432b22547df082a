"""Initial schema: photos, captions, ratings.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("image_jpeg", sa.LargeBinary, nullable=False),
        sa.Column("thumbnail_jpeg", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_photos"),
        sa.UniqueConstraint("sha256", name="uq_photos_sha256"),
    )
    op.create_table(
        "captions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("photo_id", sa.Integer, nullable=False),
        sa.Column("model_key", sa.String(64), nullable=False),
        sa.Column("model_source", sa.String(512), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("generated_text", sa.Text, nullable=True),
        sa.Column("settings", sa.JSON, nullable=True),
        sa.Column("favourite", sa.Boolean, nullable=False),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_captions"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name="fk_captions_photo_id_photos", ondelete="CASCADE"),
    )
    op.create_index("ix_captions_photo_id", "captions", ["photo_id"])
    op.create_index("ix_captions_model_key", "captions", ["model_key"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("caption_id", sa.Integer, nullable=False),
        sa.Column("rater", sa.String(80), nullable=False),
        sa.Column("stars", sa.SmallInteger, nullable=False),
        sa.Column("criterion", sa.String(40), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
        sa.ForeignKeyConstraint(["caption_id"], ["captions.id"], name="fk_ratings_caption_id_captions",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("caption_id", "rater", "criterion", name="uq_ratings_caption_rater_criterion"),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name="ck_ratings_stars_1_to_5"),
    )


def downgrade() -> None:
    op.drop_table("ratings")
    op.drop_table("captions")
    op.drop_table("photos")
