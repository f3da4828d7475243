"""The service's own front pages, in place of BentoML's Swagger page (which loads a Google Tag Manager
script): `/` says what povrisk is, where to log in and where the API is described; `/docs` describes
the API from the service's own OpenAPI document (`/docs.json`), rendered on the server. Neither page
loads anything from another host, nor runs a script.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from survey.catalogue import Language, message
from workbench.security import APP_PATH, LANGUAGE_COOKIE, SecurityHeaders

_TAG = re.compile(r"<[^>]*>")
LANDING_PATH = "/"
DOCS_PATH = "/docs"
OPENAPI_PATH = "/docs.json"
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


class LandingPages:
    """Answers GET/HEAD `/` and `/docs` itself; everything else goes to the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pages = SecurityHeaders(self._page)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("path") in (LANDING_PATH, DOCS_PATH)
            and scope.get("method") in ("GET", "HEAD")
        ):
            await self.pages(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _page(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        lang: Language = "en" if request.cookies.get(LANGUAGE_COOKIE) == "en" else "zh"
        context: dict[str, Any] = {"endpoints": []}
        template = "landing.html"
        if scope["path"] == DOCS_PATH:
            template = "api.html"
            context["endpoints"] = api_endpoints(await self._openapi(scope))
        html = _TEMPLATES.get_template(template).render(
            **context,
            t=lambda name, **values: message(name, lang, **values),
            html_lang="zh-CN" if lang == "zh" else "en",
            other_lang="en" if lang == "zh" else "zh",
            here=scope["path"],
            app=APP_PATH,
            openapi=OPENAPI_PATH,
        )
        await HTMLResponse(html)(scope, receive, send)

    async def _openapi(self, scope: Scope) -> dict[str, Any]:
        """The service's OpenAPI document, asked of the wrapped app in process."""
        body = bytearray()
        status = 500

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def capture(message_: Message) -> None:
            nonlocal status
            if message_["type"] == "http.response.start":
                status = message_["status"]
            elif message_["type"] == "http.response.body":
                body.extend(message_.get("body", b""))

        inner = {
            **scope,
            "path": OPENAPI_PATH,
            "raw_path": OPENAPI_PATH.encode(),
            "method": "GET",
            "query_string": b"",
        }
        await self.app(inner, receive, capture)
        return json.loads(bytes(body)) if status == 200 else {}


def api_endpoints(document: dict[str, Any]) -> list[dict[str, str]]:
    """Each operation of an OpenAPI document: method, path, summary, description, request and response
    schema names; BentoML's own infrastructure routes (health, metrics) last."""
    endpoints = []
    for path, operations in sorted(document.get("paths", {}).items()):
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            summary, description = _plain(operation.get("summary")), _plain(operation.get("description"))
            endpoints.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "text": " — ".join(part for part in dict.fromkeys([summary, description]) if part),
                    "request": _schema_name(operation.get("requestBody", {})),
                    "response": _schema_name(operation.get("responses", {}).get("200", {})),
                    "infrastructure": "infrastructure"
                    in [str(tag).lower() for tag in operation.get("tags") or []],
                }
            )
    return sorted(endpoints, key=lambda endpoint: (bool(endpoint["infrastructure"]), endpoint["path"]))


def _schema_name(part: dict[str, Any]) -> str:
    """The schema a body holds: its reference's name; BentoML wraps a request as {"request": <schema>}."""
    for media in part.get("content", {}).values():
        schema = media.get("schema", {})
        wrapped = schema.get("properties", {}).get("request", {})
        reference = schema.get("$ref") or wrapped.get("$ref", "")
        if reference:
            return str(reference.rsplit("/", 1)[-1])
    return ""


def _plain(text: Any) -> str:
    """A description as plain text (BentoML writes some of its own in HTML)."""
    return " ".join(_TAG.sub("", str(text or "")).split())
