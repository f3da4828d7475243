"""What keeps the workbench's pages safe in a browser: headers, cookies, CSRF tokens, safe redirects.

- Every response carries a Content-Security-Policy that allows nothing from another host and no inline
  script (`script-src 'self'`; the pages need no script at all today), frames none, sends no referrer.
- The session cookie is HttpOnly and SameSite=Strict, Secure when the request came over TLS (directly
  or, behind a proxy that says so, `X-Forwarded-Proto: https`).
- Every form carries a CSRF token: the session's own once logged in; before login a random token in a
  short-lived cookie, repeated in the form (double submit). A POST without the matching token is 403.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "povrisk_session"
LOGIN_CSRF_COOKIE = "povrisk_login_csrf"
LANGUAGE_COOKIE = "povrisk_lang"
CSRF_FIELD = "csrf_token"
APP_PATH = "/app"
LOGIN_CSRF_SECONDS = 3_600
LANGUAGE_SECONDS = 365 * 24 * 3_600

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response of the app it wraps (replacing any of the same
    name), and `Cache-Control: no-store` to pages (households' data stays off shared caches)."""

    def __init__(self, app: ASGIApp, paths: Iterable[str] | None = None) -> None:
        self.app = app
        self.paths = None if paths is None else frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.paths is not None and scope.get("path") not in self.paths):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers.extend(SECURITY_HEADERS)
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and not any(
                    k == b"cache-control" for k, _ in headers
                ):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def over_tls(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None, path: str = APP_PATH
) -> None:
    """A cookie no script can read, sent back only from this site's own pages."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=over_tls(request),
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def safe_next(target: str | None, default: str = f"{APP_PATH}/") -> str:
    """A redirect target on this site only (a path, never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
