"""Create page → database: a photo (resized copy + thumbnail, stored once per owner and content) and its
caption, both recorded as the signed-in person's."""

from __future__ import annotations

import logging

from db import repo, transaction
from igcap.images import resized_jpeg, thumbnail_jpeg
from igcap_ui import access, resources, run_order

log = logging.getLogger(__name__)


def save_generated(photo, card, result, text: str) -> tuple[int, bool]:
    """Store a model's caption as a favourite, as edited (text) beside the generated text.

    Returns (caption id, stored again). A caption saved before from the same card variant is updated
    instead of stored twice, if it still holds the text this card saved (else repo.CaptionChangedError); if it has been deleted since (in another session), the caption is stored
    again as a new row and ``stored again`` is True. SQLite hands a deleted row's id to the next row,
    so the row under the old id must still be this card's caption before it is updated.
    """
    previous = card.saved_ids.get(result.variant)
    me = access.current().id
    with transaction(resources.db_engine()) as session:
        if previous:
            row = repo.get_caption(session=session, caption_id=previous, owner=me)
            if row is not None and _same_caption(row, photo, card, result):
                # Only over the text this card last saved (or saw): an edit made since in the Gallery is not
                # replaced silently (repo.CaptionChangedError; caption_card.save_card lets a second press do it).
                repo.edit_caption(session=session, caption_id=previous, text=text, owner=me,
                                  expected=card.saved_texts.get(result.variant))
                return previous, False
        row = _photo_row(session, photo, me)
        spec = resources.registry().get(card.model_key)
        caption = repo.add_caption(session=session, photo=row, model_key=card.model_key, model_source=_source(spec),
                                   text=text, generated_text=result.text, settings=card.settings_for(result.variant),
                                   favourite=True, seconds=result.seconds, author=me)
        session.flush()
        return caption.id, bool(previous)


def stored_texts(caption_ids) -> dict[int, str] | None:
    """id → the text the gallery holds now, for this person's captions among ``caption_ids`` (one query; a
    deleted one is missing); None when the database cannot say (the cards then go by what they saved)."""
    ids = list(caption_ids)
    if not ids:
        return {}
    try:
        with transaction(resources.db_engine(), write=False) as session:
            return repo.caption_texts(session=session, caption_ids=ids, owner=access.current().id)
    except Exception as err:  # noqa: BLE001 - a label is not worth a failed page
        log.warning("saved captions not read: %s", err)
        return None


def _same_caption(row, photo, card, result) -> bool:
    return (row.photo.sha256, row.model_key, row.generated_text) == (photo.sha256, card.model_key, result.text)


def save_manual(photo, text: str) -> tuple[int, bool]:
    """Store a hand-written caption for ``photo``. Returns (caption id, stored now): the same text already
    saved by this person for this photo (a second press, a double click, another tab) is not stored twice.

    In click order for the browser session (igcap_ui.run_order), as ``caption_card.save_card``; two tabs
    are two sessions, kept apart by the data layer (``repo.add_manual_caption`` locks the photo's row)."""
    me, text = access.current().id, text.strip()
    with run_order.in_click_order(), transaction(resources.db_engine()) as session:
        row = _photo_row(session, photo, me)
        caption, new = repo.add_manual_caption(session=session, photo=row, text=text, author=me)
        return caption.id, new


def _photo_row(session, photo, owner: str):
    return repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                           height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                           thumbnail_jpeg=thumbnail_jpeg(photo.image), owner=owner)


def _source(spec) -> str | None:
    if spec is None:
        return None
    return f"{spec.source}@{spec.revision}" if spec.revision else spec.source
