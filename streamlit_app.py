"""Entry point: page config, Streamlit secrets → environment, the sign-in gate, navigation by role, the error guard."""

import streamlit as st

from igcap_ui import access, resources
from igcap_ui.errors import shown_errors
from igcap_ui.rater import rater_box
from igcap_ui.secrets import SecretsError, copy_secrets_to_env, read_secrets

st.set_page_config(page_title="igcap — Instagram captions", page_icon="📸", layout="wide")
try:
    copy_secrets_to_env(read_secrets())  # before anything reads the configuration
except SecretsError:
    pass  # a secrets file that cannot be read: access.gate says so and keeps the app closed
identity = access.gate()  # sign-in first: nothing below runs for someone without a role

pages = []
if identity.can_create:  # owner and creator
    pages += [
        st.Page("app_pages/create.py", title="Create", icon="✍️", default=True),
        st.Page("app_pages/gallery.py", title="Gallery", icon="🖼️"),
    ]
if identity.is_owner:  # studies are the owner's (and everyone's without sign-in: local mode is the owner)
    pages += [st.Page("app_pages/studies.py", title="Studies", icon="🧪")]
# every role rates; a rater sees only what studies ask them to rate, starting with Rate
pages += [
    st.Page("app_pages/rate.py", title="Rate", icon="⭐", default=not identity.can_create),
    st.Page("app_pages/arena.py", title="Arena", icon="⚔️"),
]
if identity.can_create:
    pages += [
        st.Page("app_pages/evaluation.py", title="Evaluation", icon="📊"),
        st.Page("app_pages/models.py", title="Models", icon="🧠"),
    ]
page = st.navigation(pages)
access.identity_box(identity)
rater_box()
try:
    resources.db_engine()  # opens and migrates the database once per process, at start (cached after)
except Exception:  # noqa: BLE001 - the page reports it where it needs the database (it was said twice)
    pass
with shown_errors():  # the last guard: whatever a page raises becomes a message, never a stack trace
    page.run()
if identity.can_create:
    with shown_errors():
        resources.warm_start()  # after the page is drawn: models load while the person picks a photo
