"""The Rate page's card: one photo and one caption at a time, model hidden, stars per criterion.

The caption being rated is pinned in the session until it is rated or skipped, so a rerun (a star
clicked) or another rater's work never swaps it under the person's hands. Its widgets are keyed by a
random token drawn for each caption pinned, never by the caption's id: the browser sees widget keys, and
ids, given out as a study's captions are written, would tell which model wrote it.
"""

from __future__ import annotations

import secrets

import streamlit as st

from db import repo, studies, transaction
from db.studies import CaptionFullError
from igcap_ui import resources
from igcap_ui.plain import plain
from igcap_ui.errors import shown_errors

STARS = ["1 — poor", "2", "3", "4", "5 — excellent"]
SCALE = f"{STARS[0]} · {STARS[-1]}"  # what the stars mean, under each row of them


def _state(study: str, rater: str) -> dict:
    """Per study and rater: the pinned caption id and its widgets' token, the skipped ids, the last message."""
    state = st.session_state.setdefault(f"rate.{study}.{rater}", {})
    for name, empty in (("pinned", None), ("token", None), ("skipped", []), ("note", None)):
        state.setdefault(name, empty)
    return state


def current_caption(session, study, rater: str, state: dict):
    pinned = state["pinned"]
    caption = pinned and studies.caption_open_to(session=session, study=study, caption_id=pinned, rater=rater)
    if not caption:
        if pinned:  # on screen, and no longer this rater's to rate: say so rather than swap it silently
            state["note"] = ("The caption you had on screen was already rated by you (in another tab?) or has all "
                             "its ratings; here is the next one.")
        caption = studies.next_caption(session=session, study=study, rater=rater, skip=state["skipped"])
        state["token"] = None
    state["pinned"] = caption.id if caption else None
    if caption and state["token"] is None:
        state["token"] = secrets.token_hex(8)
    return caption


def rate_panel(study_name: str, rater: str) -> None:
    state = _state(study_name, rater)
    with transaction(resources.db_engine(), write=False) as session:
        study = studies.get_study(session=session, name=study_name)
        caption = current_caption(session, study, rater, state)
        progress = studies.rating_progress(session=session, study=study, rater=rater)
        image = caption and repo.photo_image(session=session, photo_id=caption.photo_id)
    _progress_line(progress)
    if state["note"]:  # on the page for this run, as the Arena's refusal (a toast vanished in seconds)
        st.info(state["note"], icon="↪️")
        state["note"] = None
    if caption is None:
        _nothing_left(state, progress)
        return
    with st.container(border=True):
        left, right = st.columns([1, 1])
        left.image(image, width="stretch")
        with right:
            st.caption("Caption (the model is hidden until the study is analysed)")
            if caption.text:  # as written: never Markdown, so no address in it becomes a link
                st.text(caption.text, width="stretch")
            else:
                st.markdown("_(the model wrote nothing)_")
            token = state["token"]
            stars = _star_inputs(study, token)
            comment = st.text_area("Comment (optional)", key=f"rate.comment.{token}", height=80)
            go, skip = st.columns(2)
            submit = go.button("Submit rating", type="primary", key=f"rate.submit.{token}",
                               disabled=None in stars.values())
            if skip.button("Skip", key=f"rate.skip.{token}"):
                state["skipped"].append(caption.id)
                state["pinned"] = None
                st.rerun()
    if None in stars.values():
        st.caption("Give stars for every criterion to submit.")
    if submit:
        _submit(study_name, caption.id, rater, stars, comment, state)


def _star_inputs(study, token: str) -> dict[str, int | None]:
    values = {}
    for criterion in study.criteria:
        st.markdown(f"**{plain(criterion.replace('-', ' ').replace('_', ' ').capitalize())}**")
        value = st.feedback("stars", key=f"rate.stars.{token}.{criterion}")
        st.caption(SCALE if value is None else f"{SCALE} · given: {STARS[value]}")
        values[criterion] = None if value is None else value + 1
    return values


def _submit(study_name: str, caption_id: int, rater: str, stars: dict, comment: str, state: dict) -> None:
    with shown_errors():
        try:
            with transaction(resources.db_engine()) as session:
                study = studies.get_study(session=session, name=study_name)
                studies.rate_study_caption(session=session, study=study, caption_id=caption_id, rater=rater,
                                           stars=stars, comment=comment)
            state["note"] = "Rating saved. Here is the next caption."
        except CaptionFullError as err:
            state["note"] = str(err).capitalize()
        state["pinned"] = None
        st.rerun()


def _progress_line(progress) -> None:
    total = progress.for_rater
    st.progress(progress.rated_by_rater / total if total else 1.0)
    st.caption(f"{progress.rated_by_rater} of {total} rated by you · study: {progress.complete} of "
               f"{progress.captions} captions have all their ratings")


def _nothing_left(state: dict, progress) -> None:
    if state["skipped"]:
        st.info(f"You skipped {len(state['skipped'])} caption(s); nothing else is waiting for you.", icon="⏭️")
        if st.button("Show the skipped captions again", key="rate.unskip"):
            state["skipped"].clear()
            st.rerun()
    elif progress.captions == 0:
        st.info("This study has no captions yet: write them on the Studies page.", icon="⏳")
    else:
        st.success("Nothing left for you to rate in this study. Thank you!", icon="🎉")
