"""Studies, the blind rate queue, the arena's pairs, votes and their exports, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import threading
from collections import Counter

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from db import Caption, Photo, Rating, Vote, repo, studies, transaction
from db.export import LONG_COLUMNS, VOTE_COLUMNS, ratings_long_csv, restore_cell, votes_csv
from db.repo import GalleryFilter, NotFoundError
from db.studies import CaptionFullError
from tests.db.conftest import photo_values

MODELS = ["m-one", "m-two", "m-three"]


def make_study(engine, photos=4, models=MODELS, k=2, criteria=None, seed=7, name="s1", captions=True):
    """A study over ``photos`` photos with one caption per photo and model (text 'p<i> by <model>')."""
    with transaction(engine) as s:
        ids = [repo.save_photo(session=s, **photo_values(f"{name}-{i}")).id for i in range(photos)]
        study = studies.create_study(session=s, name=name, models=models, settings={"strategy": "greedy"},
                                     photo_ids=ids, criteria=criteria, k=k, seed=seed)
        if captions:
            for i, pid in enumerate(ids):
                for key in models:
                    studies.save_study_caption(session=s, study=study, photo_id=pid, model_key=key,
                                               text=f"p{i} by {key}")
    return name


def study(s, name="s1"):
    return studies.get_study(session=s, name=name)


def rate_next(engine, rater, stars=4, name="s1", skip=()):
    """Take this rater's next caption and rate it; returns the caption (None when the queue is empty)."""
    with transaction(engine) as s:
        st = study(s, name)
        caption = studies.next_caption(session=s, study=st, rater=rater, skip=skip)
        if caption is not None:
            studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater=rater,
                                       stars={c: stars for c in st.criteria})
        return caption


# ---------------------------------------------------------------- creating studies

def test_create_study_stores_its_settings(engine):
    make_study(engine, criteria=["Overall", "fits-photo"], k=3, seed=11)
    with transaction(engine, write=False) as s:
        st = study(s)
        assert (st.models, st.settings, st.criteria, st.k, st.seed) == (
            MODELS, {"strategy": "greedy"}, ["overall", "fits-photo"], 3, 11)
        assert [p.name for p in studies.study_photos(session=s, study=st)] == [f"s1-{i}.jpg" for i in range(4)]
        assert studies.study_counts(session=s, study=st) == {"photos": 4, "captions": 12, "ratings": 0, "votes": 0}
        assert studies.missing_captions(session=s, study=st) == {key: [] for key in MODELS}


@pytest.mark.parametrize("change, message", [
    (dict(name="  "), "needs a name"), (dict(models=[]), "at least one model"), (dict(photo_ids=[]), "one photo"),
    (dict(k=0), "ratings per caption"), (dict(criteria=["no spaces allowed"]), "criterion"),
    (dict(name="x" * 81), "too long"), (dict(name="bell\x07here"), "control characters"),
    # 2**31 was stored on SQLite and refused by PostgreSQL's int4 column (a DataError, not a message)
    (dict(seed=2**31), "seed must be a whole number from 0 to 2147483647"), (dict(seed=-1), "seed must be"),
    (dict(seed="7"), "seed must be")])
def test_create_study_refuses_bad_input(engine, change, message):
    with transaction(engine) as s:
        pid = repo.save_photo(session=s, **photo_values("x")).id
        args = dict(name="ok", models=["a"], settings={}, photo_ids=[pid]) | change
        with pytest.raises(ValueError, match=message):
            studies.create_study(session=s, **args)


def test_the_largest_seed_is_stored_on_every_backend(engine):
    make_study(engine, photos=1, seed=studies.SEED_MAX)
    with transaction(engine, write=False) as s:
        assert study(s).seed == studies.SEED_MAX == 2**31 - 1


def test_study_names_are_unique_and_photos_must_exist(engine):
    make_study(engine, photos=1)
    with transaction(engine) as s:
        with pytest.raises(ValueError, match="already exists"):
            studies.create_study(session=s, name="s1", models=["a"], settings={}, photo_ids=[1])
        with pytest.raises(NotFoundError):
            studies.create_study(session=s, name="s2", models=["a"], settings={}, photo_ids=[987654])
        with pytest.raises(NotFoundError, match="no study named"):
            studies.get_study(session=s, name="nope")


def test_two_people_creating_a_study_of_the_same_name_at_once_get_one_study_and_a_readable_refusal(engine):
    """On PostgreSQL the runs that lost the race failed on the unique name with IntegrityError ("Something went
    wrong"); each now hears, as on SQLite, that a study of that name exists."""
    with transaction(engine) as s:
        pid = repo.save_photo(session=s, **photo_values("p")).id
    start, outcomes = threading.Barrier(4), []

    def create():
        start.wait()
        try:
            with transaction(engine) as s:
                studies.create_study(session=s, name="Spring shoot", models=MODELS, settings={}, photo_ids=[pid])
        except Exception as err:  # noqa: BLE001 - judged below
            outcomes.append(err)
        else:
            outcomes.append("created")

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refusals = [o for o in outcomes if o != "created"]
    assert outcomes.count("created") == 1 and len(refusals) == 3
    assert all(type(o) is ValueError and "A study named “Spring shoot” already exists" in str(o) for o in refusals)
    with transaction(engine, write=False) as s:
        assert [p.id for p in studies.study_photos(session=s, study=study(s, "Spring shoot"))] == [pid]


def test_missing_captions_lists_what_generation_still_has_to_do(engine):
    make_study(engine, photos=3, captions=False)
    with transaction(engine) as s:
        st = study(s)
        ids = [p.id for p in studies.study_photos(session=s, study=st)]
        studies.save_study_caption(session=s, study=st, photo_id=ids[1], model_key="m-two", text="done")
        assert studies.missing_captions(session=s, study=st) == {"m-one": ids, "m-two": [ids[0], ids[2]],
                                                                "m-three": ids}


def test_a_study_caption_is_stored_once_per_photo_and_model(engine):
    make_study(engine, photos=1, captions=False)
    with transaction(engine) as s:
        st = study(s)
        pid = studies.study_photos(session=s, study=st)[0].id
        first = studies.save_study_caption(session=s, study=st, photo_id=pid, model_key="m-one", text="first")
        again = studies.save_study_caption(session=s, study=st, photo_id=pid, model_key="m-one", text="second")
        assert again.id == first.id and again.text == "first"
        assert (first.favourite, first.settings, first.study_id) == (False, {"strategy": "greedy"}, st.id)
        with pytest.raises(ValueError, match="not one of the study's models"):
            studies.save_study_caption(session=s, study=st, photo_id=pid, model_key="other", text="x")


def test_study_captions_stay_out_of_the_gallery_unless_asked(engine):
    make_study(engine, photos=2)
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("mine"))
        repo.add_caption(session=s, photo=photo, model_key="manual", text="a favourite", favourite=True)
    with transaction(engine, write=False) as s:
        assert [i.caption.text for i in repo.gallery(session=s).items] == ["a favourite"]
        assert repo.gallery(session=s, filters=GalleryFilter(study="s1")).total == 6
        assert [m.model_key for m in repo.rating_stats(session=s, filters=GalleryFilter())] == ["manual"]


# ---------------------------------------------------------------- the rate queue

def test_each_caption_gets_k_raters_and_no_rater_sees_a_caption_twice(engine):
    make_study(engine, k=2)
    seen: dict[str, list[int]] = {}
    for rater in ("ann", "bob", "cy"):
        while (caption := rate_next(engine, rater)) is not None:
            seen.setdefault(rater, []).append(caption.id)
    assert all(len(ids) == len(set(ids)) for ids in seen.values())
    with transaction(engine, write=False) as s:
        per_caption = Counter(cid for cid, in s.execute(select(Rating.caption_id)))
        assert len(per_caption) == 12 and set(per_caption.values()) == {2}
        progress = studies.rating_progress(session=s, study=study(s), rater="cy")
    # ann and bob fill every caption to k=2 before cy starts: nothing is left for cy
    assert (len(seen["ann"]), len(seen["bob"]), seen.get("cy")) == (12, 12, None)
    assert (progress.complete, progress.captions, progress.ratings, progress.needed, progress.remaining) == (
        12, 12, 24, 24, 0)


def test_models_are_rated_at_the_same_pace(engine):
    make_study(engine, photos=5, k=1)
    order = []
    while (caption := rate_next(engine, "ann")) is not None:
        order.append(caption.model_key)
        counts = Counter(order)
        assert max(counts[m] for m in MODELS) - min(counts[m] for m in MODELS) <= 1, order
    assert len(order) == 15


def test_order_is_random_per_rater_and_reproducible(engine):
    make_study(engine, photos=6, k=5)
    with transaction(engine, write=False) as s:
        st = study(s)
        def order(rater):
            out = []
            while (c := studies.next_caption(session=s, study=st, rater=rater, skip=out)) is not None:
                out.append(c.id)
            return out
        ann, bob = order("ann"), order("bob")
        assert sorted(ann) == sorted(bob) and len(ann) == 18
        assert ann != bob  # a different shuffle per rater
        assert order("ann") == ann  # the same one each time for the same rater
        st.seed += 1  # (not committed) another seed, another order
        assert order("ann") != ann


def test_a_raters_models_come_in_no_fixed_cycle(engine):
    """Models are rated at the same pace, so every round of four captions holds each of four models once. The
    order within a round was a hash of the seed, the rater and the model, the same round after round: after
    one round a rater knew which model wrote each caption (A B C D A B C D …)."""
    models = ["m-one", "m-two", "m-three", "m-four"]
    make_study(engine, photos=6, models=models, k=4)
    for rater in ("ann", "bob", "cy", "dee"):
        keys = [rate_next(engine, rater).model_key for _ in range(12)]
        rounds = [keys[i:i + 4] for i in range(0, 12, 4)]
        assert all(sorted(r) == sorted(models) for r in rounds), keys  # still at the same pace
        assert not rounds[0] == rounds[1] == rounds[2], keys


def test_skipped_captions_are_left_for_later(engine):
    make_study(engine, photos=1, models=["m-one", "m-two"], k=1)
    with transaction(engine, write=False) as s:
        first = studies.next_caption(session=s, study=study(s), rater="ann")
        other = studies.next_caption(session=s, study=study(s), rater="ann", skip={first.id})
        assert other.id != first.id
        assert studies.next_caption(session=s, study=study(s), rater="ann", skip={first.id, other.id}) is None


def test_rating_records_every_criterion_and_the_text_as_rated(engine):
    make_study(engine, photos=1, criteria=["overall", "fits-photo"])
    with transaction(engine) as s:
        st = study(s)
        caption = studies.next_caption(session=s, study=st, rater="ann")
        with pytest.raises(ValueError, match="fits-photo missing"):
            studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater="ann", stars={"overall": 3})
        rows = studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater="ann",
                                          stars={"overall": 3, "fits-photo": 5}, comment="nice")
        assert [(r.criterion, r.stars, r.comment, r.rated_text) for r in rows] == [
            ("overall", 3, "nice", caption.text), ("fits-photo", 5, "nice", caption.text)]
        repo.edit_caption(session=s, caption_id=caption.id, text="changed later")
    with transaction(engine, write=False) as s:
        assert {r.rated_text for r in s.scalars(select(Rating))} == {"p0 by " + caption.model_key}


def test_rating_a_full_caption_is_refused(engine):
    make_study(engine, photos=1, k=1)
    with transaction(engine) as s:
        st = study(s)
        cid = studies.study_captions(session=s, study=st)[0].id
        studies.rate_study_caption(session=s, study=st, caption_id=cid, rater="ann", stars={"overall": 2})
        studies.rate_study_caption(session=s, study=st, caption_id=cid, rater="ann", stars={"overall": 5})  # update
        with pytest.raises(CaptionFullError, match="already has its 1 ratings"):
            studies.rate_study_caption(session=s, study=st, caption_id=cid, rater="bob", stars={"overall": 4})
        assert [(r.rater, r.stars) for r in repo.ratings_for_caption(session=s, caption_id=cid)] == [("ann", 5)]


@pytest.mark.parametrize("k", [1, 2])
def test_raters_at_once_never_push_a_caption_beyond_k(engine, k):
    """Eight raters submit stars for the same caption at the same moment: exactly k are stored, the
    others are told the caption is full (the guarantee is 'never more than k', not 'about k')."""
    make_study(engine, photos=1, models=["m-one"], k=k)
    with transaction(engine, write=False) as s:
        cid = studies.study_captions(session=s, study=study(s))[0].id
    start, outcomes = threading.Barrier(8), []

    def rater(name):
        start.wait()
        try:
            with transaction(engine) as s:
                studies.rate_study_caption(session=s, study=study(s), caption_id=cid, rater=name, stars={"overall": 3})
            outcomes.append("stored")
        except CaptionFullError:
            outcomes.append("full")

    threads = [threading.Thread(target=rater, args=(f"rater {n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["full"] * (8 - k) + ["stored"] * k
    with transaction(engine, write=False) as s:
        assert len(repo.ratings_for_caption(session=s, caption_id=cid)) == k


def test_four_raters_working_through_the_queue_at_once_fill_every_caption_to_exactly_k(engine):
    """Each thread is one person on the Rate page: take the next caption, rate it, repeat. Refusals
    (someone else filled the caption first) are allowed; over-filling and rating twice are not."""
    make_study(engine, photos=3, k=2)
    start, refused, rated = threading.Barrier(4), Counter(), {}

    def person(name):
        start.wait()
        mine = rated.setdefault(name, [])
        while True:
            with transaction(engine) as s:
                st = study(s)
                caption = studies.next_caption(session=s, study=st, rater=name)
                if caption is None:
                    return
                try:
                    studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater=name,
                                               stars={"overall": 3})
                    mine.append(caption.id)
                except CaptionFullError:
                    refused[name] += 1

    threads = [threading.Thread(target=person, args=(f"p{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(ids) == len(set(ids)) for ids in rated.values())
    with transaction(engine, write=False) as s:
        per_caption = Counter(cid for cid, in s.execute(select(Rating.caption_id)))
    assert len(per_caption) == 9 and set(per_caption.values()) == {2}
    assert sum(len(ids) for ids in rated.values()) == 18


def test_two_runs_saving_the_same_study_caption_at_once_store_one(engine):
    make_study(engine, photos=1, models=["m-one"], captions=False)
    with transaction(engine, write=False) as s:
        pid = studies.study_photos(session=s, study=study(s))[0].id
    start, ids = threading.Barrier(4), []

    def run(n):
        start.wait()
        with transaction(engine) as s:
            ids.append(studies.save_study_caption(session=s, study=study(s), photo_id=pid, model_key="m-one",
                                                  text=f"run {n}").id)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    with transaction(engine, write=False) as s:
        assert len(studies.study_captions(session=s, study=study(s))) == 1


# ---------------------------------------------------------------- the arena

def vote_next(engine, rater, winner="a", name="s1"):
    with transaction(engine) as s:
        st = study(s, name)
        pair = studies.next_pair(session=s, study=st, rater=rater)
        if pair is not None:
            studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner=winner,
                         rater=rater)
        return pair


def test_pairs_cover_every_pair_of_models_evenly_and_never_repeat_for_a_rater(engine):
    make_study(engine, photos=4)
    pairs, sides = [], Counter()
    while (pair := vote_next(engine, "ann")) is not None:
        pairs.append(pair.key)
        per_models = Counter(key[1:] for key in pairs)
        assert max(per_models.values()) - min(per_models.get(p, 0) for p in
                                              [("m-one", "m-three"), ("m-one", "m-two"), ("m-three", "m-two")]) <= 1
        assert pair.a.photo_id == pair.b.photo_id == pair.photo.id and pair.a.model_key != pair.b.model_key
        sides[pair.a.model_key] += 1
    assert len(pairs) == len(set(pairs)) == 4 * 3  # every photo × pair once, then nothing
    assert len(sides) == 3  # each model is shown as "A" sometimes
    # another rater starts again from the least-voted pairs, on photos ann's votes cover least
    second = vote_next(engine, "bob")
    assert second is not None


def test_a_vote_keeps_the_texts_as_shown(engine):
    make_study(engine, photos=1, models=["m-one", "m-two"])
    with transaction(engine) as s:
        st = study(s)
        pair = studies.next_pair(session=s, study=st, rater="ann")
        row = studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="both_bad",
                           rater="ann")
        repo.edit_caption(session=s, caption_id=pair.a.id, text="edited afterwards")
        with pytest.raises(ValueError, match="must be one of"):
            studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="A", rater="x")
        with pytest.raises(ValueError, match="two different models"):
            studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.a.id, winner="a", rater="x")
    with transaction(engine, write=False) as s:
        [stored] = s.scalars(select(Vote)).all()
        assert (stored.id, stored.winner, stored.model_a, stored.text_a) == (
            row.id, "both_bad", pair.a.model_key, f"p0 by {pair.a.model_key}")
        progress = studies.vote_progress(session=s, study=study(s), rater="ann")
        assert (progress.by_rater, progress.open_to_rater, progress.votes) == (1, 0, 1)


def test_a_single_model_study_has_no_pairs(engine):
    make_study(engine, photos=2, models=["m-one"])
    with transaction(engine, write=False) as s:
        assert studies.next_pair(session=s, study=study(s), rater="ann") is None


# ---------------------------------------------------------------- rows and exports

def test_rows_for_the_leaderboard_and_the_exports(engine):
    make_study(engine, photos=2, models=["m-one", "m-two"], k=1)
    rate_next(engine, "=ann", stars=5)
    vote_next(engine, "=ann", winner="tie")
    make_study(engine, photos=1, models=["m-one", "m-two"], name="other")
    rate_next(engine, "bob", name="other")
    with transaction(engine, write=False) as s:
        st = study(s)
        [rating] = studies.rating_rows(session=s, study=st)
        assert rating["rater"] == "=ann" and rating["stars"] == 5 and rating["criterion"] == "overall"
        assert len(rating["photo"]) == 64 and rating["model"] in ("m-one", "m-two")
        [vote] = studies.vote_rows(session=s, study=st)
        assert (vote["winner"], vote["rater"]) == ("tie", "=ann")
        assert {vote["model_a"], vote["model_b"]} == {"m-one", "m-two"}
        assert len(studies.caption_rows(session=s, study=st)) == 4
        long = pd.read_csv(io.BytesIO(ratings_long_csv(session=s, filters=GalleryFilter(study="s1"), labels={})),
                           dtype=str, keep_default_na=False, encoding="utf-8-sig")
        votes = pd.read_csv(io.BytesIO(votes_csv(session=s, study="s1")), dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
        all_votes = pd.read_csv(io.BytesIO(votes_csv(session=s)), dtype=str, keep_default_na=False,
                                encoding="utf-8-sig")
    assert list(long.columns) == LONG_COLUMNS and len(long) == 1
    assert (long["rater"][0], long["study"][0], long["rated_text"][0]) == ("'=ann", "s1", long["caption"][0])
    assert list(votes.columns) == VOTE_COLUMNS and len(votes) == 1 == len(all_votes)
    assert (restore_cell(votes["rater"][0]), votes["winner"][0], votes["study"][0]) == ("=ann", "tie", "s1")
    assert votes["vote_id"][0].isdigit() and votes["voted_utc"][0][:2] == "20"


def test_a_photo_in_a_study_is_deleted_only_when_asked_and_then_takes_its_study_captions_ratings_and_votes(engine):
    make_study(engine, photos=1, models=["m-one", "m-two"], k=1)
    rate_next(engine, "ann")
    vote_next(engine, "ann")
    with transaction(engine) as s:
        pid = studies.study_photos(session=s, study=study(s))[0].id
        with pytest.raises(repo.PhotoInStudyError, match="s1"):
            repo.delete_photo(session=s, photo_id=pid)  # refused unless asked for: the study's data would go
        assert studies.study_counts(session=s, study=study(s))["ratings"] == 1
        repo.delete_photo(session=s, photo_id=pid, with_studies=True)
    with transaction(engine, write=False) as s:
        assert studies.study_counts(session=s, study=study(s)) == {"photos": 0, "captions": 0, "ratings": 0, "votes": 0}
        assert s.scalars(select(Caption)).all() == []


def test_deleting_the_last_caption_of_a_study_photo_keeps_the_photo_in_the_study(engine):
    """A creator's "Delete caption" on her only caption of a photo the owner put in a study: the caption goes,
    the photo stays (it took the study's photo row with it, the very thing delete_photo refuses)."""
    with transaction(engine) as s:
        mine = repo.save_photo(session=s, **photo_values("mine"), owner="ana@example.com")
        caption = repo.add_caption(session=s, photo=mine, model_key="vit-gpt2-all", text="a dog",
                                   generated_text="a dog")
        other = repo.save_photo(session=s, **photo_values("other"))
        studies.create_study(session=s, name="spring", models=MODELS, settings={}, photo_ids=[mine.id, other.id])
    with transaction(engine) as s:
        repo.delete_caption(session=s, caption_id=caption.id, owner="ana@example.com")
    with transaction(engine, write=False) as s:
        assert repo.get_caption(session=s, caption_id=caption.id) is None
        assert repo.get_photo(session=s, photo_id=mine.id) is not None
        assert [p.id for p in studies.study_photos(session=s, study=study(s, "spring"))] == [mine.id, other.id]


def test_deleting_a_study_takes_its_captions_ratings_votes_and_the_photos_only_it_had(engine):
    make_study(engine, photos=2, models=["m-one", "m-two"], k=1)
    make_study(engine, photos=1, models=["m-one", "m-two"], k=1, name="kept")
    for name in ("s1", "kept"):
        rate_next(engine, "ann", name=name)
        vote_next(engine, "ann", name=name)
    with transaction(engine) as s:
        photo = repo.save_photo(session=s, **photo_values("gallery"))
        mine = repo.add_caption(session=s, photo=photo, model_key="m-one", text="mine")
        repo.rate(session=s, caption_id=mine.id, rater="ann", stars=5)
        photos = {p.id for p in s.scalars(select(Photo))}
        kept = studies.study_counts(session=s, study=study(s, "kept"))
    with transaction(engine) as s:
        gone = studies.delete_study(session=s, name="  s1 ")  # names are matched as typed elsewhere
    assert gone == {"photos": 2, "captions": 4, "ratings": 1, "votes": 1, "photos_deleted": 2}
    with transaction(engine, write=False) as s:
        assert [st.name for st in studies.list_studies(session=s)] == ["kept"]
        assert studies.study_counts(session=s, study=study(s, "kept")) == kept
        left = {p.id: p.name for p in s.scalars(select(Photo))}  # s1's photos had only its captions: they went
        assert set(left) < photos and sorted(left.values()) == ["gallery.jpg", "kept-0.jpg"]
        assert set(s.scalars(select(Caption.study_id))) == {None, study(s, "kept").id}
        assert [r.caption_id for r in s.scalars(select(Rating)) if r.caption_id == mine.id] == [mine.id]
        assert len(s.scalars(select(Vote)).all()) == 1
    with transaction(engine) as s, pytest.raises(NotFoundError):
        studies.delete_study(session=s, name="s1")


def test_deleting_a_study_deletes_the_photos_nothing_else_uses_and_keeps_the_rest(engine):
    """A study's uploads have no gallery captions: the Gallery never shows them, so once the study goes they
    go with it. A photo with a caption saved in the gallery, or in another study, stays."""
    make_study(engine, photos=3, models=["m-one"], k=1)
    with transaction(engine) as s:
        only, gallery, shared = [p.id for p in studies.study_photos(session=s, study=study(s))]
        repo.add_caption(session=s, photo=s.get(Photo, gallery), model_key="manual", text="saved in the gallery")
        studies.create_study(session=s, name="other", models=["m-one"], settings={}, photo_ids=[shared])
        assert studies.photos_deleted_with(session=s, study=study(s)) == [only]
    with transaction(engine) as s:
        gone = studies.delete_study(session=s, name="s1")
    assert (gone["photos"], gone["photos_deleted"]) == (3, 1)
    with transaction(engine, write=False) as s:
        assert sorted(s.scalars(select(Photo.id))) == sorted([gallery, shared])
        assert [p.id for p in studies.study_photos(session=s, study=study(s, "other"))] == [shared]
        assert [c.text for c in s.scalars(select(Caption))] == ["saved in the gallery"]


def test_a_signed_in_rater_with_a_long_email_address_can_rate_and_vote(engine):
    """Signed in, the rater is the identity: an e-mail address of up to 254 characters. One longer than 80
    could not rate at all (the rater rule said 80, and PostgreSQL's VARCHAR(80) refused it)."""
    address = "a" * 64 + "@" + ".".join(["b" * 61] * 3) + ".example.org"[:254 - 64 - 1 - 185]
    address = address.ljust(254, "g")
    assert len(address) == 254
    make_study(engine, photos=1, models=["m-one", "m-two"], k=1)
    with transaction(engine) as s:
        st = study(s)
        caption = studies.next_caption(session=s, study=st, rater=address)
        studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater=address, stars={"overall": 4})
        pair = studies.next_pair(session=s, study=st, rater=address)
        studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="a", rater=address)
        saved = repo.add_caption(session=s, photo=pair.photo, model_key="m-one", text="a gallery caption")
        repo.rate(session=s, caption_id=saved.id, rater=address, stars=2)
    with transaction(engine, write=False) as s:
        assert {r.rater for r in s.scalars(select(Rating))} == {address}
        assert [v.rater for v in s.scalars(select(Vote))] == [address]
    with pytest.raises(ValueError, match="too long"), transaction(engine) as s:
        repo.rate(session=s, caption_id=saved.id, rater=address + "x", stars=2)


# ---------------------------------------------------------------- one person, however the name is typed

def test_a_rater_typing_their_name_in_another_case_is_the_same_person_in_the_rate_queue(engine):
    """"Maya" and "maya " are one person (repo.rater_identity). The queue used to compare names as typed: "maya"
    was offered the caption "Maya" had rated, her progress read 0, and her new stars replaced Maya's."""
    make_study(engine, photos=2, models=["m-one", "m-two"], k=2)
    first = rate_next(engine, "Maya", stars=5)
    with transaction(engine, write=False) as s:
        st = study(s)
        assert studies.caption_open_to(session=s, study=st, caption_id=first.id, rater="maya ") is None
        progress = studies.rating_progress(session=s, study=st, rater="MAYA")
        assert (progress.rated_by_rater, progress.open_to_rater) == (1, 3)
    offered = []
    while (caption := rate_next(engine, " maya", stars=1)) is not None:
        offered.append(caption.id)
    assert first.id not in offered and len(offered) == 3
    with transaction(engine, write=False) as s:
        stars = {(r.caption_id, r.rater): r.stars for r in s.scalars(select(Rating))}
    assert stars[(first.id, "Maya")] == 5  # her first stars kept, under the name as first stored
    assert {who for _, who in stars} == {"Maya"}


def test_a_full_caption_counts_people_not_spellings(engine):
    """With its k raters, a caption is still open to each of them to change their stars, whatever case they type
    their name in (it used to refuse "ann" on a caption "Ann" had filled)."""
    make_study(engine, photos=1, models=["m-one"], k=2)
    with transaction(engine) as s:
        st = study(s)
        [caption] = studies.study_captions(session=s, study=st)
        studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater="Ann", stars={"overall": 4})
        studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater="bob", stars={"overall": 3})
        assert studies.rating_progress(session=s, study=st).complete == 1
        studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater="ann", stars={"overall": 2})
        with pytest.raises(CaptionFullError):
            studies.rate_study_caption(session=s, study=st, caption_id=caption.id, rater="cy", stars={"overall": 1})
    with transaction(engine, write=False) as s:
        assert sorted((r.rater, r.stars) for r in s.scalars(select(Rating))) == [("Ann", 2), ("bob", 3)]


def test_a_rater_typing_their_name_in_another_case_is_the_same_person_in_the_arena(engine):
    make_study(engine, photos=1, models=["m-one", "m-two"])
    assert vote_next(engine, "Maya") is not None
    with transaction(engine, write=False) as s:
        assert studies.next_pair(session=s, study=study(s), rater="maya") is None
        progress = studies.vote_progress(session=s, study=study(s), rater="MAYA ")
        assert (progress.by_rater, progress.open_to_rater) == (1, 0)


def test_judging_the_same_pair_again_replaces_the_judgement_and_counts_once(engine):
    """A second vote by the same person on the same photo and pair (two tabs showing the pinned pair, a click
    replayed, the name typed in another case) used to be stored beside the first, and the leaderboard
    counted both. Now it replaces the first, whichever side each caption was shown on."""
    make_study(engine, photos=1, models=["m-one", "m-two"])
    with transaction(engine) as s:
        st = study(s)
        pair = studies.next_pair(session=s, study=st, rater="Maya")
        first = studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="a",
                             rater="Maya")
        again = studies.vote(session=s, study=st, caption_a_id=pair.b.id, caption_b_id=pair.a.id, winner="tie",
                             rater="maya")
        studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="b", rater="bob")
    assert again.id == first.id
    with transaction(engine, write=False) as s:
        st = study(s)
        rows = sorted((v.rater, v.winner, v.model_a, v.text_a) for v in s.scalars(select(Vote)))
        assert rows == [("Maya", "tie", pair.b.model_key, pair.b.text), ("bob", "b", pair.a.model_key, pair.a.text)]
        assert studies.vote_progress(session=s, study=st).per_pair == {tuple(sorted(MODELS[:2])): 2}
        assert len(studies.vote_rows(session=s, study=st)) == 2


def test_two_runs_voting_the_same_pair_at_once_store_one_vote(engine):
    """A double click can start the second run while the first is still saving (igcap_ui.run_order)."""
    make_study(engine, photos=1, models=["m-one", "m-two"])
    with transaction(engine, write=False) as s:
        pair = studies.next_pair(session=s, study=study(s), rater="ann")
        a, b = pair.a.id, pair.b.id
    start = threading.Barrier(4)

    def run():
        start.wait()
        with transaction(engine) as s:
            studies.vote(session=s, study=study(s), caption_a_id=a, caption_b_id=b, winner="a", rater="ann")

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with transaction(engine, write=False) as s:
        assert len(s.scalars(select(Vote)).all()) == 1


def test_the_database_keeps_one_judgement_per_person_and_pair(engine):
    """Whatever path writes them, a second vote of one person on one photo and pair (the sides swapped, the name
    in another case) is refused by the database itself, as a second rating of one caption is; rows stored so
    before revision 0009 were merged by it (tests/db/test_migrations.py)."""
    make_study(engine, photos=1, models=["m-one", "m-two"])
    with transaction(engine) as s:
        st = study(s)
        pair = studies.next_pair(session=s, study=st, rater="Ann")
        studies.vote(session=s, study=st, caption_a_id=pair.a.id, caption_b_id=pair.b.id, winner="a", rater="Ann")

    def row(x, y, who):
        return Vote(study_id=st.id, photo_id=x.photo_id, caption_a_id=x.id, caption_b_id=y.id, model_a=x.model_key,
                    model_b=y.model_key, text_a=x.text, text_b=y.text, winner="b", rater=who)

    for x, y in ((pair.b, pair.a), (pair.a, pair.b)):
        with pytest.raises(IntegrityError), transaction(engine) as s:
            s.add(row(x, y, " ANN"))
            s.flush()
    with transaction(engine) as s:
        s.add(row(pair.b, pair.a, "bob"))
    with transaction(engine, write=False) as s:
        st = study(s)
        assert sorted((v["rater"], v["winner"]) for v in studies.vote_rows(session=s, study=st)) == [
            ("Ann", "a"), ("bob", "b")]


def test_a_pinned_pair_is_shown_only_while_it_belongs_to_the_study_and_is_not_judged(engine):
    """The Arena keeps the pair it showed in the page's state. It reloaded the two captions by id alone: a pin
    that outlived its study (SQLite hands freed ids to new rows, e.g. another person's private captions)
    showed whatever now had those ids."""
    make_study(engine, photos=1, models=["m-one", "m-two"])
    make_study(engine, photos=1, models=["m-one", "m-two"], name="other")
    with transaction(engine) as s:
        st, other = study(s), study(s, "other")
        mine = studies.next_pair(session=s, study=st, rater="ann")
        theirs = studies.next_pair(session=s, study=other, rater="ann")
        private = repo.add_caption(session=s, photo=mine.photo, model_key="m-three", text="not in any study")

        def pinned(a, b, rater="ann", in_study=st):
            return studies.pair_open_to(session=s, study=in_study, caption_a_id=a.id, caption_b_id=b.id, rater=rater)

        assert pinned(mine.a, mine.b).key == mine.key and pinned(mine.a, mine.b).a.id == mine.a.id
        assert pinned(theirs.a, theirs.b) is None  # another study's captions
        assert pinned(mine.a, private) is None  # a caption outside the study
        assert pinned(mine.a, mine.a) is None
        studies.vote(session=s, study=st, caption_a_id=mine.a.id, caption_b_id=mine.b.id, winner="a", rater="Ann")
        assert pinned(mine.a, mine.b) is None  # judged by her (in any case)
        assert pinned(mine.a, mine.b, rater="bob") is not None


def test_a_study_caption_is_rated_only_through_its_study(engine):
    make_study(engine, photos=1, models=["m-one"], k=1)
    with transaction(engine) as s:
        [caption] = studies.study_captions(session=s, study=study(s))
        with pytest.raises(ValueError, match="rated blind"):
            repo.rate(session=s, caption_id=caption.id, rater="owner", stars=5)
        studies.rate_study_caption(session=s, study=study(s), caption_id=caption.id, rater="ann", stars={"overall": 2})
    with transaction(engine, write=False) as s:
        assert [(r.rater, r.stars) for r in s.scalars(select(Rating))] == [("ann", 2)]


def test_a_study_caption_with_a_nul_character_is_stored_without_it(engine):
    """repo.add_caption drops NUL (PostgreSQL refuses it in text); save_study_caption did not, so on PostgreSQL
    `study generate` failed on such a caption at every rerun and the study never finished."""
    make_study(engine, photos=1, models=["m-one"], captions=False)
    with transaction(engine) as s:
        pid = studies.study_photos(session=s, study=study(s))[0].id
        studies.save_study_caption(session=s, study=study(s), photo_id=pid, model_key="m-one", text="sun\x00set",
                                   generated_text="sun\x00set raw", model_source="org/\x00name")
    with transaction(engine, write=False) as s:
        [caption] = studies.study_captions(session=s, study=study(s))
        assert (caption.text, caption.generated_text, caption.model_source) == ("sunset", "sunset raw", "org/name")
