"""Studies: create an evaluation study (photos × models × one decoding setting) and write its captions."""

import streamlit as st

from igcap_ui import access
from igcap_ui.errors import shown_errors
from igcap_ui.study_builder import create_form, delete_panel, deletion_notice, generation_panel, study_table
from igcap_ui.study_choice import choose_study

access.require("is_owner")  # studies are the owner's (local mode is the owner)
st.title("🧪 Studies")
st.caption("A study judges every chosen model on the same photos with the same settings: rate its captions "
           "blind on the Rate page, compare them in pairs on the Arena page, read the results on Evaluation.")
with shown_errors():
    deletion_notice()
    some = study_table()
    with st.expander("New study", expanded=not some):
        create_form()
    if some:
        st.subheader("Captions", anchor=False)
        name = choose_study("studies")
        if name:
            generation_panel(name)
            delete_panel(name)
