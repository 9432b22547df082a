"""The Arena page's card: one photo, captions "A" and "B" by two hidden models, a vote, then the names.

The pair on screen is pinned in the session until it is voted on or skipped; after a vote the names
of the two models behind A and B are shown above the next pair.
"""

from __future__ import annotations

import streamlit as st

from db import repo, studies, transaction
from igcap_ui import resources
from igcap_ui.plain import plain
from igcap_ui.errors import shown_errors
from igcap_ui.filters import model_label

CHOICES = [("a", "👈 A is better"), ("b", "B is better 👉"), ("tie", "🤝 Tie"), ("both_bad", "👎 Both bad")]
VERDICT = {"a": "A is better", "b": "B is better", "tie": "a tie", "both_bad": "both bad"}


def _state(study: str, rater: str) -> dict:
    return st.session_state.setdefault(f"arena.{study}.{rater}", {"pinned": None, "skipped": [], "revealed": None})


def current_pair(session, study, rater: str, state: dict):
    pinned = state["pinned"]
    if pinned and (pair := studies.pair_open_to(session=session, study=study, caption_a_id=pinned[0],
                                                caption_b_id=pinned[1], rater=rater)):
        return pair
    pair = studies.next_pair(session=session, study=study, rater=rater, skip=[tuple(k) for k in state["skipped"]])
    state["pinned"] = (pair.a.id, pair.b.id) if pair else None
    return pair


def arena_panel(study_name: str, rater: str) -> None:
    state = _state(study_name, rater)
    with transaction(resources.db_engine(), write=False) as session:
        study = studies.get_study(session=session, name=study_name)
        pair = current_pair(session, study, rater, state)
        progress = studies.vote_progress(session=session, study=study, rater=rater)
        image = pair and repo.photo_image(session=session, photo_id=pair.photo.id)
    _reveal(state)
    total = progress.by_rater + progress.open_to_rater
    st.progress(progress.by_rater / total if total else 1.0)
    st.caption(f"{progress.by_rater} of {total} pairs judged by you · {progress.votes} "
               f"vote{'s' * (progress.votes != 1)} in the study")
    if pair is None:
        _nothing_left(state, len(study.models))
        return
    with st.container(border=True):
        st.image(image, width=420)
        left, right = st.columns(2)
        for column, name, caption in ((left, "A", pair.a), (right, "B", pair.b)):
            with column.container(border=True):
                st.markdown(f"**{name}**")
                st.markdown(plain(caption.text) or "_(the model wrote nothing)_")
        buttons = st.columns(len(CHOICES) + 1)
        for column, (winner, label) in zip(buttons, CHOICES):
            if column.button(label, key=f"arena.vote.{winner}", width="stretch"):
                _vote(study_name, pair, winner, rater, state)
        if buttons[-1].button("Skip", key="arena.skip", width="stretch"):
            state["skipped"].append(pair.key)
            state["pinned"] = None
            st.rerun()


def _vote(study_name: str, pair, winner: str, rater: str, state: dict) -> None:
    with shown_errors():
        with transaction(resources.db_engine()) as session:
            study = studies.get_study(session=session, name=study_name)
            studies.vote(session=session, study=study, caption_a_id=pair.a.id, caption_b_id=pair.b.id,
                         winner=winner, rater=rater)
        state["revealed"] = (winner, pair.a.model_key, pair.b.model_key)
        state["pinned"] = None
        st.rerun()


def _reveal(state: dict) -> None:
    if not state["revealed"]:
        return
    winner, model_a, model_b = state["revealed"]
    st.success(f"Your vote: {VERDICT[winner]}. A was written by **{plain(model_label(model_a))}**, "
               f"B by **{plain(model_label(model_b))}**.", icon="🔓")
    state["revealed"] = None


def _nothing_left(state: dict, models: int) -> None:
    if models < 2:
        st.info("This study has one model: there are no pairs to compare.", icon="ℹ️")
    elif state["skipped"]:
        st.info(f"You skipped {len(state['skipped'])} pair(s); nothing else is waiting for you.", icon="⏭️")
        if st.button("Show the skipped pairs again", key="arena.unskip"):
            state["skipped"].clear()
            st.rerun()
    else:
        st.success("You have judged every pair of this study (or its captions are not written yet).", icon="🎉")
