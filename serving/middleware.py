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

from serving.keys import ENDPOINT_ROLES, HEADER, KeyRing, load_key_ring
from serving.openapi import document_service

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
