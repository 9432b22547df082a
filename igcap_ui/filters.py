"""The filter row shared by the Gallery and Evaluation pages → db.repo.GalleryFilter.

Every filter keeps its value while the person visits other pages (Streamlit's persist_state), as the
Create page's widgets do.
"""

from __future__ import annotations

import streamlit as st

from db import MANUAL, repo, studies, transaction
from db.models import model_label as label_in
from igcap_ui import resources
from igcap_ui.plain import plain

ANY = "Anyone"
# A selectbox holding None is drawn as "no choice" ("Choose an option") whenever the browser draws the page
# afresh (a sidebar click Streamlit ran as a rerun of the open page): "any" and "saved captions" are values.
ANY_STARS = 0
SAVED = ""  # the saved captions, not a study's (a study's name is never empty)
KEEP = "session"  # Streamlit keeps these values while the person visits other pages (persist_state)


def model_label(key: str) -> str:
    return label_in(key, resources.registry())


def filter_row(prefix: str, search: bool = True, study_choice: bool = False, owner: str | None = None):
    """Draw the filters; return a GalleryFilter (only ``owner``'s captions when given), or None after
    showing why the choice cannot work.

    ``study_choice``: when studies exist, offer to show one study's captions instead of the saved ones
    (study captions are left out otherwise, so they do not flood the gallery). Studies are the owner's:
    someone who sees only their own captions (``owner`` given) is not offered them. A study's stars are
    those of one of its criteria (a choice when it has several).
    """
    with transaction(resources.db_engine(), write=False) as session:
        found = studies.list_studies(session=session) if study_choice and owner is None else []
    criteria = {s.name: list(s.criteria) for s in found}
    study = criterion = None
    if criteria:
        study = st.selectbox("Captions", [SAVED, *criteria], key=f"{prefix}.study", persist_state=KEEP,
                             format_func=lambda name: f"Study: {name}" if name else "Saved captions") or None
    if study is not None:
        criterion = _criterion(prefix, criteria[study])
    with transaction(resources.db_engine(), write=False) as session:
        saved_keys = repo.list_model_keys(session=session, owner=owner)
        raters = repo.list_raters(session=session, owner=owner, study=study)
    keys = list(dict.fromkeys([*resources.registry(), *saved_keys, MANUAL]))
    cols = st.columns([3, 2, 2, 2] + ([3] if search else []))
    models = cols[0].multiselect("Models", keys, format_func=model_label, key=f"{prefix}.models",
                                 placeholder="All models", persist_state=KEEP)
    min_stars = cols[1].selectbox("Minimum stars", [ANY_STARS, 1, 2, 3, 4, 5], key=f"{prefix}.min_stars",
                                  format_func=lambda s: "★" * s + " or more" if s else "Any",
                                  persist_state=KEEP) or None
    rater = cols[2].selectbox("Rated by", _rater_options(f"{prefix}.rater", raters), key=f"{prefix}.rater",
                              persist_state=KEEP)
    favourites = cols[3].toggle("Favourites only", key=f"{prefix}.favourites", persist_state=KEEP)
    text = cols[4].text_input("Search captions", key=f"{prefix}.search", persist_state=KEEP) if search else ""
    try:
        return repo.GalleryFilter(model_keys=models, favourites_only=favourites, min_stars=min_stars,
                                  rater=None if rater == ANY else rater, search=text, study=study,
                                  owner=owner, **({"criterion": criterion} if criterion else {}))
    except ValueError as err:
        st.error(plain(err), icon="⚠️")
        return None


def _criterion(prefix: str, criteria: list[str]) -> str:
    """The study criterion whose stars the page shows and "Minimum stars" counts: a choice when the study
    has several (its first by default), said in words when it has one."""
    if len(criteria) == 1:
        st.caption(f"Stars show this study's criterion: {criteria[0]}.")
        return criteria[0]
    return st.selectbox("Criterion", criteria, key=f"{prefix}.criterion", persist_state=KEEP,
                        help="The study's criterion whose stars are shown and counted by Minimum stars.")


def _rater_options(key: str, raters: list[str]) -> list[str]:
    """ANY, then ``raters``; a person already chosen stays on the list (and matches nothing) after their
    last rating goes, instead of the filter turning into "Anyone" without a word."""
    chosen = st.session_state.get(key)
    if chosen and chosen != ANY and chosen not in raters:
        raters = sorted([*raters, chosen], key=str.casefold)
    return [ANY, *raters]
