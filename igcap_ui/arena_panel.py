"""The Arena page's card: one photo, captions "A" and "B" by two hidden models, a vote, then the names.

The pair on screen is pinned in the session until it is voted on or skipped; after a vote the names
of the two models behind A and B are shown above the next pair. A click counts only for the pair it was
shown under: the buttons' keys hold a random token of that pair (never a caption id: the browser sees
keys), their callback hands over its caption ids, and a click that arrives after that pair was judged or
left (in a second tab, the second click of a double click) is refused with a message, never applied to
the pair pinned since.
"""

from __future__ import annotations

import secrets

import streamlit as st

from db import repo, studies, transaction
from igcap_ui import resources
from igcap_ui.plain import plain
from igcap_ui.errors import shown_errors
from igcap_ui.filters import model_label

CHOICES = [("a", "👈 A is better"), ("b", "B is better 👉"), ("tie", "🤝 Tie"), ("both_bad", "👎 Both bad")]
VERDICT = {"a": "A is better", "b": "B is better", "tie": "a tie", "both_bad": "both bad"}
JUDGED = "That pair was already judged (in another tab?) — here is the next one."
LEFT = "That pair is no longer the one on screen, so the vote was not saved — here is the pair to judge now."


def _state(study: str, rater: str) -> dict:
    """Per study and rater: the pinned pair (A's and B's caption ids) and its token, the skipped pairs, the
    click to handle, the names to reveal and the last message."""
    state = st.session_state.setdefault(f"arena.{study}.{rater}", {})
    for name, empty in (("pinned", None), ("token", None), ("skipped", []), ("clicked", None), ("revealed", None),
                        ("note", None)):
        state.setdefault(name, empty)
    return state


def current_pair(session, study, rater: str, state: dict):
    pinned = state["pinned"]
    pair = pinned and studies.pair_open_to(session=session, study=study, caption_a_id=pinned[0],
                                           caption_b_id=pinned[1], rater=rater)
    if not pair:
        pair = studies.next_pair(session=session, study=study, rater=rater,
                                 skip=[tuple(k) for k in state["skipped"]])
        state["pinned"], state["token"] = ((pair.a.id, pair.b.id) if pair else None), None
    if pair and state["token"] is None:
        state["token"] = secrets.token_hex(8)
    return pair


def arena_panel(study_name: str, rater: str) -> None:
    state = _state(study_name, rater)
    if state["clicked"]:
        _handle_click(study_name, rater, state)
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
                if caption.text:  # as written: never Markdown, so no address in it becomes a link
                    st.text(caption.text, width="stretch")
                else:
                    st.markdown("_(the model wrote nothing)_")
        buttons = st.columns(len(CHOICES) + 1)
        shown, token = (pair.a.id, pair.b.id), state["token"]
        for column, (winner, label) in zip(buttons, CHOICES):
            column.button(label, key=f"arena.vote.{winner}.{token}", width="stretch", on_click=_click,
                          args=(study_name, rater, shown, pair.key, winner))
        buttons[-1].button("Skip", key=f"arena.skip.{token}", width="stretch", on_click=_click,
                           args=(study_name, rater, shown, pair.key, "skip"))


def _click(study_name: str, rater: str, shown: tuple[int, int], key: tuple, action: str) -> None:
    """A button's callback: note which pair the click was for; the panel handles it before drawing."""
    _state(study_name, rater)["clicked"] = (shown, key, action)


def _handle_click(study_name: str, rater: str, state: dict) -> None:
    (shown, key, action), state["clicked"] = state["clicked"], None
    if action != "skip":
        _vote(study_name, shown, action, rater, state)
    elif shown == state["pinned"]:  # a skip of a pair already left (judged, skipped) has nothing to do
        state["skipped"].append(key)
        state["pinned"] = None


def _vote(study_name: str, shown: tuple[int, int], winner: str, rater: str, state: dict) -> None:
    """Store the vote if the pair it was given on is still the one pinned and still open to this rater."""
    with shown_errors():
        with transaction(resources.db_engine()) as session:
            study = studies.get_study(session=session, name=study_name)
            pair = studies.pair_open_to(session=session, study=study, caption_a_id=shown[0],
                                        caption_b_id=shown[1], rater=rater)
            if pair and shown == state["pinned"]:
                studies.vote(session=session, study=study, caption_a_id=pair.a.id, caption_b_id=pair.b.id,
                             winner=winner, rater=rater)
        if not pair or shown != state["pinned"]:
            state["note"] = LEFT if pair else JUDGED
            return
        state["revealed"] = (winner, pair.a.model_key, pair.b.model_key)
        state["pinned"] = None


def _reveal(state: dict) -> None:
    if state["note"]:
        st.info(state["note"], icon="↪️")
        state["note"] = None
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
