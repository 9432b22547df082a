"""A small OpenID Connect provider for the browser tests: standard library HTTP server on 127.0.0.1.

It speaks just enough of OpenID Connect Core for Streamlit's ``st.login`` (Authlib's Starlette client):
a discovery document, an authorize endpoint that shows a login form for configured test users, a token
endpoint (authorization code, client_secret_basic or _post, PKCE S256) issuing an RS256 ``id_token``
signed with a key published at ``jwks_uri``, and a userinfo endpoint. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "igcap-test-client"
CLIENT_SECRET = "igcap-test-secret"  # noqa: S105 - a test provider's own client


@dataclass
class IdpUser:
    email: str
    password: str
    name: str
    email_verified: bool = True


@dataclass
class Provider:
    users: dict[str, IdpUser]
    port: int = 0
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key-1"}))
    codes: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, dict] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # "METHOD path" per request, for assertions and debugging

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
        }

    def claims(self, user: IdpUser) -> dict:
        return {"sub": hashlib.sha256(user.email.encode()).hexdigest()[:24], "email": user.email,
                "email_verified": user.email_verified, "name": user.name}

    def id_token(self, user: IdpUser, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 600, **self.claims(user)}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, self.key)


def _handler(provider: Provider):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the provider's log list records requests
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlparse(self.path)
            provider.log.append(f"GET {url.path}")
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(provider.metadata())
            elif url.path == "/jwks":
                self._json({"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                self._authorize_form(query)
            elif url.path == "/userinfo":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                user = provider.tokens.get(token)
                self._json(provider.claims(user) if user else {"error": "invalid_token"}, 200 if user else 401)
            else:
                self._json({"error": "not_found"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            provider.log.append(f"POST {url.path}")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
            if url.path == "/authorize":
                self._authorize_submit(form)
            elif url.path == "/token":
                self._token(form)
            else:
                self._json({"error": "not_found"}, 404)

        # ---------------------------------------------------------------- authorize

        def _authorize_form(self, query: dict, message: str = "") -> None:
            if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                self._html("<h1>Unknown client</h1>", 400)
                return
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in query.items() if k not in ("email", "password"))
            self._html(f"""<h1>Test identity provider</h1><p id="message">{html.escape(message)}</p>
                <form method="post" action="/authorize">{hidden}
                <label>E-mail <input name="email" id="email"></label>
                <label>Password <input name="password" id="password" type="password"></label>
                <button type="submit" id="submit">Sign in</button></form>""", 200 if not message else 401)

        def _authorize_submit(self, form: dict) -> None:
            user = provider.users.get(form.get("email", "").strip().lower())
            if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
                self._authorize_form(form, "Wrong e-mail or password.")
                return
            code = secrets.token_urlsafe(24)
            provider.codes[code] = {"user": user, "redirect_uri": form["redirect_uri"], "nonce": form.get("nonce"),
                                    "challenge": form.get("code_challenge"),
                                    "method": form.get("code_challenge_method")}
            target = form["redirect_uri"] + "?" + urlencode({"code": code, "state": form.get("state", "")})
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        # ---------------------------------------------------------------- token

        def _token(self, form: dict) -> None:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                from urllib.parse import unquote

                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, client_secret = unquote(client_id), unquote(client_secret)
            if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
                self._json({"error": "invalid_client"}, 401)
                return
            grant = provider.codes.pop(form.get("code", ""), None)  # a code works once
            if form.get("grant_type") != "authorization_code" or grant is None \
                    or grant["redirect_uri"] != form.get("redirect_uri"):
                self._json({"error": "invalid_grant"}, 400)
                return
            if grant["challenge"]:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if grant["method"] != "S256" or digest != grant["challenge"]:
                    self._json({"error": "invalid_grant", "error_description": "PKCE check failed"}, 400)
                    return
            access = secrets.token_urlsafe(24)
            provider.tokens[access] = grant["user"]
            self._json({"access_token": access, "token_type": "Bearer", "expires_in": 600,
                        "scope": "openid email profile", "id_token": provider.id_token(grant["user"], grant["nonce"])})

        def _json(self, data: dict, status: int = 200) -> None:
            self._send(json.dumps(data).encode(), "application/json", status)

        def _html(self, body: str, status: int = 200) -> None:
            page = f"<!doctype html><html><head><title>Test IdP</title></head><body>{body}</body></html>"
            self._send(page.encode(), "text/html; charset=utf-8", status)

        def _send(self, data: bytes, content_type: str, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

    return Handler


class RunningProvider:
    """``with RunningProvider(users) as provider:`` serves on a free port of 127.0.0.1 in a thread."""

    def __init__(self, users: list[IdpUser]):
        self.provider = Provider({u.email.lower(): u for u in users})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.provider))
        self.provider.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-oidc-provider", daemon=True)

    def __enter__(self) -> Provider:
        self.thread.start()
        return self.provider

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
