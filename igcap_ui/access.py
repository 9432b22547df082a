"""The sign-in gate every page passes first (streamlit_app.py calls :func:`gate` before navigation).

It reads ``[auth]`` and ``[access]`` from the secrets (policy: ``igcap.access``), then either asks for
OpenID Connect sign-in (``st.login``), shows the password form, or lets the local person in. A person
without a role gets a polite "ask the owner for access" page and nothing else. The identity of the
session is then :func:`current`; ``igcap_ui.rater.current_rater`` reads it for ratings.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

from igcap.access import (TYPED_NAME_MAX, AccessConfig, AccessConfigError, Identity, Mode, PasswordSession,
                          SessionEnd, SignInThrottle, hash_fingerprint, local_identity, normalise_name,
                          oidc_identity, password_identity, password_session_end, request_is_local)
from igcap_ui.plain import plain
from igcap_ui.secrets import SecretsError, read_secrets

log = logging.getLogger(__name__)

IDENTITY = "access.identity"  # the Identity of this session, set on every run by gate()
_PASSWORD_SESSION = "access.password_session"  # the PasswordSession of a password sign-in
_SESSION_ENDED = "access.session_ended"  # why the last password sign-in of this tab ended (SessionEnd)
ENDED_MESSAGES = {
    SessionEnd.CHANGED: "Your sign-in has ended because the password was changed. Sign in again.",
    SessionEnd.IDLE: "Your sign-in has ended after a while without use. Sign in again.",
}
SETUP = "README → Hosting igcap for a team"
OPEN_WARNING = ("**No sign-in is set up, and this app is reachable from other computers:** anyone with the "
                "link can see, change and delete every photo, caption and rating. To share igcap safely, "
                f"set up sign-in (OpenID Connect or a password) and roles in the secrets: {SETUP}.")


def gate() -> Identity:
    """The identity of this session; stops the script (after drawing the sign-in or refusal page) when
    the person may not go further."""
    try:
        config = AccessConfig.from_secrets(read_secrets())
        mode = config.mode(st.get_option("server.address"))
        if mode is Mode.LOCAL and not request_is_local(*_request()):
            mode = Mode.OPEN  # bound to loopback, but published by a tunnel or proxy: others can reach it
    except (AccessConfigError, SecretsError) as err:
        _no_pages()
        st.error(f"The sign-in settings in the secrets cannot be used: {plain(str(err).rstrip('.'))}. The app stays closed until "
                 "they are fixed.", icon="🔒")
        st.stop()
    if mode is Mode.OIDC:
        identity = _oidc(config)
    elif mode is Mode.PASSWORD:
        identity = _password(config)
    else:
        identity = local_identity(mode)
    st.session_state[IDENTITY] = identity
    if not identity.allowed:
        _no_pages()
        _no_access(identity)
        st.stop()
    return identity


def _request() -> tuple[dict[str, str], str | None]:
    """The browser's request headers and address, as far as Streamlit knows them (nothing in bare mode)."""
    try:
        headers = {k: v for k, v in dict(st.context.headers).items() if isinstance(k, str) and isinstance(v, str)}
    except Exception:  # noqa: BLE001 - no request: nothing says it came from elsewhere
        headers = {}
    address = st.context.ip_address
    return headers, address if isinstance(address, str) else None


def _no_pages() -> None:
    """Navigation with nothing in it but the sign-in page, under every page's address too: a link to a page
    (…/gallery) shows the sign-in form, not "Page not found", and after signing in the page itself."""
    from igcap_ui.navigation import PAGES

    st.navigation([st.Page(_nothing, title="Sign in", url_path="sign-in", default=True)]
                  + [st.Page(_nothing, title="Sign in", url_path=p.url_path) for p in PAGES], position="hidden")


def _nothing() -> None:
    pass


def current() -> Identity:
    """The identity gate() settled for this session (gate() runs first on every page)."""
    identity = st.session_state.get(IDENTITY)
    return identity if isinstance(identity, Identity) and identity.allowed else gate()


def require(check: str) -> Identity:
    """Every page calls this first: the identity, or a refusal when its role lacks ``check`` (an Identity
    property, e.g. "can_create"; navigation already hides such pages, this guards a direct link).
    Without sign-in on a reachable address it also draws the warning, so every page says it."""
    identity = current()
    open_warning(identity)
    if not getattr(identity, check):
        st.info("This page is not part of your role here. Ask the owner if you need it.", icon="🔒")
        st.stop()
    return identity


def open_warning(identity: Identity) -> None:
    if identity.mode is Mode.OPEN:
        st.warning(OPEN_WARNING, icon="🔓")


def identity_box(identity: Identity) -> None:
    """Who is signed in, in the sidebar, with a way out."""
    if not identity.signed_in:
        return
    st.sidebar.caption("Signed in as")
    st.sidebar.text(f"{identity.name} ({identity.role})")
    if st.sidebar.button("Sign out", key="access.sign_out"):
        sign_out(identity)


def sign_out(identity: Identity) -> None:
    if identity.mode is Mode.OIDC:
        st.session_state.pop(IDENTITY, None)
        st.logout()  # a new browser session follows: nothing of this one stays
    else:
        forget_session(st.session_state)
        st.rerun()


def forget_session(state) -> None:
    """A password sign-out keeps the browser session, so everything in it goes: the next person on this tab
    starts from nothing. Only the identity used to go; the photos, caption cards, typed captions and the
    "draft loaded" mark stayed, so the next person saw them and their first change wrote the previous
    person's photo into their own draft."""
    for key in list(state.keys()):
        try:
            del state[key]
        except KeyError:  # a widget's internal entry, gone with its keyed one
            pass


# ---------------------------------------------------------------- the two sign-in pages

def _oidc(config: AccessConfig) -> Identity:
    user = st.user.to_dict()
    if user.get("is_logged_in"):
        return oidc_identity(config, user)
    _no_pages()
    st.title("📸 igcap")
    st.write("This igcap is private. Sign in to continue.")
    for provider in config.oidc_providers or ("",):  # "": the provider set up in [auth] itself
        label = f"Sign in with {provider.capitalize()}" if provider else "Sign in"
        if st.button(label, type="primary", key=f"access.login.{provider or 'default'}"):
            try:
                st.login(provider) if provider else st.login()
            except Exception as err:  # noqa: BLE001 - e.g. Authlib missing: say so, no stack trace
                log.exception("st.login failed")
                st.error(f"Sign-in is not working on this server ({type(err).__name__}: {plain(err)}). "
                         f"The owner can check the [auth] secrets ({SETUP}).", icon="🔒")
    st.stop()


def _password(config: AccessConfig) -> Identity:
    session = st.session_state.get(_PASSWORD_SESSION)
    if isinstance(session, PasswordSession):
        now = time.monotonic()
        ended = password_session_end(config, session, now)
        if ended is None:
            st.session_state[_PASSWORD_SESSION] = session.used(now)
            return password_identity(config, session.name)
        forget_session(st.session_state)  # as a sign-out: the next person on this tab sees nothing of it
        st.session_state[_SESSION_ENDED] = ended
    _no_pages()
    st.title("📸 igcap")
    st.write("This igcap is private. Sign in with your name and the password you were given.")
    if ended := st.session_state.get(_SESSION_ENDED):
        st.info(ENDED_MESSAGES[SessionEnd(ended)], icon="🔒")
    with st.form("access.password_form"):
        typed = st.text_input("Your name", max_chars=TYPED_NAME_MAX, key="access.name",
                              help="Your ratings and photos are kept under this name; it stays for the session.")
        password = st.text_input("Password", type="password", key="access.password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted and not (normalise_name(typed) and password):
        st.error("Type your name and the password.", icon="🔒")  # not a guess: not counted against anyone
    elif submitted:
        own = normalise_name(typed) in config.person_hashes  # a password of their own: not held by the shared lock
        attempt = throttle().attempt(typed, lambda: _check_password(config, typed, password), shared=not own)
        if attempt.wait:
            st.error(f"Too many wrong passwords. Try again in {max(1, round(attempt.wait / 60))} minute(s).",
                     icon="⏳")
        elif attempt.ok:
            name = " ".join(typed.split())
            st.session_state[_PASSWORD_SESSION] = PasswordSession(
                name, hash_fingerprint(config.password_hash_for(name)), time.monotonic())
            st.session_state.pop("access.password", None)
            st.session_state.pop(_SESSION_ENDED, None)
            st.rerun()
        else:
            st.error("Wrong name or password.", icon="🔒")
    st.stop()


@st.cache_resource(show_spinner=False)
def throttle() -> SignInThrottle:
    """One record of failed sign-ins for the whole process: every session sees the same counts."""
    return SignInThrottle()


def _check_password(config: AccessConfig, name: str, password: str) -> bool:
    from igcap.passwords import PasswordHashError, dummy_hash, verify_password

    if not normalise_name(name) or not password:
        return False
    stored = config.password_hash_for(name)
    try:
        return verify_password(password, stored or dummy_hash()) and stored is not None
    except PasswordHashError as err:
        log.error("password hash in the secrets is unusable: %s", err)
        st.error(f"The password settings are damaged: {plain(err)}. Tell the owner.", icon="🔒")
        return False
    except ValueError as err:  # hashlib refusing the hash's parameters (e.g. "memory limit exceeded")
        log.error("password hash in the secrets cannot be checked: %s", err)
        st.error(f"The password settings cannot be used ({plain(err)}); make a new hash with "
                 "python -m igcap hash-password. Tell the owner.", icon="🔒")
        return False


def _no_access(identity: Identity) -> None:
    st.title("Ask the owner for access")
    st.write("You are signed in as")
    st.text(identity.name if identity.name == identity.id else f"{identity.name} ({identity.id})")
    if identity.mode is Mode.OIDC and "@" not in identity.id:
        st.write("Your sign-in did not share a verified e-mail address, which igcap needs to know who you are. "
                 "Ask the owner to check the provider's settings (the scope must include email).")
    else:
        st.write("This igcap is not shared with you yet. Ask the person who runs it to add your e-mail address "
                 "(or, with the password sign-in, your name) to a role in the app's settings; then sign in again.")
    if st.button("Sign out", key="access.refused_sign_out"):
        sign_out(identity)
