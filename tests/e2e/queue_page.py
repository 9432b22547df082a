"""A page for tests/e2e/test_queue_browser.py: the Create page's real waiting code (igcap_ui.generation's
_take_turn and resume_generation) on the app's real shared queue, with the queue's one slot held by another
session's job, and one more button to click while waiting. Served by Streamlit with its default settings
(fast reruns: a click stops the running script and starts the next run on a new thread)."""

import streamlit as st

from igcap.generation_queue import JobSize
from igcap_ui import resources
from igcap_ui.generation import _PENDING, Pending, _take_turn, resume_generation

queue = resources.generation_queue()


@st.cache_resource
def another_session_generating():
    job = queue.submit("another session", JobSize(1, 1))
    job.wait_turn(0)
    return job


another_session_generating()
st.write(f"QUEUE waiting={queue.waiting()} running={queue.running()}")
st.button("Another button")
if st.button("Generate"):
    job = queue.submit(resources.session_owner(), JobSize(1, 1))
    st.session_state[_PENDING] = Pending(job, [], ["x"], None, {})
    _take_turn(st.session_state[_PENDING])
elif not resume_generation():
    st.write("NO PENDING GENERATION")
