"""The Evaluation page's chart: ratings per model as bars stacked 1★ → 5★, in star order.

An Altair spec of our own (not st.bar_chart) so each axis carries its own title, model labels are never
cut, and the colours read as a scale from 1★ (red) to 5★ (green) in order, in the bars and the legend.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

STARS = [f"{n}★" for n in range(1, 6)]
STAR_COLOURS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"]  # 1★ … 5★, red to green


def stars_chart(table: pd.DataFrame) -> alt.Chart:
    """table: one row per model with a 'Model' column and one count column per star ('1★' … '5★')."""
    long = table[["Model", *STARS]].melt(id_vars="Model", var_name="Stars", value_name="Ratings")
    long["Stars value"] = long["Stars"].str[0].astype(int)
    return (alt.Chart(long).mark_bar()
            .encode(y=alt.Y("Model:N", title="Model", sort=list(table["Model"]),
                            axis=alt.Axis(labelLimit=0, titlePadding=8)),
                    x=alt.X("Ratings:Q", title="Ratings", stack="zero", axis=alt.Axis(tickMinStep=1)),
                    color=alt.Color("Stars:O", title="Stars", scale=alt.Scale(domain=STARS, range=STAR_COLOURS),
                                    legend=alt.Legend(orient="bottom", direction="horizontal")),
                    order=alt.Order("Stars value:Q", sort="ascending"),
                    tooltip=["Model", "Stars", "Ratings"])
            .properties(height=alt.Step(28)))
