"""Evaluation: a study's leaderboard (blind ratings and pairwise votes, with intervals and agreement), then
how the saved captions (favourites) are rated, as a table and a chart, and the CSV exports."""

import pandas as pd
import streamlit as st

from db import export, repo, transaction
from igcap_ui import access, resources
from igcap_ui.errors import show_error, shown_errors
from igcap_ui.charts import stars_chart
from igcap_ui.filters import filter_row, model_label
from igcap_ui.leaderboard_view import study_leaderboard
from igcap_ui.study_choice import choose_study


def _rows(count: int) -> str:
    return f"{count} row{'s' * (count != 1)}"


identity = access.require("can_create")  # a creator evaluates their own captions, an owner everyone's
st.title("📊 Evaluation")
try:
    resources.db_engine()  # a database that cannot be opened is reported once, not once per section
except Exception as err:  # noqa: BLE001 - shown as a message, never a stack trace
    show_error(err)
    st.stop()
if identity.is_owner:  # studies are the owner's
    st.header("Study leaderboard", anchor=False)
    with shown_errors():
        study = choose_study("evaluation")
        if study:
            study_leaderboard(study)

st.header("Saved captions", anchor=False)
st.caption("Star ratings per model (criterion: overall) of the captions saved from the Create page. The filters "
           "apply to the table, the chart and the downloads. These are not a fair comparison (people chose what "
           "to save and saw the model's name): use a study for that.")

with shown_errors():
    filters = filter_row("evaluation", owner=identity.owner_filter)
    if filters is not None:
        labels = resources.registry()
        include_unrated = st.toggle("Include unrated captions in the wide export", key="evaluation.unrated")
        with transaction(resources.db_engine(), write=False) as session:
            stats = repo.rating_stats(session=session, criterion=filters.criterion, filters=filters)
            wide = export.rated_captions_csv(session=session, filters=filters, include_unrated=include_unrated,
                                             labels=labels)
            long = export.ratings_long_csv(session=session, filters=filters, labels=labels)
        table = pd.DataFrame([{"Model": model_label(s.model_key), "Captions": s.captions, "Ratings": s.count,
                               "Mean stars": "—" if s.mean is None else f"{s.mean:.2f}",
                               **{f"{n}★": s.distribution.get(n, 0) for n in range(1, 6)}} for s in stats])
        if table.empty and filters.narrows:
            st.info("No caption matches these filters: loosen or clear them above.", icon="🔎")
        elif table.empty:
            st.info("No captions saved yet. Save captions on the Create page and rate them in the Gallery.")
        else:
            st.dataframe(table, hide_index=True, key="evaluation.table")
            rated = table[table["Ratings"] > 0]
            if not rated.empty:
                st.subheader("Ratings per model", anchor=False)
                st.altair_chart(stars_chart(rated), key="evaluation.chart")
        saved, rows = sum(s.captions for s in stats), export.row_count(wide)
        if not include_unrated and rows < saved:  # say before the download what the file will hold
            note = (f"{rows} of the {saved} saved captions here are rated, so **Rated captions** holds "
                    f"{'only its header row' if not rows else 'those'}. Turn on **Include unrated captions in "
                    "the wide export** to export them all, or rate them in the Gallery first.")
            if rows:
                st.caption(note)
            else:
                st.info(note, icon="⬇️")
        left, right = st.columns(2)
        left.download_button(f"⬇️ Rated captions ({_rows(rows)}, one per caption)", wide, "igcap-rated-captions.csv",
                             "text/csv", key="evaluation.download_wide")
        right.download_button(f"⬇️ Ratings ({_rows(export.row_count(long))}, one per rating)", long,
                              "igcap-ratings.csv", "text/csv", key="evaluation.download_long")
