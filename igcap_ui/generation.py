"""The Create page's results area: photos with their model cards, drawn live while models work.

A generation first waits its turn in the process's shared queue (igcap.generation_queue), showing its
place in line and a Cancel button; a rerun meanwhile (any click on the page) keeps its place. When its
turn comes it fills the store, saves the draft (igcap_ui.drafts: a reload mid-Generate keeps them) and draws
each model's cards as its ModelRun arrives (on_result); later reruns draw the same cards from the store with
the same widget keys, so edits survive.
Generate writes only the captions a photo does not have yet (a new photo, a newly chosen model);
"Regenerate all" writes the rest again but keeps every card with unsaved edits, and says so.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import streamlit as st

from db.models import model_label
from igcap_ui import drafts, resources, saving, text_boxes
from igcap_ui.caption_card import caption_card, card_tools, warn_over_limits
from igcap_ui.errors import show_failure, shown_errors
from igcap_ui.hashtag_sets import set_buttons
from igcap_ui.photos import photo_row
from igcap_ui.plain import plain
from igcap_ui.results import Card, cards_from_run, manual_key, new_card, store
from igcap_ui.text_boxes import text_box

STAGES = {"loading": "Loading", "captioning": "Captioning with", "done": "Finished", "failed": "Failed:"}
CARDS_PER_ROW = 2
POLL_SECONDS = 0.5  # how often a waiting session redraws its place in line
_PENDING = "create.pending"  # this session's generation while it waits or runs (survives reruns while waiting)
_REPORT = "create.generation_report"  # how the generation that just ended went, for the redraw after it


@dataclass
class Pending:
    job: object  # igcap.generation_queue.Job
    photos: list
    model_keys: list[str]
    settings: object  # DecodingSettings
    todo: dict  # photo hash → the model keys to write for it
    # Which run of the page waits for the job now, and whether one has started it. With Streamlit's fast
    # reruns (the default) a click starts the next run on a new thread while the old one is being stopped:
    # for a moment two runs of one session hold the job, and only one may write its captions.
    waiter: object = None
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # What the run writing the captions has done, recorded as it goes, so the next run can say how far a
    # stopped one got: in a stopped run st.session_state is a yield point that raises again, so the stopped
    # run itself can neither say it nor read the store.
    models: int = 0  # the models this generation writes
    finished: set = field(default_factory=set)  # those whose cards have arrived
    stopped: bool = False  # the run writing them was stopped (a change on the page): the next run says so
    kept_note: str = ""  # "Kept N caption(s) with unsaved edits…" (Regenerate all), said again after the redraw

    def claim(self, run: object) -> bool:
        """``run`` waits for the job from now on; False if a run already started writing its captions."""
        with self.lock:
            if self.started:
                return False
            self.waiter = run
            return True

    def start(self, run: object) -> bool:
        """``run`` may write the captions (True once, and only while it is the job's latest waiter)."""
        with self.lock:
            if self.started or self.waiter is not run:
                return False
            self.started = True
            return True

    def drop(self) -> None:
        """Nobody is to write this job's captions any more (Cancel, a new Generate, a run that found it being
        stopped): no run may start it from now on, and it is asked to stop. A job a run already writes keeps
        its slot until that run's work ends, and that run gives it back (``_take_turn``'s finally): the run
        is stopped only at its next element, after the batch it is decoding, and finishing the job here let
        the next job start beside that work (a burst of clicks had several jobs computing at once)."""
        with self.lock:
            self.waiter = None
            writing = self.started
        self.job.cancel()
        if not writing:
            self.job.finish()


@dataclass
class Report:
    """The end of a generation, drawn again by the run after it (igcap_ui.generation.redraw_if_ended)."""
    label: str
    state: str  # st.status state: "complete" or "error"
    expanded: bool
    lines: list  # what the status box listed (model loading, writing, finished, failed)
    kept_note: str = ""
    redrawn: bool = False  # the page has been asked to run again for it


def uncaptioned(photos, model_keys: list[str]) -> dict[str, list[str]]:
    """Photo hash → the chosen models that have no card for it yet."""
    data = store()
    return {p.sha256: [k for k in model_keys if k not in data.get(p.sha256, {})] for p in photos}


def kept_for_edits(photos, model_keys: list[str]) -> list[tuple[str, str]]:
    """(photo hash, model key) of the chosen cards that hold unsaved edits: Regenerate all leaves them."""
    data = store()
    return [(p.sha256, k) for p in photos for k in model_keys
            if k in data.get(p.sha256, {}) and data[p.sha256][k].has_unsaved_edits()]


def generate(photos, model_keys: list[str], settings, *, regenerate_all: bool = False) -> None:
    """Queue this session's generation in the process's shared line, then caption the photos when its turn
    comes, showing each model's cards as they are ready.

    Only the missing (photo, model) pairs are written, unless regenerate_all: then every chosen pair is,
    except cards with unsaved edits, which are kept. A new Generate replaces this session's generation
    that is still waiting."""
    from igcap.generation_queue import JobRefused, JobSize

    _forget_pending()
    st.session_state.pop(_REPORT, None)  # a new generation: the last one's report is over
    kept = kept_for_edits(photos, model_keys) if regenerate_all else []
    todo = {p.sha256: [k for k in model_keys if (p.sha256, k) not in kept] for p in photos} if regenerate_all \
        else uncaptioned(photos, model_keys)
    todo = {sha: keys for sha, keys in todo.items() if keys}
    kept_note = (f"Kept {len(kept)} caption(s) with unsaved edits as they are; save them, or use that card's "
                 "🔄 Regenerate to replace one.") if kept else ""
    if kept:
        st.info(kept_note, icon="✏️")
    if not todo:
        draw_results(photos, settings)
        return
    size = JobSize(len(todo), len({k for keys in todo.values() for k in keys}), settings.num_variants)
    try:
        job = resources.generation_queue().submit(resources.session_owner(), size)
    except JobRefused as err:
        st.error(err.message, icon="⏳")
        draw_results(photos, settings)
        return
    st.session_state[_PENDING] = Pending(job, list(photos), list(model_keys), settings, todo, kept_note=kept_note)
    _take_turn(st.session_state[_PENDING])


def redraw_if_ended() -> None:
    """At the end of a Create run (its draft saved): when a generation ended in this run, run the page once
    more. Its buttons were drawn before the captions were written ("✨ Generate" still enabled, no "🔄
    Regenerate all"); the next run draws them for what now exists, with the generation's report."""
    report = st.session_state.get(_REPORT)
    if report is not None and not report.redrawn:
        report.redrawn = True
        st.rerun()


def _show_report() -> None:
    """The report of the generation that ended in the run before this one (drawn once)."""
    report = st.session_state.get(_REPORT)
    if report is None or not report.redrawn:
        return
    del st.session_state[_REPORT]
    if report.kept_note:
        st.info(report.kept_note, icon="✏️")
    with st.status(report.label, state=report.state, expanded=report.expanded):
        for line in report.lines:
            st.write(line)


def resume_generation() -> bool:
    """On a rerun while this session's generation waits: keep waiting in the same place (or cancel it if
    Cancel was pressed). Returns True when it drew the results area."""
    from igcap.generation_queue import RUNNING, WAITING

    _show_report()
    pending = st.session_state.get(_PENDING)
    if pending is None:
        return False
    # Ended meanwhile (cancelled, dropped from the line), or being written by a run of the page that was
    # stopped (it stops after its batch and then gives the slot back): nothing to wait for. A run that writes
    # captions and ends normally takes the job off the page, so one still here was stopped: say how far it got.
    if pending.job.state not in (WAITING, RUNNING) or pending.started:
        _forget_pending()
        total = pending.models or len(pending.model_keys)
        if (pending.started or pending.stopped) and len(pending.finished) < total:
            st.info(f"Generation stopped when the page changed: {len(pending.finished)} of {total} model(s) had "
                    "finished. Press Generate for the rest.", icon="⏹️")
        return False
    _take_turn(pending)
    return True


def _take_turn(pending: Pending) -> None:
    from igcap.generation_queue import JobCancelled
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

    job, run = pending.job, object()
    if not pending.claim(run):  # an earlier run of this page is writing them, and is being stopped
        draw_results(pending.photos, pending.settings)
        return
    keep = writing = False
    try:  # from the claim on: however this run ends, the job is handed on, or finished
        button = st.empty()
        if button.button("Cancel", key="create.cancel", icon="✖️", help="Leave the line; nothing is generated."):
            _forget_pending()
            st.info("Cancelled: nothing was generated.", icon="✖️")
            draw_results(pending.photos, pending.settings)
            return
        status = st.status("Waiting for your turn…", expanded=False)
        # Only the job's latest waiter may start it: a run handed over, still inside wait_turn, started it
        # and left it running with nobody writing its captions, holding the slot for everyone.
        while not job.wait_turn(POLL_SECONDS, may_start=lambda: pending.waiter is run) or not pending.start(run):
            if pending.waiter is not run:  # a newer run of the page waits for it now
                keep = True
                return
            place = job.place()
            if place is not None:
                status.update(label=f"Waiting for your turn: {place.describe()}. Other people are generating.")
        writing = True  # from here this run alone gives the job's slot back, when its work has ended
        button.empty()
        _caption(pending, status)
    except JobCancelled:
        status.update(label="Your place in line lapsed. Press Generate again.", state="error")
        draw_results(pending.photos, pending.settings)
    # Something on the page changed (a click): the next run takes over a job that is still waiting. Without
    # fast reruns this run is asked to rerun; with them (Streamlit's default) it is stopped and the next run
    # starts on another thread. A running job stops after its batch; the next run says so (resume_generation),
    # from what the job recorded: nothing here touches st.session_state, which raises again in a stopped run.
    except (RerunException, StopException):
        keep = not writing and (job.place() is not None or pending.waiter is not run)
        if not keep:
            pending.stopped = True
            job.cancel()
        raise
    finally:
        if not keep:
            job.finish()
            if not pending.stopped and st.session_state.get(_PENDING) is pending:
                del st.session_state[_PENDING]  # a stopped one stays for the next run to report and forget


def _forget_pending() -> None:
    pending = st.session_state.pop(_PENDING, None)
    if pending is not None:
        pending.drop()


def _caption(pending: Pending, status) -> None:
    """The job's turn: caption the photos that need it, model by model, drawing each model's cards when ready."""
    photos, settings, todo = pending.photos, pending.settings, pending.todo
    data = store()
    jobs: dict[tuple[str, ...], list] = {}  # the same models for several photos run as one batch
    for photo in photos:
        data.setdefault(photo.sha256, {})
        if photo.sha256 in todo:
            jobs.setdefault(tuple(todo[photo.sha256]), []).append(photo)
    keys_run = list(dict.fromkeys(k for keys in jobs for k in keys))
    pending.models = len(keys_run)
    count = sum(len(group) for group in jobs.values())
    status.update(label=f"Writing captions for {count} photo(s) with {len(keys_run)} model(s)…", expanded=True)
    slots = draw_results(photos, settings, pending={(sha, k) for sha, keys in todo.items() for k in keys})
    finished = pending.finished
    failed: set[str] = set()
    settings_dict = settings.to_dict()  # stored with every card; the same for all models of this run

    lines: list[str] = []

    def on_progress(event) -> None:
        label = _label(event.model_key)
        status.update(label=f"{STAGES.get(event.stage, event.stage)} {plain(label)}…")
        lines.append(f"{STAGES.get(event.stage, event.stage)} {plain(label)}")
        status.write(lines[-1])

    for keys, group in jobs.items():
        shas = [p.sha256 for p in group]

        def on_result(run, group=group, shas=shas) -> None:
            finished.add(run.model_key)  # before any st.* call: in a stopped run the first one raises
            if run.error:
                failed.add(run.model_key)
            cards = cards_from_run(run, shas, settings_dict)
            for sha, card in cards.items():
                data[sha][run.model_key] = card
            drafts.save()  # a reload or a lost connection mid-Generate keeps the cards already shown
            for sha, card in cards.items():
                _draw_card(slots[(sha, run.model_key)], card, group[shas.index(sha)], settings)

        with shown_errors():
            resources.captioner().caption([p.image for p in group], list(keys), settings,
                                          on_result=on_result, on_progress=on_progress,
                                          should_stop=lambda: pending.job.stop_requested)
    state = "error" if failed and len(failed) == len(keys_run) else "complete"
    note = f" ({len(failed)} model(s) could not caption)" if failed else ""
    label = f"Done: {len(finished)} of {len(keys_run)} model(s){note}."
    st.session_state[_REPORT] = Report(label, state, bool(failed), lines, pending.kept_note)
    status.update(label=label, state=state, expanded=bool(failed))


def draw_results(photos, settings, pending: set | None = None) -> dict:
    """One bordered block per photo: the upright photo, a write-your-own box and a card per model.

    Pairs in ``pending`` get placeholders to fill; the rest are drawn from the store.
    Returns {(photo hash, model key): slot}.
    """
    slots, pending = {}, pending or set()
    # What the gallery holds now for the captions these cards saved (one query): an edit made in the Gallery
    # since is said on the card, not "Saved in the gallery".
    stored = saving.stored_texts(card.saved_ids[v] for photo in photos
                                 for card in store().get(photo.sha256, {}).values() for v in card.saved_ids)
    for photo in photos:
        cards = store().get(photo.sha256, {})
        keys = _ordered(set(cards) | {k for sha, k in pending if sha == photo.sha256})
        with photo_row(photo.image, photo) as (left, right):
            with left:
                _manual_box(photo)
            with right:
                if not keys:
                    st.caption("No captions for this photo yet: press ✨ Generate above (with at least one "
                               "model chosen), or write your own.")
                for row in range(0, len(keys), CARDS_PER_ROW):
                    for column, key in zip(st.columns(CARDS_PER_ROW), keys[row:row + CARDS_PER_ROW]):
                        slot = slots[(photo.sha256, key)] = column.empty()
                        if (photo.sha256, key) in pending:
                            slot.info(f"⏳ Waiting for {plain(_label(key))}…")
                        else:
                            _draw_card(slot, cards[key], photo, settings, stored)
    return slots


def _draw_card(slot, card: Card, photo, settings, stored: dict | None = None) -> None:
    label = _label(card.model_key)
    with slot.container():
        caption_card(card, label,
                     on_save=lambda c, result, text: saving.save_generated(photo, c, result, text),
                     on_regenerate=lambda c: _regenerate(photo, c, settings),
                     on_more=lambda c: _more_like_this(photo, c), stored=stored)


def in_turn(size, work, place):
    """Run ``work()`` when its turn in the process's generation queue comes, showing the place in line in
    the ``place`` placeholder meanwhile (cleared after). JobRefused propagates."""
    try:
        return resources.generation_queue().run(
            resources.session_owner(), size, lambda job: work(),
            on_wait=lambda where: place.caption(f"Waiting for your turn: {where.describe()}."), poll=POLL_SECONDS)
    finally:
        place.empty()


def _one_card_run(photo, model_key: str, settings):
    """One model's captions of one photo, in turn in the generation queue like every generation (its limits
    per process and per session apply); None, with the reason shown, when the queue refuses it."""
    from igcap.generation_queue import JobRefused, JobSize

    try:
        [run] = in_turn(JobSize(1, 1, settings.num_variants),
                        lambda: resources.captioner().caption([photo.image], [model_key], settings), st.empty())
    except JobRefused as err:
        st.error(plain(err.message), icon="⏳")
        return None
    return run


def _regenerate(photo, card: Card, settings) -> None:
    if settings is None:
        st.error("Fix the decoding settings above first.", icon="⚠️")
        return
    with st.spinner("Writing a new caption…"), shown_errors():
        if (run := _one_card_run(photo, card.model_key, settings)) is None:
            return
        fresh = new_card(card.model_key, run.results, run.error, settings.to_dict())
        if settings.deterministic and [r.text for r in fresh.results] == [r.text for r in card.results]:
            why = "a fixed seed" if settings.strategy == "sample" else f"{settings.strategy} decoding"
            fresh.note = (f"Same caption as before: these settings are deterministic ({why}), so the same photo "
                          "always gets the same caption. Choose the Creative style, clear the seed, or use "
                          "\"more like this\" for a new one.")
        store()[photo.sha256][card.model_key] = fresh
        st.rerun()


def _more_like_this(photo, card: Card) -> None:
    from igcap.decoding import DecodingSettings
    from igcap.variants import more_like_this

    with st.spinner("Writing three more…"), shown_errors():
        settings = more_like_this(DecodingSettings.from_dict(card.settings))
        if (run := _one_card_run(photo, card.model_key, settings)) is None:
            return
        if run.error:
            show_failure(run.error)
            return
        card.add_more(run.results, settings.to_dict())
        st.rerun()


def _manual_box(photo) -> None:
    key = manual_key(photo.sha256)
    text = text_box("Write your own caption", key, "", height=90, placeholder="Your caption…",
                    persist_state="session")
    stats = card_tools(text)
    set_buttons(key, current=lambda: st.session_state.get(key, ""), apply=lambda new: text_boxes.write(key, new))
    # Never disabled: a disabled button swallows the click that also commits what was just typed.
    if st.button("💾 Save my caption", key=f"{key}.save"):
        if not text.strip():
            st.warning("Write a caption first, then save it.", icon="✍️")
            return
        with shown_errors():
            _, new = saving.save_manual(photo, text)
            if new:
                st.success("Saved to the gallery.", icon="✅")
            else:
                st.info("Already in the gallery: this caption was saved for this photo before.", icon="✅")
            warn_over_limits(stats)


def _label(key: str) -> str:
    return model_label(key, resources.registry())


def _ordered(keys) -> list[str]:
    order = list(resources.registry())
    return sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), k))
