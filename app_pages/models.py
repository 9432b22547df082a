"""Models: where each model comes from, whether it is loaded or failing and why, and how to fix it."""

import streamlit as st

from igcap.loading import source_help
from igcap.registry import models_dir_problem
from igcap.units import size
from igcap_ui import access, resources
from igcap_ui.plain import plain
from igcap_ui.errors import show_failure, shown_errors

STATE_BADGE = {"loaded": ("Loaded", "green"), "failed": ("Failed to load", "red"), "not loaded": ("Not loaded yet", "gray")}

access.require("can_create")
st.title("🧠 Models")
specs, settings = resources.registry(), resources.settings()
budget = f"{settings.memory_budget_mb:,} MiB" if settings.memory_budget_mb else "no memory bound"
st.caption(f"Models load on first use and stay loaded up to {settings.max_loaded_models} at once ({budget}); "
           "the least recently used one leaves first. Set IGCAP_MAX_LOADED_MODELS / IGCAP_MODEL_MEMORY_MB to change it.")
if problem := models_dir_problem(settings):
    st.warning(plain(problem), icon="📁")

available = resources.availability()
cache = resources.model_cache()
if st.button("Check all models", key="models.check_all", help="Load every model now, so you see which ones work before generating."):
    for key in specs:
        with st.spinner(f"Loading {plain(specs[key].label)}…"):
            try:
                cache.get(key)
            except Exception:  # noqa: BLE001 - the model's status below says what went wrong
                pass

st.metric("Memory used by loaded models", size(cache.nbytes()),
          help="Weights shared between models (the same encoder, the same token table) are counted once here, "
               "and in full in each model's own figure below.")
for key, spec in specs.items():
    status = cache.status(key)
    text, colour = STATE_BADGE.get(status.state, (status.state, "gray"))
    with st.container(border=True):
        st.subheader(plain(spec.label), anchor=False)
        avail = available[key]
        st.badge(text, color=colour)
        if not avail.usable and status.state == "not loaded":
            st.warning(f"Unavailable: {plain(avail.detail)}.", icon="📴")
        elif status.state == "not loaded":
            st.caption(f"Ready to load: {plain(avail.detail)}.")
        st.markdown(f"{plain(key)} · source: {plain(spec.source)}" + (f" @ {plain(spec.revision)}" if spec.revision else ""))
        if spec.description:
            st.caption(plain(spec.description))
        if status.state == "loaded":
            st.write(f"Memory: {size(status.nbytes)}")
        if status.state == "failed":
            show_failure(status)
        with st.expander("Where it comes from / how to get it"):
            words, lines = source_help(spec)
            st.text(words)
            st.code(lines, language="bash")
        if status.state != "loaded" and st.button("Load now", key=f"models.load.{key}"):
            with st.spinner(f"Loading {plain(spec.label)}…"), shown_errors():
                cache.get(key)
                st.rerun()
