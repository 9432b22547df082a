"""Studies, Rate and Arena pages in AppTest: blind ratings by two raters, a blind vote, a study created
from gallery photos and its captions written by the (tiny) models."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from db import Caption, Photo, Rating, Vote, make_engine, repo, studies, transaction, upgrade
from igcap.registry import DEFAULT_MODELS
from tests.pages.conftest import APP, TIMEOUT, no_exceptions, open_page, set_rater, shown

MODELS = [m.key for m in DEFAULT_MODELS[:2]]
NAMES = [m.key for m in DEFAULT_MODELS] + [m.label for m in DEFAULT_MODELS]


def page_text(at) -> str:
    """Everything written on the page (not widget labels)."""
    parts = []
    for kind in ("markdown", "caption", "text", "info", "success", "warning", "error", "title", "subheader", "toast"):
        parts += [str(e.value) for e in getattr(at, kind, [])]
    return "\n".join(parts)


def shows_a_model_name(at) -> bool:
    text = page_text(at)
    return any(name in text for name in NAMES)


@pytest.fixture
def study(saved, db_url):
    """A study 'Blind test' (k = 2, criteria overall + fits-photo) over the two saved photos × two models."""
    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as s:
        photo_ids = [p.id for p in studies.pickable_photos(session=s)]
        st = studies.create_study(session=s, name="Blind test", models=MODELS, settings={"strategy": "greedy"},
                                  photo_ids=photo_ids, criteria=["overall", "fits-photo"], k=2, seed=3)
        for pid in photo_ids:
            for key in MODELS:
                studies.save_study_caption(session=s, study=st, photo_id=pid, model_key=key,
                                           text=f"photo {pid} caption *{key[:3]}*")
    engine.dispose()
    return "Blind test"


def rows(db_url, stmt):
    engine = make_engine(db_url)
    with transaction(engine, write=False) as s:
        out = list(s.scalars(stmt))
    engine.dispose()
    return out


def new_app(name: str):
    from streamlit.testing.v1 import AppTest

    return set_rater(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), name)


def rate_token(at) -> str:
    """The token the Rate page keys the shown caption's widgets with (one caption on screen)."""
    [token] = {re.match(r"rate\.stars\.([^.]+)\.", f.key).group(1) for f in at.feedback}
    return token


def shown_caption_id(at, rater: str) -> int:
    """The caption on the Rate page: the page's record of it (its widgets carry a token, not the id)."""
    rate_token(at)
    return at.session_state[f"rate.Blind test.{rater}"]["pinned"]


def rate_shown(at, rater: str, overall: int, fits: int, comment: str = ""):
    cid, token = shown_caption_id(at, rater), rate_token(at)
    at.feedback(key=f"rate.stars.{token}.overall").set_value(overall - 1).run()
    assert at.button(key=f"rate.submit.{token}").disabled  # every criterion needs stars
    at.feedback(key=f"rate.stars.{token}.fits-photo").set_value(fits - 1).run()
    if comment:
        at.text_area(key=f"rate.comment.{token}").set_value(comment).run()
    at.button(key=f"rate.submit.{token}").click().run()
    no_exceptions(at)
    return cid


def arena_button(at, action: str):
    """The Arena's button for ``action`` (a, b, tie, both_bad or skip) under the pair on screen."""
    prefix = "arena.skip." if action == "skip" else f"arena.vote.{action}."
    [button] = [b for b in at.button if (b.key or "").startswith(prefix)]
    return button


def test_two_raters_rate_blind_until_every_caption_has_k_ratings(study, app_env, db_url):
    ann = open_page(new_app("Ann"), "rate.py")
    no_exceptions(ann)
    assert "0 of 4 rated by you" in page_text(ann)
    assert sum("1 — poor · 5 — excellent" in c.value for c in ann.caption) == 2  # the scale, per criterion
    given = []
    for n in range(4):
        assert not shows_a_model_name(ann), page_text(ann)
        texts_on_page = [t.value for t in ann.text]
        cid = rate_shown(ann, "Ann", overall=n + 1, fits=5, comment="**not bold**" if n == 0 else "")
        [caption] = rows(db_url, select(Caption).where(Caption.id == cid))
        assert caption.text in texts_on_page  # shown as written (st.text), never as Markdown
        given.append(cid)
        assert f"{n + 1} of 4 rated by you" in page_text(ann)
    assert len(set(given)) == 4 and "Nothing left for you to rate" in page_text(ann)

    bob = open_page(new_app("Bob"), "rate.py")
    assert "0 of 4 rated by you" in page_text(bob)
    first = shown_caption_id(bob, "Bob")
    bob.button(key=f"rate.skip.{rate_token(bob)}").click().run()
    assert shown_caption_id(bob, "Bob") != first  # skipped for now
    for _ in range(3):
        assert not shows_a_model_name(bob)
        rate_shown(bob, "Bob", overall=2, fits=2)
    assert "skipped 1 caption" in page_text(bob)
    bob.button(key="rate.unskip").click().run()
    assert shown_caption_id(bob, "Bob") == first
    rate_shown(bob, "Bob", overall=3, fits=3)

    cy = open_page(new_app("Cy"), "rate.py")  # k = 2: nothing left for a third rater
    assert "Nothing left for you to rate" in page_text(cy) and not cy.feedback
    ratings = rows(db_url, select(Rating))
    assert len(ratings) == 2 * 2 * 4  # 2 raters × 2 criteria × 4 captions
    assert all(r.rated_text for r in ratings)
    assert {r.comment for r in ratings if r.rater == "Ann"} == {"**not bold**", None}


def test_rate_needs_a_rater_name(study, app):
    at = open_page(app, "rate.py")
    no_exceptions(at)
    assert "Enter your name" in page_text(at) and not at.feedback


def test_one_rater_votes_in_the_arena_and_then_sees_the_names(study, app_env, db_url):
    at = open_page(new_app("Ann"), "arena.py")
    no_exceptions(at)
    assert not shows_a_model_name(at)
    assert "0 of 2 pairs judged by you" in page_text(at)
    arena_button(at, "b").click().run()
    no_exceptions(at)
    [vote] = rows(db_url, select(Vote))
    assert (vote.rater, vote.winner, {vote.model_a, vote.model_b}) == ("Ann", "b", set(MODELS))
    revealed = " ".join(s.value for s in at.success)
    labels = {m.key: m.label for m in DEFAULT_MODELS}
    assert f"A was written by **{labels[vote.model_a]}**" in revealed.replace("\\", "")
    assert "1 of 2 pairs judged by you" in page_text(at)
    arena_button(at, "skip").click().run()  # the reveal goes; the next pair is still blind
    assert not shows_a_model_name(at)
    at.button(key="arena.unskip").click().run()
    arena_button(at, "tie").click().run()
    assert [v.winner for v in rows(db_url, select(Vote).order_by(Vote.id))] == ["b", "tie"]
    assert "You have judged every pair" in page_text(at)


def test_an_arena_vote_counts_only_for_the_pair_it_was_shown_on(study, app_env, db_url):
    """Two tabs of one rater show the same pair and it is judged in the second. The first tab's "B is better"
    used to be stored for the next pair, which that tab never showed (the buttons' keys were fixed and the
    pair was worked out again in the run handling the click), and the reveal named that pair's models."""
    tab1 = open_page(new_app("Ann"), "arena.py")
    tab2 = open_page(new_app("Ann"), "arena.py")
    arena_button(tab2, "a").click().run()
    no_exceptions(tab2)
    arena_button(tab1, "b").click().run()
    no_exceptions(tab1)
    assert [v.winner for v in rows(db_url, select(Vote))] == ["a"]
    assert any("That pair was already judged (in another tab?)" in i.value for i in tab1.info)
    assert not shows_a_model_name(tab1)  # no reveal: nothing was voted in this tab
    assert "1 of 2 pairs judged by you" in page_text(tab1)  # and the next pair is on screen
    arena_button(tab1, "tie").click().run()
    assert [v.winner for v in rows(db_url, select(Vote).order_by(Vote.id))] == ["a", "tie"]


def test_a_caption_rated_in_another_tab_is_not_swapped_for_the_next_without_a_word(study, app_env, db_url):
    """Two tabs of one rater show the same caption; it is rated in the second. The first tab's stars and
    Submit then vanished and another caption stood in their place, with nothing said."""
    tab1 = open_page(new_app("Ann"), "rate.py")
    tab2 = open_page(new_app("Ann"), "rate.py")
    first = shown_caption_id(tab1, "Ann")
    assert shown_caption_id(tab2, "Ann") == first
    rate_shown(tab2, "Ann", 4, 4)
    token = rate_token(tab1)
    tab1.feedback(key=f"rate.stars.{token}.overall").set_value(1).run()  # tab 1 goes on with the same caption
    no_exceptions(tab1)
    # it says why the caption changed, on the page (a toast vanished in seconds), for that run
    assert any("already rated" in i.value for i in tab1.info) and not tab1.toast
    assert shown_caption_id(tab1, "Ann") != first
    tab1.run()
    assert not any("already rated" in i.value for i in tab1.info)
    assert [r.stars for r in rows(db_url, select(Rating).where(Rating.caption_id == first))] == [4, 4]


def test_a_double_click_in_the_arena_is_not_stored_for_the_next_pair(study, app_env, db_url):
    """The second click of a double click comes from the page as it was before the first vote's rerun; with
    fixed keys it was taken as a vote on the pair that rerun put in place, unseen."""
    at = open_page(new_app("Ann"), "arena.py")
    first = arena_button(at, "a")
    first.click().run()
    no_exceptions(at)
    first.click().run()  # the same button of the same page, clicked again
    no_exceptions(at)
    assert [v.winner for v in rows(db_url, select(Vote))] == ["a"]
    arena_button(at, "both_bad").click().run()  # the pair now on screen takes a vote as usual
    assert [v.winner for v in rows(db_url, select(Vote).order_by(Vote.id))] == ["a", "both_bad"]

    bob = open_page(new_app("Bob"), "arena.py")  # a skip, too, only for the pair it was shown under
    skip = arena_button(bob, "skip")
    skip.click().run()
    skip.click().run()
    no_exceptions(bob)
    assert "skipped" not in page_text(bob) and arena_button(bob, "a")  # the second pair is still on screen


def widget_words(at) -> set[str]:
    """Every word of every widget id on the page: the id holds the key, and the browser gets both (the
    element's id and its st-key-… CSS class)."""
    from streamlit.testing.v1.element_tree import Widget

    return {word for node in at if isinstance(node, Widget) for word in re.split(r"[^0-9A-Za-z]+", node.id)}


def test_the_rate_and_arena_pages_send_no_caption_id_to_the_browser(study, app_env, db_url):
    """Caption ids are given out model by model as a study's captions are written, so an id in a widget key
    told a rater which model wrote the caption."""
    with transaction(make_engine(db_url), write=False) as s:
        ids = {str(c.id) for c in s.scalars(select(Caption))}
    rate = open_page(new_app("Ann"), "rate.py")
    arena = open_page(new_app("Ann"), "arena.py")
    seen = set()
    for _ in range(2):
        assert rate.feedback and not ids & widget_words(rate), sorted(ids & widget_words(rate))
        assert arena_button(arena, "a") and not ids & widget_words(arena), sorted(ids & widget_words(arena))
        seen.add(rate_token(rate))
        rate_shown(rate, "Ann", overall=3, fits=3)
        arena_button(arena, "tie").click().run()
    assert len(seen) == 2  # a new token for each caption


def test_create_a_study_from_gallery_photos_and_write_its_captions(study, app, db_url):
    at = open_page(app, "studies.py")
    assert at.selectbox(key="studies.study").value == "Blind test"
    no_exceptions(at)
    at.text_input(key="studies.name").set_value("From the gallery").run()
    at.radio(key="studies.source").set_value("Pick from the gallery").run()
    engine = make_engine(db_url)
    with transaction(engine, write=False) as s:
        photo_ids = [p.id for p in studies.pickable_photos(session=s)]
    at.multiselect(key="studies.picked").set_value(photo_ids).run()
    assert any(f"this study would have {len(photo_ids)}, and photos cannot be added" in w.value for w in at.warning)
    at.multiselect(key="studies.models").set_value(MODELS).run()
    at.selectbox(key="studies.preset").set_value("fast").run()
    at.text_input(key="studies.criteria").set_value("overall, fits-photo").run()
    at.button(key="studies.create").click().run()
    no_exceptions(at)
    assert any("Created the study" in s.value for s in at.success)
    assert at.selectbox(key="studies.study").value == "From the gallery"  # the new study is chosen
    # the form starts empty for the next study: it kept everything, and a second press said "already exists"
    assert at.text_input(key="studies.name").value == "" and at.multiselect(key="studies.picked").value == []
    assert at.button(key="studies.create").disabled
    assert any("To create the study, add a name and at least one photo." in c.value for c in at.caption)
    at.run()
    assert not any("Created the study" in s.value for s in at.success)  # said once
    at.button(key="studies.generate.From the gallery").click().run()
    no_exceptions(at)
    with transaction(engine, write=False) as s:
        study = studies.get_study(session=s, name="From the gallery")
        captions = studies.study_captions(session=s, study=study)
        assert (study.criteria, study.k, study.settings["strategy"]) == (["overall", "fits-photo"], 3, "greedy")
        assert sorted((c.photo_id, c.model_key) for c in captions) == sorted(
            (pid, key) for pid in photo_ids for key in MODELS)
    engine.dispose()
    at.run()
    assert any("All captions are written" in s.value for s in at.success)


def test_a_bad_study_name_is_refused_with_a_message(study, app, db_url):
    at = open_page(app, "studies.py")
    at.text_input(key="studies.name").set_value("Blind test").run()
    at.radio(key="studies.source").set_value("Pick from the gallery").run()
    with transaction(make_engine(db_url), write=False) as s:
        photo_ids = [p.id for p in studies.pickable_photos(session=s)]
    at.multiselect(key="studies.picked").set_value(photo_ids[:1]).run()
    at.multiselect(key="studies.models").set_value(MODELS).run()
    at.button(key="studies.create").click().run()
    no_exceptions(at)
    assert any("already exists" in e.value for e in at.error)



def test_a_study_is_deleted_only_once_its_name_is_typed_and_its_photos_stay(study, app, db_url):
    engine = make_engine(db_url)
    with transaction(engine) as s:  # a second study whose name is Markdown: shown as typed
        ids = [p.id for p in studies.pickable_photos(session=s)]
        studies.create_study(session=s, name="**bold** _x_", models=MODELS, settings={"strategy": "greedy"},
                             photo_ids=ids[:1])
    at = open_page(app, "studies.py")
    at.selectbox(key="studies.study").set_value("Blind test").run()
    no_exceptions(at)
    assert any("4 caption(s), 0 rating(s) and 0 vote(s) for good. Its 2 photo(s) stay: they have captions "
               "saved in the gallery" in w.value for w in at.warning)
    delete = at.button(key="studies.delete.Blind test")
    assert delete.disabled
    at.text_input(key="studies.delete_name.Blind test").set_value("Blind").run()
    assert at.button(key="studies.delete.Blind test").disabled
    at.text_input(key="studies.delete_name.Blind test").set_value(" Blind  test ").run()
    at.button(key="studies.delete.Blind test").click().run()
    no_exceptions(at)
    assert any("Deleted the study “Blind test” with 4 caption(s)" in s.value for s in at.success)
    assert at.selectbox(key="studies.study").options == ["**bold** _x_"]
    with transaction(engine, write=False) as s:
        assert [x.name for x in studies.list_studies(session=s)] == ["**bold** _x_"]
        assert rows(db_url, select(Caption.study_id).where(Caption.study_id.is_not(None))) == []
        assert len(studies.pickable_photos(session=s)) == len(ids)  # the photos stay
    at.text_input(key="studies.delete_name.**bold** _x_").set_value("**bold** _x_").run()
    at.button(key="studies.delete.**bold** _x_").click().run()
    no_exceptions(at)
    [done] = at.success
    assert done.value.startswith("Deleted the study “\\*\\*bold\\*\\* \\_x\\_”")  # Markdown source of the plain text
    assert any("No studies yet: create the first one below" in i.value for i in at.info)
    engine.dispose()


def test_deleting_a_study_deletes_the_photos_uploaded_for_it_and_says_so_first(app, db_url):
    """Photos uploaded for a study have no gallery captions, so the Gallery never shows them: they went on
    existing, out of reach, after the study's delete (whose warning said they "stay in the gallery")."""
    from tests import builders

    at = open_page(app, "studies.py")
    at.text_input(key="studies.name").set_value("Up").run()
    at.file_uploader(key="studies.upload.0").set_value(
        [("a.jpg", builders.photo_bytes(colour="green"), "image/jpeg"),
         ("b.jpg", builders.photo_bytes(colour="yellow"), "image/jpeg")]).run()
    at.multiselect(key="studies.models").set_value(MODELS[:1]).run()
    at.button(key="studies.create").click().run()
    [warning] = [w.value for w in at.warning if "Deleting the study" in w.value]
    assert "and its 2 photo(s), which nothing else uses" in warning and "stay" not in warning
    at.text_input(key="studies.delete_name.Up").set_value("Up").run()
    at.button(key="studies.delete.Up").click().run()
    no_exceptions(at)
    assert any("and 2 photo(s)" in s.value for s in at.success)
    assert rows(db_url, select(Photo)) == []


def status_boxes(node, found=None) -> list:
    """The st.status boxes on the page, as their protos (AppTest has no accessor for them)."""
    found = [] if found is None else found
    if type(node).__name__ == "Status":
        found.append(node.proto)
    for child in (node.children.values() if isinstance(getattr(node, "children", None), dict) else []):
        status_boxes(child, found)
    return found


def test_a_run_that_stops_says_so_in_its_progress_box(saved, app, db_url, monkeypatch):
    """The box kept its spinner and "Writing the study's captions…" after the run had failed."""
    import igcap.study
    from igcap.generation_queue import JobCancelled

    engine = make_engine(db_url)
    with transaction(engine) as s:
        ids = [p.id for p in studies.pickable_photos(session=s)]
        studies.create_study(session=s, name="R", models=MODELS[:1], settings={"strategy": "greedy"}, photo_ids=ids)
    engine.dispose()

    def cancelled(*args, **kwargs):
        raise JobCancelled()

    monkeypatch.setattr(igcap.study, "generate_study", cancelled)
    at = open_page(app, "studies.py")
    at.button(key="studies.generate.R").click().run()
    no_exceptions(at)
    assert any("The generation was cancelled" in e.value for e in at.error)
    [box] = status_boxes(at._tree)
    assert shown(box.label) == "Stopped: the generation was cancelled. What was saved before stays saved."
    assert box.icon != "spinner"


def test_a_study_whose_captions_another_session_is_writing_is_not_deleted(study, app, db_url):
    from igcap_ui.study_builder import _running

    at = open_page(app, "studies.py")
    at.text_input(key=f"studies.delete_name.{study}").set_value(study).run()
    lock, running = _running()  # the process-wide record every session's generation panel uses
    with lock:
        running.add(study)
    try:
        at.button(key=f"studies.delete.{study}").click().run()
    finally:
        with lock:
            running.discard(study)
    no_exceptions(at)
    assert any("writing this study's captions right now" in w.value for w in at.warning)
    with transaction(make_engine(db_url), write=False) as s:
        assert [x.name for x in studies.list_studies(session=s)] == [study]


def test_a_rater_and_a_voter_whose_study_was_deleted_meanwhile_get_a_message(study, app_env, db_url):
    rater, voter = open_page(new_app("Ann"), "rate.py"), open_page(new_app("Bob"), "arena.py")
    token = rate_token(rater)
    rater.feedback(key=f"rate.stars.{token}.overall").set_value(3).run()
    rater.feedback(key=f"rate.stars.{token}.fits-photo").set_value(3).run()
    engine = make_engine(db_url)
    with transaction(engine) as s:  # the owner deletes the study in another session
        studies.delete_study(session=s, name=study)
    engine.dispose()
    rater.button(key=f"rate.submit.{token}").click().run()
    no_exceptions(rater)
    said = f"The study “{study}” has been deleted: stars or a vote not yet submitted for it were not saved."
    assert [w.value for w in rater.warning] == [said] and "No study yet" in page_text(rater)
    [vote] = [b for b in voter.button if b.label.endswith("A is better")]
    vote.click().run()
    no_exceptions(voter)
    assert [w.value for w in voter.warning] == [said]
    voter.run()
    assert not voter.warning  # said once
    assert rows(db_url, select(Rating)) == [] and rows(db_url, select(Vote)) == []


def test_gallery_leaves_study_captions_out_unless_asked(study, app):
    at = open_page(app, "gallery.py")
    no_exceptions(at)
    shown = page_text(at)
    study_caption = re.compile(r"photo \d+ caption")
    assert "Blue sky" in shown and not study_caption.search(shown)
    at.selectbox(key="gallery.study").set_value("Blind test").run()
    no_exceptions(at)
    shown = page_text(at)
    assert "Blue sky" not in shown and len(study_caption.findall(shown)) == 4
    # read-only: rated blind on the Rate page, so no stars, edit box, favourite or delete here (the owner's
    # stars, given with the model's name in view, counted in the study's leaderboard)
    assert not at.feedback and not [t for t in at.toggle if t.key.startswith("fav.")] and "A study caption" in shown
    assert not [b for b in at.button if b.key.startswith("delete_caption.")]


def test_photos_uploaded_for_a_study_are_kept_at_the_stored_size_and_let_go_when_removed(app):
    """The study form kept every upload decoded at full size for the whole session (a 50 MP photo about
    150 MB), although only the 1080 px copy is stored; the Create page keeps 1080 px and drops removed files."""
    from tests import builders

    at = open_page(app, "studies.py")
    at.file_uploader(key="studies.upload.0").set_value(
        [("wide.jpg", builders.photo_bytes(size=(3000, 2000)), "image/jpeg")]).run()
    no_exceptions(at)
    [photo] = at.session_state["studies.decoded"].values()
    assert photo.image.size == (1080, 720) and (photo.width, photo.height) == (3000, 2000)
    at.file_uploader(key="studies.upload.0").clear().run()
    no_exceptions(at)
    assert at.session_state["studies.decoded"] == {}


def test_the_arena_never_shows_a_pinned_pair_from_outside_its_study(study, app_env, db_url):
    """The pair shown is pinned in the page's state by caption ids; the Arena reloaded them by id alone, so a
    pin that outlived its study showed whatever rows now had those ids (SQLite reuses a deleted study's ids),
    e.g. a creator's private captions. Now it shows only a pair of this study."""
    engine = make_engine(db_url)
    with transaction(engine) as s:
        row = s.get(Photo, studies.pickable_photos(session=s)[0].id)
        private = [repo.add_caption(session=s, photo=row, model_key=k, text=f"PRIVATE {k}").id for k in MODELS]
    engine.dispose()
    at = new_app("Ann")
    at.session_state["arena.Blind test.Ann"] = {"pinned": tuple(private), "skipped": [], "revealed": None}
    at = open_page(at, "arena.py")
    no_exceptions(at)
    assert "PRIVATE" not in page_text(at) and "photo " in page_text(at)
    arena_button(at, "a").click().run()
    no_exceptions(at)
    [vote] = rows(db_url, select(Vote))
    assert not vote.text_a.startswith("PRIVATE")
