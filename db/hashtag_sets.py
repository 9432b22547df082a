"""Queries for hashtag sets (a person's saved hashtags under a name). Keyword-only ``session``, never
committing, like db.repo. Names are case-insensitive (stored in lower case); saving a name again replaces
its tags (a race-safe upsert). Parsing what a person typed into tags is igcap.hashtags' job: ``tags``
arrive here as hashtags separated by spaces."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.models import HashtagSet, utcnow
from db.repo import NotFoundError, _insert

NAME_MAX = 40
TAGS_MAX = 1000


def clean_name(name: str) -> str:
    cleaned = " ".join(str(name or "").split()).lower()
    if not cleaned:
        raise ValueError("A hashtag set needs a name, e.g. travel.")
    if len(cleaned) > NAME_MAX:
        raise ValueError(f"A hashtag set's name can be at most {NAME_MAX} characters.")
    return cleaned


def list_sets(*, session: Session, owner: str = "") -> list[HashtagSet]:
    return list(session.scalars(select(HashtagSet).where(HashtagSet.owner == owner).order_by(HashtagSet.name)))


def get_set(*, session: Session, name: str, owner: str = "") -> HashtagSet | None:
    return session.scalar(select(HashtagSet).where(HashtagSet.owner == owner, HashtagSet.name == clean_name(name)))


def save_set(*, session: Session, name: str, tags: list[str], owner: str = "") -> HashtagSet:
    """Create the set, or replace the tags of the set with this name."""
    text = " ".join(tags)
    if not tags or not all(t.startswith("#") and len(t) > 1 and not any(c.isspace() for c in t) for t in tags):
        raise ValueError("A hashtag set needs at least one hashtag, like #travel.")
    if len(text) > TAGS_MAX:
        raise ValueError(f"A hashtag set can hold at most {TAGS_MAX} characters of hashtags.")
    name, now = clean_name(name), utcnow()
    stmt = _insert(session, HashtagSet).values(owner=owner, name=name, tags=text, created_at=now, updated_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["owner", "name"],
                                               set_={"tags": text, "updated_at": now}))
    saved = get_set(session=session, name=name, owner=owner)
    session.refresh(saved)
    return saved


def delete_set(*, session: Session, name: str, owner: str = "") -> None:
    result = session.execute(delete(HashtagSet).where(HashtagSet.owner == owner, HashtagSet.name == clean_name(name)))
    if not result.rowcount:
        raise NotFoundError(f"There is no hashtag set called {clean_name(name)!r}.")
