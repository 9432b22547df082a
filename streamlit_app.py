"""Entry point: page config, Streamlit secrets → environment, the sign-in gate, navigation by role, the error guard."""

import streamlit as st

from igcap_ui import access, navigation, resources, text_direction
from igcap_ui.errors import shown_errors
from igcap_ui.rater import rater_box
from igcap_ui.secrets import SecretsError, copy_secrets_to_env, read_secrets

st.set_page_config(page_title="igcap — Instagram captions", page_icon="📸", layout="wide")
text_direction.follow_the_text()  # right-to-left captions read right to left (igcap_ui.text_direction)
try:
    copy_secrets_to_env(read_secrets())  # before anything reads the configuration
except SecretsError:
    pass  # a secrets file that cannot be read: access.gate says so and keeps the app closed
identity = access.gate()  # sign-in first: nothing below runs for someone without a role

page = st.navigation(navigation.pages_for(identity))  # the pages of the person's role (igcap_ui.navigation)
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
