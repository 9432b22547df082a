"""Streamlit's real st.login against a local OpenID Connect provider, in headless Chromium.

The provider (tests/e2e/oidc_provider.py) runs on 127.0.0.1 with four test users; the app gets an
``[auth]`` section pointing at it and ``[access]`` roles. Each person uses their own browser context
(their own cookies): a creator signs in, uploads and saves, sees only their own photo and rates as
themselves; the owner sees everyone's; a wrong password and an e-mail on no list are refused.
"""

from __future__ import annotations

import secrets as random
from pathlib import Path

import pytest
from sqlalchemy import select

from db import Photo, Rating, make_engine, repo, transaction, upgrade
from tests import builders
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, serve_app
from tests.e2e.oidc_provider import CLIENT_ID, CLIENT_SECRET, RunningProvider, IdpUser
from tests.e2e.test_browser import settle, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANA = IdpUser("ana@example.org", "ana-password", "Ana Owner")
BEN = IdpUser("ben@example.org", "ben-password", "Ben Creator")
KIM = IdpUser("kim@uni.example", "kim-password", "Kim Rater")
MALLORY = IdpUser("mallory@evil.example", "mallory-password", "Mallory")
ANA_CAPTION = "Ana's private sunrise, not for Ben"
BEN_CAPTION = "Ben's own caption #mine"
OLD_CAPTION = "Saved before sign-in existed"


def secrets_toml(app_port: int, metadata_url: str) -> str:
    return f"""
[auth]
redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"
cookie_secret = "{random.token_hex(32)}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
server_metadata_url = "{metadata_url}"

[access]
owner = ["{ANA.email}"]
creator = ["{BEN.email}"]
rater = ["@uni.example"]
"""


@pytest.fixture(scope="module")
def signed_app(hub_cache, tmp_path_factory):
    """(app url, database url, provider) with Ana's photo already saved in the database."""
    work = tmp_path_factory.mktemp("e2e-sign-in")
    with RunningProvider([ANA, BEN, KIM, MALLORY]) as provider:
        port = free_port()
        secrets = work / "secrets.toml"
        secrets.write_text(secrets_toml(port, provider.metadata_url))
        db_url = f"sqlite:///{work / 'igcap-e2e.sqlite3'}"
        _save_anas_photo(db_url)
        with serve_app(work, hub_cache, port=port, secrets=secrets) as (url, served_db):
            assert served_db == db_url
            yield url, db_url, provider


def _save_anas_photo(db_url: str) -> None:
    """Ana's photo, and one from before sign-in (owned by "local")."""
    from igcap.images import load_photo, resized_jpeg, thumbnail_jpeg

    engine = make_engine(db_url)
    upgrade(engine)
    with transaction(engine) as s:
        for owner, colour, text in ((ANA.email, "red", ANA_CAPTION), ("local", "green", OLD_CAPTION)):
            photo = load_photo(builders.photo_bytes(colour=colour), f"{colour}.jpg")
            row = repo.save_photo(session=s, owner=owner, sha256=photo.sha256, name=photo.name, width=photo.width,
                                  height=photo.height, format=photo.format, image_jpeg=resized_jpeg(photo.image),
                                  thumbnail_jpeg=thumbnail_jpeg(photo.image))
            repo.add_caption(session=s, photo=row, model_key="manual", text=text, favourite=True)
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser context per test: nobody shares another person's cookies."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def sign_in(page, url: str, user: IdpUser, password: str | None = None) -> None:
    """Open the app, press Sign in, and log in at the provider's form."""
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/authorize?*", timeout=30_000)
    page.locator("#email").fill(user.email)
    page.locator("#password").fill(password or user.password)
    page.locator("#submit").click()


def wait_for_app(page, heading: str) -> None:
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    settle(page)


def go_to(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).click()
    settle(page)


def test_app_asks_to_sign_in_and_shows_nothing_before(signed_app, page, screenshots):
    url, _, _ = signed_app
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    settle(page)
    shot(page, screenshots, "20-sign-in.png")
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == 0
    assert ANA_CAPTION not in page.content()


def test_wrong_password_is_refused_by_the_provider(signed_app, page, screenshots):
    url, _, provider = signed_app
    sign_in(page, url, BEN, password="not-bens-password")
    page.locator("#message", has_text="Wrong e-mail or password").wait_for()
    shot(page, screenshots, "21-wrong-password.png")
    assert "/authorize" in page.url  # still at the provider: no code, no way into the app
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)


def test_unknown_email_is_refused_politely(signed_app, page, screenshots):
    url, _, _ = signed_app
    sign_in(page, url, MALLORY)
    wait_for_app(page, "Ask the owner for access")
    shot(page, screenshots, "22-no-access.png")
    assert MALLORY.email in page.content()
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == 0
    assert ANA_CAPTION not in page.content()


def test_creator_signs_in_saves_sees_only_own_photos_and_rates_as_themselves(signed_app, page, screenshots,
                                                                           tmp_path):
    url, db_url, provider = signed_app
    sign_in(page, url, BEN)
    wait_for_app(page, "Create captions")
    assert "POST /token" in provider.log and "GET /jwks" in provider.log  # the real code flow ran
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Ben Creator (creator)").is_visible()
    assert page.get_by_label("Your name (for ratings)").count() == 0  # signed in: no name box
    # upload the same photo Ana has: Ben gets his own private copy
    photo = tmp_path / "ben.jpg"
    photo.write_bytes(builders.photo_bytes(colour="red"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.locator('[data-testid="stFileChipName"]', has_text="ben.jpg").wait_for()
    page.locator('[data-testid="stFileChipIconSpinner"]').wait_for(state="detached")
    settle(page)
    page.get_by_label("Write your own caption").fill(BEN_CAPTION)
    page.keyboard.press("Tab")  # the text area sends its value when it loses focus
    settle(page)
    page.get_by_role("button", name="Save my caption").click()
    settle(page)
    shot(page, screenshots, "23-creator-create.png")

    go_to(page, "Gallery")
    page.locator('[data-testid="stText"]', has_text=BEN_CAPTION).first.wait_for()  # captions are plain text
    assert ANA_CAPTION not in page.content() and OLD_CAPTION not in page.content()
    page.get_by_role("radio", name="4 out of 5 stars").click()
    settle(page)
    shot(page, screenshots, "24-creator-gallery.png")

    with transaction(make_engine(db_url), write=False) as s:
        photos = {p.owner: p for p in s.scalars(select(Photo))}
        assert set(photos) == {ANA.email, BEN.email, "local"}
        assert photos[ANA.email].sha256 == photos[BEN.email].sha256  # same photo, two private rows
        assert [(c.author, c.text) for c in photos[BEN.email].captions] == [(BEN.email, BEN_CAPTION)]
        ratings = [(r.caption.text, r.rater, r.stars) for r in s.scalars(select(Rating))]
    assert ratings == [(BEN_CAPTION, BEN.email, 4)]

    page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)


def test_owner_sees_everyones_photos(signed_app, page, screenshots):
    url, db_url, _ = signed_app
    sign_in(page, url, ANA)
    wait_for_app(page, "Create captions")
    go_to(page, "Gallery")
    page.locator('[data-testid="stText"]', has_text=ANA_CAPTION).first.wait_for()
    shot(page, screenshots, "25-owner-gallery.png")
    with transaction(make_engine(db_url), write=False) as s:
        captions = {p.owner: [c.text for c in p.captions] for p in s.scalars(select(Photo))}
    assert len(captions) >= 2  # Ana's and "local"'s; Ben's too once the creator test has run
    shown = page.locator("body").inner_text()
    for owner, texts in captions.items():
        assert all(text in shown for text in texts), owner
        assert owner == ANA.email or f"Uploaded by {owner}" in shown, owner
    assert page.get_by_role("button", name="Delete photo").count() == len(captions)  # may delete any


def test_rater_sees_no_gallery(signed_app, page, screenshots):
    url, _, _ = signed_app
    sign_in(page, url, KIM)
    wait_for_app(page, "Rate captions")
    shot(page, screenshots, "26-rater.png")
    links = " ".join(page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts())
    assert "Rate" in links and "Arena" in links
    assert not {"Gallery", "Create", "Studies"} & set(links.split())
    assert ANA_CAPTION not in page.content()


# ---------------------------------------------------------------- the password gate, in the browser

@pytest.fixture(scope="module")
def password_app(hub_cache, tmp_path_factory):
    from igcap.passwords import hash_password

    work = tmp_path_factory.mktemp("e2e-password")
    secrets = work / "secrets.toml"
    secrets.write_text(f"""
[access]
password_hash = "{hash_password('team password')}"
owner = ["Ana"]
creator = ["Ben"]
""")
    with serve_app(work, hub_cache, secrets=secrets) as (url, db_url):
        yield url, db_url


def password_sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Your name").fill(name)
    page.locator('input[type="password"]').fill(password)
    page.get_by_role("button", name="Sign in").click()
    settle(page)


def test_password_gate_in_the_browser(password_app, page, screenshots):
    url, _ = password_app
    password_sign_in(page, url, "Ben", "not the password")
    page.get_by_text("Wrong name or password.").wait_for()
    shot(page, screenshots, "27-password-wrong.png")
    assert page.locator('[data-testid="stSidebarNavLink"]').count() == 0

    password_sign_in(page, url, "Ben", "team password")
    wait_for_app(page, "Create captions")
    assert page.locator('[data-testid="stSidebar"]').get_by_text("Ben (creator)").is_visible()
    go_to(page, "Gallery")  # the name is kept for the session
    page.get_by_role("heading", name="Gallery").wait_for()
    shot(page, screenshots, "28-password-signed-in.png")
    page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Sign out").click()
    page.locator('input[type="password"]').wait_for(timeout=60_000)


def test_a_link_to_a_page_leads_there_through_the_password_form(password_app, page, screenshots):
    """A shared link (…/gallery) opened before signing in showed a "Page not found" dialog over the sign-in form,
    and signing in then landed on Create."""
    url, _ = password_app
    page.goto(url + "/gallery")
    page.locator('input[type="password"]').wait_for(timeout=60_000)
    settle(page)
    shot(page, screenshots, "29-password-link-to-gallery.png")
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_role("textbox", name="Your name").fill("Ben")
    page.locator('input[type="password"]').fill("team password")
    page.get_by_role("button", name="Sign in").click()
    wait_for_app(page, "Gallery")
    assert page.url.rstrip("/").endswith("/gallery")
