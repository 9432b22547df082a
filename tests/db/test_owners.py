"""Private rows: each photo has an owner, each caption an author, and the queries take an owner filter."""

from __future__ import annotations

import pytest

from db import repo, transaction
from db.repo import GalleryFilter, NotFoundError
from tests.db.conftest import photo_values

ANA, BEN = "ana@example.org", "ben@example.org"


def _photo(session, owner, seed="same", keys=("vit-gpt2-all",)):
    photo = repo.save_photo(session=session, owner=owner, **photo_values(seed))
    captions = [repo.add_caption(session=session, photo=photo, model_key=k, text=f"{owner}'s {seed} by {k}")
                for k in keys]
    return photo, captions


def test_the_same_photo_from_two_owners_is_two_private_rows(engine):
    with transaction(engine) as s:
        ana, (ana_caption,) = _photo(s, ANA)
        ben, (ben_caption,) = _photo(s, BEN)
        assert ana.id != ben.id and ana.sha256 == ben.sha256
        assert repo.save_photo(session=s, owner=ANA, **photo_values("same")).id == ana.id  # not stored twice
        assert (ana_caption.author, ben_caption.author) == (ANA, BEN)  # defaults to the photo's owner
        assert repo.find_photo(session=s, sha256=ana.sha256, owner=BEN).id == ben.id
        assert repo.find_photo(session=s, sha256=ana.sha256) is None  # "local" has no copy
    with transaction(engine, write=False) as s:
        mine = repo.gallery(session=s, filters=GalleryFilter(owner=BEN))
        assert [i.caption.text for i in mine.items] == [f"{BEN}'s same by vit-gpt2-all"] and mine.total == 1
        assert repo.gallery(session=s).total == 2  # the owner role sees everyone's
        assert repo.captions_for_photo(session=s, photo_id=ana.id, owner=BEN) == []
        assert repo.get_photo(session=s, photo_id=ana.id, owner=BEN) is None
        assert repo.get_caption(session=s, caption_id=ana_caption.id, owner=BEN) is None
        ids = [ana_caption.id, ben_caption.id, 10_000]  # a Create card asks what the gallery holds now
        assert repo.caption_texts(session=s, caption_ids=ids, owner=BEN) == {ben_caption.id: ben_caption.text}
        assert len(repo.caption_texts(session=s, caption_ids=ids)) == 2
        with pytest.raises(NotFoundError):
            repo.photo_image(session=s, photo_id=ana.id, owner=BEN)
        assert repo.photo_image(session=s, photo_id=ben.id, owner=BEN)


def test_nobody_changes_another_owners_rows(engine):
    with transaction(engine) as s:
        ana, (ana_caption,) = _photo(s, ANA)
        _photo(s, BEN, seed="other")
    for action in (lambda s: repo.delete_photo(session=s, photo_id=ana.id, owner=BEN),
                   lambda s: repo.edit_caption(session=s, caption_id=ana_caption.id, text="mine now", owner=BEN),
                   lambda s: repo.set_favourite(session=s, caption_id=ana_caption.id, favourite=True, owner=BEN),
                   lambda s: repo.rate(session=s, caption_id=ana_caption.id, rater=BEN, stars=1, owner=BEN)):
        with pytest.raises(NotFoundError), transaction(engine) as s:
            action(s)
    with transaction(engine, write=False) as s:
        caption = repo.get_caption(session=s, caption_id=ana_caption.id)
        assert (caption.text, caption.favourite, caption.ratings) == (f"{ANA}'s same by vit-gpt2-all", False, [])
    with transaction(engine) as s:  # the owner herself, and the owner role (no filter), may
        repo.edit_caption(session=s, caption_id=ana_caption.id, text="edited by Ana", owner=ANA)
        repo.rate(session=s, caption_id=ana_caption.id, rater=ANA, stars=4, owner=ANA)
        repo.delete_photo(session=s, photo_id=ana.id)
        assert repo.get_photo(session=s, photo_id=ana.id) is None


def test_filters_and_lists_only_show_the_owners_rows(engine):
    with transaction(engine) as s:
        _, (ana_caption,) = _photo(s, ANA, keys=("vit-gpt2-all",))
        _, (ben_caption,) = _photo(s, BEN, seed="b", keys=("nlpconnect-all",))
        repo.rate(session=s, caption_id=ana_caption.id, rater="kim", stars=5)
        repo.rate(session=s, caption_id=ben_caption.id, rater="lee", stars=2)
    with transaction(engine, write=False) as s:
        assert repo.list_raters(session=s, owner=BEN) == ["lee"]
        assert repo.list_model_keys(session=s, owner=BEN) == ["nlpconnect-all"]
        assert repo.list_raters(session=s) == ["kim", "lee"]
        stats = repo.rating_stats(session=s, filters=GalleryFilter(owner=BEN))
        assert [(m.model_key, m.count, m.mean) for m in stats] == [("nlpconnect-all", 1, 2.0)]


def test_owner_identity_is_checked(engine):
    with pytest.raises(ValueError, match="owner"), transaction(engine) as s:
        repo.save_photo(session=s, owner=" ", **photo_values("x"))
    with pytest.raises(ValueError, match="owner"), transaction(engine) as s:
        repo.save_photo(session=s, owner="a" * 255, **photo_values("x"))


def test_a_creators_lists_leave_out_a_study_that_uses_their_photo(engine):
    """The owner may put a creator's photo in a study; its captions are the study's, not the creator's. The
    creator's "Rated by" and "Models" lists showed the study's raters (e-mail addresses) and model keys."""
    from db import studies

    with transaction(engine) as s:
        photo, (mine,) = _photo(s, BEN, keys=("vit-gpt2-all",))
        repo.rate(session=s, caption_id=mine.id, rater="lee", stars=4)
        study = studies.create_study(session=s, name="blind", models=["m-study"], settings={"strategy": "greedy"},
                                     photo_ids=[photo.id])
        caption = studies.save_study_caption(session=s, study=study, photo_id=photo.id, model_key="m-study",
                                             text="the study's caption")
        studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater="kim@uni.example",
                                   stars={"overall": 3})
    with transaction(engine, write=False) as s:
        assert repo.list_raters(session=s, owner=BEN) == ["lee"]
        assert repo.list_model_keys(session=s, owner=BEN) == ["vit-gpt2-all"]
        assert repo.list_raters(session=s) == ["lee"]  # the saved captions, everyone's (the owner role's view)
        assert repo.list_raters(session=s, study="blind") == ["kim@uni.example"]  # the study's
