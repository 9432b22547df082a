"""The Evaluation page's study leaderboard: estimates with their intervals, the win-rate heat map,
rater agreement, per-rater figures, automatic measures, "not enough data" states, and the downloads.

The statistics come from :mod:`igcap.leaderboard` (through :func:`igcap.study.study_leaderboard`);
this module only draws them. The bootstrap runs once per change of the study's data (st.cache_data).
"""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from db import export, studies, transaction
from db.repo import GalleryFilter
from igcap_ui import resources
from igcap_ui.plain import plain
from igcap_ui.filters import model_label

BOOTSTRAP = 1000
NONE = "—"  # an empty cell (Streamlit shows None as a grey "None")


@st.cache_data(show_spinner="Computing the leaderboard…", max_entries=32)
def _board_json(name: str, criterion: str, fingerprint: tuple) -> dict:
    """The leaderboard as JSON for one state of the study's data (``fingerprint`` changes with the data)."""
    from igcap.study import study_leaderboard

    with transaction(resources.db_engine(), write=False) as session:
        return study_leaderboard(session=session, name=name, criterion=criterion, bootstrap=BOOTSTRAP).to_json()


def study_leaderboard(name: str) -> None:
    with transaction(resources.db_engine(), write=False) as session:
        study = studies.get_study(session=session, name=name)
        counts = studies.study_counts(session=session, study=study)
        fingerprint = (tuple(map(tuple, (r.values() for r in studies.rating_rows(session=session, study=study)))),
                       tuple(map(tuple, (v.values() for v in studies.vote_rows(session=session, study=study)))),
                       counts["captions"])
        criteria, models = list(study.criteria), list(study.models)
        ratings_csv = export.ratings_long_csv(session=session, filters=GalleryFilter(study=name),
                                              labels=_labels())
        votes_csv = export.votes_csv(session=session, study=name)
    criterion = st.selectbox("Criterion", criteria, key="evaluation.criterion") if len(criteria) > 1 else criteria[0]
    board = _board_json(name, criterion, fingerprint)
    # The ratings and votes the figures rest on: this criterion's, one per person and caption (or pair).
    ratings = sum(m["ratings"] for m in board["models"])
    votes = sum(m["votes"] for m in board["models"]) // 2
    of = f" ({criterion})" if len(criteria) > 1 else ""
    st.caption(plain(f"{counts['photos']} photos × {len(models)} models · {ratings} ratings{of} · {votes} votes · "
                     f"95 % intervals from {board['bootstrap']} bootstrap resamples of photos"))
    from igcap.leaderboard import Thresholds

    least = Thresholds(**board["thresholds"]).photos
    if counts["photos"] < least:
        st.warning(f"This study has {counts['photos']} photos and the leaderboard's figures need ratings or votes "
                   f"on at least {least}: it can show counts but no means, scores or ranks. A study with more "
                   "photos can.", icon="📷")
    _ranking(board)
    _charts(board)
    _agreement(board)
    _raters(board)
    _automatic(board)
    _downloads(name, board, ratings_csv, votes_csv)


def _labels() -> dict[str, str]:
    return {key: spec.label for key, spec in resources.registry().items()}


def _interval(point, ci, digits: int, signed: bool = False) -> str:
    """'+0.40 [+0.13, +0.69]'; an interval left open by votes that all went one way (an end null) shows its
    bound alone ('≥ +1.27'): the point there is the prior's, not the votes'."""
    if point is None:
        return "not enough data"
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    if _open(ci):
        return _bound(ci, fmt)
    return fmt.format(point) + (f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]" if ci else "")


def _open(ci) -> bool:
    return bool(ci) and None in ci


def _bound(ci, fmt: str) -> str:
    if ci[0] is not None:
        return "≥ " + fmt.format(ci[0])
    if ci[1] is not None:
        return "≤ " + fmt.format(ci[1])
    return "no bound"


def _arena(m: dict) -> str:
    if m["arena_score"] is None:
        return NONE
    return _bound(m["arena_ci"], "{:.0f}") if _open(m["arena_ci"]) else str(round(m["arena_score"]))


def _ranking(board: dict) -> None:
    from igcap.study import needs_text

    rows = [{
        "Rank": NONE if m["rank"] is None else str(m["rank"]), "Model": model_label(m["model_key"]),
        "Still needed": needs_text(m["needs"]) or NONE, "Ratings": m["ratings"],
        "Mean stars [95 % CI]": _interval(m["mean_stars"], m["mean_stars_ci"], 2),
        "Votes": m["votes"], "Won–lost–tied": f"{m['wins']}–{m['losses']}–{m['ties']}",
        "Bradley–Terry [95 % CI]": _interval(m["bt_score"], m["bt_ci"], 2, signed=True),
        "Arena score": _arena(m),
    } for m in board["models"]]
    if not rows:
        st.info("No captions, ratings or votes in this study yet.", icon="⏳")
        return
    if board["rank_by"] is None:
        t = board["thresholds"]
        st.info("Not enough data to rank the models yet: the table says how many more ratings or votes each "
                f"model needs ({t['ratings']} ratings on at least {t['rated_photos']} photos, or {t['votes']} "
                f"votes on at least {t['voted_photos']}).", icon="⏳")
    else:
        from igcap.leaderboard import one_way_photos

        by = "Bradley–Terry score from the votes" if board["rank_by"] == "bt" else "mean stars"
        one_way = board["rank_by"] == "bt" and any(_open(m["bt_ci"]) for m in board["models"])
        st.caption(f"Ranked by {by}; models whose intervals overlap share a place" + (
            f", except that a model that won every vote against another, on at least "
            f"{one_way_photos(board['confidence'])} photos, ranks above it (≥ and ≤ mark the intervals such votes "
            "leave open)." if one_way else "."))
    frame = pd.DataFrame(rows)
    if all(r["Still needed"] == NONE for r in rows):  # everything shown: the column says nothing
        frame = frame.drop(columns="Still needed")
    st.dataframe(frame, hide_index=True, key="evaluation.leaderboard",
                 column_config={"Still needed": st.column_config.TextColumn(width="large")})
    for m in board["models"]:
        for note in m["notes"]:
            st.caption(f"{plain(model_label(m['model_key']))}: {note}")


def _estimates(board: dict, point: str, ci: str) -> pd.DataFrame:
    return pd.DataFrame([{"Model": model_label(m["model_key"]), "estimate": m[point], "low": m[ci][0],
                          "high": m[ci][1]} for m in board["models"]
                         if m[point] is not None and m[ci] and not _open(m[ci])])


def _error_bars(frame: pd.DataFrame, title: str, domain=None) -> alt.Chart:
    scale = alt.Scale(domain=domain) if domain else alt.Scale(zero=False)
    base = alt.Chart(frame).encode(y=alt.Y("Model:N", sort=alt.EncodingSortField("estimate", order="descending"),
                                           title=None))
    bars = base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", scale=scale, title=title), x2="high:Q")
    points = base.mark_point(filled=True, size=80).encode(x="estimate:Q", tooltip=["Model", "estimate", "low",
                                                                                   "high"])
    return (bars + points).properties(height=40 * len(frame) + 30)


def _charts(board: dict) -> None:
    stars, strength = _estimates(board, "mean_stars", "mean_stars_ci"), _estimates(board, "bt_score", "bt_ci")
    left, right = st.columns(2)
    with left:
        st.subheader("Mean stars, 95 % interval", anchor=False)
        if stars.empty:
            st.caption("Not enough ratings yet.")
        else:
            st.altair_chart(_error_bars(stars, "stars", [1, 5]), key="evaluation.stars_chart")
    with right:
        st.subheader("Bradley–Terry score, 95 % interval", anchor=False)
        bounds = [f"{model_label(m['model_key'])} {_bound(m['bt_ci'], '{:+.2f}')}" for m in board["models"]
                  if m["bt_score"] is not None and _open(m["bt_ci"])]
        if strength.empty and not bounds:
            st.caption("Not enough votes yet.")
        if not strength.empty:
            st.altair_chart(_error_bars(strength, "log-strength (0 = average)"), key="evaluation.bt_chart")
        if bounds:
            st.caption(plain("Intervals left open by votes that all went one way (not drawn): " + ", ".join(bounds)))
    cells = [{"Model": model_label(row), "Against": model_label(col), "Win rate": share,
              "Votes": board["games"][row][col], "Label": f"{share:.0%} ({board['games'][row][col]})"}
             for row, line in board["win_rate"].items() for col, share in line.items() if share is not None]
    st.subheader("Win rate (row beats column; ties count half; in brackets, the votes)", anchor=False)
    if not cells:
        st.caption("No votes yet: vote on the Arena page.")
        return
    frame = pd.DataFrame(cells)
    order = [model_label(m["model_key"]) for m in board["models"]]  # leaderboard order on both axes
    x = alt.X("Against:N", title="against", sort=order, axis=alt.Axis(labelAngle=0, labelLimit=0, orient="top"))
    y = alt.Y("Model:N", title=None, sort=order, axis=alt.Axis(labelLimit=0))
    heat = alt.Chart(frame).mark_rect().encode(
        x=x, y=y, color=alt.Color("Win rate:Q", scale=alt.Scale(domain=[0, 1], scheme="redblue"), legend=None),
        tooltip=["Model", "Against", alt.Tooltip("Win rate:Q", format=".0%"), "Votes:Q"])
    text = alt.Chart(frame).mark_text(fontSize=14, fontWeight="bold").encode(
        x=x, y=y, text="Label:N",  # white on the strong colours, black on the pale middle
        color=alt.condition("abs(datum['Win rate'] - 0.5) > 0.25", alt.value("white"), alt.value("black")))
    st.altair_chart((heat + text).properties(height=alt.Step(48)), key="evaluation.win_rate")


def _agreement(board: dict) -> None:
    from igcap.study import needs_text

    agreement = board["agreement"]
    st.subheader("Rater agreement", anchor=False)
    if agreement["krippendorff_alpha_ordinal"] is None and not agreement["needs"] and agreement["units"]:
        st.info("Krippendorff's α is undefined: every rating of the captions rated by two or more people is the "
                "same star value, so there is no disagreement to measure against chance.", icon="ℹ️")
        return
    if agreement["krippendorff_alpha_ordinal"] is None and not agreement["needs"]:
        st.info("No caption has been rated by two or more people yet: agreement needs that.", icon="⏳")
        return
    if agreement["krippendorff_alpha_ordinal"] is None:
        people = len(board["raters"])
        st.info(f"Not enough data yet for Krippendorff's α: it compares people's stars on the same captions, and "
                f"needs {needs_text(agreement['needs']) or 'more ratings'}. So far {agreement['units']} caption(s) "
                f"have been rated by two or more people ({agreement['raters']} of them), and {people} "
                f"{'person has' if people == 1 else 'people have'} rated in all.", icon="⏳")
        return
    cols = st.columns(3)
    cols[0].metric("Krippendorff's α (ordinal)", f"{agreement['krippendorff_alpha_ordinal']:.2f}",
                   help="1 = raters agree perfectly, 0 = no better than chance; 0.667 is a common lowest "
                        "acceptable value, 0.8 good.")
    cols[1].metric("Captions it rests on", agreement["units"])
    cols[2].metric("Raters", agreement["raters"])


def _raters(board: dict) -> None:
    if not board["raters"]:
        return
    st.subheader("Raters", anchor=False)
    st.dataframe(pd.DataFrame([{
        "Rater": r["rater"], "Ratings": r["ratings"], "Mean stars": f"{r['mean_stars']:.2f}",
        "Vs others": NONE if r["mean_diff"] is None else f"{r['mean_diff']:+.2f}",
        "Mean |difference|": NONE if r["mean_abs_diff"] is None else f"{r['mean_abs_diff']:.2f}",
        "On shared captions": r["compared"]} for r in board["raters"]]), hide_index=True, key="evaluation.raters")


def _automatic(board: dict) -> None:
    rows = [{"Model": model_label(m["model_key"]), "Captions": a["captions"], "Characters": round(a["mean_chars"], 1),
             "Words": round(a["mean_words"], 1), "Distinct-1": round(a["distinct_1"], 2),
             "Distinct-2": round(a["distinct_2"], 2), "Repetition": f"{a['repetition_rate']:.0%}",
             "Same caption on other photos": f"{a['same_caption_share']:.0%}"}
            for m in board["models"] if (a := m["automatic"])]
    if rows:
        st.subheader("Automatic measures", anchor=False)
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="evaluation.automatic")


def _downloads(name: str, board: dict, ratings_csv: bytes, votes_csv: bytes) -> None:
    from igcap.study import LEADERBOARD_COLUMNS, leaderboard_rows

    slug = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")[:40] or "study"
    cols = st.columns(4)
    cols[0].download_button("⬇️ Ratings", ratings_csv, f"igcap-{slug}-ratings.csv", "text/csv",
                            key="evaluation.study_ratings")
    cols[1].download_button("⬇️ Votes", votes_csv, f"igcap-{slug}-votes.csv", "text/csv",
                            key="evaluation.study_votes")
    cols[2].download_button("⬇️ Leaderboard (CSV)", export.to_csv(leaderboard_rows(board), LEADERBOARD_COLUMNS),
                            f"igcap-{slug}-leaderboard.csv", "text/csv", key="evaluation.study_board_csv")
    cols[3].download_button("⬇️ Leaderboard (JSON)", json.dumps(board, indent=2, ensure_ascii=False),
                            f"igcap-{slug}-leaderboard.json", "application/json", key="evaluation.study_board_json")

