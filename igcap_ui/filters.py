"""The filter row shared by the Gallery and Evaluation pages → db.repo.GalleryFilter."""

from __future__ import annotations

import streamlit as st

from db import MANUAL, repo, studies, transaction
from db.models import model_label as label_in
from igcap_ui import resources
from igcap_ui.plain import plain

ANY = "Anyone"


def model_label(key: str) -> str:
    return label_in(key, resources.registry())


def filter_row(prefix: str, search: bool = True, study_choice: bool = False, owner: str | None = None):
    """Draw the filters; return a GalleryFilter (only ``owner``'s captions when given), or None after
    showing why the choice cannot work.

    ``study_choice``: when studies exist, offer to show one study's captions instead of the saved ones
    (study captions are left out otherwise, so they do not flood the gallery). Studies are the owner's:
    someone who sees only their own captions (``owner`` given) is not offered them.
    """
    with transaction(resources.db_engine(), write=False) as session:
        saved_keys = repo.list_model_keys(session=session, owner=owner)
        raters = repo.list_raters(session=session, owner=owner)
        study_names = [s.name for s in studies.list_studies(session=session)] if study_choice and owner is None else []
    study = None
    if study_names:
        study = st.selectbox("Captions", [None, *study_names], key=f"{prefix}.study",
                             format_func=lambda name: "Saved captions" if name is None else f"Study: {name}")
    keys = list(dict.fromkeys([*resources.registry(), *saved_keys, MANUAL]))
    cols = st.columns([3, 2, 2, 2] + ([3] if search else []))
    models = cols[0].multiselect("Models", keys, format_func=model_label, key=f"{prefix}.models",
                                 placeholder="All models")
    min_stars = cols[1].selectbox("Minimum stars", [None, 1, 2, 3, 4, 5], key=f"{prefix}.min_stars",
                                  format_func=lambda s: "Any" if s is None else "★" * s + " or more")
    rater = cols[2].selectbox("Rated by", [ANY, *raters], key=f"{prefix}.rater")
    favourites = cols[3].toggle("Favourites only", key=f"{prefix}.favourites")
    text = cols[4].text_input("Search captions", key=f"{prefix}.search") if search else ""
    try:
        return repo.GalleryFilter(model_keys=models, favourites_only=favourites, min_stars=min_stars,
                                  rater=None if rater == ANY else rater, search=text, study=study,
                                  owner=owner)
    except ValueError as err:
        st.error(plain(err), icon="⚠️")
        return None
