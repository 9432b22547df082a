"""Create page → database: a photo (resized copy + thumbnail, stored once per content) and its caption."""

from __future__ import annotations

from db import MANUAL, repo, transaction
from igcap.images import resized_jpeg, thumbnail_jpeg
from igcap_ui import resources


def save_generated(photo, card, result, text: str) -> int:
    """Store a model's caption as a favourite, as edited (text) beside the generated text; its id.

    A caption saved before from the same card variant is updated instead of stored twice.
    """
    from igcap_ui.results import saved

    previous = saved().get(card.text_key(result.variant))
    with transaction(resources.db_engine()) as session:
        if previous:
            repo.edit_caption(session=session, caption_id=previous, text=text)
            return previous
        row = _photo_row(session, photo)
        spec = resources.registry().get(card.model_key)
        caption = repo.add_caption(session=session, photo=row, model_key=card.model_key, model_source=_source(spec),
                                   text=text, generated_text=result.text, settings=card.settings_for(result.variant),
                                   favourite=True, seconds=result.seconds)
        session.flush()
        return caption.id


def save_manual(photo, text: str) -> int:
    with transaction(resources.db_engine()) as session:
        caption = repo.add_caption(session=session, photo=_photo_row(session, photo), model_key=MANUAL,
                                   model_source=None, text=text.strip(), generated_text=None, settings=None,
                                   favourite=True, seconds=None)
        session.flush()
        return caption.id


def _photo_row(session, photo):
    return repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                           height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                           thumbnail_jpeg=thumbnail_jpeg(photo.image))


def _source(spec) -> str | None:
    if spec is None:
        return None
    return f"{spec.source}@{spec.revision}" if spec.revision else spec.source
