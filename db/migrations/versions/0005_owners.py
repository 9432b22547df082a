"""Owners: photos, captions and ratings record who made them; a photo is unique per owner and content.

Photos get ``owner`` and captions ``author`` (the signed-in identity: an e-mail address or a name).
Every existing row gets "local", the identity of everything made without sign-in, so a local user
keeps seeing all of it and a hosted owner sees it all too. Ratings already name their ``rater``.
The photo's unique content hash becomes unique per (owner, sha256): two people uploading the same
photo each get a private row.

Downgrading refuses (and changes nothing) when two owners hold the same photo, since the old schema
cannot keep both rows.

Revision ID: 0005_owners
Revises: 0003_studies
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_owners"
down_revision = "0003_studies"
branch_labels = None
depends_on = None

LOCAL = "local"
IDENTITY = sa.String(254)


def upgrade() -> None:
    _refuse_cascading_rebuild()
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("owner", IDENTITY, nullable=False, server_default=LOCAL))
        batch.drop_constraint("uq_photos_sha256", type_="unique")
        batch.create_unique_constraint("uq_photos_owner_sha256", ["owner", "sha256"])
    with op.batch_alter_table("captions") as batch:
        batch.add_column(sa.Column("author", IDENTITY, nullable=False, server_default=LOCAL))


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT COUNT(*) FROM (SELECT sha256 FROM photos GROUP BY sha256 HAVING COUNT(*) > 1) AS d")).scalar()
    if shared:
        raise RuntimeError(f"cannot downgrade below 0005_owners: {shared} photo(s) are stored by more than one "
                           "owner, and the older schema keeps one row per photo; nothing was changed")
    _refuse_cascading_rebuild()
    with op.batch_alter_table("captions") as batch:
        batch.drop_column("author")
    with op.batch_alter_table("photos") as batch:
        batch.drop_constraint("uq_photos_owner_sha256", type_="unique")
        batch.create_unique_constraint("uq_photos_sha256", ["sha256"])
        batch.drop_column("owner")


def _refuse_cascading_rebuild() -> None:
    """SQLite rebuilds ``photos`` here; with foreign keys on, dropping the old table would cascade-delete
    every caption and rating. db.engine.upgrade/downgrade switch them off; refuse any other way in."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0005_owners rebuilds the photos table: run it through db.engine.upgrade() or "
                           "db.engine.downgrade() (they switch SQLite foreign keys off), or captions would be lost")
