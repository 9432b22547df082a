"""Every query the app uses, on SQLite and PostgreSQL."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from db import MANUAL, Caption, Photo, Rating, repo, transaction
from db.repo import GalleryFilter, NotFoundError
from tests.db.conftest import add_photo_with_captions, photo_values


def test_save_photo_dedupes_by_hash_and_keeps_bytes(engine):
    with transaction(engine) as s:
        first = repo.save_photo(session=s, **photo_values("a", name="first.jpg"))
    with transaction(engine) as s:
        again = repo.save_photo(session=s, **photo_values("a", name="renamed.jpg"))
        other = repo.save_photo(session=s, **photo_values("b"))
    assert again.id == first.id and other.id != first.id
    with transaction(engine) as s:
        assert s.scalar(select(func.count(Photo.id))) == 2
        assert repo.find_photo(session=s, sha256=photo_values("a")["sha256"].upper()).name == "first.jpg"
        assert repo.photo_image(session=s, photo_id=first.id) == photo_values("a")["image_jpeg"]
        assert repo.get_photo(session=s, photo_id=first.id).thumbnail_jpeg == photo_values("a")["thumbnail_jpeg"]


@pytest.mark.parametrize("change, message", [({"sha256": "xyz"}, "sha256"), ({"width": 0}, "width")])
def test_save_photo_rejects_bad_values(engine, change, message):
    with transaction(engine) as s, pytest.raises(ValueError, match=message):
        repo.save_photo(session=s, **{**photo_values(), **change})


def test_caption_keeps_generated_text_when_edited(engine):
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
    with transaction(engine) as s:
        edited = repo.edit_caption(session=s, caption_id=caption.id, text="my better caption ✨")
    assert edited.text == "my better caption ✨" and edited.generated_text == "a by vit-gpt2-all" and edited.edited
    assert edited.updated_at >= caption.updated_at
    with transaction(engine) as s:
        stored = repo.get_caption(session=s, caption_id=caption.id)
        assert (stored.text, stored.generated_text, stored.settings) == (
            "my better caption ✨", "a by vit-gpt2-all", {"num_beams": 4})
        assert stored.photo.name == "a.jpg" and stored.created_at.tzinfo is not None


def test_an_edit_from_a_stale_box_is_refused_instead_of_overwriting_a_newer_edit(engine):
    """Tab A opened the edit box on "v1"; tab B saved "v2"; tab A's save replaced "v2" without a word. Now it is
    refused with the current text, and the newer edit stays."""
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
        repo.edit_caption(session=s, caption_id=caption.id, text="v1")
    with transaction(engine) as s:  # tab B
        repo.edit_caption(session=s, caption_id=caption.id, text="v2 with #hashtags", expected="v1")
    with pytest.raises(repo.CaptionChangedError, match="changed elsewhere") as refused, transaction(engine) as s:
        repo.edit_caption(session=s, caption_id=caption.id, text="v1 (typo fixed)", expected="v1")  # tab A
    assert refused.value.current == "v2 with #hashtags" and "v2 with #hashtags" in str(refused.value)
    with transaction(engine) as s:
        assert repo.get_caption(session=s, caption_id=caption.id).text == "v2 with #hashtags"
        # both tabs typing the same words is no conflict; expected=None (the command line) edits as before
        assert repo.edit_caption(session=s, caption_id=caption.id, text="v2 with #hashtags", expected="v1").text \
            == "v2 with #hashtags"
        assert repo.edit_caption(session=s, caption_id=caption.id, text="v3", expected="v2 with #hashtags").text == "v3"
        assert repo.edit_caption(session=s, caption_id=caption.id, text="v4").text == "v4"
    with pytest.raises(NotFoundError), transaction(engine) as s:  # someone else's caption: not found, as before
        repo.edit_caption(session=s, caption_id=caption.id, text="v5", expected="v4", owner="bob@example.com")


def test_two_tabs_saving_edits_of_the_same_text_at_once_keep_one_and_refuse_the_other(engine):
    import threading

    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
    start, outcomes = threading.Barrier(2), {}

    def save(text):
        start.wait()
        try:
            with transaction(engine) as s:
                repo.edit_caption(session=s, caption_id=caption.id, text=text, expected="a by vit-gpt2-all")
        except repo.CaptionChangedError as err:
            outcomes[text] = err.current
        else:
            outcomes[text] = "saved"

    threads = [threading.Thread(target=save, args=(t,)) for t in ("tab one", "tab two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    [kept] = [t for t, outcome in outcomes.items() if outcome == "saved"]
    [refused] = [outcome for outcome in outcomes.values() if outcome != "saved"]
    assert refused == kept
    with transaction(engine, write=False) as s:
        assert repo.get_caption(session=s, caption_id=caption.id).text == kept


@pytest.mark.parametrize("blank", ["", "   ", "\n\t", "\x00"])
def test_a_person_cannot_store_a_blank_caption_by_any_path(engine, blank):
    """One rule: a hand-written caption, an edit, and a generated caption saved as emptied all refuse blank
    text (the Gallery's edit stored "   ", shown as "(empty)"); a model's own empty output may be kept."""
    with transaction(engine) as s:
        photo, (caption, _) = add_photo_with_captions(s)
    for store in (lambda s: repo.edit_caption(session=s, caption_id=caption.id, text=blank),
                  lambda s: repo.add_caption(session=s, photo=repo.get_photo(session=s, photo_id=photo.id),
                                             model_key=MANUAL, text=blank),
                  lambda s: repo.add_caption(session=s, photo=repo.get_photo(session=s, photo_id=photo.id),
                                             model_key="vit-gpt2-all", text=blank, generated_text="a sunny day")):
        with pytest.raises(repo.EmptyCaptionError, match="cannot be empty"), transaction(engine) as s:
            store(s)
    with transaction(engine) as s:
        assert repo.get_caption(session=s, caption_id=caption.id).text == "a by vit-gpt2-all"
        kept = repo.add_caption(session=s, photo=repo.get_photo(session=s, photo_id=photo.id),
                                model_key="vit-gpt2-all", text="", generated_text="")
        assert kept.text == ""


def test_manual_caption_and_settings_objects(engine):
    class Settings:  # what igcap.decoding.DecodingSettings looks like to db
        def to_dict(self):
            return {"strategy": "beam", "num_beams": 3, "temperature": 1.0}

    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values())
        manual = repo.add_caption(session=s, photo=photo, model_key=MANUAL, text="written by me 📷")
        model = repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all", text="x", generated_text="x",
                                 settings=Settings())
        with pytest.raises(ValueError, match="cannot be empty"):
            repo.add_caption(session=s, photo=photo, model_key=MANUAL, text="  ")
        with pytest.raises(ValueError, match="JSON"):
            repo.add_caption(session=s, photo=photo, model_key="k", text="t", settings={"bad": object()})
    with transaction(engine) as s:
        assert repo.get_caption(session=s, caption_id=manual.id).generated_text is None
        assert not repo.get_caption(session=s, caption_id=manual.id).edited
        assert repo.get_caption(session=s, caption_id=model.id).settings["num_beams"] == 3
        assert [c.model_key for c in repo.captions_for_photo(session=s, photo_id=photo.id)] == [MANUAL, "vit-gpt2-all"]


def test_favourite_toggles(engine):
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
    for value in (True, False, True):
        with transaction(engine) as s:
            repo.set_favourite(session=s, caption_id=caption.id, favourite=value)
        with transaction(engine) as s:
            assert repo.get_caption(session=s, caption_id=caption.id).favourite is value


def test_unknown_ids_raise_not_found(engine):
    with transaction(engine) as s:
        for call in (lambda: repo.edit_caption(session=s, caption_id=999, text="x"),
                     lambda: repo.set_favourite(session=s, caption_id=999, favourite=True),
                     lambda: repo.rate(session=s, caption_id=999, rater="ann", stars=3),
                     lambda: repo.delete_photo(session=s, photo_id=999),
                     lambda: repo.photo_image(session=s, photo_id=999)):
            with pytest.raises(NotFoundError):
                call()
        assert repo.get_caption(session=s, caption_id=999) is None


def test_rating_again_updates_instead_of_adding(engine):
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
        first = repo.rate(session=s, caption_id=caption.id, rater="Ann", stars=2, comment="meh")
    with transaction(engine) as s:
        second = repo.rate(session=s, caption_id=caption.id, rater="  Ann ", stars=5)
        repo.rate(session=s, caption_id=caption.id, rater="Ann", stars=4, criterion="Relevance")
    assert second.id == first.id and second.stars == 5 and second.comment is None
    assert second.updated_at >= second.created_at == first.created_at
    with transaction(engine) as s:
        ratings = repo.ratings_for_caption(session=s, caption_id=caption.id)
        assert [(r.rater, r.criterion, r.stars) for r in ratings] == [("Ann", "overall", 5), ("Ann", "relevance", 4)]
        assert repo.list_raters(session=s) == ["Ann"]
        assert repo.list_criteria(session=s) == ["overall", "relevance"]


@pytest.mark.parametrize("stars", [0, 6, 3.5, True, "4", None])
def test_rate_rejects_bad_stars(engine, stars):
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
        with pytest.raises(ValueError, match="stars must be a whole number from 1 to 5"):
            repo.rate(session=s, caption_id=caption.id, rater="ann", stars=stars)


@pytest.mark.parametrize("rater, message", [("", "cannot be empty"), ("   ", "cannot be empty"),
                                            (None, "cannot be empty"),
                                            ("x" * (repo.RATER_MAX + 1), "too long")])  # 255: past an e-mail address
def test_rate_rejects_bad_rater(engine, rater, message):
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
        with pytest.raises(ValueError, match=message):
            repo.rate(session=s, caption_id=caption.id, rater=rater, stars=3)
        with pytest.raises(ValueError, match="criterion"):
            repo.rate(session=s, caption_id=caption.id, rater="ann", stars=3, criterion="=cmd|x")


def test_database_rejects_out_of_range_stars_too(engine):
    """The CHECK constraint guards data written around the repo (e.g. by hand in SQL)."""
    from sqlalchemy.exc import IntegrityError

    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
    with pytest.raises(IntegrityError), transaction(engine) as s:
        s.add(Rating(caption_id=caption.id, rater="x", stars=9, criterion="overall"))


def test_unrate(engine):
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s)
        repo.rate(session=s, caption_id=caption.id, rater="ann", stars=3)
    with transaction(engine) as s:
        assert repo.unrate(session=s, caption_id=caption.id, rater="ann")
        assert not repo.unrate(session=s, caption_id=caption.id, rater="ann")
        assert repo.ratings_for_caption(session=s, caption_id=caption.id) == []


def test_delete_photo_cascades_to_captions_and_ratings_only(engine):
    with transaction(engine) as s:
        gone, gone_captions = add_photo_with_captions(s, "gone")
        kept, kept_captions = add_photo_with_captions(s, "kept")
        for caption in gone_captions + kept_captions:
            repo.rate(session=s, caption_id=caption.id, rater="ann", stars=4)
    with transaction(engine) as s:
        repo.delete_photo(session=s, photo_id=gone.id)
    with transaction(engine) as s:
        assert s.scalars(select(Photo.id)).all() == [kept.id]
        assert sorted(s.scalars(select(Caption.id))) == sorted(c.id for c in kept_captions)
        assert sorted(s.scalars(select(Rating.caption_id))) == sorted(c.id for c in kept_captions)


def test_delete_photo_cascades_in_the_database_itself(engine):
    """A bulk delete that bypasses the ORM still removes children (ON DELETE CASCADE, foreign keys on)."""
    from sqlalchemy import delete

    with transaction(engine) as s:
        photo, (caption, _) = add_photo_with_captions(s)
        repo.rate(session=s, caption_id=caption.id, rater="ann", stars=4)
    with transaction(engine) as s:
        s.execute(delete(Photo).where(Photo.id == photo.id))
    with transaction(engine) as s:
        assert s.scalar(select(func.count(Caption.id))) == 0 and s.scalar(select(func.count(Rating.id))) == 0


# ---------------------------------------------------------------- gallery

@pytest.fixture
def gallery_data(engine):
    """Six captions over three photos and two models, ratings from ann and bob, one favourite."""
    with transaction(engine) as s:
        caps = []
        for seed in ("p1", "p2", "p3"):
            caps += add_photo_with_captions(s, seed, keys=("vit-gpt2-all", "nlpconnect-all"))[1]
        caps[0].text = "Sunset vibes 🌅 100% #travel"
        caps[5].favourite = True
        base = datetime(2026, 1, 1, 12, tzinfo=UTC)
        for i, caption in enumerate(caps):
            caption.created_at = base + timedelta(days=i)
        s.flush()
        for caption, stars in zip(caps, (5, 4, 3, 2, 1, 5)):
            repo.rate(session=s, caption_id=caption.id, rater="ann", stars=stars)
        repo.rate(session=s, caption_id=caps[0].id, rater="bob", stars=3)
        repo.rate(session=s, caption_id=caps[1].id, rater="bob", stars=1, criterion="relevance")
    return [c.id for c in caps]


def ids(page) -> list[int]:
    return [item.caption.id for item in page.items]


def test_gallery_newest_first_with_summaries(engine, gallery_data):
    with transaction(engine, write=False) as s:
        page = repo.gallery(session=s, rater="ann")
    assert ids(page) == gallery_data[::-1] and page.total == 6 and page.pages == 1
    first = page.items[-1]
    assert (first.rating_count, first.mean_stars, first.my_stars) == (2, 4.0, 5)
    assert first.photo.name == "p1.jpg" and first.photo.thumbnail_jpeg.startswith(b"\xff\xd8thumb")


@pytest.mark.parametrize("filters, expected", [
    (GalleryFilter(model_keys=["vit-gpt2-all"]), [0, 2, 4]),
    (GalleryFilter(model_keys="nlpconnect-all"), [1, 3, 5]),
    (GalleryFilter(favourites_only=True), [5]),
    (GalleryFilter(min_stars=4), [0, 1, 5]),
    (GalleryFilter(min_stars=3.5, model_keys=["vit-gpt2-all"]), [0]),
    (GalleryFilter(min_stars=1, criterion="relevance"), [1]),
    (GalleryFilter(rater="bob"), [0, 1]),
    (GalleryFilter(unrated_by="bob"), [1, 2, 3, 4, 5]),
    (GalleryFilter(unrated_by="bob", criterion="relevance"), [0, 2, 3, 4, 5]),
    (GalleryFilter(search="SUNSET"), [0]),
    (GalleryFilter(search="100%"), [0]),
    (GalleryFilter(search="%"), [0]),
    (GalleryFilter(search="p2 by"), [2, 3]),
    (GalleryFilter(date_from=date(2026, 1, 3)), [2, 3, 4, 5]),
    (GalleryFilter(date_to=date(2026, 1, 2)), [0, 1]),
    (GalleryFilter(date_from=date(2026, 1, 2), date_to=date(2026, 1, 2)), [1]),
    (GalleryFilter(date_from=datetime(2026, 1, 2, 13, tzinfo=UTC)), [2, 3, 4, 5]),
])
def test_gallery_filters(engine, gallery_data, filters, expected):
    with transaction(engine, write=False) as s:
        page = repo.gallery(session=s, filters=filters)
    assert ids(page) == [gallery_data[i] for i in reversed(expected)] and page.total == len(expected)


def test_gallery_search_finds_generated_text_after_edit(engine, gallery_data):
    with transaction(engine) as s:
        repo.edit_caption(session=s, caption_id=gallery_data[2], text="completely new words")
    with transaction(engine, write=False) as s:
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search="p2 by vit"))) == [gallery_data[2]]
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search="new words"))) == [gallery_data[2]]


@pytest.mark.parametrize("search", ["café", "CAFÉ", "étretat", "#été", "ÉCLAIR étretat", "cafe\u0301"])
def test_gallery_search_ignores_case_in_every_script(engine, gallery_data, search):
    # SQLite's LIKE folded ASCII only: "CAFÉ" and "étretat" found nothing there.
    with transaction(engine) as s:
        repo.edit_caption(session=s, caption_id=gallery_data[3], text="Café Éclair in ÉTRETAT #Été")
    with transaction(engine, write=False) as s:
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search=search))) == [gallery_data[3]]
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search=search + " nowhere"))) == []


def test_gallery_pagination(engine, gallery_data):
    with transaction(engine, write=False) as s:
        pages = [repo.gallery(session=s, page=n, per_page=2) for n in (1, 2, 3, 0)]  # two photos per page
    assert [p.pages for p in pages] == [2, 2, 2, 2] and [p.page for p in pages] == [1, 2, 2, 1]
    assert ids(pages[0]) + ids(pages[1]) == gallery_data[::-1] and ids(pages[2]) == ids(pages[1])


def test_gallery_empty(engine):
    with transaction(engine, write=False) as s:
        page = repo.gallery(session=s, filters=GalleryFilter(search="nothing"))
    assert (page.items, page.total, page.page, page.pages) == ([], 0, 1, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"min_stars": 6}, "minimum stars"), ({"min_stars": 0}, "minimum stars"),
    ({"date_from": date(2026, 2, 1), "date_to": date(2026, 1, 1)}, "after"), ({"criterion": ""}, None),
])
def test_gallery_filter_validation(kwargs, message):
    if message is None:
        assert GalleryFilter(**kwargs).criterion == "overall"
    else:
        with pytest.raises(ValueError, match=message):
            GalleryFilter(**kwargs)


def test_gallery_page_takes_a_fixed_number_of_queries(engine):
    """No N+1: a full page of 24 takes as many SELECTs as a page of 2."""
    with transaction(engine) as s:
        for n in range(15):
            _, caps = add_photo_with_captions(s, f"q{n}")
            for caption in caps:
                repo.rate(session=s, caption_id=caption.id, rater="ann", stars=1 + n % 5)
    selects = []
    event.listen(engine, "before_cursor_execute",
                 lambda *a: selects.append(a[2]) if a[2].lstrip().upper().startswith("SELECT") else None)
    counts = []
    for per_page in (2, 24):
        selects.clear()
        with transaction(engine, write=False) as s:
            page = repo.gallery(session=s, per_page=per_page, rater="ann")
            assert all(item.photo.thumbnail_jpeg and item.my_stars for item in page.items)
            assert len({item.photo.id for item in page.items}) == min(per_page, 15)
        counts.append(len(selects))
    assert counts[0] == counts[1] <= 4, selects


def test_gallery_does_not_load_full_images(engine, gallery_data):
    with transaction(engine, write=False) as s:
        page = repo.gallery(session=s)
        assert "image_jpeg" not in page.items[0].photo.__dict__


# ---------------------------------------------------------------- statistics

def test_rating_stats(engine, gallery_data):
    with transaction(engine, write=False) as s:
        overall = {m.model_key: m for m in repo.rating_stats(session=s, criterion="overall")}
        everything = {m.model_key: m for m in repo.rating_stats(session=s)}
        fav = repo.rating_stats(session=s, filters=GalleryFilter(favourites_only=True))
    vit = overall["vit-gpt2-all"]  # ann 5, 3, 1 and bob 3
    assert (vit.count, vit.mean, vit.captions) == (4, 3.0, 3)
    assert vit.distribution == {1: 1, 2: 0, 3: 2, 4: 0, 5: 1}
    nlp = overall["nlpconnect-all"]  # ann 4, 2, 5
    assert (nlp.count, nlp.mean) == (3, pytest.approx(11 / 3))
    assert everything["nlpconnect-all"].count == 4 and everything["nlpconnect-all"].distribution[1] == 1
    assert [(m.model_key, m.count, m.mean) for m in fav] == [("nlpconnect-all", 1, 5.0)]


def test_rating_stats_lists_unrated_models(engine):
    with transaction(engine) as s:
        add_photo_with_captions(s, keys=("vit-gpt2-all",))
        stats = repo.rating_stats(session=s)
    assert [(m.model_key, m.count, m.mean, m.captions) for m in stats] == [("vit-gpt2-all", 0, None, 1)]
    assert stats[0].distribution == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0}


def test_list_model_keys_and_raters(engine, gallery_data):
    with transaction(engine, write=False) as s:
        assert repo.list_model_keys(session=s) == ["nlpconnect-all", "vit-gpt2-all"]
        assert repo.list_raters(session=s) == ["ann", "bob"]


def test_nul_characters_are_dropped_the_same_way_on_both_databases(engine):
    """Issue 12 item 6: on PostgreSQL a caption with a NUL byte failed with DataError and was not saved."""
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("nul", name="bad\x00name.jpg"))
        caption = repo.add_caption(session=s, photo=photo, model_key="manual", text="hello\x00 world",
                                   generated_text="gen\x00")
        repo.rate(session=s, caption_id=caption.id, rater="An\x00n", stars=3, comment="nice\x00")
    with transaction(engine) as s:
        repo.edit_caption(session=s, caption_id=caption.id, text="edited\x00 text")
    with transaction(engine, write=False) as s:
        saved = repo.get_caption(session=s, caption_id=caption.id)
        [rating] = repo.ratings_for_caption(session=s, caption_id=caption.id)
        assert (saved.photo.name, saved.text, saved.generated_text) == ("badname.jpg", "edited text", "gen")
        assert (rating.rater, rating.comment) == ("Ann", "nice")


def test_gallery_pages_by_photo_so_a_photo_is_never_split(engine, gallery_data):
    """Six captions over three photos, two photos per page: whole photos, newest caption's photo first."""
    with transaction(engine, write=False) as s:
        first, second = (repo.gallery(session=s, page=n, per_page=2) for n in (1, 2))
    assert (first.pages, first.photos, first.total) == (2, 3, 6)
    assert ids(first) == gallery_data[5:1:-1] and ids(second) == gallery_data[1::-1]
    assert len({i.photo.id for i in first.items}) == 2 and len({i.photo.id for i in second.items}) == 1


def test_search_matches_words_in_any_order(engine, gallery_data):
    with transaction(engine) as s:
        repo.edit_caption(session=s, caption_id=gallery_data[2], text="Foggy morning by the old church")
    with transaction(engine, write=False) as s:
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search="church foggy"))) == [gallery_data[2]]
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search="church  sunny"))) == []


def test_delete_one_caption_keeps_the_photo_and_its_other_captions(engine, gallery_data):
    from db import Rating

    with transaction(engine) as s:
        photo_id = repo.get_caption(session=s, caption_id=gallery_data[0]).photo_id
        repo.delete_caption(session=s, caption_id=gallery_data[0])
    with transaction(engine, write=False) as s:
        assert repo.get_caption(session=s, caption_id=gallery_data[0]) is None
        assert [c.id for c in repo.captions_for_photo(session=s, photo_id=photo_id)] == [gallery_data[1]]
        assert not s.scalars(select(Rating).where(Rating.caption_id == gallery_data[0])).all()
    with transaction(engine) as s:  # the photo's last caption takes the photo with it (nothing left to show)
        repo.delete_caption(session=s, caption_id=gallery_data[1])
    with transaction(engine, write=False) as s:
        assert repo.get_photo(session=s, photo_id=photo_id) is None
        with pytest.raises(repo.NotFoundError):
            repo.delete_caption(session=s, caption_id=gallery_data[1])


def test_rater_names_differing_in_case_or_spaces_are_one_person(engine, gallery_data):
    cid = gallery_data[0]
    with transaction(engine) as s:
        repo.rate(session=s, caption_id=cid, rater="Maya", stars=2)
        repo.rate(session=s, caption_id=cid, rater="maya ", stars=5)  # the same person, rating again
    with transaction(engine, write=False) as s:
        mine = [r for r in repo.ratings_for_caption(session=s, caption_id=cid) if r.rater.casefold() == "maya"]
        assert [(r.rater, r.stars) for r in mine] == [("Maya", 5)]  # one rating, the display form kept
        assert [n for n in repo.list_raters(session=s) if n.casefold() == "maya"] == ["Maya"]
        page = repo.gallery(session=s, rater="  MAYA")
        assert next(i.my_stars for i in page.items if i.caption.id == cid) == 5
        assert ids(repo.gallery(session=s, filters=GalleryFilter(rater="maya"))) == [cid]
        assert repo.rater_identity(" Maya ") == repo.rater_identity("maya") == "maya"


def test_my_stars_are_found_whatever_case_a_non_ascii_name_is_typed_in(engine, gallery_data):
    """The gallery matched the typed name with SQL lower(), which folds only ASCII on SQLite: "émile" did not
    see the stars "Émile" gave, nor could a filter by "ÉMILE" find them."""
    with transaction(engine) as s:
        repo.rate(session=s, caption_id=gallery_data[0], rater="Émile", stars=2)
    with transaction(engine, write=False) as s:
        mine = {i.caption.id: i.my_stars for i in repo.gallery(session=s, rater="émile").items}
        rated = ids(repo.gallery(session=s, filters=GalleryFilter(rater="ÉMILE")))
    assert mine[gallery_data[0]] == 2 and rated == [gallery_data[0]]


# ---------------------------------------------------------------- one rule on both databases

@pytest.fixture
def unicode_data(engine):
    """Captions and raters beyond ASCII, as people type them: a caption sent decomposed (NFD, as macOS keyboards
    can), German ß, a Turkish dotted capital İ, and an accented name."""
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("unicode"))
        nfd = repo.add_caption(session=s, photo=photo, model_key=MANUAL,
                               text=unicodedata.normalize("NFD", "Café in Zürich"))
        street = repo.add_caption(session=s, photo=photo, model_key="vit-gpt2-all", text="Große Straße",
                                  generated_text="große straße am abend")
        repo.rate(session=s, caption_id=street.id, rater="Straße Fan", stars=4)
        repo.rate(session=s, caption_id=nfd.id, rater="İlkay", stars=5)
        repo.rate(session=s, caption_id=nfd.id, rater="Émile", stars=3)
    return {"nfd": nfd.id, "street": street.id}


@pytest.mark.parametrize("search, found", [
    ("café", ["nfd"]), ("CAFÉ", ["nfd"]), ("cafe\u0301", ["nfd"]), ("ZÜRICH café", ["nfd"]),
    ("STRASSE", ["street"]), ("grosse", ["street"]), ("straße", ["street"]), ("ABEND", ["street"]),
    ("strasse zürich", []),
])
def test_search_finds_the_same_captions_on_both_databases(engine, unicode_data, search, found):
    """PostgreSQL matched with lower(), which does not casefold (ß is not ss), does not compose a caption stored
    decomposed, and folds ASCII only under LC_CTYPE=C: "café" and "STRASSE" found nothing there that SQLite found."""
    with transaction(engine, write=False) as s:
        assert ids(repo.gallery(session=s, filters=GalleryFilter(search=search))) == [unicode_data[k] for k in found]


@pytest.mark.parametrize("typed, rated, stored", [
    ("STRASSE FAN", ["street"], "Straße Fan"), (" straße  fan", ["street"], "Straße Fan"),
    ("İLKAY", ["nfd"], "İlkay"), ("i\u0307lkay", ["nfd"], "İlkay"),
    ("ilkay", [], "ilkay"),  # casefold keeps İ's dot (i + U+0307): another name by the one rule, on either database
    ("émile", ["nfd"], "Émile"), ("E\u0301MILE", ["nfd"], "Émile"),  # typed decomposed: the same person
])
def test_rater_matching_gives_the_same_answers_on_both_databases(engine, unicode_data, typed, rated, stored):
    """A rater's own stars, the Rated-by and Unrated-by filters and the name stored all follow db.people.person
    on both databases (PostgreSQL used lower(): "strasse fan" saw none of the stars "Straße Fan" gave)."""
    expected = [unicode_data[k] for k in rated]
    with transaction(engine, write=False) as s:
        mine = {i.caption.id: i.my_stars for i in repo.gallery(session=s, rater=typed).items if i.my_stars}
        assert sorted(mine) == sorted(expected)
        assert ids(repo.gallery(session=s, filters=GalleryFilter(rater=typed))) == expected
        unrated = ids(repo.gallery(session=s, filters=GalleryFilter(unrated_by=typed)))
        assert sorted(unrated) == sorted(set(unicode_data.values()) - set(expected))
        assert repo.stored_rater(session=s, rater=typed) == stored


def test_every_write_path_stores_the_folded_keys(engine):
    """The folded columns are set for every row however it is written: the ORM (add_caption, edit_caption,
    a Rating or Vote made directly, a vote changed), and Core inserts that bypass it (rate's upsert,
    save_study_caption)."""
    from db import Vote, studies
    from db.people import person
    from db.search import caption_search_text

    with transaction(engine) as s:
        photo, captions = add_photo_with_captions(s, "keys")
        repo.edit_caption(session=s, caption_id=captions[0].id, text="Édité À la MAIN")
        # an edit from a page (expected text: one Core UPDATE … WHERE text = expected)
        repo.edit_caption(session=s, caption_id=captions[1].id, text="Große Straße", expected=captions[1].text)
        repo.rate(session=s, caption_id=captions[0].id, rater=" Zoë  Ann ", stars=2)
        s.add(Rating(caption_id=captions[1].id, rater="ÉMILE", stars=3, criterion="overall"))
        study = studies.create_study(session=s, name="keys", models=["a", "b"], settings={}, photo_ids=[photo.id])
        a, b = (studies.save_study_caption(session=s, study=study, photo_id=photo.id, model_key=k, text=f"Straße {k}",
                                           generated_text="GEN") for k in ("a", "b"))
        studies.vote(session=s, study=study, caption_a_id=a.id, caption_b_id=b.id, winner="a", rater="Maya")
        studies.vote(session=s, study=study, caption_a_id=b.id, caption_b_id=a.id, winner="tie", rater="MAYA")
        s.add(Vote(study_id=study.id, photo_id=photo.id, caption_a_id=a.id, caption_b_id=b.id, model_a="a",
                   model_b="b", text_a="x", text_b="y", winner="b", rater="Bob"))
    with transaction(engine, write=False) as s:
        rows = s.execute(select(Caption.text, Caption.generated_text, Caption.search_text)).all()
        assert len(rows) == 4 and all(key == caption_search_text(t, g) for t, g, key in rows)
        found = repo.gallery(session=s, filters=repo.GalleryFilter(search="strasse")).items
        assert [item.caption.text for item in found] == ["Große Straße"]
        for model in (Rating, Vote):
            raters = s.execute(select(model.rater, model.rater_key)).all()
            assert len(raters) == 2 and all(key == person(name) for name, key in raters)


def test_the_database_keeps_one_rating_per_person_caption_and_criterion(engine):
    """Whatever path writes them, two ratings of one caption on one criterion by "Ann" and "ann" are refused by
    the database itself (it used to hold both, and the summaries counted both)."""
    with transaction(engine) as s:
        _, (caption, _) = add_photo_with_captions(s, "dup")
        repo.rate(session=s, caption_id=caption.id, rater="Ann", stars=4)
        cid = caption.id
    with pytest.raises(IntegrityError), transaction(engine) as s:
        s.add(Rating(caption_id=cid, rater="ANN ", stars=1, criterion="overall"))
        s.flush()
    with transaction(engine) as s:
        s.add(Rating(caption_id=cid, rater="ann", stars=2, criterion="relevance"))  # another criterion: allowed
    with transaction(engine, write=False) as s:
        assert sorted((r.rater, r.criterion) for r in repo.ratings_for_caption(session=s, caption_id=cid)) == [
            ("Ann", "overall"), ("ann", "relevance")]


def test_the_rated_by_list_names_each_person_as_their_ratings_are_stored(engine):
    """The list chose the alphabetically first spelling ("Maya"), the ratings the first stored ("maya")."""
    with transaction(engine) as s:
        _, (first, second) = add_photo_with_captions(s, "names")
        repo.rate(session=s, caption_id=first.id, rater="maya", stars=3)
        s.add(Rating(caption_id=second.id, rater="Maya", stars=4, criterion="overall"))  # an older row's spelling
    with transaction(engine, write=False) as s:
        assert repo.list_raters(session=s) == [repo.stored_rater(session=s, rater="MAYA")] == ["maya"]


def test_list_raters_names_who_rated_the_captions_shown_in_alphabetical_order(engine):
    """Someone who rated only a study's captions was offered on the saved-captions view (picking them showed
    nothing), and "Zoë Müller" came before "ana"."""
    from db import studies

    with transaction(engine) as s:
        photo, (saved, _) = add_photo_with_captions(s)
        for rater in ("Zoë Müller", "ana", "Bo"):
            repo.rate(session=s, caption_id=saved.id, rater=rater, stars=3)
        study = studies.create_study(session=s, name="blind", models=["m"], settings={"strategy": "greedy"},
                                     photo_ids=[photo.id], criteria=["fits-photo"])
        caption = studies.save_study_caption(session=s, study=study, photo_id=photo.id, model_key="m", text="t")
        studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater="zed",
                                   stars={"fits-photo": 4})
    with transaction(engine, write=False) as s:
        assert repo.list_raters(session=s) == ["ana", "Bo", "Zoë Müller"]
        assert repo.list_raters(session=s, study="blind") == ["zed"]
        assert repo.list_raters(session=s, study="no such study") == []
