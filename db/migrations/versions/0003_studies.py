"""Studies: named evaluation rounds with their photos and their own captions, pairwise votes, and the
text each rating was given to.

New tables ``studies``, ``study_photos`` and ``votes``; ``captions.study_id`` (NULL for every existing
caption: they stay suggestions and favourites) and ``ratings.rated_text`` (NULL for existing ratings:
the text they were given to was not recorded before). No existing row is changed or removed.

Revision ID: 0003_studies
Revises: 0006_hashtag_sets (the head this branch saw; 0002 before i14 landed)
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_studies"
down_revision = "0006_hashtag_sets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("k", sa.SmallInteger(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_studies"),
        sa.UniqueConstraint("name", name="uq_studies_name"),
        sa.CheckConstraint("k BETWEEN 1 AND 100", name="ck_studies_k_1_to_100"),
    )
    op.create_table(
        "study_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_study_photos"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_study_photos_study_id_studies",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name="fk_study_photos_photo_id_photos",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("study_id", "photo_id", name="uq_study_photos_study_photo"),
    )
    op.create_index("ix_study_photos_photo_id", "study_photos", ["photo_id"])
    with op.batch_alter_table("captions") as batch:
        batch.add_column(sa.Column("study_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_captions_study_id_studies", "studies", ["study_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_captions_study_id", ["study_id"])
        batch.create_unique_constraint("uq_captions_study_photo_model", ["study_id", "photo_id", "model_key"])
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(sa.Column("rated_text", sa.Text(), nullable=True))
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=True),
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("caption_a_id", sa.Integer(), nullable=False),
        sa.Column("caption_b_id", sa.Integer(), nullable=False),
        sa.Column("model_a", sa.String(64), nullable=False),
        sa.Column("model_b", sa.String(64), nullable=False),
        sa.Column("text_a", sa.Text(), nullable=False),
        sa.Column("text_b", sa.Text(), nullable=False),
        sa.Column("winner", sa.String(8), nullable=False),
        sa.Column("rater", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_votes"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_votes_study_id_studies", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["photo_id"], ["photos.id"], name="fk_votes_photo_id_photos", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["caption_a_id"], ["captions.id"], name="fk_votes_caption_a_id_captions",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["caption_b_id"], ["captions.id"], name="fk_votes_caption_b_id_captions",
                                ondelete="CASCADE"),
        sa.CheckConstraint("winner IN ('a', 'b', 'tie', 'both_bad')", name="ck_votes_winner_known"),
    )
    op.create_index("ix_votes_study_rater", "votes", ["study_id", "rater"])
    op.create_index("ix_votes_photo_id", "votes", ["photo_id"])
    op.create_index("ix_votes_caption_a_id", "votes", ["caption_a_id"])
    op.create_index("ix_votes_caption_b_id", "votes", ["caption_b_id"])


def downgrade() -> None:
    """Back to the previous revision: the study tables, study captions (with their ratings) and votes are dropped."""
    op.drop_table("votes")
    op.execute("DELETE FROM ratings WHERE caption_id IN (SELECT id FROM captions WHERE study_id IS NOT NULL)")
    op.execute("DELETE FROM captions WHERE study_id IS NOT NULL")
    with op.batch_alter_table("ratings") as batch:
        batch.drop_column("rated_text")
    with op.batch_alter_table("captions") as batch:
        batch.drop_constraint("uq_captions_study_photo_model", type_="unique")
        batch.drop_index("ix_captions_study_id")
        batch.drop_constraint("fk_captions_study_id_studies", type_="foreignkey")
        batch.drop_column("study_id")
    op.drop_table("study_photos")
    op.drop_table("studies")
