"""Who may use the app and what they may do: the sign-in mode, roles from allow-lists, identities.

Pure policy (no Streamlit): the app's glue (``igcap_ui.access``) reads the secrets, asks the person to
sign in, and hands what it learned to the functions here.

Secrets (see the README's hosting section)::

    [auth]                    # Streamlit's OpenID Connect sign-in (st.login): mode "oidc"
    redirect_uri = "https://example.streamlit.app/oauth2callback"
    cookie_secret = "…"
    client_id = "…"
    client_secret = "…"
    server_metadata_url = "https://accounts.google.com/.well-known/openid-configuration"

    [access]
    owner = ["ana@example.org"]              # e-mail addresses, "@domain", a name (password gate) or "*"
    creator = ["ben@example.org"]
    rater = ["@example.edu"]
    password_hash = "scrypt$…"               # the password gate: one shared password …
    session_hours = 8                        # a password sign-in ends after this long unused
    [access.passwords]                       # … and/or one per person (name = hash)
    Ana = "scrypt$…"

Modes: ``oidc`` when ``[auth]`` is complete; else ``password`` when a hash is configured; else ``local``
(the server listens on this computer only: the person at the keyboard is the owner, as before) or
``open`` (no sign-in on a reachable address: everyone is the owner, and every page says so).
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from db.models import IDENTITY_LENGTH, LOCAL_OWNER

OWNER, CREATOR, RATER = "owner", "creator", "rater"
ROLES = (OWNER, CREATOR, RATER)  # strongest first: someone on two lists gets the stronger role
# the data layer's facts: the identity that owns what was made without sign-in (and rows older than sign-in),
# and the longest identity a row can hold (an e-mail address is at most 254 characters)
LOCAL_ID, ID_MAX = LOCAL_OWNER, IDENTITY_LENGTH
TYPED_NAME_MAX = 80  # a name typed in a box (the password gate's, the sidebar's rater name)
OIDC_PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
SESSION_HOURS = 8.0  # a password sign-in unused this long ends (the [access] session_hours default)
SESSION_HOURS_MAX = 24.0 * 90


class Mode(StrEnum):
    OIDC = "oidc"  # Streamlit's st.login with an OpenID Connect provider
    PASSWORD = "password"  # the app's own password form
    LOCAL = "local"  # no sign-in, server reachable from this computer only
    OPEN = "open"  # no sign-in, server reachable from elsewhere: warn on every page


class AccessConfigError(ValueError):
    """The [access] or [auth] secrets cannot be used as written; the message says what to fix."""


@dataclass(frozen=True)
class Identity:
    """The person using this session. ``id`` is what the database records (owner, author, rater)."""

    id: str  # lower-case e-mail (OIDC), normalised name (password gate) or "local"
    name: str  # for display
    role: str | None  # owner, creator, rater; None = signed in but on no list (no access)
    mode: Mode = Mode.LOCAL

    @property
    def signed_in(self) -> bool:
        """True when the app knows who this is (OIDC or password), so ratings need no typed name."""
        return self.mode in (Mode.OIDC, Mode.PASSWORD)

    @property
    def allowed(self) -> bool:
        return self.role in ROLES

    @property
    def can_create(self) -> bool:
        """Upload photos, generate, save, see a gallery and the evaluation of their own work."""
        return self.role in (OWNER, CREATOR)

    @property
    def is_owner(self) -> bool:
        """Sees and may change everything; manages studies."""
        return self.role == OWNER

    @property
    def can_rate(self) -> bool:
        return self.allowed

    @property
    def owner_filter(self) -> str | None:
        """The owner whose rows this person sees: None (everything) for an owner, else their own id."""
        return None if self.is_owner else self.id

    def may_change(self, item_owner: str | None) -> bool:
        """Edit or delete an item made by ``item_owner``: their own, or anything for an owner."""
        return self.is_owner or (self.can_create and item_owner == self.id)


def local_identity(mode: Mode = Mode.LOCAL) -> Identity:
    return Identity(LOCAL_ID, "local", OWNER, mode)


def normalise_name(name: str | None) -> str:
    """A typed name as an identity: spaces collapsed, case folded ("  Ana  Lima" → "ana lima"), look-alikes
    made one (Unicode NFKC: full-width "Ａｎａ" is "ana"; invisible format characters such as a zero-width space
    dropped): "Ana\u200b" signed in as a second person who showed as "Ana"."""
    text = unicodedata.normalize("NFKC", str(name or ""))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.split()).casefold()


def normalise_email(email: str | None) -> str:
    return str(email or "").strip().lower()


@dataclass(frozen=True)
class AllowList:
    """Entries of one role: ``ana@example.org`` (an address), ``@example.org`` or ``*@example.org``
    (a domain), ``*`` (anyone signed in), or a plain name (for the password gate)."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    anyone: bool = False

    @classmethod
    def parse(cls, role: str, entries: Any) -> AllowList:
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, Iterable) or isinstance(entries, Mapping):
            raise AccessConfigError(f"[access] {role} must be a list of e-mails, domains or names, "
                                    f'e.g. {role} = ["ana@example.org", "@example.org"]')
        emails, domains, names, anyone = set(), set(), set(), False
        for raw in entries:
            entry = str(raw).strip()
            if entry == "*":
                anyone = True
            elif entry.startswith(("@", "*@")):
                domain = entry.split("@", 1)[1].strip().lower()
                if not domain or "@" in domain:
                    raise AccessConfigError(f"[access] {role}: {entry!r} is not a domain (write \"@example.org\")")
                domains.add(domain)
            elif "@" in entry:
                emails.add(normalise_email(entry))
            elif normalise_name(entry):
                names.add(normalise_name(entry))
        return cls(frozenset(emails), frozenset(domains), frozenset(names), anyone)

    def matches(self, *, email: str | None = None, name: str | None = None) -> bool:
        if self.anyone:
            return True
        if email:
            email = normalise_email(email)
            if email in self.emails or email.rpartition("@")[2] in self.domains:
                return True
        return bool(name) and normalise_name(name) in self.names

    def __bool__(self) -> bool:
        return bool(self.anyone or self.emails or self.domains or self.names)


@dataclass(frozen=True)
class AccessConfig:
    """The [auth] and [access] secrets, checked once."""

    roles: Mapping[str, AllowList] = field(default_factory=dict)
    oidc: bool = False  # [auth] has everything st.login needs
    oidc_providers: tuple[str, ...] = ()  # named providers ([auth.google]…), "" for [auth]'s own; () = that one only
    shared_hash: str | None = None  # one password for everyone
    person_hashes: Mapping[str, str] = field(default_factory=dict)  # normalised name → hash
    # a provider that sends no email_verified claim (Microsoft Entra) is trusted only when the owner says so
    trust_missing_email_verified: bool = False
    session_hours: float = SESSION_HOURS  # a password sign-in unused this long ends

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any] | None) -> AccessConfig:
        secrets = secrets or {}
        _refuse_misspelt_tables(secrets)
        access = _table(secrets, "access")
        unknown = set(access) - {*ROLES, "password_hash", "passwords", "trust_missing_email_verified",
                                 "session_hours"}
        if unknown:
            raise AccessConfigError(f"[access] has unknown keys {sorted(unknown)}: use owner, creator, rater, "
                                    "password_hash, [access.passwords], session_hours and "
                                    "trust_missing_email_verified")
        trust_missing = access.get("trust_missing_email_verified", False)
        if not isinstance(trust_missing, bool):
            raise AccessConfigError("[access] trust_missing_email_verified must be true or false")
        roles = {role: AllowList.parse(role, access.get(role)) for role in ROLES}
        shared = str(access.get("password_hash") or "").strip() or None
        people = _table(access, "passwords")
        person_hashes = {normalise_name(name): str(value).strip() for name, value in people.items()
                         if normalise_name(name) and str(value).strip()}
        oidc, providers = _oidc(_table(secrets, "auth"))
        return cls(roles, oidc, providers, shared, person_hashes, trust_missing,
                   _session_hours(access.get("session_hours", SESSION_HOURS)))

    @property
    def password_gate(self) -> bool:
        return bool(self.shared_hash or self.person_hashes)

    def mode(self, server_address: str | None) -> Mode:
        """How people get in. Role lists with no way to sign in are refused (AccessConfigError), not read as
        "no sign-in set up": a misspelt [auth] beside them would have let everyone in as the owner."""
        if self.oidc:
            return Mode.OIDC
        if self.password_gate:
            return Mode.PASSWORD
        if any(self.roles.get(role) for role in ROLES):
            raise AccessConfigError("[access] lists roles, but no sign-in is set up: add an [auth] section "
                                    "(OpenID Connect) or a password_hash, or remove the role lists")
        return Mode.LOCAL if is_local_address(server_address) else Mode.OPEN

    def role_for(self, *, email: str | None = None, name: str | None = None) -> str | None:
        """The strongest role whose allow-list names this person; None when none does."""
        for role in ROLES:
            allow = self.roles.get(role)
            if allow and allow.matches(email=email, name=name):
                return role
        return None

    def password_hash_for(self, name: str) -> str | None:
        """The hash a person's password is checked against: their own, else the shared one."""
        return self.person_hashes.get(normalise_name(name)) or self.shared_hash


def oidc_identity(config: AccessConfig, user: Mapping[str, Any]) -> Identity:
    """The identity of a person signed in with OpenID Connect (``st.user`` as a dict).

    Refused (role None) unless the provider says the e-mail address is verified (``email_verified`` true),
    or gives none. A provider that sends no such claim at all (Microsoft Entra) is refused too, unless the
    owner set ``trust_missing_email_verified``: counting a missing claim as verified let an address that a
    person typed into their own account at a multi-tenant provider claim someone else's role ("nOAuth").
    """
    email = normalise_email(user.get("email"))
    name = str(user.get("name") or email or "").strip()
    claim = user.get("email_verified")
    verified = claim is True or (isinstance(claim, str) and claim.strip().lower() == "true") or (
        claim is None and "email_verified" not in user and config.trust_missing_email_verified)
    if not email or "@" not in email or not verified or len(email) > ID_MAX:
        return Identity(email or "unknown", name or "unknown", None, Mode.OIDC)
    return Identity(email, name, config.role_for(email=email), Mode.OIDC)


def password_identity(config: AccessConfig, name: str) -> Identity:
    """The identity of a person who passed the password gate under ``name`` (checked by the caller)."""
    shown = " ".join(str(name).split())
    key = normalise_name(name)[:ID_MAX]
    if key == LOCAL_ID:  # reserved: "local" owns everything made before sign-in
        return Identity(key, shown, None, Mode.PASSWORD)
    return Identity(key, shown, config.role_for(name=key), Mode.PASSWORD)


def hash_fingerprint(stored: str | None) -> str:
    """A short digest of a password hash: what a session remembers of the hash it was let in by."""
    return hashlib.sha256(str(stored or "").encode()).hexdigest()[:32]


@dataclass(frozen=True)
class PasswordSession:
    """What a password sign-in leaves in the browser session: the name, the hash that let it in (as a
    fingerprint) and when the session was last used (``clock`` seconds)."""

    name: str
    fingerprint: str
    last_used: float

    def used(self, now: float) -> PasswordSession:
        return PasswordSession(self.name, self.fingerprint, now)


class SessionEnd(StrEnum):
    CHANGED = "changed"  # the password that let this session in was changed or removed
    IDLE = "idle"  # unused for longer than session_hours


def password_session_end(config: AccessConfig, session: PasswordSession, now: float) -> SessionEnd | None:
    """Why a password sign-in is over, or None while it holds. It used to last as long as the browser tab:
    changing a leaked password (or taking a person's own password away) left every session it had opened
    signed in, and a tab left open on a shared computer stayed signed in for days."""
    if hash_fingerprint(config.password_hash_for(session.name)) != session.fingerprint:
        return SessionEnd.CHANGED
    if now - session.last_used > config.session_hours * 3600:
        return SessionEnd.IDLE
    return None


@dataclass(frozen=True)
class SignInAttempt:
    ok: bool  # the password was checked and is right
    wait: float  # > 0: not checked; seconds before this name may try again


class SignInThrottle:
    """Failed password sign-ins, shared by every session of the process (thread-safe).

    After ``limit`` failures for one name within ``window`` seconds that name waits ``lockout`` seconds;
    after ``limit * 6`` failures of the shared password under any names, every sign-in with the shared password
    does (guessing it by going through names). A person with a password of their own (``shared=False``) is
    neither counted there nor held by it: nobody can lock them out but by guessing at their own name. A
    success clears the name's count. The wait applies to a correct password too: it is not an oracle.
    """

    ANY = "\x00any"

    def __init__(self, limit: int = 5, window: float = 900.0, lockout: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.lockout, self.clock = limit, window, lockout, clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._checking = threading.Lock()  # one password check at a time in the process (see attempt)

    def attempt(self, name: str, check: Callable[[], bool], *, shared: bool = True) -> SignInAttempt:
        """Check a password for ``name`` if it may try now, and count the outcome.

        One check runs at a time, and the wait is read again once it is this attempt's turn: checking first
        and counting after, sessions submitting at once each got a guess past the limit (20 at once: 20
        guesses for a limit of 5), and each held scrypt's 32 MiB meanwhile (+557 MiB for those 20, before
        anyone had signed in)."""
        with self._checking:
            wait = self.wait_seconds(name, shared=shared)
            if wait:
                return SignInAttempt(False, wait)
            ok = bool(check())
            if ok:
                self.succeeded(name)
            else:
                self.failed(name, shared=shared)
            return SignInAttempt(ok, 0.0)

    def wait_seconds(self, name: str, *, shared: bool = True) -> float:
        """How long ``name`` must wait before its next try (0: go ahead)."""
        now = self.clock()
        with self._lock:
            until = self._locked_until.get(normalise_name(name), 0.0)
            if shared:
                until = max(until, self._locked_until.get(self.ANY, 0.0))
        return max(0.0, until - now)

    def failed(self, name: str, *, shared: bool = True) -> None:
        now = self.clock()
        counted = [(normalise_name(name), self.limit)] + ([(self.ANY, self.limit * 6)] if shared else [])
        with self._lock:
            for key, limit in counted:
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] <= now - self.window:
                    times.popleft()
                if len(times) >= limit:
                    self._locked_until[key] = now + self.lockout
                    times.clear()

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(normalise_name(name), None)


FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def request_is_local(headers: Mapping[str, str] | None, client_ip: str | None) -> bool:
    """Whether a request to a server bound to loopback came from this computer: not through a tunnel or a
    reverse proxy (ngrok, cloudflared, ``ssh -R``, nginx) that publishes it. The Host the browser asked for
    must be this computer's (or absent), no proxy may have said whom it forwards for, and the client address
    (when known) must be loopback."""
    headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    if any(headers.get(name) for name in FORWARDING_HEADERS):
        return False
    host = headers.get("host", "").strip()
    if host:
        name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        if not is_local_address(name):
            return False
    return client_ip is None or is_local_address(client_ip)


def is_local_address(address: str | None) -> bool:
    """True when a server bound to ``address`` is reachable from this computer only.

    Unset (Streamlit's default) listens on every interface, so it is not local.
    """
    address = str(address or "").strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _session_hours(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= SESSION_HOURS_MAX:
        raise AccessConfigError(f"[access] session_hours must be a number of hours above 0 and at most "
                                f"{SESSION_HOURS_MAX:g} (e.g. session_hours = 8), not {value!r}")
    return float(value)


def _table(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AccessConfigError(f"[{key}] must be a table in the secrets")
    return value


_SIGN_IN_KEYS = {*ROLES, "password_hash", "passwords", "redirect_uri", "cookie_secret", "client_id"}


def _refuse_misspelt_tables(secrets: Mapping[str, Any]) -> None:
    """A sign-in table under another name ([acess], [Auth], [oauth]) was read as no sign-in at all: the app
    ran open, everyone its owner. Any other table that looks like one of them, by its name or its keys, is
    refused by name."""
    for name, table in secrets.items():
        if not isinstance(table, Mapping) or name in ("access", "auth"):
            continue
        close = difflib.get_close_matches(name.lower(), ["access", "auth"], n=1, cutoff=0.75)
        if close or _SIGN_IN_KEYS & set(table):
            meant = close[0] if close else ("auth" if {"redirect_uri", "cookie_secret", "client_id"} & set(table)
                                           else "access")
            raise AccessConfigError(f"the secrets have a table [{name}] that looks like [{meant}] (sign-in "
                                    f"settings): name it [{meant}], or the app would run with no sign-in")


def _oidc(auth: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """Whether [auth] is complete enough for st.login, and the named providers in it."""
    if not auth:
        return False, ()
    missing = [key for key in ("redirect_uri", "cookie_secret") if not auth.get(key)]
    named = {key: value for key, value in auth.items() if isinstance(value, Mapping) and key != "client_kwargs"}
    for name, table in named.items():  # a provider half set up was dropped without a word, and its people locked out
        if lacking := [k for k in OIDC_PROVIDER_KEYS if not table.get(k)]:
            raise AccessConfigError(f"[auth.{name}] is missing {', '.join(lacking)}: each provider needs client_id, "
                                    "client_secret and server_metadata_url (README: Hosting)")
    default = all(auth.get(k) for k in OIDC_PROVIDER_KEYS)
    if not default and not named:
        missing += [k for k in OIDC_PROVIDER_KEYS if not auth.get(k)]
    if missing:
        raise AccessConfigError(f"[auth] is missing {', '.join(missing)}: sign-in needs redirect_uri, "
                                "cookie_secret, client_id, client_secret and server_metadata_url (README: Hosting)")
    # "" is the provider set up in [auth] itself, offered beside named ones (it hid them all)
    return True, ((("",) if default else ()) + tuple(named)) if named else ()
