"""Create: upload photos, pick models and a decoding style, generate, edit, save favourites."""

import streamlit as st

from igcap_ui import access, drafts, resources
from igcap_ui.decoding_panel import decoding_panel
from igcap_ui.errors import show_error
from igcap_ui.generation import draw_results, generate, redraw_if_ended, resume_generation, uncaptioned
from igcap_ui.hashtag_sets import manage_sets
from igcap_ui.photos import photo_inputs, set_aside
from igcap_ui.plain import plain

access.require("can_create")
st.title("✍️ Create captions")
try:
    resources.db_engine()  # saving needs it; said on every run (generating does not, so the page goes on)
except Exception as err:  # noqa: BLE001 - shown as a message, never a stack trace
    show_error(err)
drafts.restore()  # a reload or a new connection picks up this person's work (igcap_ui.drafts)
photos = photo_inputs()
earlier = st.empty() if not photos and not set_aside() else None  # filled after this run's save, below

specs, available = resources.registry(), resources.availability()
usable = [k for k in specs if available[k].usable]
missing = [k for k in specs if not available[k].usable]
if missing:
    reasons = {}  # one line per reason: offline, all four models share it
    for key in missing:
        reasons.setdefault(plain(available[key].detail), []).append(f"**{plain(specs[key].label)}**")
    lines = [f"- {', '.join(labels)}: {detail}" for detail, labels in reasons.items()]
    st.warning("Not available now:\n" + "\n".join(lines) + "\n\nThe Models page says how to get them; "
               "everything else (hand-written captions, gallery, ratings, export) works without them.", icon="📴")
model_keys = st.multiselect("Models", list(specs), default=resources.default_models(specs, available),
                            format_func=lambda key: specs[key].label if key in specs else key, key="create.models",
                            persist_state="session",  # kept while the person visits other pages
                            help="Each chosen model writes its own caption; the Models page says which are ready.")
settings = decoding_panel()
manage_sets()

todo = uncaptioned(photos, model_keys)
ready = bool(photos and model_keys and settings)
clicked = st.button("✨ Generate", type="primary", disabled=not (ready and any(todo.values())), key="create.generate",
                    help="Write captions for the photos that do not have them yet from the chosen models.")
again = False
if ready and any(len(keys) < len(model_keys) for keys in todo.values()):  # some exist: offer to write them again
    again = st.button("🔄 Regenerate all", key="create.regenerate_all",
                      help="Write every chosen model's caption again; captions with unsaved edits are kept.")
if not photos:
    st.caption("Upload one or more photos to start. You can also write your own caption for any photo.")

if (clicked or again) and ready:
    generate(photos, model_keys, settings, regenerate_all=again)
elif not resume_generation():  # a generation still waiting for its turn carries on
    draw_results(photos, settings)
drafts.save()
redraw_if_ended()  # a generation that ended in this run: the buttons above are drawn again for what exists now
if earlier is not None:
    with earlier.container():
        drafts.earlier_work()  # the work an emptied draft replaced, kept (this run's save may have kept it)
