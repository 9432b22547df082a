"""The Create page: generate with tiny hub models, edit, save, write by hand, bad uploads."""

from sqlalchemy import select

from db import Caption, Photo, make_engine, transaction, upgrade
from tests import builders
from tests.pages.conftest import no_exceptions, shown

FAST = "fast"  # greedy preset: one caption per model, the quickest run


def upload(at, *files):
    at.file_uploader(key="create.upload").set_value(list(files)).run()
    return at


def generate(at, preset=FAST):
    at.selectbox(key="decoding.preset").set_value(preset).run()
    at.button(key="create.generate").click().run()
    no_exceptions(at)
    return at


def card_text_areas(at):
    return [t for t in at.text_area if t.key and t.key.startswith("card")]


def rows(db_url, model):
    engine = make_engine(db_url)
    upgrade(engine)  # the page may not have opened the database at all
    with transaction(engine, write=False) as session:
        return list(session.scalars(select(model)))


def test_first_render_loads_no_model_and_migrates_the_database(app, db_url):
    from sqlalchemy import inspect

    from db.engine import current_revision
    from igcap_ui import resources

    no_exceptions(app)
    assert app.title[0].value.startswith("✍️ Create")
    assert resources.model_cache().loaded_keys() == []
    assert app.button(key="create.generate").disabled  # nothing to run before a photo is there
    engine = make_engine(db_url)
    assert {"photos", "captions", "ratings"} <= set(inspect(engine).get_table_names())
    assert current_revision(engine) is not None


def test_generate_shows_one_card_per_model(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    assert len(app.image) == 1
    generate(app)
    models = app.multiselect(key="create.models").value
    assert len(models) == 4
    assert len(card_text_areas(app)) == len(models)
    assert not app.error
    # A rerun redraws the stored cards instead of generating again.
    app.run()
    assert len(card_text_areas(app)) == len(models)


def test_two_photos_and_variants_give_a_card_per_photo_per_model(app):
    upload(app, ("a.jpg", builders.photo_bytes(colour="red"), "image/jpeg"),
           ("b.png", builders.photo_bytes("PNG", colour="blue"), "image/png"))
    app.multiselect(key="create.models").set_value(["vit-gpt2-last-block", "nlpconnect-all"]).run()
    generate(app, preset="creative")  # three sampled variants per model
    assert len(card_text_areas(app)) == 2 * 2 * 3


def test_edit_and_save_stores_edited_and_original_text(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    original = box.value
    box.set_value("My edited caption #sunset").run()
    app.button(key=f"{box.key}.save").click().run()
    no_exceptions(app)
    [caption] = rows(db_url, Caption)
    assert caption.text == "My edited caption #sunset"
    assert caption.generated_text == original
    assert caption.favourite and caption.model_key == app.multiselect(key="create.models").value[0]
    assert caption.settings["strategy"] == "greedy"
    [photo] = rows(db_url, Photo)
    assert photo.name == "red.jpg" and photo.thumbnail_jpeg
    # Saving the same card again updates that caption instead of adding a second one.
    box = card_text_areas(app)[0]
    box.set_value("Edited twice").run()
    app.button(key=f"{box.key}.save").click().run()
    assert [c.text for c in rows(db_url, Caption)] == ["Edited twice"]


def test_a_saved_card_says_so_on_its_button_at_once(app):
    """The button read "Save as favourite" until the next run after saving, beside "Saved in the gallery"."""
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    assert app.button(key=f"{box.key}.save").label == "⭐ Save as favourite"
    app.button(key=f"{box.key}.save").click().run()
    no_exceptions(app)
    assert app.button(key=f"{box.key}.save").label == "⭐ Update saved caption"
    assert any("Saved to the gallery" in t.value for t in app.toast)
    assert any("Saved in the gallery" in c.value for c in app.caption)


def test_update_after_another_session_deleted_the_photo_saves_a_new_caption(app, db_url):
    """Issue 12 item 4: "Update saved caption" failed forever once another session deleted the photo."""
    from db import repo

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    app.button(key=f"{box.key}.save").click().run()
    [first] = rows(db_url, Caption)
    with transaction(make_engine(db_url)) as session:  # another browser session deletes the photo
        repo.delete_photo(session=session, photo_id=first.photo_id)
        # and saves a caption of another photo: on SQLite it gets the deleted caption's id
        other = repo.save_photo(session=session, sha256="b" * 64, name="other.jpg", width=1, height=1,
                                format="JPEG", image_jpeg=b"x", thumbnail_jpeg=b"x")
        other_id = repo.add_caption(session=session, photo=other, model_key="manual", text="Not yours").id
    box = card_text_areas(app)[0]
    box.set_value("Saved again after a delete").run()
    app.button(key=f"{box.key}.save").click().run()
    no_exceptions(app)
    assert not app.error
    assert any("deleted" in t.value for t in app.toast)
    texts = {c.id: c.text for c in rows(db_url, Caption)}
    assert texts.pop(other_id) == "Not yours"  # the other session's caption is untouched
    [(again_id, text)] = texts.items()
    assert text == "Saved again after a delete"
    assert sorted(p.name for p in rows(db_url, Photo)) == ["other.jpg", "red.jpg"]
    box = card_text_areas(app)[0]  # and the card now updates the new row
    box.set_value("Edited once more").run()
    app.button(key=f"{box.key}.save").click().run()
    assert {c.id: c.text for c in rows(db_url, Caption)} == {other_id: "Not yours", again_id: "Edited once more"}


def test_update_saved_caption_does_not_overwrite_a_gallery_edit_made_since_without_saying_so(app, db_url):
    """The card's "Update saved caption" replaced an edit made in the Gallery (another tab) since the card's
    last save, silently. Now it says so, keeps the box's text, and a second press replaces it knowingly."""
    from db import repo

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Saved from the card").run()
    app.button(key=f"{box.key}.save").click().run()
    [saved] = rows(db_url, Caption)
    with transaction(make_engine(db_url)) as session:  # the Gallery, in another tab
        repo.edit_caption(session=session, caption_id=saved.id, text="Edited in the gallery",
                          expected="Saved from the card")
    box = card_text_areas(app)[0]
    box.set_value("Edited on the card").run()
    app.button(key=f"{box.key}.save").click().run()
    no_exceptions(app)
    assert [c.text for c in rows(db_url, Caption)] == ["Edited in the gallery"]
    assert any("changed in the Gallery or in another tab" in e.value for e in app.error)
    assert any(t.value == "Edited in the gallery" for t in app.text)  # quoted as written, apart
    assert card_text_areas(app)[0].value == "Edited on the card"  # nothing typed is lost
    assert any("Unsaved changes" in c.value for c in app.caption)
    app.button(key=f"{box.key}.save").click().run()  # pressed again, knowing: the card's text goes in
    no_exceptions(app)
    assert [c.text for c in rows(db_url, Caption)] == ["Edited on the card"]


def test_hand_written_caption_is_saved_as_manual(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    manual.set_value("Golden hour 🌅 #travel").run()
    app.button(key=f"{manual.key}.save").click().run()
    no_exceptions(app)
    [caption] = rows(db_url, Caption)
    assert (caption.model_key, caption.text, caption.generated_text) == ("manual", "Golden hour 🌅 #travel", None)


def test_saving_the_same_hand_written_caption_again_stores_it_once(app, db_url):
    """The text stays in the box after saving, so a second press (or a double click) used to add a second row."""
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    manual.set_value("Golden hour 🌅 #travel").run()
    app.button(key=f"{manual.key}.save").click().run()
    app.button(key=f"{manual.key}.save").click().run()
    no_exceptions(app)
    assert [c.text for c in rows(db_url, Caption)] == ["Golden hour 🌅 #travel"]
    assert any("Already in the gallery" in i.value for i in app.info)
    app.text_area(key=manual.key).set_value("Golden hour, take two").run()
    app.button(key=f"{manual.key}.save").click().run()
    assert sorted(c.text for c in rows(db_url, Caption)) == sorted(["Golden hour, take two", "Golden hour 🌅 #travel"])


def test_bad_upload_shows_message_and_saves_nothing(app, db_url):
    upload(app, ("notes.jpg", b"this is not a photo", "image/jpeg"))
    no_exceptions(app)
    assert app.error and app.error[0].value.startswith(r"**notes\.jpg**: This file is not an image")  # name: plain
    assert not app.image
    assert app.button(key="create.generate").disabled
    assert rows(db_url, Photo) == []


def test_unavailable_model_shows_its_message_while_others_work(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    monkeypatch.setenv("IGCAP_MODEL_NLPCONNECT_ALL", "/nonexistent")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert any("/nonexistent" in w.value for w in at.warning)  # said before anything loads …
    assert "nlpconnect-all" not in at.multiselect(key="create.models").value  # … and not chosen by default
    upload(at, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    at.multiselect(key="create.models").set_value(list(builders.REAL_REPOS)).run()  # chosen anyway
    generate(at)
    assert len(card_text_areas(at)) == 3  # the three working models wrote captions
    assert any("/nonexistent" in e.value for e in at.error)  # the fourth card says why it could not


def test_offline_without_models_everything_else_works(app_env, monkeypatch, db_url):
    """No model downloaded and the hub offline: the app opens, says so, and hand-written captions,
    the gallery, the evaluation and the models pages work."""
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT, open_page

    for key in builders.REAL_REPOS:
        monkeypatch.setenv("IGCAP_MODEL_" + key.upper().replace("-", "_"), f"nobody/not-downloaded-{key}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(at)
    [warning] = at.warning
    assert "not downloaded" in shown(warning.value)
    assert all(label in shown(warning.value) for label in ("ViT-GPT2 · last block", "nlpconnect · all parameters"))
    assert at.multiselect(key="create.models").value == []
    upload(at, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    assert at.button(key="create.generate").disabled
    [manual] = [t for t in at.text_area if t.key.startswith("manual.")]
    manual.set_value("Offline caption").run()
    at.button(key=f"{manual.key}.save").click().run()
    assert [c.text for c in rows(db_url, Caption)] == ["Offline caption"]
    for page in ("gallery.py", "evaluation.py", "models.py"):
        no_exceptions(open_page(at, page))
    assert len([w for w in at.warning if "Unavailable" in w.value]) == 4  # the Models page, per model


def test_the_advanced_panel_has_a_widget_per_knob_labelled_from_it(app):
    from igcap.decoding import KNOBS, PRESETS

    widgets = {w.key: w for kind in (app.selectbox, app.number_input, app.checkbox, app.text_input) for w in kind}
    for name, knob in KNOBS.items():  # creator knobs sit above the advanced ones and keep their value per style
        widget = widgets[f"decoding.{name}" if knob.creator else f"decoding.balanced.{name}"]
        assert (widget.label, widget.help, widget.value) == (knob.label, knob.help, getattr(PRESETS["balanced"], name))


def test_knobs_the_strategy_does_not_read_are_greyed_out(app):
    """Temperature, top-k, top-p and the seed could be set under beam search (the default style) and changed
    nothing; they are shown disabled until a strategy that reads them is chosen."""
    def disabled(style):
        widgets = [w for kind in (app.selectbox, app.number_input, app.checkbox, app.text_input) for w in kind]
        return {w.key.rsplit(".", 1)[1] for w in widgets if w.key.startswith(f"decoding.{style}.") and w.disabled}

    assert disabled("balanced") == {"temperature", "top_k", "top_p", "seed"}
    app.selectbox(key="decoding.balanced.strategy").set_value("sample").run()
    assert disabled("balanced") == {"num_beams", "length_penalty"}
    app.number_input(key="decoding.balanced.seed").set_value(7).run()
    app.selectbox(key="decoding.balanced.strategy").set_value("greedy").run()
    assert disabled("balanced") == {"num_beams", "length_penalty", "temperature", "top_k", "top_p", "seed",
                                    "num_variants"}
    assert any(c.value == "Greyed out: greedy decoding does not use these." for c in app.caption)
    no_exceptions(app)


def test_the_strategy_is_named_in_words_and_greedy_takes_a_style_with_variants(app):
    """The Strategy box showed "beam", "sample", "greedy" while its help and the errors said "beam search",
    "sampling", "greedy decoding"; Creative (three variants) switched to greedy was refused."""
    strategy = app.selectbox(key="decoding.balanced.strategy")
    assert strategy.options == ["greedy decoding", "beam search", "sampling"] and strategy.value == "beam"
    assert any(c.value == "Greyed out: beam search does not use these." for c in app.caption)
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    app.selectbox(key="decoding.preset").set_value("creative").run()
    app.selectbox(key="decoding.creative.strategy").set_value("greedy").run()
    no_exceptions(app)
    assert not app.error and app.number_input(key="decoding.creative.num_variants").disabled
    assert not app.button(key="create.generate").disabled


def test_impossible_decoding_settings_show_a_message(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    app.number_input(key="decoding.balanced.num_variants").set_value(3).run()  # balanced: beam, 4 beams
    app.number_input(key="decoding.balanced.num_beams").set_value(2).run()
    no_exceptions(app)
    assert any("variant" in e.value.lower() for e in app.error)
    assert app.button(key="create.generate").disabled


def test_card_counts_previews_and_offers_a_copy_of_the_edited_text(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    long_text = "Sunny day at the beach with friends " * 5 + " ".join(f"#tag{i}" for i in range(6))
    box.set_value(long_text).run()
    assert any(c.value == long_text for c in app.code)  # the copy-friendly view
    counter = next(c.value for c in app.caption if "hashtags" in c.value and f"{len(long_text):,}" in c.value)
    assert ":red[6 / 5 hashtags]" in counter  # over Instagram's 2026 limit of 5, shown in red
    assert f"{len(long_text):,} / 2,200 characters" in counter and ":red[" + f"{len(long_text):,}" not in counter
    preview = next(t.value for t in app.text if t.value.endswith("… more"))  # plain text, not Markdown
    assert long_text.startswith(preview.removesuffix("… more")) and len(preview) < len(long_text)
    # Saving keeps the caption as written and warns that Instagram will refuse it.
    app.button(key=box.key + ".save").click().run()
    no_exceptions(app)
    assert any("6 hashtags; Instagram allows 5" in w.value and w.value.startswith("Saved")
               for w in app.warning)
    box = card_text_areas(app)[0]
    box.set_value(long_text.rsplit(" ", 1)[0]).run()  # five hashtags: within the limit, not red
    counter = next(c.value for c in app.caption if "hashtags" in c.value and "5 / 5" in c.value)
    assert ":red[5 / 5" not in counter


def test_mentions_are_counted_once_there_are_any_and_red_past_twenty(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    manual.set_value("Morning run #run").run()
    assert not any("@mentions" in c.value for c in app.caption)  # no mentions: no counter
    manual.set_value("Thanks " + " ".join(f"@friend{i}" for i in range(21))).run()
    assert any(":red[21 / 20 @mentions]" in c.value for c in app.caption)


def test_manual_caption_is_counted_and_warned_about(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    text = "My own words #a #b #c #d #e #f"
    manual.set_value(text).run()
    assert any(":red[6 / 5 hashtags]" in c.value for c in app.caption)
    app.button(key=manual.key + ".save").click().run()
    no_exceptions(app)
    assert any("6 hashtags; Instagram allows 5" in w.value for w in app.warning)
    assert [c.text for c in rows(db_url, Caption)] == [text]  # saved as written: the person decides


def test_limits_come_from_the_configuration(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    monkeypatch.setenv("IGCAP_INSTAGRAM_MAX_HASHTAGS", "10")
    monkeypatch.setenv("IGCAP_INSTAGRAM_MAX_CHARS", "20")
    at = upload(AppTest.from_file(APP, default_timeout=TIMEOUT).run(),
                ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in at.text_area if t.key.startswith("manual.")]
    manual.set_value("My own words and more #a #b #c #d #e #f").run()
    counter = next(c.value for c in at.caption if " hashtags" in c.value and " / " in c.value)
    assert "6 / 10 hashtags" in counter and ":red[6 / 10" not in counter
    assert ":red[39 / 20 characters]" in counter


def test_regenerate_replaces_one_card_and_keeps_edits_elsewhere(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    first, second = card_text_areas(app)[:2]
    second.set_value("Keep this edit").run()
    app.button(key=first.key.replace(".v0.text", ".regenerate")).click().run()
    no_exceptions(app)
    keys = [t.key for t in card_text_areas(app)]
    assert first.key not in keys and len(keys) == 4  # a fresh card for that model
    assert app.text_area(key=second.key).value == "Keep this edit"


def test_large_upload_is_kept_at_1080_pixels(app, db_url):
    upload(app, ("big.png", builders.photo_bytes("PNG", size=(2400, 1600)), "image/png"))
    photo = next(iter(app.session_state["create.photos"].values()))
    assert photo.image.size == (1080, 720) and (photo.width, photo.height) == (2400, 1600)


def upload_and_shoot(app):
    """A red photo uploaded and a green one taken with the camera."""
    upload(app, ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg"))
    app.toggle(key="create.use_camera").set_value(True).run()
    app.camera_input(key="create.camera").set_value(("shot.jpg", builders.photo_bytes(colour="green"),
                                                     "image/jpeg")).run()


def test_camera_photo_joins_the_uploads(app):
    upload_and_shoot(app)
    no_exceptions(app)
    assert len(app.image) == 2
    generate(app)
    assert len(card_text_areas(app)) == 2 * 4


def test_a_camera_photo_stays_with_its_edits_after_the_camera_is_turned_off(app):
    """Camera off, then another upload: the shot was dropped with its cards and the edit on them."""
    upload_and_shoot(app)
    generate(app)
    edited = card_text_areas(app)[-1]
    edited.set_value("my words for the camera shot").run()
    app.toggle(key="create.use_camera").set_value(False).run()
    upload(app, ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg"),
           ("blue.jpg", builders.photo_bytes(colour="blue"), "image/jpeg"))
    no_exceptions(app)
    assert len(app.image) == 3
    assert "my words for the camera shot" in [t.value for t in card_text_areas(app)]


def test_unsaved_edits_survive_a_visit_to_another_page(app):
    from tests.pages.conftest import open_page

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Half-finished edit").run()
    at = open_page(open_page(app, "gallery.py"), "create.py")
    assert at.text_area(key=box.key).value == "Half-finished edit"


def test_removing_an_upload_removes_its_photo_and_clear_empties_the_rest(app):
    from tests.pages.conftest import open_page

    red = ("a.jpg", builders.photo_bytes(colour="red"), "image/jpeg")
    blue = ("b.jpg", builders.photo_bytes(colour="blue"), "image/jpeg")
    upload(app, red, blue)
    assert len(app.image) == 2
    upload(app, red)
    assert len(app.image) == 1
    at = open_page(open_page(app, "models.py"), "create.py")  # the uploader comes back empty …
    assert len(at.image) == 1  # … the photo stays
    at.button(key="create.clear_photos").click().run()
    assert len(at.image) == 0


def test_a_session_takes_at_most_max_photos_and_says_why_not_more(app):
    """Issue 12 item 1: uploads per session are bounded (count and bytes) before anything is decoded."""
    from igcap_ui.photos import MAX_PHOTOS

    files = [(f"p{i:02d}.jpg", builders.photo_bytes(size=(40 + i, 30)), "image/jpeg") for i in range(MAX_PHOTOS + 2)]
    upload(app, *files)
    no_exceptions(app)
    assert len(app.image) == MAX_PHOTOS
    refused = [e.value for e in app.error]
    assert len(refused) == 2 and all(f"at most {MAX_PHOTOS} photos" in m for m in refused)
    assert "p20" in refused[0] and "p21" in refused[1]


def test_a_large_photo_is_decoded_at_1080_pixels_with_its_size_as_taken(app):
    from PIL import Image

    upload(app, ("wide.png", builders.photo_bytes("PNG", size=(3000, 2000), mode="RGBA", colour=(0, 0, 255, 128)),
                 "image/png"))
    no_exceptions(app)
    [photo] = app.session_state["create.photos"].values()
    assert photo.image.size == (1080, 720) and (photo.width, photo.height) == (3000, 2000)
    assert photo.image.mode == "RGB" and photo.image.getpixel((5, 5)) == (127, 127, 255)
    assert isinstance(photo.image, Image.Image)
def add_set(at, name, tags):
    at.text_input(key="hashtags.new_name").set_value(name)
    at.text_input(key="hashtags.new_tags").set_value(tags)
    next(b for b in at.button if b.label == "💾 Save set").click().run()
    no_exceptions(at)
    return at


def test_saving_a_set_says_what_was_saved_and_warns_past_the_hashtag_limit(app):
    """It was saved without a word (the tags read differently from what was typed, and a 40-tag set passed)."""
    add_set(app, "Travel", "travel, no hash; #ok #ok")
    assert any(shown(s.value) == "Saved “travel”: #travel #no #hash #ok" for s in app.success)
    add_set(app, "many", " ".join(f"#t{i}" for i in range(8)))
    assert any("This set has 8 hashtags and Instagram allows 5 per post" in w.value for w in app.warning)
    app.run()
    assert not app.success and not app.warning  # said once


def test_hashtag_sets_are_saved_and_added_to_a_caption_within_the_limit(app, db_url):
    from db import hashtag_sets

    add_set(app, "Travel", "#travel wanderlust, #roadtrip")
    add_set(app, "bad", "good-vibes")  # refused with a reason; what was typed stays
    assert any("not a hashtag" in e.value for e in app.error)
    assert app.text_input(key="hashtags.new_tags").value == "good-vibes"
    engine = make_engine(db_url)
    with transaction(engine, write=False) as session:
        assert [(s.name, s.tags) for s in hashtag_sets.list_sets(session=session)] == [
            ("travel", "#travel #wanderlust #roadtrip")]

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Road day #sun #sea #sand #Travel").run()
    app.selectbox(key=box.key + ".sets").set_value("travel").run()
    no_exceptions(app)
    assert app.selectbox(key=box.key + ".sets").value is None  # ready for another set
    text = app.text_area(key=box.key).value
    assert text == "Road day #sun #sea #sand #Travel #wanderlust"  # 5 hashtags: #roadtrip left out
    assert any("Left out #roadtrip" in shown(c.value) for c in app.caption)
    assert any("5 / 5 hashtags" in c.value for c in app.caption)
    # The added text is the card's text: saving stores it.
    app.button(key=box.key + ".save").click().run()
    assert [c.text for c in rows(db_url, Caption)] == [text]

    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    app.selectbox(key=manual.key + ".sets").set_value("travel").run()
    assert app.text_area(key=manual.key).value == "#travel #wanderlust #roadtrip"


def test_sets_saved_or_deleted_in_another_tab_appear_on_the_next_run(saved, app):
    """Each session kept its own copy of the sets, read again only after its own save or delete: a set saved in
    another tab never appeared (no chooser under the gallery's captions, not listed on Create)."""
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT, open_page

    other = open_page(AppTest.from_file(APP, default_timeout=TIMEOUT).run(), "gallery.py")
    assert not [s for s in other.selectbox if s.key.endswith(".sets")]
    add_set(app, "travel", "#travel #wanderlust")  # this tab, Create page (shared: no sign-in)
    other.run()
    assert [s for s in other.selectbox if s.key.endswith(".sets")]  # a chooser under each caption
    other = open_page(other, "create.py")
    assert any(t.value == "travel: #travel #wanderlust" for t in other.text)
    next(b for b in app.button if b.key == "hashtags.delete.travel").click().run()
    other.run()
    assert not [t for t in other.text if t.value.startswith("travel:")]


def test_the_note_after_adding_a_set_shows_the_tags_as_typed(app):
    add_set(app, "under", "#__sun__ #_sea_")  # underscores: Markdown's bold and italics
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    app.selectbox(key=manual.key + ".sets").set_value("under").run()
    no_exceptions(app)
    assert any(shown(c.value) == "Added #__sun__ #_sea_." for c in app.caption)


def test_a_hashtag_set_can_be_deleted(app, db_url):
    add_set(app, "food", "#foodie")
    add_set(app, "**big** [x](y)", "#a")  # a name is shown as typed, never as Markdown
    assert any(t.value == "food: #foodie" for t in app.text)
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    chooser = app.selectbox(key=manual.key + ".sets")
    assert "**big** [x](y): #a" in chooser.options  # a select box shows text as it is, never as Markdown
    app.button(key="hashtags.delete.food").click().run()
    no_exceptions(app)
    assert not any(t.value.startswith("food:") for t in app.text)


def test_three_more_like_this_adds_sampled_variants_to_one_card(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)  # fast: greedy, one caption per card
    first = card_text_areas(app)[0]
    card = first.key.split(".")[0]
    others = {t.key: t.value for t in card_text_areas(app) if not t.key.startswith(card + ".")}
    app.button(key=f"{card}.more").click().run()
    no_exceptions(app)
    mine = [t for t in card_text_areas(app) if t.key.startswith(card + ".")]
    assert [t.key for t in mine] == [f"{card}.v{i}.text" for i in range(4)]  # the caption, then three more
    assert [t.label for t in mine][1:] == [f"Variant {i} (more like this)" for i in (2, 3, 4)]
    assert {t.key: t.value for t in card_text_areas(app) if not t.key.startswith(card + ".")} == others
    app.button(key=f"{card}.v2.text.save").click().run()
    [saved] = rows(db_url, Caption)
    assert saved.text == app.text_area(key=f"{card}.v2.text").value
    assert (saved.settings["strategy"], saved.settings["num_variants"]) == ("sample", 3)
    assert saved.settings["seed"] is not None and saved.settings["no_repeat_ngram_size"] == 3  # fast's own


def test_start_with_emoji_and_length_on_the_create_page(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    app.selectbox(key="decoding.preset").set_value(FAST).run()
    app.selectbox(key="decoding.length").set_value("short").run()
    assert app.number_input(key="decoding.fast.short.max_new_tokens").value == 16  # the advanced knobs follow
    app.text_input(key="decoding.start_with").set_value("Sunset 🌅 with").run()
    app.number_input(key="decoding.max_emoji").set_value(1).run()
    app.button(key="create.generate").click().run()
    no_exceptions(app)
    texts = [t.value for t in card_text_areas(app)]
    assert len(texts) == 4 and all(t.startswith("Sunset 🌅 with") and t.count("🌅") == 1 for t in texts)
    # The settings saved with a caption say how it was made.
    box = card_text_areas(app)[0]
    app.button(key=box.key + ".save").click().run()
    [saved] = rows(db_url, Caption)
    assert (saved.settings["start_with"], saved.settings["max_emoji"], saved.settings["max_new_tokens"]) == \
        ("Sunset 🌅 with", 1, 16)


def test_a_request_over_the_captions_limit_is_refused_with_the_limit(app_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    monkeypatch.setenv("IGCAP_MAX_CAPTIONS_PER_JOB", "3")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    upload(at, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(at)  # one photo × four models = four captions
    assert any("4 captions" in e.value and "at most 3" in e.value for e in at.error)
    assert not card_text_areas(at)


def _queue_and_slot():
    """The app's shared queue, with its one slot taken by another session's running job."""
    from igcap.generation_queue import JobSize
    from igcap_ui import resources

    queue = resources.generation_queue()
    other = queue.submit("another session", JobSize(1, 1))
    assert other.wait_turn(0)
    return queue, other


def test_a_generation_waits_for_its_turn_then_draws_its_cards(app):
    import threading
    import time

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    app.selectbox(key="decoding.preset").set_value(FAST).run()
    queue, other = _queue_and_slot()
    session = threading.Thread(target=lambda: app.button(key="create.generate").click().run())
    session.start()
    deadline = time.monotonic() + 60
    while queue.waiting() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    assert queue.waiting() == 1 and session.is_alive()  # it waits while the other job runs
    other.finish()
    session.join(timeout=120)
    no_exceptions(app)
    assert len(card_text_areas(app)) == 4
    assert app.status[0].label.startswith("Done: 4 of 4")
    assert queue.waiting() == 0 and queue.running() == 0


def test_a_session_stopped_while_waiting_does_not_hold_up_the_line(app):
    """A stopped run (Streamlit stops a run on every click by default, and when a tab closes) keeps its
    place for the next run of the page; nobody asking for it, it lets a session that is still asking take a
    free slot first (igcap.generation_queue.QueueLimits.present_within)."""
    import time

    import pytest

    from igcap.generation_queue import JobSize

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    queue, other = _queue_and_slot()
    with pytest.raises(RuntimeError, match="timed out"):  # AppTest stops the script, as a closed tab does
        app.button(key="create.generate").click().run(timeout=3)
    assert queue.waiting() == 1 and queue.running() == 1
    other.finish()
    behind = queue.submit("a session still asking", JobSize(1, 1))
    deadline = time.monotonic() + 10
    while not behind.wait_turn(0.2):
        assert time.monotonic() < deadline, "the stopped session's job held the free slot"
    behind.finish()


def test_model_choice_and_style_survive_a_visit_to_another_page(app):
    from tests.pages.conftest import open_page

    app.multiselect(key="create.models").set_value(["nlpconnect-all"]).run()
    app.selectbox(key="decoding.preset").set_value("creative").run()
    app.number_input(key="decoding.creative.temperature").set_value(0.6).run()
    at = open_page(open_page(app, "gallery.py"), "create.py")
    no_exceptions(at)
    assert at.multiselect(key="create.models").value == ["nlpconnect-all"]
    assert at.selectbox(key="decoding.preset").value == "creative"
    assert at.number_input(key="decoding.creative.temperature").value == 0.6


def test_adding_a_photo_captions_only_the_new_photo_and_keeps_edits(app):
    red = ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg")
    upload(app, red)
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("A 282-character edit I have not saved yet").run()
    before = {t.key for t in card_text_areas(app)}
    upload(app, red, ("blue.jpg", builders.photo_bytes(colour="blue"), "image/jpeg"))
    generate(app)
    keys = {t.key for t in card_text_areas(app)}
    assert before <= keys and len(keys) == 8  # the red photo's cards were not written again
    assert app.text_area(key=box.key).value == "A 282-character edit I have not saved yet"


def test_regenerate_all_keeps_unsaved_edits_and_says_so(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    edited, other = card_text_areas(app)[:2]
    edited.set_value("My unsaved edit").run()
    assert app.button(key="create.generate").disabled  # every photo has its captions: nothing new to write
    app.button(key="create.regenerate_all").click().run()
    no_exceptions(app)
    keys = [t.key for t in card_text_areas(app)]
    assert edited.key in keys and app.text_area(key=edited.key).value == "My unsaved edit"
    assert other.key not in keys and len(keys) == 4  # the unedited cards were written again
    assert any("unsaved" in i.value.lower() for i in [*app.info, *app.warning])


def test_saved_badge_turns_into_unsaved_changes_after_an_edit(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    app.button(key=f"{box.key}.save").click().run()
    assert any("Saved in the gallery" in c.value for c in app.caption)
    app.text_area(key=box.key).set_value("Changed after saving").run()
    assert not any("Saved in the gallery" in c.value for c in app.caption)
    assert any("Unsaved changes" in c.value for c in app.caption)
    app.button(key=f"{box.key}.save").click().run()
    assert any("Saved in the gallery" in c.value for c in app.caption)
    assert [c.text for c in rows(db_url, Caption)] == ["Changed after saving"]


def test_save_buttons_are_never_disabled_so_one_click_saves_what_is_typed(app, db_url):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    button = app.button(key=f"{manual.key}.save")
    assert not button.disabled  # a disabled button swallows the click that also commits the text box
    button.click().run()
    assert any("Write a caption" in w.value for w in app.warning) and rows(db_url, Caption) == []


def test_hand_written_caption_gets_counter_preview_and_copy(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    manual.set_value("First line #one\nSecond line").run()
    assert any("27 / 2,200 characters" in c.value for c in app.caption)
    assert any(c.value == "First line #one\nSecond line" for c in app.code)  # the copy view


def test_preview_keeps_line_breaks_and_shows_text_as_typed(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Night flight :rainbow:\n\n*over* the city").run()
    assert any(t.value == "Night flight :rainbow:\n\n*over* the city" for t in app.text)  # plain, line breaks kept


def test_regenerate_under_a_deterministic_style_says_why_the_text_is_the_same(app):
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)  # Fast: one greedy pass
    first = card_text_areas(app)[0]
    before = first.value
    app.button(key=first.key.replace(".v0.text", ".regenerate")).click().run()
    no_exceptions(app)
    assert card_text_areas(app)[0].value == before
    assert any("deterministic" in i.value and "Creative" in i.value for i in app.info)


def test_removing_a_refused_file_removes_its_message(app):
    from tests.pages.conftest import open_page

    good = ("red.jpg", builders.photo_bytes(), "image/jpeg")
    upload(app, good, ("notes.jpg", b"this is not a photo", "image/jpeg"))
    assert any("notes" in e.value for e in app.error)  # the name is escaped Markdown (notes\\.jpg)
    upload(app, good)
    assert not any("notes" in e.value for e in app.error)
    upload(app, good, ("notes.jpg", b"this is not a photo", "image/jpeg"))
    at = open_page(open_page(app, "gallery.py"), "create.py")  # the uploader comes back empty …
    assert len(at.image) == 1 and not any("notes" in e.value for e in at.error)  # … no stale message


def test_a_byte_identical_duplicate_is_named(app):
    data = builders.photo_bytes()
    upload(app, ("IMG_0001.jpg", data, "image/jpeg"), ("copy of IMG_0001.jpg", data, "image/jpeg"))
    assert len(app.image) == 1
    said = [i.value.replace("\\", "") for i in app.info]  # the names are escaped Markdown
    assert any("copy of IMG_0001.jpg" in s and "same photo as IMG_0001.jpg" in s for s in said)


def test_demo_models_appear_without_restart_and_are_chosen_when_the_hub_cannot_be_reached(
        app_env, monkeypatch, tmp_path, tiny_model_dir):
    """No HF_HUB_OFFLINE, the hub unreachable, the four hub models not downloaded: the app says so, ticks
    nothing it cannot run, lists demo models made while it runs, and ticks them in a new session."""
    import socket

    from huggingface_hub import constants
    from streamlit.testing.v1 import AppTest

    from igcap import hub
    from tests.pages.conftest import APP, TIMEOUT
    from tests.pages.test_models import make_demo_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    hub.forget()
    for key in builders.REAL_REPOS:
        monkeypatch.setenv("IGCAP_MODEL_" + key.upper().replace("-", "_"), f"nobody/not-downloaded-{key}")
    demo_dir = tmp_path / "demo-models"
    demo_dir.mkdir()
    monkeypatch.setenv("IGCAP_DEMO_MODELS_DIR", str(demo_dir))
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        no_exceptions(at)
        assert any("cannot be reached" in w.value for w in at.warning)
        assert at.multiselect(key="create.models").value == []
        key = make_demo_model(demo_dir, tiny_model_dir)  # `python -m igcap demo-models` while the app runs
        at.run()
        assert "Demo: Shapes (synthetic shapes)" in at.multiselect(key="create.models").options
        fresh = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        assert fresh.multiselect(key="create.models").value == [key]
    finally:
        hub.forget()


def test_a_reload_keeps_photos_cards_edits_and_hand_written_text(app):
    """A browser reload is a new Streamlit session: the person's draft brings the work back."""
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    upload(app, ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Half-written caption, not saved").run()
    [manual] = [t for t in app.text_area if t.key.startswith("manual.")]
    manual.set_value("My own words").run()
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(reloaded)
    assert len(reloaded.image) == 1
    assert reloaded.text_area(key=box.key).value == "Half-written caption, not saved"
    assert len(card_text_areas(reloaded)) == 4
    assert reloaded.text_area(key=manual.key).value == "My own words"
    # A new upload adds to the restored photo instead of replacing it, and captions only the new one.
    upload(reloaded, ("blue.jpg", builders.photo_bytes(colour="blue"), "image/jpeg"))
    assert len(reloaded.image) == 2
    generate(reloaded)
    assert reloaded.text_area(key=box.key).value == "Half-written caption, not saved"
    assert len(card_text_areas(reloaded)) == 8


def test_three_more_like_this_waits_its_turn_in_the_generation_queue(app, monkeypatch):
    """It called the captioner directly, beside the queue: IGCAP_JOBS_AT_ONCE and the per-session limit did
    not apply to it (Generate and Regenerate go through the queue)."""
    from igcap_ui import resources

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    card = card_text_areas(app)[0].key.split(".")[0]
    queue, sizes = resources.generation_queue(), []
    real = queue.run
    monkeypatch.setattr(queue, "run", lambda owner, size, work, **kw: sizes.append(size) or real(owner, size, work, **kw))
    app.button(key=f"{card}.more").click().run()
    no_exceptions(app)
    assert [(s.photos, s.models, s.variants) for s in sizes] == [(1, 1, 3)]
    assert len([t for t in card_text_areas(app) if t.key.startswith(card + ".")]) == 4


def test_a_photo_taken_out_of_the_uploader_with_captions_is_set_aside_and_put_back_with_its_edits(app):
    """The uploader can empty without the person touching it (a page the browser draws afresh): the next
    change dropped the photo, its cards and the edits. Now a photo with captions or text is set aside, named,
    with "Put back"; a photo without any still goes at once."""
    red = ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg")
    blue = ("blue.jpg", builders.photo_bytes(colour="blue"), "image/jpeg")
    upload(app, red)
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("An edit worth keeping").run()
    upload(app, blue)  # red.jpg gone from the uploader, blue.jpg (no captions yet) in
    no_exceptions(app)
    assert len(app.image) == 1 and not card_text_areas(app)
    assert any("red.jpg" in shown(w.value) and "Removed" in w.value for w in app.warning)
    app.file_uploader(key="create.upload").clear().run()  # blue.jpg had nothing: it just goes
    assert len(app.image) == 0 and not any("blue.jpg" in shown(w.value) for w in app.warning)
    app.button(key="create.put_back").click().run()
    no_exceptions(app)
    assert len(app.image) == 1 and not any("Removed" in w.value for w in app.warning)
    assert app.text_area(key=box.key).value == "An edit worth keeping" and len(card_text_areas(app)) == 4
    app.button(key="create.clear_photos").click().run()  # "Clear photos" sets them aside too
    assert len(app.image) == 0
    app.button(key="create.forget_removed").click().run()  # and forgetting them is the person's choice
    no_exceptions(app)
    assert len(app.image) == 0 and not any("Removed" in w.value for w in app.warning)


def test_photos_set_aside_come_back_after_a_reload(app):
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    upload(app, ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Edited, then the uploader emptied").run()
    app.file_uploader(key="create.upload").clear().run()
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(reloaded)
    assert any("red.jpg" in shown(w.value) for w in reloaded.warning)
    reloaded.button(key="create.put_back").click().run()
    assert reloaded.text_area(key=box.key).value == "Edited, then the uploader emptied"


def test_an_emptied_draft_keeps_the_earlier_one_and_offers_it_back(app):
    """The draft was rewritten as {"cards": {}, "photos": []} and a reload brought nothing back. Now an empty
    draft never replaces one with photos without keeping it (draft prev), offered on the empty page."""
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import APP, TIMEOUT

    upload(app, ("red.jpg", builders.photo_bytes(colour="red"), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Work from before").run()
    app.file_uploader(key="create.upload").clear().run()
    app.button(key="create.forget_removed").click().run()  # the page, and the draft, are empty now
    assert len(app.image) == 0
    assert any("Earlier work is kept: 1 photo(s) with 4 caption(s)" in i.value for i in app.info)
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(reloaded)
    assert len(reloaded.image) == 0
    reloaded.button(key="create.restore_earlier").click().run()
    no_exceptions(reloaded)
    assert len(reloaded.image) == 1 and len(card_text_areas(reloaded)) == 4
    assert reloaded.text_area(key=box.key).value == "Work from before"
    assert not any("Earlier work" in i.value for i in reloaded.info)
    again = AppTest.from_file(APP, default_timeout=TIMEOUT).run()  # and it is the draft again
    assert again.text_area(key=box.key).value == "Work from before"
    again.file_uploader(key="create.upload").set_value([]).run()
    again.button(key="create.clear_photos").click().run()
    again.button(key="create.forget_removed").click().run()
    again.button(key="create.discard_earlier").click().run()  # discarded for good
    assert not any("Earlier work" in i.value for i in again.info)
    assert not any("Earlier work" in i.value for i in AppTest.from_file(APP, default_timeout=TIMEOUT).run().info)


def test_a_card_whose_caption_was_edited_in_the_gallery_says_so_not_saved(app, db_url):
    """Save from a card, edit that caption in the Gallery (same tab), come back: the card said "✅ Saved in the
    gallery", and "Update saved caption" then blamed "another tab?". The label compares with the stored text."""
    from tests.pages.conftest import open_page

    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    box = card_text_areas(app)[0]
    box.set_value("Saved from the card").run()
    app.button(key=f"{box.key}.save").click().run()
    assert any("Saved in the gallery" in c.value for c in app.caption)
    [saved] = rows(db_url, Caption)
    at = open_page(app, "gallery.py")
    at.text_area(key=f"edit.{saved.id}").set_value("Edited in the gallery").run()
    at.button(key=f"edit.{saved.id}.save").click().run()
    at = open_page(at, "create.py")
    no_exceptions(at)
    assert at.text_area(key=box.key).value == "Saved from the card"
    labels = [c.value for c in at.caption if "gallery" in c.value.lower()]
    assert not any("Saved in the gallery" in label for label in labels)
    assert any("Changed in the Gallery or in another tab" in label for label in labels)
    at.button(key=f"{box.key}.save").click().run()
    assert any("changed in the Gallery or in another tab" in e.value for e in at.error)
    assert [c.text for c in rows(db_url, Caption)] == ["Edited in the gallery"]
    at.text_area(key=box.key).set_value("Edited in the gallery").run()  # the same text as the gallery's: saved
    assert any("Saved in the gallery" in c.value for c in at.caption)


def test_when_generate_ends_the_buttons_show_what_is_left_to_do(app):
    """The buttons were drawn before the captions were written: "✨ Generate" stayed enabled and "🔄 Regenerate
    all" missing until the next click. The page is drawn once more when a generation ends, keeping its report."""
    upload(app, ("red.jpg", builders.photo_bytes(), "image/jpeg"))
    generate(app)
    assert app.button(key="create.generate").disabled
    assert [b for b in app.button if b.key == "create.regenerate_all"]
    assert app.status[0].label.startswith("Done: 4 of 4") and app.status[0].state == "complete"
    assert len(card_text_areas(app)) == 4
    card = card_text_areas(app)[0]
    card.set_value("Kept through Regenerate all").run()
    app.button(key="create.regenerate_all").click().run()
    no_exceptions(app)
    assert any("Kept 1 caption(s) with unsaved edits" in i.value for i in app.info)  # said after the redraw too
    assert app.text_area(key=card.key).value == "Kept through Regenerate all"
