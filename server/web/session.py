"""Browser sessions over the ledger server's own sign-in (docs/web.md, "Signing in").

The browser signs the server's challenge with the person's key (WebCrypto, the same
``xinfang-auth/v1`` message as the API, :func:`ledger.auth_message`); the session token the
server then issues is kept in an ``HttpOnly``, ``SameSite=Strict`` cookie and checked on every
request by :meth:`LedgerServer.authenticate` — so the pages read with exactly the API's rights
(``server.access``). Every state-changing request (POST) must come from this site: its
``Origin`` (or, without one, ``Sec-Fetch-Site``) is checked against the request's own host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from server.access import Reader

from .text import LANGS

COOKIE = "xf_session"
LANG_COOKIE = "xf_lang"


class WebProblem(Exception):
    """A refusal shown as a page (or JSON for the pages' scripts): status and message."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


class SignInNeeded(Exception):
    """No live session: the page sends the browser to the sign-in page (``expired`` when a
    cookie was sent but its session is gone)."""

    def __init__(self, expired: bool, message: str = "") -> None:
        super().__init__(message)
        self.expired = expired
        self.message = message


@dataclass(frozen=True)
class Visitor:
    """Who is asking: the signed-in reader (None on public pages) and the page language."""

    reader: Reader | None
    lang: str
    token: str | None = None


def language(request: Any) -> tuple[str, bool]:
    """The page language: ``?lang=`` (then kept in a cookie), else the cookie, else Chinese.
    Returns (lang, whether to set the cookie)."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    kept = request.cookies.get(LANG_COOKIE)
    return (kept if kept in LANGS else "zh"), False


def same_site(request: Any) -> bool:
    """Whether a state-changing request comes from this site (CSRF protection): its Origin
    is this server's own scheme://host[:port], or — a browser that sends no Origin — its
    Sec-Fetch-Site says same-origin. A request with neither is refused."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == host and \
            parts.scheme == request.url.scheme
    return bool(request.headers.get("sec-fetch-site") == "same-origin")


def session_cookie(response: Any, request: Any, token: str, seconds: int) -> None:
    """Keep the session token: HttpOnly (no script reads it), SameSite=Strict (no other site's
    page sends it), Secure over https, for the session's lifetime."""
    response.set_cookie(COOKIE, token, max_age=seconds, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_session_cookie(response: Any, request: Any) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def end_session(server: Any, token: str) -> None:
    """Forget a session on the server (sign-out): the token stops working at once.

    Adapter: ``LedgerServer`` has no public method for this yet; it drops the token from the
    server's session table under the server's own lock."""
    with server.auth_lock:
        server.sessions.pop(token, None)


__all__ = ["COOKIE", "LANG_COOKIE", "SignInNeeded", "Visitor", "WebProblem",
           "clear_session_cookie", "end_session", "language", "same_site", "session_cookie"]
