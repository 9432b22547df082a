"""Folded keys: caption search and rater matching give the same answers on SQLite and PostgreSQL, and the
database keeps one rating per person, caption and criterion, and one judgement per person and pair.

New columns, computed in Python by igcap's one rule for every existing row (in chunks of ``CHUNK`` rows):
``captions.search_text`` (the text and generated text folded: db.search.caption_search_text) and
``ratings.rater_key`` / ``votes.rater_key`` (the person a rater name means: db.people.person). Searching
and matching people compare these columns alone; PostgreSQL's lower() used before did not casefold ("STRASSE"
did not find "Straße"), did not compose decomposed text ("café" did not find a caption stored as "cafe" + a
combining accent), and under LC_CTYPE=C folded ASCII only. The stored texts and names are not changed.

The unique rating becomes (caption, rater_key, criterion) instead of the exact rater name, and votes get a
unique (rater_key, pair of captions in either order). Rows the new rules would refuse are merged first: of
one person's several ratings of the same caption on the same criterion (stored under different spellings,
"Maya" and "maya", or by tabs racing each other on PostgreSQL), the latest is kept (last changed, then last
stored) and the older ones are deleted; of one person's several votes on the same pair, the last stored is
kept. Those are the rows the leaderboard already ignored; nothing else is deleted, and the log says how many
went. A downgrade does not bring them back.

CHECK constraints get the names the models give them: the earlier migrations' names were prefixed a second
time by the naming convention (``ck_ratings_ck_ratings_stars_1_to_5`` → ``ck_ratings_stars_1_to_5``).

On SQLite this rebuilds ``captions``, ``ratings``, ``votes`` and ``studies``; run it through
db.engine.upgrade() (which switches foreign keys off), or rebuilding a parent table would cascade-delete rows.

Revision ID: 0009_folded_keys
Revises: 0008_hashtag_owner_identity
Create Date: 2026-12-02
"""

import logging

import sqlalchemy as sa
from alembic import op

from db.people import person
from db.search import caption_search_text

revision = "0009_folded_keys"
down_revision = "0008_hashtag_owner_identity"
branch_labels = None
depends_on = None

CHUNK = 1000
KEY = sa.String(3 * 254)  # db.models.RATER_KEY_LENGTH
# table → (old CHECK name, new CHECK name, condition)
CHECKS = {
    "ratings": ("ck_ratings_ck_ratings_stars_1_to_5", "ck_ratings_stars_1_to_5", "stars BETWEEN 1 AND 5"),
    "votes": ("ck_votes_ck_votes_winner_known", "ck_votes_winner_known", "winner IN ('a', 'b', 'tie', 'both_bad')"),
    "studies": ("ck_studies_ck_studies_k_1_to_100", "ck_studies_k_1_to_100", "k BETWEEN 1 AND 100"),
}
# the older rows of one person's same judgement: a later one of the same caption and criterion (ratings) or
# pair of captions in either order (votes) exists
OLDER_RATINGS = """DELETE FROM ratings WHERE EXISTS (SELECT 1 FROM ratings AS later
    WHERE later.caption_id = ratings.caption_id AND later.criterion = ratings.criterion
      AND later.rater_key = ratings.rater_key
      AND (later.updated_at > ratings.updated_at OR (later.updated_at = ratings.updated_at AND later.id > ratings.id)))"""
OLDER_VOTES = """DELETE FROM votes WHERE EXISTS (SELECT 1 FROM votes AS later
    WHERE later.rater_key = votes.rater_key AND later.id > votes.id
      AND ((later.caption_a_id = votes.caption_a_id AND later.caption_b_id = votes.caption_b_id)
        OR (later.caption_a_id = votes.caption_b_id AND later.caption_b_id = votes.caption_a_id)))"""

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_cascading_rebuild(bind)
    op.add_column("captions", sa.Column("search_text", sa.Text(), nullable=True))
    op.add_column("ratings", sa.Column("rater_key", KEY, nullable=True))
    op.add_column("votes", sa.Column("rater_key", KEY, nullable=True))
    _fill(bind, "captions", "search_text", ("text", "generated_text"), caption_search_text)
    _fill(bind, "ratings", "rater_key", ("rater",), person)
    _fill(bind, "votes", "rater_key", ("rater",), person)
    ratings, votes = bind.execute(sa.text(OLDER_RATINGS)).rowcount, bind.execute(sa.text(OLDER_VOTES)).rowcount
    if ratings or votes:
        log.info("0009_folded_keys merged one person's older duplicates: %d rating(s), %d vote(s)", ratings, votes)
    sqlite = bind.dialect.name == "sqlite"
    inspector = sa.inspect(bind)  # a database made by 0009's downgrade has the new CHECK names already
    misnamed = [t for t, (old, _, _) in CHECKS.items() if old in {c["name"] for c in inspector.get_check_constraints(t)}]
    with op.batch_alter_table("captions") as batch:
        batch.alter_column("search_text", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("ratings") as batch:
        batch.alter_column("rater_key", existing_type=KEY, nullable=False)
        batch.drop_constraint("uq_ratings_caption_rater_criterion", type_="unique")
        batch.create_unique_constraint("uq_ratings_caption_rater_key_criterion", ["caption_id", "rater_key", "criterion"])
        batch.drop_index("ix_ratings_rater")
        batch.create_index("ix_ratings_rater_key", ["rater_key"])
        if sqlite and "ratings" in misnamed:
            _rename_check(batch, "ratings")
    with op.batch_alter_table("votes") as batch:
        batch.alter_column("rater_key", existing_type=KEY, nullable=False)
        batch.drop_index("ix_votes_study_rater")
        batch.create_index("ix_votes_study_rater_key", ["study_id", "rater_key"])
        if sqlite and "votes" in misnamed:
            _rename_check(batch, "votes")
    low, high = ("min", "max") if sqlite else ("least", "greatest")
    op.execute(f"CREATE UNIQUE INDEX uq_votes_rater_key_pair ON votes (rater_key, {low}(caption_a_id, caption_b_id), "
               f"{high}(caption_a_id, caption_b_id))")
    if sqlite and "studies" in misnamed:
        with op.batch_alter_table("studies") as batch:
            _rename_check(batch, "studies")
    if not sqlite:
        for table in misnamed:
            old, new, _ = CHECKS[table]
            op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}")


def downgrade() -> None:
    """Back to 0008: the new columns and rules go (the CHECK names stay the models'; merged rows stay merged)."""
    _refuse_cascading_rebuild(op.get_bind())
    op.drop_index("uq_votes_rater_key_pair", table_name="votes")
    with op.batch_alter_table("votes") as batch:
        batch.drop_index("ix_votes_study_rater_key")
        batch.create_index("ix_votes_study_rater", ["study_id", "rater"])
        batch.drop_column("rater_key")
    with op.batch_alter_table("ratings") as batch:
        batch.drop_constraint("uq_ratings_caption_rater_key_criterion", type_="unique")
        batch.create_unique_constraint("uq_ratings_caption_rater_criterion", ["caption_id", "rater", "criterion"])
        batch.drop_index("ix_ratings_rater_key")
        batch.create_index("ix_ratings_rater", ["rater"])
        batch.drop_column("rater_key")
    with op.batch_alter_table("captions") as batch:
        batch.drop_column("search_text")


def _fill(bind, table: str, column: str, sources: tuple[str, ...], rule) -> None:
    """``column`` = ``rule(*sources)`` for every row of ``table``, ``CHUNK`` rows at a time in id order."""
    select = sa.text(f"SELECT id, {', '.join(sources)} FROM {table} WHERE id > :after ORDER BY id LIMIT {CHUNK}")
    update = sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id")
    after = 0
    while rows := bind.execute(select, {"after": after}).all():
        bind.execute(update, [{"id": row[0], "value": rule(*row[1:])} for row in rows])
        after = rows[-1][0]


def _rename_check(batch, table: str) -> None:
    """SQLite cannot rename a constraint: the rebuilt table gets it under the new name."""
    old, new, condition = CHECKS[table]
    batch.drop_constraint(op.f(old), type_="check")
    batch.create_check_constraint(op.f(new), condition)


def _refuse_cascading_rebuild(bind) -> None:
    """As in 0005_owners: SQLite rebuilds tables here that others reference with ON DELETE CASCADE; with foreign
    keys on, dropping the old table would delete their rows. db.engine.upgrade/downgrade switch them off."""
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0009_folded_keys rebuilds tables: run it through db.engine.upgrade() or "
                           "db.engine.downgrade() (they switch SQLite foreign keys off), or rows would be lost")
