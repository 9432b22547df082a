"""The Create page's results area: photos with their model cards, drawn live while models work.

A generation first waits its turn in the process's shared queue (igcap.generation_queue), showing its
place in line and a Cancel button; a rerun meanwhile (any click on the page) keeps its place. When its
turn comes it fills the store and draws each model's cards as its ModelRun arrives (on_result); later
reruns draw the same cards from the store with the same widget keys, so edits survive.
"""

from __future__ import annotations

from dataclasses import dataclass

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
POLL_SECONDS = 0.5  # how often a waiting session redraws its place in line
_PENDING = "create.pending"  # this session's generation while it waits or runs (survives reruns while waiting)
_NOTE = "create.generation_note"  # what to tell the person after a generation was cut short


@dataclass
class Pending:
    job: object  # igcap.generation_queue.Job
    photos: list
    model_keys: list[str]
    settings: object  # DecodingSettings


def generate(photos, model_keys: list[str], settings) -> None:
    """Queue this session's generation in the process's shared line, then caption every photo with every
    chosen model when its turn comes, showing each model's cards as they are ready.

    A new Generate replaces this session's generation that is still waiting."""
    from igcap.generation_queue import JobRefused, JobSize

    _forget_pending()
    size = JobSize(len(photos), len(model_keys), settings.num_variants)
    try:
        job = resources.generation_queue().submit(resources.session_owner(), size)
    except JobRefused as err:
        st.error(err.message, icon="⏳")
        draw_results(photos, settings)
        return
    st.session_state[_PENDING] = Pending(job, list(photos), list(model_keys), settings)
    _take_turn(st.session_state[_PENDING])


def resume_generation() -> bool:
    """On a rerun while this session's generation waits: keep waiting in the same place (or cancel it if
    Cancel was pressed). Returns True when it drew the results area."""
    note = st.session_state.pop(_NOTE, None)
    if note:
        st.info(note, icon="⏹️")
    pending = st.session_state.get(_PENDING)
    if pending is None:
        return False
    if pending.job.place() is None:  # it ended meanwhile (cancelled, or dropped from the line)
        _forget_pending()
        return False
    _take_turn(pending)
    return True


def _take_turn(pending: Pending) -> None:
    from igcap.generation_queue import JobCancelled
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException

    job = pending.job
    button = st.empty()
    if button.button("Cancel", key="create.cancel", icon="✖️", help="Leave the line; nothing is generated."):
        _forget_pending()
        st.info("Cancelled: nothing was generated.", icon="✖️")
        draw_results(pending.photos, pending.settings)
        return
    status = st.status("Waiting for your turn…", expanded=False)
    keep = False
    try:
        while not job.wait_turn(POLL_SECONDS):
            place = job.place()
            if place is not None:
                status.update(label=f"Waiting for your turn: {place.describe()}. Other people are generating.")
        button.empty()
        _caption(pending, status)
    except JobCancelled:
        status.update(label="Your place in line lapsed. Press Generate again.", state="error")
        draw_results(pending.photos, pending.settings)
    except RerunException:  # something on the page changed: a waiting job keeps its place for the next run
        keep = job.place() is not None
        if not keep:
            done = sum(bool(c) for c in store().get(pending.photos[0].sha256, {}).values()) if pending.photos else 0
            st.session_state[_NOTE] = (f"Generation stopped when the page changed: {done} of "
                                       f"{len(pending.model_keys)} model(s) had finished. Press Generate for the rest.")
            job.cancel()
        raise
    finally:
        if not keep:
            job.finish()
            if st.session_state.get(_PENDING) is pending:
                del st.session_state[_PENDING]


def _forget_pending() -> None:
    pending = st.session_state.pop(_PENDING, None)
    if pending is not None:
        pending.job.cancel()
        pending.job.finish()


def _caption(pending: Pending, status) -> None:
    """The job's turn: caption every photo with every model, drawing each model's cards when ready."""
    photos, model_keys, settings = pending.photos, pending.model_keys, pending.settings
    data = store()
    for photo in photos:
        data[photo.sha256] = {}
    status.update(label=f"Writing captions for {len(photos)} photo(s) with {len(model_keys)} model(s)…",
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
                                      on_result=on_result, on_progress=on_progress,
                                      should_stop=lambda: pending.job.stop_requested)
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
    from igcap.generation_queue import JobRefused, JobSize

    if settings is None:
        st.error("Fix the decoding settings above first.", icon="⚠️")
        return
    place = st.empty()
    with st.spinner("Writing a new caption…"), shown_errors():
        try:
            [run] = resources.generation_queue().run(
                resources.session_owner(), JobSize(1, 1, settings.num_variants),
                lambda job: resources.captioner().caption([photo.image], [card.model_key], settings),
                on_wait=lambda where: place.caption(f"Waiting for your turn: {where.describe()}."), poll=POLL_SECONDS)
        except JobRefused as err:
            place.empty()
            st.error(err.message, icon="⏳")
            return
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
