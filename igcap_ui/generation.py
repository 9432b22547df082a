"""The Create page's results area: photos with their model cards, drawn live while models work.

Generation fills the store first and draws each model's cards as its ModelRun arrives (on_result);
later reruns draw the same cards from the store with the same widget keys, so edits survive.
"""

from __future__ import annotations

import streamlit as st

from db.models import model_label
from igcap_ui import resources, saving
from igcap_ui.caption_card import caption_card, counters, warn_over_limits
from igcap_ui.errors import shown_errors
from igcap_ui.hashtag_sets import set_buttons
from igcap_ui.photos import photo_row
from igcap_ui.results import Card, cards_from_run, new_card, store

STAGES = {"loading": "Loading", "captioning": "Captioning with", "done": "Finished", "failed": "Failed:"}
CARDS_PER_ROW = 2


def generate(photos, model_keys: list[str], settings) -> None:
    """Caption every photo with every chosen model, showing progress and each model's cards when ready."""
    data = store()
    for photo in photos:
        data[photo.sha256] = {}
    status = st.status(f"Writing captions for {len(photos)} photo(s) with {len(model_keys)} model(s)…",
                       expanded=True)
    slots = draw_results(photos, settings, pending=model_keys)
    shas = [p.sha256 for p in photos]
    finished: list[str] = []
    settings_dict = settings.to_dict()  # stored with every card; the same for all models of this run

    def on_progress(event) -> None:
        label = _label(event.model_key)
        status.update(label=f"{STAGES.get(event.stage, event.stage)} {label}…")
        status.write(f"{STAGES.get(event.stage, event.stage)} {label}")

    def on_result(run) -> None:
        finished.append(run.model_key)
        for sha, card in cards_from_run(run, shas, settings_dict).items():
            data[sha][run.model_key] = card
            _draw_card(slots[(sha, run.model_key)], card, photos[shas.index(sha)], settings)

    with shown_errors():
        resources.captioner().caption([p.image for p in photos], model_keys, settings,
                                      on_result=on_result, on_progress=on_progress)
    failed = [k for k in model_keys if any(data[s].get(k) and data[s][k].failure for s in shas)]
    state = "error" if failed and len(failed) == len(model_keys) else "complete"
    note = f" ({len(failed)} model(s) could not caption)" if failed else ""
    status.update(label=f"Done: {len(finished)} of {len(model_keys)} model(s){note}.", state=state,
                  expanded=bool(failed))


def draw_results(photos, settings, pending: list[str] | None = None) -> dict:
    """One bordered block per photo: the upright photo, a write-your-own box and a card per model.

    With ``pending`` the model slots are placeholders to fill; without, the stored cards are drawn.
    Returns {(photo hash, model key): slot}.
    """
    slots = {}
    for photo in photos:
        cards = store().get(photo.sha256, {})
        keys = pending if pending is not None else [k for k in _ordered(cards)]
        with photo_row(photo.image, photo) as (left, right):
            with left:
                _manual_box(photo)
            with right:
                if not keys:
                    st.caption("Choose models and press Generate.")
                for row in range(0, len(keys), CARDS_PER_ROW):
                    for column, key in zip(st.columns(CARDS_PER_ROW), keys[row:row + CARDS_PER_ROW]):
                        slot = slots[(photo.sha256, key)] = column.empty()
                        if key in cards:
                            _draw_card(slot, cards[key], photo, settings)
                        else:
                            slot.info(f"⏳ Waiting for {_label(key)}…")
    return slots


def _draw_card(slot, card: Card, photo, settings) -> None:
    label = _label(card.model_key)
    with slot.container():
        caption_card(card, label,
                     on_save=lambda c, result, text: saving.save_generated(photo, c, result, text),
                     on_regenerate=lambda c: _regenerate(photo, c, settings),
                     on_more=lambda c: _more_like_this(photo, c))


def _regenerate(photo, card: Card, settings) -> None:
    if settings is None:
        st.error("Fix the decoding settings above first.", icon="⚠️")
        return
    with st.spinner("Writing a new caption…"), shown_errors():
        [run] = resources.captioner().caption([photo.image], [card.model_key], settings)
        store()[photo.sha256][card.model_key] = new_card(card.model_key, run.results, run.error, settings.to_dict())
        st.rerun()


def _more_like_this(photo, card: Card) -> None:
    from igcap.decoding import DecodingSettings
    from igcap.variants import more_like_this

    with st.spinner("Writing three more…"), shown_errors():
        settings = more_like_this(DecodingSettings.from_dict(card.settings))
        [run] = resources.captioner().caption([photo.image], [card.model_key], settings)
        if run.error:
            st.error(f"{run.error.message} {run.error.hint}".strip(), icon="⚠️")
            return
        card.add_more(run.results, settings.to_dict())
        st.rerun()


def _manual_box(photo) -> None:
    key = f"manual.{photo.sha256}"
    text = st.text_area("Write your own caption", key=key, height=90, placeholder="Your caption…")
    stats = counters(text)
    set_buttons(key, current=lambda: st.session_state.get(key, ""), apply=lambda new: st.session_state.update({key: new}))
    if st.button("💾 Save my caption", key=f"{key}.save", disabled=not text.strip()):
        with shown_errors():
            saving.save_manual(photo, text)
            st.success("Saved to the gallery.", icon="✅")
            warn_over_limits(stats)


def _label(key: str) -> str:
    return model_label(key, resources.registry())


def _ordered(cards: dict) -> list[str]:
    order = list(resources.registry())
    return sorted(cards, key=lambda k: order.index(k) if k in order else len(order))
