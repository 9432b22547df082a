"""The sign-in gate in the real app (AppTest): password form, OpenID Connect via st.user, roles, private galleries."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db import Photo, Rating, make_engine, repo, transaction, upgrade
from igcap.passwords import hash_password
from tests.pages.conftest import APP, ROOT, TIMEOUT, no_exceptions, open_page, server_address

ANA, BEN, KIM = "ana@example.org", "ben@example.org", "kim@uni.example"
CHEAP = dict(n=2**4, r=1, p=1)  # fast to check; the real default is checked in tests/igcap/test_access.py
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "c" * 32, "client_id": "igcap",
        "client_secret": "s3cret", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
ROLES = {"owner": [ANA, "Ana"], "creator": [BEN, "Ben"], "rater": ["@uni.example", "Kim"]}


def new_app(secrets: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    if user is not None:
        at.user = user
    return at


def signed_in(email: str, **extra) -> dict:
    """st.user as a provider that verifies addresses (Google, Auth0, Okta) fills it."""
    return {"is_logged_in": True, "email": email, "name": email.split("@")[0].title(), "email_verified": True, **extra}


def oidc_app(email: str | None) -> AppTest:
    return new_app({"auth": AUTH, "access": ROLES}, signed_in(email) if email else {"is_logged_in": False})


def texts(at) -> str:
    """Everything written on the page, with Markdown escapes undone (people's text is shown escaped)."""
    return " ".join(e.value for kind in ("markdown", "text", "caption", "title", "info", "warning", "error")
                    for e in getattr(at, kind)).replace("\\", "")


@pytest.fixture
def photos(app_env, db_url):
    """Three owners' photos (one caption each): Ana's, Ben's and one from before sign-in ("local")."""
    from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg
    from tests import builders

    engine = make_engine(db_url)
    upgrade(engine)
    ids = {}
    with transaction(engine) as session:
        for owner, colour in ((ANA, "red"), (BEN, "blue"), ("local", "green")):
            photo = load_photo(builders.photo_bytes(colour=colour), f"{colour}.jpg")
            row = repo.save_photo(session=session, owner=owner, sha256=photo.sha256, name=photo.name,
                                  width=photo.width, height=photo.height, format=photo.format,
                                  image_jpeg=resized_jpeg(photo.image), thumbnail_jpeg=thumbnail_jpeg(photo.image))
            ids[owner] = repo.add_caption(session=session, photo=row, model_key="manual",
                                          text=f"{colour} caption of {owner}", favourite=True).id
    engine.dispose()
    return ids


# ---------------------------------------------------------------- no sign-in configured

def test_local_use_needs_no_sign_in_and_shows_no_warning(app):
    no_exceptions(app)
    assert app.title[0].value.startswith("✍️")
    assert not [w for w in app.warning if "anyone with the link" in w.value]
    assert app.text_input(key="rater_name_input")  # the name box, as before


def test_a_local_app_published_through_a_tunnel_or_proxy_warns(app_env, monkeypatch):
    """Bound to loopback but reached through ngrok, cloudflared or nginx, the app took every visitor for the
    person at the keyboard, without a word."""
    from igcap_ui import access

    server_address("127.0.0.1")
    monkeypatch.setattr(access, "_request", lambda: ({"Host": "igcap.example.ngrok.app"}, "127.0.0.1"))
    at = new_app().run()
    no_exceptions(at)
    assert any("anyone with the link" in w.value for w in at.warning)


def test_reachable_without_sign_in_warns_on_every_page(app_env):
    server_address("0.0.0.0")
    at = new_app().run()
    no_exceptions(at)
    for page in ("create.py", "gallery.py", "models.py"):
        at = open_page(at, page)
        assert any("anyone with the link" in w.value and "Hosting" in w.value for w in at.warning), page


@pytest.fixture
def secrets_file(tmp_path):
    """A secrets.toml the app reads as `streamlit run` would (the file, not AppTest's own secrets)."""
    import streamlit as st
    from streamlit import config

    before = config.get_option("secrets.files")
    path = tmp_path / "secrets.toml"
    config.set_option("secrets.files", [str(path)])
    st.secrets._reset()
    yield path
    config.set_option("secrets.files", before)
    st.secrets._reset()


def test_a_secrets_file_that_does_not_parse_keeps_the_app_closed(app_env, secrets_file):
    """One missing quote in the secrets made the app run as if there were none: everyone came in as the owner
    (the sign-in settings and the database's address silently dropped)."""
    server_address("0.0.0.0")
    secrets_file.write_text('IGCAP_MAX_LOADED_MODELS = "2\n[access]\npassword_hash = "x"\nowner = ["Ana"]\n')
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    no_exceptions(at)
    assert any("secrets cannot be read" in e.value and "stays closed" in e.value for e in at.error)
    assert not at.text_area and not at.file_uploader  # no page at all
    secrets_file.write_text("[access]\npassword_hash = \"x\"\n")  # fixed: the sign-in form
    import streamlit as st
    st.secrets._reset()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert at.text_input(key="access.password") is not None and not at.error


def test_roles_with_no_way_to_sign_in_keep_the_app_closed(app_env):
    """Role lists with no sign-in beside them, or a sign-in table under a misspelt name, used to read as "no
    sign-in set up": the owner for everyone."""
    server_address("0.0.0.0")
    at = new_app({"access": ROLES}).run()
    no_exceptions(at)
    assert at.error and "no sign-in is set up" in texts(at)
    assert not at.file_uploader
    at = new_app({"acess": {"password_hash": "scrypt$x", **ROLES}}).run()  # the table's name misspelt
    no_exceptions(at)
    assert at.error and "looks like [access]" in texts(at)
    assert not at.file_uploader


# ---------------------------------------------------------------- the password gate

@pytest.fixture
def password_app(app_env):
    secrets = {"access": {"password_hash": hash_password("team password", **CHEAP),
                          "passwords": {"Ana": hash_password("ana's own", **CHEAP)}, **ROLES}}
    return new_app(secrets).run()


def sign_in(at, name: str, password: str):
    at.text_input(key="access.name").set_value(name)
    at.text_input(key="access.password").set_value(password)
    return at.button[0].click().run()  # the form's submit button


def test_password_gate_refuses_a_wrong_password_and_shows_nothing_else(password_app):
    at = password_app
    assert at.text_input(key="access.password") and not at.sidebar.text_input
    at = sign_in(at, "Ben", "wrong password")
    no_exceptions(at)
    assert any("Wrong name or password" in e.value for e in at.error)
    assert not any(t.value.startswith("✍️") for t in at.title)  # the Create page was not run
    at = sign_in(at, "Ana", "team password")  # Ana has her own password: the shared one is not hers
    assert any("Wrong name or password" in e.value for e in at.error)


def test_password_gate_lets_a_creator_in_under_their_name(password_app):
    at = sign_in(password_app, "  ben ", "team password")
    no_exceptions(at)
    assert at.title[0].value.startswith("✍️")
    assert not at.error
    with pytest.raises(KeyError):
        at.text_input(key="rater_name_input")  # signed in: no name box, the identity rates
    assert "ben (creator)" in texts(at)  # as typed, spaces collapsed
    at = open_page(at, "gallery.py")  # the name is chosen once per session
    no_exceptions(at)
    assert at.title[0].value.startswith("🖼️")


def test_password_gate_refuses_a_name_on_no_list(password_app):
    at = sign_in(password_app, "Mallory", "team password")
    no_exceptions(at)
    assert at.title[0].value == "Ask the owner for access"
    assert "Mallory" in texts(at)


def test_too_many_wrong_passwords_make_the_name_wait_even_with_the_right_one(password_app):
    at = password_app
    for _ in range(5):
        at = sign_in(at, "Ben", "guess")
    at = sign_in(at, "Ben", "team password")
    assert any("Too many wrong passwords" in e.value for e in at.error)
    assert not any(t.value.startswith("✍️") for t in at.title)
    at = sign_in(at, "Kim", "team password")  # another name is not held up
    no_exceptions(at)
    assert at.title[0].value.startswith("⭐")  # a rater starts on Rate


def test_changing_the_password_ends_the_sign_ins_it_let_in(app_env):
    secrets = {"access": {"password_hash": hash_password("team password", **CHEAP), **ROLES}}
    at = sign_in(new_app(secrets).run(), "Ben", "team password")
    assert at.title[0].value.startswith("✍️")
    at.secrets["access"] = {**secrets["access"], "password_hash": hash_password("new password", **CHEAP)}
    at = at.run()  # the next click after the owner changed a leaked password
    no_exceptions(at)
    assert not any(t.value.startswith("✍️") for t in at.title)
    assert at.text_input(key="access.password")
    assert any("password was changed" in e.value for e in at.info)
    at = sign_in(at, "Ben", "team password")
    assert any("Wrong name or password" in e.value for e in at.error)
    at = sign_in(at, "Ben", "new password")
    assert at.title[0].value.startswith("✍️") and not at.info


def test_a_password_sign_in_left_unused_ends(app_env):
    secrets = {"access": {"password_hash": hash_password("team password", **CHEAP), "session_hours": 0.0002,
                          **ROLES}}  # 0.72 s
    at = sign_in(new_app(secrets).run(), "Ben", "team password")
    assert at.title[0].value.startswith("✍️")
    time.sleep(1.0)
    at = at.run()
    no_exceptions(at)
    assert at.text_input(key="access.password")
    assert any("without use" in e.value for e in at.info)


def test_a_stronger_hash_than_the_default_signs_in(app_env):
    at = new_app({"access": {"password_hash": hash_password("team password", n=2**17, r=8, p=1), **ROLES}}).run()
    at = sign_in(at, "Ben", "team password")  # OWASP's N=2**17: "memory limit exceeded" on every sign-in before
    no_exceptions(at)
    assert at.title[0].value.startswith("✍️")


def test_a_hash_too_costly_to_check_or_a_failing_check_is_a_configuration_message(app_env, monkeypatch):
    parts = hash_password("team password", **CHEAP).split("$")
    parts[1:3] = [str(2**20), "8"]  # 1 GiB per sign-in
    at = sign_in(new_app({"access": {"password_hash": "$".join(parts), **ROLES}}).run(), "Ben", "team password")
    no_exceptions(at)
    assert "password settings are damaged" in texts(at) and "hash-password" in texts(at)

    import igcap.passwords

    def refused(*_args):
        raise ValueError("[digital envelope routines] memory limit exceeded")

    monkeypatch.setattr(igcap.passwords, "verify_password", refused)
    at = sign_in(password_app_for(), "Ben", "team password")
    no_exceptions(at)
    assert "password settings" in texts(at) and "memory limit exceeded" in texts(at)
    assert not any(t.value.startswith("✍️") for t in at.title)


def password_app_for() -> AppTest:
    return new_app({"access": {"password_hash": hash_password("team password", **CHEAP), **ROLES}}).run()


# ---------------------------------------------------------------- OpenID Connect (st.login / st.user)

def test_an_empty_sign_in_is_not_counted_as_a_wrong_password(password_app):
    """Empty submissions counted: thirty clicks on Sign in locked everyone out."""
    at = password_app
    for _ in range(31):
        at = sign_in(at, "", "")
    assert any("Type your name and the password" in e.value for e in at.error)
    at = sign_in(at, "Ben", "team password")
    no_exceptions(at)
    assert not at.error


def test_oidc_asks_to_sign_in_first(app_env):
    at = oidc_app(None).run()
    no_exceptions(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not any(t.value.startswith("✍️") for t in at.title)


def test_oidc_offers_the_default_provider_beside_named_ones(app_env):
    server_address("0.0.0.0")
    google = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    at = new_app({"auth": dict(AUTH, google=google), "access": ROLES}, {"is_logged_in": False}).run()
    no_exceptions(at)
    assert [b.label for b in at.button] == ["Sign in", "Sign in with Google"]


def test_oidc_unknown_email_is_refused_politely(app_env):
    at = oidc_app("mallory@evil.example").run()
    no_exceptions(at)
    assert at.title[0].value == "Ask the owner for access"
    assert "mallory@evil.example" in texts(at)
    assert [b.label for b in at.button] == ["Sign out"]


def test_oidc_unverified_email_is_refused(app_env):
    at = new_app({"auth": AUTH, "access": ROLES}, signed_in(ANA, email_verified=False)).run()
    assert at.title[0].value == "Ask the owner for access"


def test_creator_sees_only_their_own_photos(photos, app_env):
    at = open_page(oidc_app(BEN).run(), "gallery.py")
    no_exceptions(at)
    shown = texts(at)
    assert f"blue caption of {BEN}" in shown
    assert ANA not in shown.replace("Uploaded by", "") and "caption of local" not in shown
    assert len(at.image) == 1
    assert at.button(key=f"delete.{_photo_id(photos[BEN])}")


def test_owner_sees_everything_and_may_delete_any_photo(photos, app_env, db_url):
    at = open_page(oidc_app(ANA).run(), "gallery.py")
    no_exceptions(at)
    shown = texts(at)
    assert all(f"caption of {who}" in shown for who in (ANA, BEN, "local"))
    assert f"Uploaded by {BEN}" in shown and f"Uploaded by {ANA}" not in shown
    ben_photo = _photo_id(photos[BEN])
    at.button(key=f"delete.{ben_photo}").click().run()
    at.button(key=f"delete.{ben_photo}.yes").click().run()
    no_exceptions(at)
    with transaction(make_engine(db_url), write=False) as s:
        assert sorted(p.owner for p in s.scalars(select(Photo))) == [ANA, "local"]


def test_a_creator_cannot_wipe_a_study_by_deleting_their_photo_in_it(photos, app_env, db_url):
    """The owner put Ben's photo in a study; Ben's Gallery "Delete photo" took the study's captions, ratings and
    votes with it. Now it says why not and keeps everything."""
    from db import studies

    ben_photo = _photo_id(photos[BEN])
    with transaction(make_engine(db_url)) as s:
        study = studies.create_study(session=s, name="Blind test", models=["m1", "m2"], settings={"strategy": "greedy"},
                                     photo_ids=[ben_photo])
        caption = studies.save_study_caption(session=s, study=study, photo_id=ben_photo, model_key="m1", text="t")
        studies.rate_study_caption(session=s, study=study, caption_id=caption.id, rater=KIM, stars={"overall": 4})
    at = open_page(oidc_app(BEN).run(), "gallery.py")
    at.button(key=f"delete.{ben_photo}").click().run()
    at.button(key=f"delete.{ben_photo}.yes").click().run()
    no_exceptions(at)
    assert "part of the study “Blind test”" in texts(at)
    with transaction(make_engine(db_url), write=False) as s:
        assert ben_photo in [p.id for p in s.scalars(select(Photo))]
        assert [r.rater for r in s.scalars(select(Rating))] == [KIM]


def test_creator_rates_as_themselves(photos, app_env, db_url):
    at = open_page(oidc_app(BEN).run(), "gallery.py")
    cid = photos[BEN]
    at.feedback(key=f"stars.{cid}.{BEN}").set_value(4).run()
    no_exceptions(at)
    with transaction(make_engine(db_url), write=False) as s:
        assert [(r.caption_id, r.rater, r.stars) for r in s.scalars(select(Rating))] == [(cid, BEN, 5)]


def known_pages(new) -> list[str]:
    """The pages navigation offers a session made by ``new()``: those it opens (AppTest refuses the others)."""
    known = []
    for page in sorted(p.name for p in (ROOT / "app_pages").glob("*.py")):
        try:
            at = open_page(new().run(), page)
        except ValueError as err:
            assert "Known pages" in str(err), err
        else:
            no_exceptions(at)
            known.append(page)
    return known


def test_rater_sees_rate_and_arena_and_no_gallery_create_or_studies(photos, app_env):
    at = oidc_app(KIM).run()
    no_exceptions(at)
    assert at.title[0].value.startswith("⭐")  # a rater starts on Rate
    assert "caption of" not in texts(at)
    assert known_pages(lambda: oidc_app(KIM)) == ["arena.py", "rate.py"]  # no Gallery, Create, Studies, Evaluation, Models
    at = open_page(at, "arena.py")
    assert at.title[0].value.startswith("⚔️")


def test_creator_sees_no_studies_and_an_owner_does(app_env):
    assert known_pages(lambda: oidc_app(BEN)) == [
        "arena.py", "create.py", "evaluation.py", "gallery.py", "models.py", "rate.py"]
    owner = open_page(oidc_app(ANA).run(), "studies.py")
    no_exceptions(owner)
    assert owner.title[0].value.startswith("🧪")


def test_local_mode_offers_every_page(app_env):
    assert known_pages(new_app) == ["arena.py", "create.py", "evaluation.py", "gallery.py", "models.py", "rate.py",
                                "studies.py"]


def _photo_id(caption_id: int) -> int:
    import os

    with transaction(make_engine(os.environ["DATABASE_URL"]), write=False) as s:
        return repo.get_caption(session=s, caption_id=caption_id).photo_id


def test_two_creators_saving_the_same_photo_keep_separate_private_copies(app_env, db_url):
    from tests import builders

    for who in (BEN, ANA):
        at = oidc_app(who).run()
        at.file_uploader(key="create.upload").set_value([("same.jpg", builders.photo_bytes(), "image/jpeg")]).run()
        [manual] = [t for t in at.text_area if t.key.startswith("manual.")]
        manual.set_value(f"mine, says {who}").run()
        at.button(key=f"{manual.key}.save").click().run()
        no_exceptions(at)
    with transaction(make_engine(db_url), write=False) as s:
        rows = sorted((p.owner, [(c.author, c.text) for c in p.captions]) for p in s.scalars(select(Photo)))
    assert rows == [(ANA, [(ANA, f"mine, says {ANA}")]), (BEN, [(BEN, f"mine, says {BEN}")])]
    at = open_page(oidc_app(BEN).run(), "gallery.py")
    assert f"mine, says {BEN}" in texts(at) and f"mine, says {ANA}" not in texts(at)


def test_evaluation_counts_only_the_creators_own_captions(photos, app_env):
    def captions_counted(email):
        at = open_page(oidc_app(email).run(), "evaluation.py")
        no_exceptions(at)
        return at.dataframe[0].value["Captions"].sum()

    assert captions_counted(BEN) == 1
    assert captions_counted(ANA) == 3


def test_after_a_password_sign_out_the_next_person_on_the_tab_sees_nothing_of_the_last(password_app, tmp_path):
    """Sign-out kept the browser session and took only the identity out of it: the next person saw the last
    one's photos and typed caption, and their first change wrote that photo into their own draft."""
    import hashlib
    import json

    from tests import builders
    from tests.pages.test_create import upload

    at = sign_in(password_app, "Ben", "team password")
    upload(at, ("bens-private.jpg", builders.photo_bytes(), "image/jpeg"))
    [box] = [t for t in at.text_area if t.key.startswith("manual.")]
    box.set_value("Ben's secret draft").run()
    assert len(at.image) == 1
    at.button(key="access.sign_out").click().run()
    no_exceptions(at)
    assert at.text_input(key="access.password")  # the sign-in form again
    at = sign_in(at, "Ana", "ana's own")
    no_exceptions(at)
    assert at.title[0].value.startswith("✍️") and "Ana (owner)" in texts(at)
    assert not at.image and not [t.value for t in at.text_area if t.key.startswith("manual.") and t.value]
    upload(at, ("anas.jpg", builders.photo_bytes(colour="blue"), "image/jpeg"))  # a change: her draft is written
    draft = tmp_path / "data" / "drafts" / hashlib.sha256(b"user:ana").hexdigest()[:32] / "draft.json"
    names = [p["name"] for p in json.loads(draft.read_text())["photos"]]
    assert names == ["anas.jpg"]
