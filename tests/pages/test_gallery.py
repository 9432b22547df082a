"""The Gallery page: saved captions, stars per rater, edits, deletion with confirmation, filters, pages."""

from sqlalchemy import select

from db import Caption, Photo, Rating, make_engine, repo, transaction
from tests.pages.conftest import no_exceptions, open_page, set_rater, shown


def query(db_url, stmt):
    with transaction(make_engine(db_url), write=False) as session:
        return list(session.scalars(stmt))


def gallery(app):
    at = open_page(app, "gallery.py")
    no_exceptions(at)
    return at


def test_lists_saved_captions_newest_first(saved, app):
    at = gallery(app)
    texts = [t.value for t in at.text]
    positions = [next(i for i, t in enumerate(texts) if name in t) for name in ("A blue thing", "Red square")]
    assert positions == sorted(positions)  # the blue photo was saved last
    assert len(at.image) == 2
    assert any("4 captions of 2 photos" in c.value for c in at.caption)


def test_rating_needs_a_rater_name(saved, app):
    at = gallery(app)
    assert at.feedback(key=f"stars.{saved['Blue sky']}.").disabled
    assert any("name" in i.value for i in at.info)


def test_rating_stores_stars_for_the_rater(saved, app, db_url):
    set_rater(app, "Alex")  # on the Create page: the name is remembered across pages
    at = gallery(app)
    cid = saved["Blue sky"]
    at.feedback(key=f"stars.{cid}.Alex").set_value(3).run()  # 0-based: four stars
    no_exceptions(at)
    [rating] = query(db_url, select(Rating))
    assert (rating.caption_id, rating.rater, rating.stars) == (cid, "Alex", 4)
    # Rating again updates the same row; the rater name survives a page change.
    at = open_page(open_page(at, "models.py"), "gallery.py")
    assert at.feedback(key=f"stars.{cid}.Alex").value == 3
    at.feedback(key=f"stars.{cid}.Alex").set_value(1).run()
    assert [(r.rater, r.stars) for r in query(db_url, select(Rating))] == [("Alex", 2)]


def save_edit(at, cid: int, text: str):
    """Type ``text`` in the caption's edit box and press its Save."""
    at.text_area(key=f"edit.{cid}").set_value(text).run()
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    return at


def test_edit_saved_caption_keeps_generated_text(saved, app, db_url):
    cid = saved["Blue sky"]
    save_edit(gallery(app), cid, "Blue sky, edited ☁️")
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert (caption.text, caption.generated_text) == ("Blue sky, edited ☁️", "Blue sky")


def test_an_emptied_caption_is_refused_with_a_message_and_the_box_keeps_it(saved, app, db_url):
    cid = saved["Blue sky"]
    at = save_edit(gallery(app), cid, "   ")
    assert any("A caption cannot be empty" in e.value for e in at.error)
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == "Blue sky"


def test_gallery_edit_counts_against_instagrams_limits_and_warns_on_save(saved, app, db_url):
    at = gallery(app)
    cid = saved["Blue sky"]
    text = "Blue sky #a #b #c #d #e #f"
    at.text_area(key=f"edit.{cid}").set_value(text).run()
    assert any(":red[6 / 5 hashtags]" in c.value for c in at.caption)
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    assert any("6 hashtags; Instagram allows 5" in w.value for w in at.warning)  # shown after the save's rerun
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == text
    at.run()
    assert not any("Instagram allows" in w.value for w in at.warning)  # once, not on every rerun


def test_a_saved_hashtag_set_is_added_to_an_edit_and_saved_with_it(saved, app, db_url):
    from tests.pages.test_create import add_set

    at = gallery(add_set(app, "Travel", "#travel #wanderlust #roadtrip"))  # saved on the Create page
    cid = saved["Blue sky"]
    at.text_area(key=f"edit.{cid}").set_value("Blue sky, edited #sun #sea #sand #Travel").run()
    at.selectbox(key=f"edit.{cid}.sets").set_value("travel").run()
    no_exceptions(at)
    text = at.text_area(key=f"edit.{cid}").value
    assert text == "Blue sky, edited #sun #sea #sand #Travel #wanderlust"  # 5 hashtags: #roadtrip left out
    assert any("Left out #roadtrip" in shown(c.value) for c in at.caption) and not at.warning
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == "Blue sky"  # not saved until Save is pressed
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert (caption.text, caption.generated_text) == (text, "Blue sky")
    at.run()
    assert at.text_area(key=f"edit.{cid}").value == text


def test_delete_photo_needs_confirmation(saved, app, db_url):
    at = gallery(app)
    with transaction(make_engine(db_url), write=False) as session:
        blue = repo.get_caption(session=session, caption_id=saved["Blue sky"]).photo_id
    at.button(key=f"delete.{blue}").click().run()
    assert len(query(db_url, select(Photo))) == 2  # not yet
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key=f"delete.{blue}.no").click().run()
    assert len(query(db_url, select(Photo))) == 2
    at.button(key=f"delete.{blue}").click().run()
    at.button(key=f"delete.{blue}.yes").click().run()
    no_exceptions(at)
    assert [p.name for p in query(db_url, select(Photo))] == ["red.jpg"]
    assert len(query(db_url, select(Caption))) == 2


def test_filters_by_model_and_text(saved, app):
    at = gallery(app)
    at.multiselect(key="gallery.models").set_value(["manual"]).run()
    shown = " ".join(t.value for t in at.text)
    assert "My red one" in shown and "Blue sky" not in shown
    at.multiselect(key="gallery.models").set_value([]).run()
    at.text_input(key="gallery.search").set_value("blue").run()
    shown = " ".join(t.value for t in at.text)
    assert "Blue sky" in shown and "A blue thing" in shown and "Red square" not in shown


def test_pages_hold_whole_photos(saved, app, db_url):
    """14 photos with two captions each, 12 photos per page: no photo's captions are split across pages."""
    from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg
    from tests import builders

    with transaction(make_engine(db_url)) as session:
        for i in range(12):
            photo = load_photo(builders.photo_bytes(colour=(i * 20, 100, 50)), f"extra{i}.jpg")
            row = repo.save_photo(session=session, sha256=photo.sha256, name=photo.name, width=photo.width,
                                  height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                                  thumbnail_jpeg=thumbnail_jpeg(photo.image))
            for n in range(2):
                repo.add_caption(session=session, photo=row, model_key="manual", text=f"Extra {i}.{n}")
    at = gallery(app)
    assert len(at.image) == 12
    assert any("28 captions of 14 photos · page 1 of 2" in c.value for c in at.caption)
    at.pagination(key="gallery.page").set_value(2).run()
    no_exceptions(at)
    assert len(at.image) == 2
    shown = {t.value for t in at.text}
    assert {"Red square #shapes", "My red one", "Blue sky", "A blue thing"} <= shown  # both photos, whole


def test_a_rater_name_over_80_characters_does_not_break_the_gallery(saved, app, db_url):
    """Issue 12 item 5: a 100-character name broke the whole gallery (two ValueError boxes, no stars)."""
    box = app.text_input(key="rater_name_input")
    assert box.max_chars == 80  # the browser stops typing at 80; Streamlit cuts a longer value it is sent
    set_rater(app, "A" * 100)
    at = gallery(app)  # no "Something went wrong"
    name = "A" * 80
    stars = at.feedback(key=f"stars.{saved['Blue sky']}.{name}")
    assert not stars.disabled
    stars.set_value(2).run()
    no_exceptions(at)
    assert [(r.rater, r.stars) for r in query(db_url, select(Rating))] == [(name, 3)]


def test_rater_name_spaces_are_normalised_before_rating(saved, app, db_url):
    set_rater(app, "  Ann   Lee ")
    at = gallery(app)
    cid = saved["Blue sky"]
    at.feedback(key=f"stars.{cid}.Ann Lee").set_value(4).run()
    no_exceptions(at)
    assert [(r.rater, r.stars) for r in query(db_url, select(Rating))] == [("Ann Lee", 5)]
    assert at.feedback(key=f"stars.{cid}.Ann Lee").value == 4


def delete_photo_elsewhere(db_url, caption_id):
    """What another browser session does: delete the photo of this caption."""
    with transaction(make_engine(db_url)) as session:
        photo_id = repo.get_caption(session=session, caption_id=caption_id).photo_id
        repo.delete_photo(session=session, photo_id=photo_id)


def deleted_message(at) -> None:
    no_exceptions(at)
    assert any("caption was deleted" in e.value for e in at.error), [e.value for e in at.error]


def test_star_and_favourite_on_a_caption_deleted_elsewhere_say_it_was_deleted(saved, app, db_url):
    """Issue 12 item 4: they showed "Something went wrong (NotFoundError)"."""
    set_rater(app, "Alex")
    at = gallery(app)
    cid = saved["Blue sky"]
    delete_photo_elsewhere(db_url, cid)
    at.feedback(key=f"stars.{cid}.Alex").set_value(3).run()
    deleted_message(at)
    at = gallery(app)
    cid = saved["Red square #shapes"]
    delete_photo_elsewhere(db_url, cid)
    at.toggle(key=f"fav.{cid}").set_value(False).run()
    deleted_message(at)


def test_edit_of_a_caption_deleted_elsewhere_is_not_dropped_silently(saved, app, db_url):
    """Issue 12 item 4: the edit vanished without a word."""
    at = gallery(app)
    cid = saved["Blue sky"]
    at.text_area(key=f"edit.{cid}").set_value("My careful edit").run()
    delete_photo_elsewhere(db_url, cid)
    at.button(key=f"edit.{cid}.save").click().run()
    deleted_message(at)
    assert any(c.value == "My careful edit" for c in at.code)  # the text is there to copy


def edit_elsewhere(db_url, cid: int, text: str) -> None:
    """The caption's author changes it in another tab."""
    engine = make_engine(db_url)
    with transaction(engine) as session:
        repo.edit_caption(session=session, caption_id=cid, text=text)
    engine.dispose()


def test_stars_are_kept_with_the_text_the_page_showed_when_the_caption_changed_before_the_click(saved, app, db_url):
    """The stars were recorded as given to the text saved at the click, which the rater never saw."""
    set_rater(app, "Alex")
    at = gallery(app)
    cid = saved["Blue sky"]
    edit_elsewhere(db_url, cid, "Buy cheap followers at spam.example")
    at.feedback(key=f"stars.{cid}.Alex").set_value(4).run()
    no_exceptions(at)
    [rating] = query(db_url, select(Rating))
    assert (rating.stars, rating.rated_text) == (5, "Blue sky")


def test_an_edit_box_opened_before_an_edit_elsewhere_does_not_overwrite_it_silently(saved, app, db_url):
    """Tab A's box showed "Blue sky"; tab B saved another text; tab A's save replaced it without a word. Now
    the save is refused with the current text, the typed text stays in the box, and a second save (made
    knowing the caption's current text) replaces it."""
    at = gallery(app)
    cid = saved["Blue sky"]
    at.text_area(key=f"edit.{cid}").set_value("Blue sky, my edit").run()
    edit_elsewhere(db_url, cid, "Blue sky from the other tab")
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    assert any("changed in the Gallery or in another tab" in e.value for e in at.error)
    assert any(t.value == "Blue sky from the other tab" for t in at.text)  # quoted as written, apart
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == "Blue sky from the other tab"
    assert at.text_area(key=f"edit.{cid}").value == "Blue sky, my edit"
    assert any(c.value == "Blue sky, my edit" for c in at.code)  # the text is there to copy too
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == "Blue sky, my edit"


def test_a_rerun_between_the_edit_elsewhere_and_the_save_does_not_let_it_be_overwritten(saved, app, db_url):
    """The check compared with the caption's text as of the latest run: any rerun after the edit elsewhere (a
    Ctrl+Enter in the box, which the counter's hint asks for) made the stale box's save overwrite it silently."""
    at = gallery(app)
    cid = saved["Blue sky"]
    edit_elsewhere(db_url, cid, "Blue sky from the other tab")
    at.text_area(key=f"edit.{cid}").set_value("Blue sky, my edit").run()  # a rerun after the other tab's save
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == "Blue sky from the other tab"
    assert any("changed in the Gallery or in another tab" in e.value for e in at.error)
    assert at.text_area(key=f"edit.{cid}").value == "Blue sky, my edit"


def test_an_untouched_edit_box_follows_an_edit_made_elsewhere(saved, app, db_url):
    at = gallery(app)
    cid = saved["Blue sky"]
    edit_elsewhere(db_url, cid, "Blue sky from the other tab")
    at.run()
    assert at.text_area(key=f"edit.{cid}").value == "Blue sky from the other tab"
    at.text_area(key=f"edit.{cid}").set_value("Blue sky from the other tab, and mine").run()
    at.button(key=f"edit.{cid}.save").click().run()
    no_exceptions(at)
    assert not at.error
    [caption] = query(db_url, select(Caption).where(Caption.id == cid))
    assert caption.text == "Blue sky from the other tab, and mine"
    assert any("Saved" in t.value for t in at.toast)


def test_delete_one_caption_needs_confirmation_and_keeps_the_photo(saved, app, db_url):
    at = gallery(app)
    cid = saved["Blue sky"]
    at.button(key=f"delete_caption.{cid}").click().run()
    assert len(query(db_url, select(Caption))) == 4  # not yet
    at.button(key=f"delete_caption.{cid}.yes").click().run()
    no_exceptions(at)
    assert sorted(c.text for c in query(db_url, select(Caption))) == ["A blue thing", "My red one",
                                                                      "Red square #shapes"]
    assert len(query(db_url, select(Photo))) == 2


def test_search_finds_words_in_any_order(saved, app):
    at = gallery(app)
    at.text_input(key="gallery.search").set_value("thing blue").run()
    shown = {t.value for t in at.text}
    assert "A blue thing" in shown and "Blue sky" not in shown


def test_caption_text_is_shown_exactly_as_it_will_be_posted(saved, app, db_url):
    text = "Over the rainbow :rainbow: \\[not a link\\](x) *bold?*\nsecond line"
    with transaction(make_engine(db_url)) as session:
        repo.edit_caption(session=session, caption_id=saved["Blue sky"], text=text)
    at = gallery(app)
    assert any(t.value == text for t in at.text)


def test_save_changes_is_never_disabled(saved, app, db_url):
    at = gallery(app)
    cid = saved["Blue sky"]
    assert not at.button(key=f"edit.{cid}.save").disabled  # a disabled button swallows the first click


def test_an_empty_gallery_and_a_search_that_finds_nothing_say_different_things(saved, app):
    at = gallery(app)
    at.text_input(key="gallery.search").set_value("zzz-nowhere").run()
    no_exceptions(at)
    assert any("No caption matches these filters" in i.value for i in at.info)
    assert not any("Nothing saved yet" in i.value for i in at.info)


def test_an_empty_gallery_says_where_captions_come_from(app):
    at = gallery(app)
    no_exceptions(at)
    assert any("Nothing saved yet: captions you save on the Create page" in i.value for i in at.info)
    # exports are on the Evaluation page, not here
    assert any("Evaluation page" in i.value and "export" in i.value for i in at.info)
    assert not at.get("pagination") and not any("caption" in c.value and "page 1 of" in c.value for c in at.caption)


def add_photos(db_url, n, prefix="extra"):
    """``n`` photos with one hand-written caption each: odd ones say "sunset", even ones "beach"."""
    from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg
    from tests import builders

    engine = make_engine(db_url)
    with transaction(engine) as s:
        for i in range(n):
            p = load_photo(builders.photo_bytes(colour=(i * 15 % 255, 100, 50 + i)), f"{prefix}{i}.jpg")
            row = repo.save_photo(session=s, sha256=p.sha256, name=p.name, width=p.width, height=p.height,
                                  format=p.format, image_jpeg=resized_jpeg(p.image), thumbnail_jpeg=thumbnail_jpeg(p.image))
            repo.add_caption(session=s, photo=row, model_key="manual",
                             text=f"{prefix} {i} sunset" if i % 2 else f"{prefix} {i} beach")
    engine.dispose()


def rated_study(db_url, criteria, name="S1", stars=None):
    """A study of every stored photo, two models, each caption rated by Zed (4 stars, or ``stars``
    criterion → stars) on every criterion."""
    from db import studies

    engine = make_engine(db_url)
    with transaction(engine) as s:
        ids = [p.id for p in studies.pickable_photos(session=s)]
        study = studies.create_study(session=s, name=name, models=["vit-gpt2-all", "nlpconnect-all"],
                                     settings={"strategy": "greedy"}, photo_ids=ids, criteria=criteria, k=2, seed=3)
        for pid in ids:
            for key in study.models:
                studies.save_study_caption(session=s, study=study, photo_id=pid, model_key=key, text=f"p{pid} {key}")
        for c in studies.study_captions(session=s, study=study):
            studies.rate_study_caption(session=s, study=study, caption_id=c.id, rater="Zed",
                                       stars={cr: (stars or {}).get(cr, 4) for cr in study.criteria})
    engine.dispose()


def page_caption(at) -> str:
    return next(c.value for c in at.caption if "page" in c.value and " of " in c.value)


def test_changing_a_filter_goes_back_to_page_one(saved, app, db_url):
    """On page 2, a search landed on page 2 of its results: 3 of 15 matches shown, the 12 newest not."""
    add_photos(db_url, 30)  # 32 photos: 3 pages of 12
    at = gallery(app)
    at.pagination(key="gallery.page").set_value(2).run()
    at.text_input(key="gallery.search").set_value("sunset").run()  # 15 matches
    assert "15 captions of 15 photos · page 1 of 2" in page_caption(at)
    assert len(at.image) == 12
    at.pagination(key="gallery.page").set_value(2).run()
    assert "page 2 of 2" in page_caption(at)  # paging itself still works
    at.toggle(key="gallery.favourites").set_value(True).run()
    at.toggle(key="gallery.favourites").set_value(False).run()
    assert "page 1 of 2" in page_caption(at)
    at.pagination(key="gallery.page").set_value(2).run()
    at.selectbox(key="gallery.per_page").set_value(24).run()
    assert "page 1 of 1" in page_caption(at)


def test_a_study_without_overall_shows_and_filters_by_its_own_criterion(saved, app, db_url):
    """The study view counted only "overall": a study rating "fits-photo" showed every caption unrated,
    and "Minimum stars" hid them all."""
    rated_study(db_url, ["fits-photo"])  # every caption rated 4 stars by Zed
    at = gallery(app)
    at.selectbox(key="gallery.study").set_value("S1").run()
    no_exceptions(at)
    assert any("★ 4.0 from 1 rating(s)" in m.value for m in at.markdown)
    assert any("fits-photo" in c.value for c in at.caption)  # says which criterion the stars show
    at.selectbox(key="gallery.min_stars").set_value(3).run()
    assert not any("No caption matches" in i.value for i in at.info) and len(at.image) == 2


def test_a_study_with_several_criteria_offers_a_choice_of_criterion(saved, app, db_url):
    rated_study(db_url, ["fits-photo", "clarity"], stars={"fits-photo": 2, "clarity": 5})
    at = gallery(app)
    at.selectbox(key="gallery.study").set_value("S1").run()
    assert at.selectbox(key="gallery.criterion").options == ["fits-photo", "clarity"]
    assert any("★ 2.0 from 1 rating(s)" in m.value for m in at.markdown)  # the first criterion by default
    at.selectbox(key="gallery.min_stars").set_value(3).run()
    assert any("No caption matches" in i.value for i in at.info)
    at.selectbox(key="gallery.criterion").set_value("clarity").run()
    no_exceptions(at)
    assert any("★ 5.0 from 1 rating(s)" in m.value for m in at.markdown) and len(at.image) == 2
    at.selectbox(key="gallery.study").set_value("").run()  # saved captions: no criterion box
    no_exceptions(at)
    assert not [s for s in at.selectbox if s.key == "gallery.criterion"]


def test_filters_page_and_page_size_survive_a_visit_to_another_page(saved, app, db_url):
    add_photos(db_url, 30)
    at = gallery(app)
    at.selectbox(key="gallery.per_page").set_value(24).run()
    at.pagination(key="gallery.page").set_value(2).run()
    at.multiselect(key="gallery.models").set_value(["manual"]).run()
    at.pagination(key="gallery.page").set_value(2).run()
    at.selectbox(key="gallery.min_stars").set_value(0).run()
    at.toggle(key="gallery.favourites").set_value(False).run()
    at = open_page(open_page(at, "create.py"), "gallery.py")
    no_exceptions(at)
    assert at.multiselect(key="gallery.models").value == ["manual"]
    assert at.selectbox(key="gallery.per_page").value == 24
    assert at.pagination(key="gallery.page").value == 2
    at.text_input(key="gallery.search").set_value("sunset").run()
    at = open_page(open_page(at, "evaluation.py"), "gallery.py")
    assert at.text_input(key="gallery.search").value == "sunset"
    assert "15 captions of 15 photos · page 1 of 1" in page_caption(at)


def test_rated_by_offers_only_who_rated_the_captions_shown(saved, app, db_url):
    """People who rated only study captions were offered on the saved-captions view, and picking them
    showed nothing; the list is in alphabetical order whatever the case."""
    rated_study(db_url, ["overall"])
    with transaction(make_engine(db_url)) as s:
        for rater in ("Zoë Müller", "ana"):
            repo.rate(session=s, caption_id=saved["Blue sky"], rater=rater, stars=3)
    at = gallery(app)
    assert at.selectbox(key="gallery.rater").options == ["Anyone", "ana", "Zoë Müller"]
    at.selectbox(key="gallery.study").set_value("S1").run()
    assert at.selectbox(key="gallery.rater").options == ["Anyone", "Zed"]


def test_rated_by_keeps_its_choice_when_the_person_clears_their_last_rating(saved, app, db_url):
    """With "Rated by: Alex", Alex clearing his only rating switched the filter to "Anyone" without a word."""
    set_rater(app, "Alex")
    at = gallery(app)
    cid = saved["Blue sky"]
    at.feedback(key=f"stars.{cid}.Alex").set_value(3).run()
    at.selectbox(key="gallery.rater").set_value("Alex").run()
    assert len(at.image) == 1
    at.feedback(key=f"stars.{cid}.Alex").set_value(None).run()
    at.run()
    no_exceptions(at)
    assert at.selectbox(key="gallery.rater").value == "Alex"
    assert any("No caption matches these filters" in i.value for i in at.info) and not at.image


def test_delete_caption_says_a_last_caption_takes_its_photo(app, db_url):
    add_photos(db_url, 1, prefix="solo")
    at = gallery(app)
    [button] = [b for b in at.button if b.key.startswith("delete_caption.")]
    assert "photo stays" not in button.help and "last caption takes the photo with it" in button.help
