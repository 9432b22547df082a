"""The Studies page's parts: the study list, the create form, caption generation with progress, deletion."""

from __future__ import annotations

import threading
from collections import Counter

import pandas as pd
import streamlit as st

from db import studies, transaction
from igcap.images import MAX_UPLOAD_MB, SUPPORTED_LABEL, WORKING_SIDE, PhotoError, load_photo
from igcap_ui import access, resources
from igcap_ui.plain import plain
from igcap_ui.errors import show_error, shown_errors, user_message
from igcap_ui.filters import model_label
from igcap_ui.generation import in_turn
from igcap_ui.study_choice import CHOSEN

UPLOAD, GALLERY = "Upload photos", "Pick from the gallery"
_DECODED = "studies.decoded"  # uploader file_id → Photo | PhotoError, decoded once
_CREATED = "studies.created"  # the study just created: said once above the form, which starts empty again
_ROUND = "studies.form_round"  # a new uploader (a file uploader cannot be emptied) for each new study
_FORM_KEYS = ("studies.name", "studies.picked", "studies.criteria", "studies.k")  # back to their defaults


def study_table() -> bool:
    """The studies with their counts; False when there are none yet."""
    created = st.session_state.pop(_CREATED, None)
    if created:
        st.success(f"Created the study {plain(created)}. Write its captions below.", icon="✅")
    with transaction(resources.db_engine(), write=False) as session:
        rows = [(s, studies.study_counts(session=session, study=s)) for s in studies.list_studies(session=session)]
    if not rows:
        st.info("No studies yet: create the first one below. Give it a name, choose its photos (upload them, or pick "
                "from the gallery) and the models to compare, then write its captions.", icon="🧪")
        return False
    st.dataframe(pd.DataFrame([{
        "Study": s.name, "Photos": n["photos"], "Models": len(s.models),
        "Captions": f"{n['captions']} of {n['photos'] * len(s.models)}", "Ratings": n["ratings"], "Votes": n["votes"],
        "k": s.k, "Criteria": ", ".join(s.criteria), "Created (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M"),
    } for s, n in rows]), hide_index=True, key="studies.table")
    return True


def create_form() -> None:
    if st.session_state.pop(_CREATED + ".reset", False):  # a study was just created: an empty form for the next
        for key in _FORM_KEYS:
            st.session_state.pop(key, None)
        st.session_state[_ROUND] = st.session_state.get(_ROUND, 0) + 1
    name = st.text_input("Study name", key="studies.name", max_chars=studies.STUDY_NAME_MAX,
                         placeholder="e.g. Spring shoot, four models")
    source = st.radio("Photos", [UPLOAD, GALLERY], horizontal=True, key="studies.source")
    photos, picked = (_uploaded(), []) if source == UPLOAD else ([], _picked())
    specs, available = resources.registry(), resources.availability()
    usable = [k for k in specs if available[k].usable]
    models = st.multiselect("Models", list(specs), default=[k for k in usable if not specs[k].demo] or usable,
                            format_func=model_label, key="studies.models")
    from igcap.decoding import DEFAULT_PRESET, PRESETS

    cols = st.columns(3)
    preset = cols[0].selectbox("Style", list(PRESETS), index=list(PRESETS).index(DEFAULT_PRESET),
                               format_func=str.capitalize, key="studies.preset",
                               help="As on the Create page, one style for every model: one caption per photo each.")
    criteria = cols[1].text_input("Criteria (comma-separated)", value="overall", key="studies.criteria",
                                  help="e.g. overall, fits-photo, sounds-like-instagram")
    k = cols[2].number_input("Ratings per caption (k)", 1, 100, 3, key="studies.k")
    missing = [what for what, given in (("a name", name.strip()), ("at least one photo", photos or picked),
                                        ("at least one model", models)) if not given]
    if st.button("🧪 Create study", type="primary", disabled=bool(missing), key="studies.create"):
        with shown_errors():
            try:
                created = _create(name, photos, picked, models, PRESETS[preset], criteria.split(","), int(k))
            except ValueError as err:
                st.error(plain(str(err)), icon="⚠️")
            else:
                from igcap_ui.study_choice import set_chosen

                set_chosen(created)
                st.session_state[_CREATED], st.session_state[_CREATED + ".reset"] = created, True
                st.rerun()
    if missing:
        st.caption("To create the study, add " + _and(missing) + ".")
    from igcap.leaderboard import Thresholds

    least = Thresholds().photos
    if (photos or picked) and len(photos) + len(picked) < least:
        st.warning(f"The leaderboard shows figures once ratings or votes cover at least {least} photos; this study "
                   f"would have {len(photos) + len(picked)}, and photos cannot be added to a study later.", icon="📷")


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _create(name, photos, picked, models, settings, criteria, k) -> str:
    from igcap.study import create_study, store_photo

    with transaction(resources.db_engine()) as session:
        owner = access.current().id  # the study's uploads are the signed-in owner's photos
        ids = [store_photo(session=session, photo=p, owner=owner).id for p in photos] + list(picked)
        study = create_study(session=session, name=name, photo_ids=ids, models=models, settings=settings,
                             known_models=resources.registry(), criteria=criteria, k=k)
        return study.name


def _uploaded() -> list:
    files = st.file_uploader(f"Photos for the study ({SUPPORTED_LABEL}; up to {MAX_UPLOAD_MB} MB each)",
                             accept_multiple_files=True, key=f"studies.upload.{st.session_state.get(_ROUND, 0)}")
    cache = st.session_state.setdefault(_DECODED, {})
    for gone in set(cache) - {f.file_id for f in files or []}:  # removed from the uploader: let it go
        del cache[gone]
    photos = []
    for f in files or []:
        if f.file_id not in cache:
            try:  # kept at the stored copy's size, as the Create page keeps it (a 50 MP photo: ~150 MB in full)
                cache[f.file_id] = load_photo(f.getvalue(), f.name, max_side=WORKING_SIDE)
            except PhotoError as err:
                cache[f.file_id] = err
        decoded = cache[f.file_id]
        if isinstance(decoded, PhotoError):
            st.error(f"{plain(f.name)}: {plain(decoded.message)}", icon="🚫")
        else:
            photos.append(decoded)
    return photos


def _picked() -> list[int]:
    with transaction(resources.db_engine(), write=False) as session:
        photos = {p.id: p.name for p in studies.pickable_photos(session=session)}
    if not photos:
        st.info("The gallery has no photos yet: upload them here instead.", icon="🖼️")
    names = Counter(photos.values())  # a number only where two photos have one name
    return st.multiselect("Photos from the gallery", list(photos), key="studies.picked",
                          format_func=lambda pid: photos[pid] if names[photos[pid]] == 1 else f"{photos[pid]} (#{pid})")


@st.cache_resource(show_spinner=False)
def _running() -> tuple[threading.Lock, set]:
    """Studies being generated by some session of this process (one run per study at a time)."""
    return threading.Lock(), set()


def generation_panel(name: str) -> None:
    with transaction(resources.db_engine(), write=False) as session:
        study = studies.get_study(session=session, name=name)
        counts = studies.study_counts(session=session, study=study)
    total = counts["photos"] * len(study.models)
    st.progress(counts["captions"] / total if total else 1.0,
                text=f"{counts['captions']} of {total} captions written "
                     f"({counts['photos']} photos × {len(study.models)} models)")
    _last_report(name)
    if counts["captions"] >= total:
        st.success("All captions are written: people can rate them on the Rate and Arena pages.", icon="✅")
        return
    label = "▶️ Write the captions" if counts["captions"] == 0 else "▶️ Resume writing the captions"
    if st.button(label, type="primary", key=f"studies.generate.{name}"):
        lock, running = _running()
        with lock:
            busy = name in running
            running.add(name)
        if busy:
            st.warning("Another session is writing this study's captions right now; reload in a while.", icon="⏳")
            return
        try:
            _generate(name)
        finally:
            with lock:
                running.discard(name)


def _generate(name: str) -> None:
    from igcap.study import format_seconds, generate_study

    status = st.status("Writing the study's captions…", expanded=True)
    bar = status.progress(0.0)

    def on_event(event) -> None:
        label = model_label(event.model_key)
        if event.stage == "model":
            status.write(f"Model {event.model_index + 1} of {event.models}: {plain(label)}")
        elif event.stage == "failed":
            status.error(f"{plain(label)} could not caption: {plain(event.message)}", icon="⚠️")
        else:
            left = format_seconds(event.seconds_left)
            bar.progress(event.done / event.total, text=f"{event.done} of {event.total} · {plain(label)}"
                         + (f" · {left} left" if left else ""))

    sources = {k: f"{s.source}@{s.revision}" if s.revision else s.source for k, s in resources.registry().items()}
    place = status.empty()  # the place in line while a batch waits its turn (igcap_ui.generation.in_turn)
    with shown_errors():
        try:
            report = generate_study(resources.db_engine(), name, resources.captioner(), sources=sources,
                                    on_event=on_event,
                                    turns=lambda size, work: in_turn(size, work, place))
        except Exception as err:  # said below the box by shown_errors; the box stops spinning first
            status.update(label=_stopped(err), state="error", expanded=True)
            raise
        status.update(label="Done.", state="error" if report.failed else "complete")
        st.session_state[_REPORT + name] = report
        st.rerun()  # draw the counts again from the database


def _stopped(err: Exception) -> str:
    """The progress box's label once a run has stopped on ``err`` (the error itself is shown below it)."""
    said = user_message(err) or "something went wrong."
    if said[:2].istitle():  # "The generation…" → "the generation…"; "HF…" stays
        said = said[0].lower() + said[1:]
    return plain(f"Stopped: {said}")


_REPORT = "studies.report."  # + study name → the last GenerationReport of this session


def _last_report(name: str) -> None:
    report = st.session_state.pop(_REPORT + name, None)
    if report is None:
        return
    made = sum(report.made.values())
    st.info(f"Done: {made} caption(s) written in {report.seconds:.0f} s.", icon="🏁")
    for key, message in report.failed.items():
        st.error(f"{plain(model_label(key))} could not caption: {plain(message)} "
                 "The other models' captions are saved; press Resume to try this model again.", icon="⚠️")


_DELETED = "studies.deleted"  # the last deletion's message, said once after the rerun


def deletion_notice() -> None:
    """What the last deletion of this session deleted, once (drawn above the list, which no longer has it)."""
    said = st.session_state.pop(_DELETED, None)
    if said:
        st.success(said, icon="🗑️")


def delete_panel(name: str) -> None:
    """Delete the chosen study (its captions, ratings, votes and the photos nothing else uses), once its name is
    typed."""
    with transaction(resources.db_engine(), write=False) as session:
        study = studies.get_study(session=session, name=name)
        counts = studies.study_counts(session=session, study=study)
        going = len(studies.photos_deleted_with(session=session, study=study))
    staying = counts["photos"] - going
    with st.expander("Delete this study"):
        st.warning(f"Deleting the study “{plain(name)}” deletes its {counts['captions']} caption(s), "
                   f"{counts['ratings']} rating(s) and {counts['votes']} vote(s)"
                   + (f", and its {going} photo(s), which nothing else uses (no caption saved in the gallery, "
                      "no other study)" if going else "")
                   + " for good."
                   + (f" Its {'other ' if going else ''}{staying} photo(s) stay: they have captions saved in the "
                      "gallery or belong to another study." if staying else "")
                   + " Download its ratings and votes on the Evaluation page first if you need them.", icon="⚠️")
        typed = st.text_input("Type the study's name to delete it", key=f"studies.delete_name.{name}")
        matches = " ".join(typed.split()) == name
        if st.button("🗑️ Delete study", key=f"studies.delete.{name}", disabled=not matches):
            _delete(name)


def _delete(name: str) -> None:
    lock, running = _running()
    with lock:
        if name in running:
            st.warning("A session is writing this study's captions right now; delete it once that has ended.",
                       icon="⏳")
            return
        try:  # under the lock: no generation of this study starts meanwhile
            with transaction(resources.db_engine()) as session:
                gone = studies.delete_study(session=session, name=name)
        except Exception as err:  # noqa: BLE001 - said here (e.g. deleted meanwhile elsewhere), never a traceback
            show_error(err)
            return
    photos = f" and {gone['photos_deleted']} photo(s)" if gone["photos_deleted"] else ""
    st.session_state[_DELETED] = (f"Deleted the study “{plain(name)}” with {gone['captions']} caption(s), "
                                  f"{gone['ratings']} rating(s), {gone['votes']} vote(s){photos}.")
    st.session_state.pop(f"studies.delete_name.{name}", None)
    st.session_state.pop(CHOSEN, None)  # said above; the pickers need not say it again
    st.rerun()
