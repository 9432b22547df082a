"""The access policy (modes, allow-lists, roles, identities) and the password hashes behind the gate."""

from __future__ import annotations

import io
import threading
import time
import subprocess
import sys

import pytest

from igcap.access import (CREATOR, LOCAL_ID, OWNER, RATER, AccessConfig, AccessConfigError, Identity, Mode,
                          PasswordSession, SessionEnd, SignInThrottle, hash_fingerprint, is_local_address,
                          local_identity, normalise_name, oidc_identity, password_identity, password_session_end)
from igcap.cli import main
from igcap.passwords import PasswordHashError, hash_password, parse_hash, verify_password

FAST = dict(n=2**4, r=1, p=1)  # cheap parameters for tests that hash many times

AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "igcap",
        "client_secret": "s3cret", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
ROLES = {"owner": ["Ana@Example.org"], "creator": ["ben@example.org", "@studio.example"],
         "rater": ["*@uni.example", "Dana Lima"]}


# ---------------------------------------------------------------- passwords

def test_a_hash_checks_its_password_and_only_that():
    stored = hash_password("correct horse", **FAST)
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)


def test_hashes_are_salted_and_keep_their_parameters():
    a, b = hash_password("same", **FAST), hash_password("same", **FAST)
    assert a != b  # a fresh salt each time
    n, r, p, salt, key = parse_hash(a)
    assert (n, r, p, len(salt), len(key)) == (16, 1, 1, 16, 32)
    assert "same" not in a
    assert hash_password("pw", salt=b"s" * 16).split("$")[:4] == ["scrypt", "32768", "8", "1"]  # the defaults


@pytest.mark.parametrize("stored", ["", "plain-text-password", "scrypt$16$1$1$bm90$", "scrypt$15$1$1$c2FsdA==$"
                                    "a2V5a2V5a2V5a2V5a2V5", "bcrypt$16$1$1$c2FsdA==$a2V5", "scrypt$x$1$1$c2FsdA==$a2V5"])
def test_a_malformed_hash_is_a_configuration_error_not_a_match(stored):
    with pytest.raises(PasswordHashError, match="hash-password"):
        verify_password("anything", stored)


def test_cli_makes_a_hash_that_verifies(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long passphrase\n"))
    assert main(["hash-password", "--stdin"]) == 0
    stored = capsys.readouterr().out.strip()
    assert stored.startswith("scrypt$") and verify_password("a long passphrase", stored)


def test_cli_refuses_a_short_password(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["hash-password", "--stdin"]) == 2
    assert "too short" in capsys.readouterr().err


def test_cli_asks_twice_and_refuses_a_mismatch(monkeypatch, capsys):
    answers = iter(["first password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["hash-password"]) == 2
    assert "differ" in capsys.readouterr().err


def test_cli_is_listed_in_help():
    out = subprocess.run([sys.executable, "-m", "igcap", "--help"], capture_output=True, text=True).stdout
    assert "hash-password" in out


# ---------------------------------------------------------------- modes

@pytest.mark.parametrize("address, local", [("localhost", True), ("127.0.0.1", True), ("127.0.1.1", True),
                                            ("::1", True), ("[::1]", True), (None, False), ("", False),
                                            ("0.0.0.0", False), ("192.168.1.5", False), ("::", False),
                                            ("example.org", False)])
def test_only_loopback_addresses_count_as_local(address, local):
    assert is_local_address(address) is local


def test_mode_follows_what_is_configured():
    assert AccessConfig.from_secrets({}).mode("localhost") is Mode.LOCAL
    assert AccessConfig.from_secrets({}).mode(None) is Mode.OPEN  # Streamlit's default binds every interface
    assert AccessConfig.from_secrets({"access": {"password_hash": "scrypt$…"}}).mode(None) is Mode.PASSWORD
    assert AccessConfig.from_secrets({"access": {"passwords": {"Ana": "scrypt$…"}}}).mode("::1") is Mode.PASSWORD
    both = {"auth": AUTH, "access": {"password_hash": "scrypt$…"}}
    assert AccessConfig.from_secrets(both).mode("localhost") is Mode.OIDC  # the provider wins over the password


def test_oidc_with_a_named_provider():
    auth = {k: AUTH[k] for k in ("redirect_uri", "cookie_secret")}
    auth["google"] = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    config = AccessConfig.from_secrets({"auth": auth})
    assert config.oidc and config.oidc_providers == ("google",)


def test_a_provider_half_set_up_is_refused_not_dropped():
    """[auth.microsoft] without its secret, beside a complete [auth.google], was left out without a word."""
    auth = {k: AUTH[k] for k in ("redirect_uri", "cookie_secret")}
    auth["google"] = {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    auth["microsoft"] = {k: AUTH[k] for k in ("client_id", "server_metadata_url")}
    with pytest.raises(AccessConfigError, match=r"\[auth.microsoft\] is missing client_secret"):
        AccessConfig.from_secrets({"auth": auth})


def test_the_auth_sections_own_provider_is_offered_beside_named_ones():
    """A complete default provider in [auth] hid every named one."""
    auth = dict(AUTH, google={k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")})
    assert AccessConfig.from_secrets({"auth": auth}).oidc_providers == ("", "google")
    assert AccessConfig.from_secrets({"auth": AUTH}).oidc_providers == ()


@pytest.mark.parametrize("missing", ["redirect_uri", "cookie_secret", "client_id", "server_metadata_url"])
def test_incomplete_auth_section_says_what_is_missing(missing):
    auth = {k: v for k, v in AUTH.items() if k != missing}
    with pytest.raises(AccessConfigError, match=missing):
        AccessConfig.from_secrets({"auth": auth})


@pytest.mark.parametrize("access, words", [({"owners": ["a@b.c"]}, "unknown keys"), ({"owner": {"a": 1}}, "list"),
                                           ({"creator": ["@"]}, "not a domain"), ({"passwords": "x"}, "table")])
def test_bad_access_section_is_explained(access, words):
    with pytest.raises(AccessConfigError, match=words):
        AccessConfig.from_secrets({"access": access})


# ---------------------------------------------------------------- roles

@pytest.fixture
def config():
    return AccessConfig.from_secrets({"auth": AUTH, "access": ROLES})


@pytest.mark.parametrize("email, role", [("ana@example.org", OWNER), ("ANA@example.ORG ", OWNER),
                                         ("ben@example.org", CREATOR), ("eve@studio.example", CREATOR),
                                         ("kim@uni.example", RATER), ("kim@sub.uni.example", None),
                                         ("mallory@example.org", None), ("ana@example.org.evil", None),
                                         ("Dana Lima", None)])
def test_roles_from_emails_and_domains(config, email, role):
    assert config.role_for(email=email) == role


def test_names_match_for_the_password_gate_only(config):
    assert config.role_for(name="  dana   LIMA ") == RATER
    assert config.role_for(name="ana@example.org") is None  # a typed name is never an e-mail address


def test_the_strongest_role_wins_and_star_lets_anyone_in():
    config = AccessConfig.from_secrets({"access": {"owner": ["ana"], "rater": ["*"]}})
    assert config.role_for(name="Ana") == OWNER
    assert config.role_for(name="anyone at all") == RATER
    assert config.role_for(email="x@y.z") == RATER


def test_oidc_identity(config):
    me = oidc_identity(config, {"email": "Ben@Example.org", "name": "Ben", "email_verified": True})
    assert me == Identity("ben@example.org", "Ben", CREATOR, Mode.OIDC)
    assert me.signed_in and me.can_create and not me.is_owner and me.owner_filter == "ben@example.org"
    stranger = oidc_identity(config, {"email": "mallory@example.org"})
    assert stranger.role is None and not stranger.allowed and not stranger.can_rate


def test_unverified_or_missing_email_is_refused(config):
    assert oidc_identity(config, {"email": "ana@example.org", "email_verified": False}).role is None
    assert oidc_identity(config, {"name": "Ana"}).role is None


@pytest.mark.parametrize("claim", [{}, {"email_verified": None}, {"email_verified": "FALSE"}, {"email_verified": 0},
                                   {"email_verified": "yes"}, {"email_verified": 1}])
def test_an_address_the_provider_does_not_say_is_verified_gets_no_role(config, claim):
    """A missing claim, None and "FALSE" used to count as verified: an address typed into an account at a
    multi-tenant provider that sends no claim (Microsoft Entra) got that address's role ("nOAuth")."""
    assert oidc_identity(config, {"email": "ana@example.org", **claim}).role is None
    assert oidc_identity(config, {"email": "ana@example.org", "email_verified": "true"}).role == OWNER


def test_the_owner_may_trust_a_provider_that_sends_no_verified_claim():
    config = AccessConfig.from_secrets({"access": {"owner": ["ana@example.org"], "trust_missing_email_verified": True}})
    assert oidc_identity(config, {"email": "ana@example.org"}).role == OWNER
    assert oidc_identity(config, {"email": "ana@example.org", "email_verified": False}).role is None  # said no
    with pytest.raises(AccessConfigError, match="true or false"):
        AccessConfig.from_secrets({"access": {"trust_missing_email_verified": "yes"}})


def test_password_identity_uses_the_normalised_name(config):
    me = password_identity(config, "  Dana   Lima ")
    assert (me.id, me.name, me.role, me.mode) == ("dana lima", "Dana Lima", RATER, Mode.PASSWORD)
    assert me.can_rate and not me.can_create and me.signed_in


def test_nobody_signs_in_as_local_the_owner_of_rows_from_before_sign_in():
    config = AccessConfig.from_secrets({"access": {"password_hash": "h", "rater": ["*"], "owner": ["Local"]}})
    assert password_identity(config, " LOCAL ").role is None
    assert password_identity(config, "locally").role == RATER


def test_per_person_hash_else_the_shared_one():
    config = AccessConfig.from_secrets({"access": {"password_hash": "shared", "passwords": {"Ana Lima": "ana's"}}})
    assert config.password_hash_for("ana  LIMA") == "ana's"
    assert config.password_hash_for("Ben") == "shared"
    assert AccessConfig.from_secrets({"access": {"passwords": {"Ana": "h"}}}).password_hash_for("Ben") is None


def test_who_may_change_what():
    owner, local = Identity("ana@x.org", "Ana", OWNER, Mode.OIDC), local_identity()
    creator, rater = Identity("ben@x.org", "Ben", CREATOR, Mode.OIDC), Identity("kim@x.org", "Kim", RATER, Mode.OIDC)
    assert owner.may_change("ben@x.org") and owner.may_change(LOCAL_ID) and owner.owner_filter is None
    assert creator.may_change("ben@x.org") and not creator.may_change("ana@x.org") and not creator.may_change(None)
    assert not rater.may_change("kim@x.org")  # raters make nothing to change
    assert local.is_owner and not local.signed_in and local.id == LOCAL_ID


def test_normalise_name():
    assert normalise_name("  Ana \t LIMA ") == "ana lima"
    assert normalise_name(None) == ""
    # look-alikes are one name: a zero-width space, a soft hyphen, full-width letters, a no-break space
    assert {normalise_name(n) for n in ("Ana\u200b", "A\u00adna", "Ａｎａ", "\u2060ana", "Ana\u00a0")} == {"ana"}
    assert normalise_name("Ana Lima") != normalise_name("AnaLima")


# ---------------------------------------------------------------- the documented examples are valid

def _readme_hosting_toml() -> list[dict]:
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Hosting igcap for a team", 1)[1].split("\n## ", 1)[0]
    return [tomllib.loads(block) for block in re.findall(r"```toml\n(.*?)```", section, re.S)]


def test_readme_hosting_examples_are_configurations_the_app_accepts():
    roles, oidc, password = _readme_hosting_toml()
    three = AccessConfig.from_secrets(roles)
    assert [three.role_for(email=e) for e in ("ana@example.org", "ben@example.org", "kim@example.edu",
                                              "someone@example.edu")] == [OWNER, CREATOR, RATER, None]
    with_auth = AccessConfig.from_secrets({**oidc, **roles})
    assert with_auth.mode("0.0.0.0") is Mode.OIDC and with_auth.role_for(email="ana@example.org") == OWNER
    gate = AccessConfig.from_secrets(password)
    assert gate.mode(None) is Mode.PASSWORD
    assert [gate.role_for(name=n) for n in ("ana", "BEN", "Kim", "Lee")] == [OWNER, CREATOR, RATER, None]
    assert set(gate.person_hashes) == {"ana"} and gate.password_hash_for("Ben") == gate.shared_hash


def test_secrets_example_sign_in_block_is_valid_once_uncommented():
    import tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / ".streamlit" / "secrets.toml.example").read_text()
    block = text.split("# --- Sign-in and roles", 1)[1].split("\n", 1)[1]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and "=" in line or
             line.startswith("# [")]
    config = AccessConfig.from_secrets(tomllib.loads("\n".join(lines)))
    assert config.oidc and config.password_gate and config.role_for(email="x@example.edu") == RATER


# ---------------------------------------------------------------- throttling password guesses

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_name_waits_after_too_many_wrong_passwords_and_the_wait_ends():
    clock = Clock()
    throttle = SignInThrottle(limit=3, window=60, lockout=120, clock=clock)
    for _ in range(2):
        throttle.failed("Ben")
    assert throttle.wait_seconds("ben") == 0
    throttle.failed(" BEN ")
    assert throttle.wait_seconds("Ben") == 120 and throttle.wait_seconds("Ana") == 0
    clock.now += 121
    assert throttle.wait_seconds("Ben") == 0


def test_failures_outside_the_window_and_after_a_success_do_not_count():
    clock = Clock()
    throttle = SignInThrottle(limit=3, window=60, lockout=120, clock=clock)
    throttle.failed("ben"), throttle.failed("ben")
    clock.now += 61
    throttle.failed("ben")
    assert throttle.wait_seconds("ben") == 0
    throttle.failed("ben"), throttle.succeeded("ben"), throttle.failed("ben")
    assert throttle.wait_seconds("ben") == 0


def test_a_person_with_a_password_of_their_own_is_not_locked_out_by_guesses_at_the_shared_one():
    """Thirty wrong guesses under any names locked every sign-in for five minutes, the right passwords of
    people with their own too: anyone could keep the app shut."""
    throttle = SignInThrottle(limit=3, window=60, lockout=120, clock=Clock())
    for n in range(18):
        throttle.attempt(f"name {n}", lambda: False)
    assert throttle.attempt("Ben", lambda: True).wait > 0  # the shared password: held, as before
    assert throttle.attempt("Ana", lambda: True, shared=False).ok  # her own password: not held
    for _ in range(3):
        throttle.attempt("Ana", lambda: False, shared=False)
    assert throttle.attempt("Ana", lambda: True, shared=False).wait > 0  # guesses at her own name still lock it


def test_guessing_across_many_names_locks_everyone():
    throttle = SignInThrottle(limit=3, window=60, lockout=120, clock=Clock())
    for n in range(18):
        throttle.failed(f"name {n}")
    assert throttle.wait_seconds("somebody else") == 120


def test_sessions_failing_at_once_are_all_counted():
    """Streamlit sessions are threads of one process: concurrent failures must not be lost."""
    throttle = SignInThrottle(limit=400, window=60, lockout=120, clock=Clock())
    threads = [threading.Thread(target=lambda: [throttle.failed("ben") for _ in range(50)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert throttle.wait_seconds("ben") == 120  # 8 × 50 = 400 failures reached the limit exactly


def test_sign_ins_submitted_at_once_get_no_more_guesses_than_the_limit():
    """Each session checked the wait, ran scrypt, then counted the failure: twenty sessions at once got twenty
    guesses for a limit of five, each holding scrypt's memory at the same time. Now one check runs at a time
    and the wait is read when its turn comes."""
    throttle = SignInThrottle(limit=5, window=60, lockout=120, clock=Clock())
    running, most, checked, guard = [0], [0], [], threading.Lock()

    def check():
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
            checked.append(1)
        time.sleep(0.02)
        with guard:
            running[0] -= 1
        return False

    start = threading.Barrier(20)
    results = []

    def session():
        start.wait()
        results.append(throttle.attempt("ana", check))

    threads = [threading.Thread(target=session) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checked) == 5 and most[0] == 1
    assert sum(1 for r in results if r.wait) == 15 and not any(r.ok for r in results)
    assert throttle.attempt("ana", lambda: True).wait == 120  # the right password waits too: no oracle
    assert throttle.attempt("ben", lambda: True).ok


def test_roles_with_no_way_to_sign_in_are_refused_not_read_as_no_sign_in():
    config = AccessConfig.from_secrets({"access": {"owner": ["ana@example.org"]}})
    with pytest.raises(AccessConfigError, match="no sign-in is set up"):
        config.mode("0.0.0.0")
    with pytest.raises(AccessConfigError):
        config.mode("localhost")  # on this computer too: the lists say someone meant to set it up


@pytest.mark.parametrize("headers, client, local", [
    ({"Host": "localhost:8501"}, "127.0.0.1", True),
    ({"Host": "127.0.0.1:8501"}, "::1", True),
    ({"Host": "[::1]:8501"}, None, True),
    ({}, None, True),  # no request at all (bare mode, tests)
    ({"Host": "igcap.example.ngrok.app"}, "127.0.0.1", False),  # a tunnel keeps the Host the browser asked for
    ({"Host": "127.0.0.1:8501", "X-Forwarded-For": "203.0.113.9"}, "127.0.0.1", False),  # a proxy said so
    ({"host": "localhost", "forwarded": "for=203.0.113.9"}, None, False),
    ({"Host": "localhost:8501"}, "192.0.2.2", False),  # a plain port forward from another machine
])
def test_a_request_is_local_only_when_nothing_says_it_came_from_elsewhere(headers, client, local):
    from igcap.access import request_is_local

    assert request_is_local(headers, client) is local


@pytest.mark.parametrize("secrets, meant", [
    ({"acess": {"password_hash": "scrypt$x", "owner": ["Ana"]}}, "access"),  # the whole sign-in, misspelt
    ({"Auth": dict(AUTH)}, "auth"),
    ({"oauth": dict(AUTH), "access": {"owner": ["ana@example.org"]}}, "auth"),
    ({"sign_in": {"password_hash": "scrypt$x"}}, "access"),  # another name, its keys give it away
])
def test_a_sign_in_table_under_another_name_is_refused_not_ignored(secrets, meant):
    """[acess] with the password and roles was ignored as a whole: the app ran open, everyone its owner."""
    with pytest.raises(AccessConfigError, match=rf"looks like \[{meant}\]"):
        AccessConfig.from_secrets(secrets)
    assert AccessConfig.from_secrets({"connections": {"igcap": {"url": "sqlite:///x"}}, "api": {"token": "t"}}).oidc is False


# ---------------------------------------------------------------- how long a password sign-in lasts

def _session(config: AccessConfig, name: str, at: float) -> PasswordSession:
    return PasswordSession(name, hash_fingerprint(config.password_hash_for(name)), at)


def test_a_password_sign_in_ends_when_the_password_that_let_it_in_changes():
    shared, own = hash_password("team", **FAST), hash_password("ana's", **FAST)
    before = AccessConfig.from_secrets({"access": {"password_hash": shared, "passwords": {"Ana": own}, **ROLES}})
    ben, ana = _session(before, "Ben", 0.0), _session(before, "Ana", 0.0)
    assert password_session_end(before, ben, 1.0) is None and password_session_end(before, ana, 1.0) is None
    rotated = AccessConfig.from_secrets({"access": {"password_hash": hash_password("team", **FAST),
                                                    "passwords": {"Ana": own}, **ROLES}})
    assert password_session_end(rotated, ben, 1.0) is SessionEnd.CHANGED  # a new hash, even of the same password
    assert password_session_end(rotated, ana, 1.0) is None  # her own password did not change
    taken_away = AccessConfig.from_secrets({"access": {"password_hash": shared, **ROLES}})
    assert password_session_end(taken_away, ana, 1.0) is SessionEnd.CHANGED  # the shared one would let her in
    assert password_session_end(taken_away, ben, 1.0) is None


def test_a_password_sign_in_ends_after_session_hours_unused_and_use_keeps_it():
    config = AccessConfig.from_secrets({"access": {"password_hash": hash_password("team", **FAST),
                                                   "session_hours": 2, **ROLES}})
    session = _session(config, "Ben", 0.0)
    assert password_session_end(config, session, 2 * 3600) is None
    assert password_session_end(config, session, 2 * 3600 + 1) is SessionEnd.IDLE
    assert password_session_end(config, session.used(5000.0), 2 * 3600 + 1) is None
    assert AccessConfig.from_secrets({}).session_hours == 8


@pytest.mark.parametrize("hours", [0, -1, "8", True, 24 * 91])
def test_session_hours_must_be_a_sensible_number(hours):
    with pytest.raises(AccessConfigError, match="session_hours"):
        AccessConfig.from_secrets({"access": {"session_hours": hours}})
