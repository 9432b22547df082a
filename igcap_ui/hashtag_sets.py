"""Saved hashtag sets on the Create page: manage them, and add one to a caption with one click.

The sets live in the database (db.hashtag_sets); this session keeps a copy, read again whenever any session of
this process has saved or deleted a set since (``_changes``: another tab's set appears on this tab's next run;
one the CLI saves, after a reload). Adding goes through igcap.hashtags.add_hashtags, so a caption never passes Instagram's limits.
Without sign-in the sets are shared (owner "", as the CLI stores them); signed in, each person has their
own (owner: the identity's id).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import streamlit as st

from igcap_ui import access, resources
from igcap_ui.errors import shown_errors
from igcap_ui.plain import escape_markdown

SHARED = ""  # the owner of sets made without sign-in (and by the CLI)
_CACHE = "hashtags.sets"  # [(name, [tags])] read from the database this session
_CACHE_OWNER = "hashtags.sets_owner"  # (whose sets _CACHE holds, _changes' count when they were read)
_PROBLEM = "hashtags.problem"  # why the last set typed could not be saved
_SAVED = "hashtags.saved"  # (name, tags) of the set just saved: said once, with the tags as read
_NOTES = "hashtags.notes"  # text widget key → what the last click added or left out
NAME_KEY, TAGS_KEY = "hashtags.new_name", "hashtags.new_tags"


def owner() -> str:
    """Whose sets this session uses: the signed-in identity's, else the shared ones."""
    identity = access.current()
    return identity.id if identity.signed_in else SHARED


@st.cache_resource(show_spinner=False)
def _changes() -> tuple[threading.Lock, list[int]]:
    """How many saves and deletes of sets every session of this process has made (one count, shared)."""
    return threading.Lock(), [0]


def _changed() -> None:
    lock, count = _changes()
    with lock:
        count[0] += 1


def saved_sets() -> list[tuple[str, list[str]]]:
    read = (owner(), _changes()[1][0])
    if st.session_state.get(_CACHE_OWNER) != read:  # signed in as someone else, or a set changed, since
        st.session_state.pop(_CACHE, None)
        st.session_state[_CACHE_OWNER] = read
    if _CACHE not in st.session_state:
        from db import hashtag_sets, transaction

        try:
            engine = resources.db_engine()
        except Exception:  # noqa: BLE001 - the Create page says the database cannot be opened, on every run
            return []  # not remembered: the sets appear once the database is back
        sets = []
        with shown_errors():
            with transaction(engine, write=False) as session:
                sets = [(s.name, s.tag_list) for s in hashtag_sets.list_sets(session=session, owner=owner())]
        st.session_state[_CACHE] = sets
    return st.session_state[_CACHE]


def manage_sets() -> None:
    """An expander listing the saved sets, with a form to add (or replace) one and a delete button each."""
    sets = saved_sets()
    # A key: the label names how many sets there are, and a new label was a new expander (closed at once).
    with st.expander(f"#️⃣ Hashtag sets ({len(sets)})", key="hashtags.expander"):
        st.caption("Save hashtags you use often under a name; each caption gets a button to add them, "
                   "never past Instagram's hashtag limit.")
        for name, tags in sets:
            left, right = st.columns([4, 1])
            left.text(f"{name}: {' '.join(tags)}")  # plain text: never read as Markdown
            right.button("🗑️", key=f"hashtags.delete.{name}", help=f"Delete the set {_plain(name)}",
                         on_click=_delete, args=(name,))
        with st.form("hashtags.add", border=False):
            name_col, tags_col = st.columns([1, 3])
            name_col.text_input("Name", key=NAME_KEY, placeholder="travel", max_chars=40)
            tags_col.text_input("Hashtags", key=TAGS_KEY, placeholder="#travel #wanderlust #roadtrip")
            st.form_submit_button("💾 Save set", on_click=_save)
        problem = st.session_state.pop(_PROBLEM, None)
        if problem:
            st.error(escape_markdown(problem), icon="⚠️")  # it quotes what was typed
        saved = st.session_state.pop(_SAVED, None)
        if saved:
            name, tags = saved
            limit = resources.settings().instagram.max_hashtags
            st.success(_plain(f"Saved “{name}”: {' '.join(tags)}"), icon="✅")
            if len(tags) > limit:
                st.warning(f"This set has {len(tags)} hashtags and Instagram allows {limit} per post: adding it "
                           f"to a caption adds the first ones that fit.", icon="#️⃣")


def _save() -> None:
    """Form callback: save the typed set and empty the form; on a problem keep what was typed and say why."""
    from db import hashtag_sets, transaction
    from db.engine import DatabaseError
    from igcap.hashtags import HashtagSetError, parse_hashtag_set

    try:
        tags = parse_hashtag_set(st.session_state.get(TAGS_KEY, ""))
        with transaction(resources.db_engine()) as session:
            hashtag_sets.save_set(session=session, name=st.session_state.get(NAME_KEY, ""), tags=tags, owner=owner())
    except DatabaseError as err:
        st.session_state[_PROBLEM] = f"The set was not saved: {err.message}. Try again in a moment."
        return
    except (HashtagSetError, ValueError) as err:
        st.session_state[_PROBLEM] = str(err)
        return
    st.session_state[_SAVED] = (hashtag_sets.clean_name(st.session_state.get(NAME_KEY, "")), tags)
    st.session_state[NAME_KEY] = st.session_state[TAGS_KEY] = ""
    _changed()


def _delete(name: str) -> None:
    from db import hashtag_sets, transaction
    from db.repo import NotFoundError

    try:
        with shown_errors(), transaction(resources.db_engine()) as session:
            hashtag_sets.delete_set(session=session, name=name, owner=owner())
    except NotFoundError:
        pass  # deleted in another tab meanwhile: the list is read again below
    _changed()


def set_buttons(key: str, current: Callable[[], str], apply: Callable[[str], None]) -> None:
    """One button per saved set for the caption in widget ``key``: current() reads its text, apply(text)
    writes the text with the set added (on the next run, before the widget is drawn)."""
    sets = saved_sets()
    if not sets:
        return
    # One compact row per caption: a button per set made each card on a phone (where columns stack) several
    # screens tall, and a popover of buttons stayed open, so the next click (Save) only closed it.
    tags_of = dict(sets)
    chooser = f"{key}.sets"
    st.selectbox("Add a hashtag set", list(tags_of), index=None, key=chooser, label_visibility="collapsed",
                 placeholder="＃ Add a hashtag set…", format_func=lambda name: f"{name}: {' '.join(tags_of[name])}",
                 help="Your saved sets (Hashtag sets, above): choosing one adds its hashtags the caption does not "
                      "have yet, within Instagram's limit.",
                 on_change=_add_chosen, args=(key, chooser, tags_of, current, apply))
    note = st.session_state.setdefault(_NOTES, {}).pop(key, None)
    if note:
        st.caption(_plain(note))  # quotes the tags as typed


def _plain(text: str) -> str:
    """A set's name or tags in a label or tooltip, which Streamlit reads as Markdown: shown as typed."""
    return escape_markdown(text)


def _add_chosen(key: str, chooser: str, tags_of: dict, current: Callable[[], str],
                apply: Callable[[str], None]) -> None:
    """The chooser's callback: add the chosen set, then show the placeholder again (ready for another)."""
    name = st.session_state.get(chooser)
    if name in tags_of:
        _add(key, tags_of[name], current, apply)
    st.session_state[chooser] = None


def _add(key: str, tags: list[str], current: Callable[[], str], apply: Callable[[str], None]) -> None:
    from igcap.hashtags import add_hashtags

    limits = resources.settings().instagram
    done = add_hashtags(current(), tags, limits)
    apply(done.text)
    st.session_state.setdefault(_NOTES, {})[key] = done.message(limits)
