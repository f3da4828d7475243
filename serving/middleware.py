"""ASGI middleware in front of the scoring service: a body-size bound and API-key authentication.

`BodyLimit` reads a request body up to `max_bytes` and answers 413 beyond it (a declared
Content-Length is checked before anything is read), so no handler ever parses an oversized payload.

`ApiKeyAuth` guards the service's own endpoints (`serving.keys.ENDPOINT_ROLES`); health, metrics and
OpenAPI stay open. A wrong method gets 405, a body that is not JSON 415 (before any parsing). A request
without a key, or with a key the ring does not hold, gets 401; a key whose
role may not call the endpoint gets 403; both are logged with the key id (never the key). An accepted
key is put in the request's state (`povrisk_key`) for the handler, which scopes cadres to their villages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from serving.keys import ENDPOINT_ROLES, HEADER, KeyRing, load_key_ring
from serving.openapi import document_service
from serving.privacy import household_ref
from survey.text import printable

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "povrisk_key"
READ_ONLY_ENDPOINTS = frozenset({"/model"})
"""Endpoints answered on GET; every other guarded endpoint is POST."""
OPENAPI_PATH = "/docs.json"


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


class BodyLimit:
    """413 for request bodies over `max_bytes` (module docstring)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, "content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, delivered = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        await send_json(
            send,
            413,
            {"error": f"request body of at least {size:,} bytes exceeds the limit of {self.max_bytes:,}"},
        )


class ApiKeyAuth:
    """401 / 403 for the service's own endpoints (module docstring)."""

    def __init__(self, app: ASGIApp, ring: KeyRing | None = None) -> None:
        self.app = app
        self._ring = ring

    @property
    def ring(self) -> KeyRing:
        """The keys, read on first use. Not at construction: Starlette builds its middleware while
        starting up, and an error there only logs and leaves a server that fails every request, whereas
        the service itself checks the keys at start-up and refuses to start without them."""
        if self._ring is None:
            self._ring = load_key_ring()
        return self._ring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in ENDPOINT_ROLES:
            await self.app(scope, receive, send)
            return
        allowed_methods = ("GET", "HEAD") if path in READ_ONLY_ENDPOINTS else ("POST",)
        if scope.get("method") not in allowed_methods:
            allow = ", ".join(allowed_methods)
            await send_json(send, 405, {"error": f"{path} answers {allow} only"}, {"allow": allow})
            return
        media_type = (_header(scope, "content-type") or "application/json").split(";")[0].strip().lower()
        if scope.get("method") == "POST" and media_type != "application/json":
            await send_json(send, 415, {"error": f"{path} takes application/json, got {media_type!r}"})
            return
        presented = _header(scope, HEADER) or _bearer(_header(scope, "authorization"))
        key = self.ring.identify(presented)
        host, port = scope.get("client") or ("?", "?")
        client = f"{host}:{port}"
        if key is None:
            problem = "unknown" if presented else "missing"
            logger.warning("refused %s from %s: %s API key", path, client, problem)
            await send_json(
                send,
                401,
                {"error": f"{problem} API key: send a key in the X-API-Key header"},
                {"www-authenticate": "ApiKey"},
            )
            return
        if not key.may_call(path):
            allowed = ", ".join(sorted(ENDPOINT_ROLES[path]))
            logger.warning(
                "refused %s from %s: key %s (role %s) may not call it", path, client, key.key_id, key.role
            )
            await send_json(
                send, 403, {"error": f"{path} is for {allowed} keys; key {key.key_id} is a {key.role} key"}
            )
            return
        scope.setdefault("state", {})[STATE_KEY] = key
        await self.app(scope, receive, send)


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


class OpenApiDocs:
    """Answers GET /docs.json with BentoML's document completed by `serving.openapi.document_service`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != OPENAPI_PATH or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        status, chunks = 500, []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if status != 200:
            await send_json(send, status, {"error": "the OpenAPI document could not be made"})
            return
        await send_json(send, 200, document_service(json.loads(b"".join(chunks))))


REFUSAL_STATE = "povrisk_refusal"
"""Where a handler that answers 400 itself notes why (an exception's type), for `RefusalLog`."""


class RefusalLog:
    """Logs every 400 of the service's own endpoints as one line: endpoint, key id, the salted hash of
    the household, and the bad fields with their error types, or why the handler refused it. Never an
    input value: BentoML's own log of a refused body (a traceback quoting pydantic's `input_value`) is
    silenced by `QuietRefusals`, and this line replaces it.

    Sits inside `BodyLimit`, whose replay hands over the whole body in one message; the body is parsed
    only when the answer is 400."""

    def __init__(self, app: ASGIApp, salt: bytes) -> None:
        self.app = app
        self._salt = salt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in ENDPOINT_ROLES:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status, answer = 0, bytearray()

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 400:
                answer.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive_and_keep, send_and_watch)
        if status == 400:
            self._log(scope, bytes(body), bytes(answer))

    def _log(self, scope: Scope, body: bytes, answer: bytes) -> None:
        key = scope.get("state", {}).get(STATE_KEY)
        household = _household_id(body)
        logger.warning(
            "400 %s by key %s%s: %s",
            scope.get("path"),
            getattr(key, "key_id", "?"),
            f" household {household_ref(household, self._salt)}" if household is not None else "",
            _refusal(scope, body, answer),
        )


def _household_id(body: bytes) -> str | None:
    """The household id of a /score or /whatif body, when it has one (any text: it is only hashed)."""
    try:
        household = json.loads(body).get("request", {}).get("household", {})
    except (ValueError, AttributeError):
        return None
    household_id = household.get("household_id") if isinstance(household, dict) else None
    return household_id if isinstance(household_id, str) else None


def _refusal(scope: Scope, body: bytes, answer: bytes) -> str:
    """Why a request got 400, in words and field paths only."""
    noted = scope.get("state", {}).get(REFUSAL_STATE)
    if noted:
        return f"refused by the service ({noted})"
    try:
        json.loads(body)
    except ValueError:
        return "the body is not JSON"
    try:
        detail = json.loads(answer).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if not isinstance(detail, list) or not detail:
        return "refused"
    problems = [
        f"{'.'.join(str(part) for part in problem.get('loc', ()))} {problem.get('type', '?')}"
        for problem in detail
        if isinstance(problem, dict)
    ]
    return "invalid field(s) " + "; ".join(printable(problem) for problem in problems)


class QuietRefusals(logging.Filter):
    """Drops BentoML's error log of a request it refused as malformed (a pydantic ValidationError or a
    4xx BentoML error): its traceback quotes the input, names and ID numbers included. `RefusalLog`
    writes the one line that replaces it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            return False
        status = getattr(getattr(error, "error_code", None), "value", None)
        return not (isinstance(status, int) and 400 <= status < 500)


BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
"""The logger of BentoML's `log_exception`, which logs every refused request with its traceback."""


def quiet_bentoml_refusals() -> None:
    """Install `QuietRefusals` on BentoML's request logger (once per process)."""
    request_logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(existing, QuietRefusals) for existing in request_logger.filters):
        request_logger.addFilter(QuietRefusals())


HEALTH_PATHS = frozenset({"/livez", "/healthz", "/readyz"})


class HealthDetail:
    """Adds what a person needs to BentoML's health answers: the status code stays BentoML's (from
    `__is_alive__` / `__is_ready__`), the body becomes JSON with `status` and the worker's `report()`
    (the audit writer's state)."""

    def __init__(self, app: ASGIApp, report: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self._report = report

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in HEALTH_PATHS or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, capture)
        verdict = "ready" if scope["path"] == "/readyz" else "alive"
        await send_json(
            send, status, {"status": verdict if status == 200 else f"not {verdict}", **self._report()}
        )


class RelativeRedirects:
    """Makes every redirect's `Location` relative (path and query only). Starlette's trailing-slash
    redirect builds an absolute URL from the request's Host header, which a client chooses: an absolute
    Location would send a browser or a cache wherever that header said."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message["headers"] = [
                    (name, _path_only(value) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, relative)


def _path_only(location: bytes) -> bytes:
    parts = urlsplit(location.decode("latin-1"))
    path = "/" + parts.path.lstrip("/")  # never `//host`, which a browser reads as another host
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
