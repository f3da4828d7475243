"""The service's OpenAPI document as it really answers: BentoML's generated `/docs.json`, completed with
the API-key scheme and the error answers of this service's own endpoints.

BentoML documents a 400 whose `detail` is a string, while its validation errors carry a list of
pydantic error objects; it does not know the 401 / 403 / 413 / 503 answers of the middleware and the
batching dispatcher, nor that the health endpoints answer JSON with the audit writer's state.
`document_service` fixes these, so that generated clients and contract tests
(schemathesis) read what the service does.
"""

from __future__ import annotations

import copy
from typing import Any

from serving.keys import ENDPOINT_ROLES, HEADER

SECURITY_SCHEME = "ApiKey"
ERROR_SCHEMA = "ErrorBody"
_ERROR_BODY = {
    "type": "object",
    "title": ERROR_SCHEMA,
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong"},
        "detail": {
            "type": "array",
            "description": "Every bad field of an invalid body (pydantic's errors, without the input values)",
            "items": {"type": "object"},
        },
    },
}
_ANSWERS = {
    "400": "Invalid request: every bad field is named",
    "401": "No API key, or a key the service does not know",
    "403": "The key's role or villages do not cover this request",
    "413": "Request body over the size limit",
    "415": "The body is not application/json",
    "503": "Overloaded, shutting down, or the audit trail cannot take records: nothing was scored; retry "
    "after Retry-After",
}
_PATH_ANSWERS = {
    "/score": {
        "404": "The register holds no such household (a request by reference)",
        "409": "The household's county is scored by models of its own, which have no champion yet, and the "
        "policy says not to score it until then (county_models, until_trained: refuse)",
    }
}
"""Answers of one endpoint beside those of every guarded endpoint (`_ANSWERS`)."""
HEALTH_PATHS = ("/livez", "/healthz", "/readyz")
_HEALTH_BODY = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "description": "alive / ready, or not alive / not ready"},
        "audit": {"type": "object", "description": "The audit writer's state (monitoring.audit.AuditState)"},
    },
}


def document_service(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of BentoML's spec with the key scheme and the error answers of the guarded endpoints."""
    patched = copy.deepcopy(spec)
    components = patched.setdefault("components", {})
    components.setdefault("schemas", {})[ERROR_SCHEMA] = _ERROR_BODY
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": HEADER,
        "description": "A povrisk API key (`povrisk keys add`); roles cadre, monitor, analyst",
    }
    for path in ENDPOINT_ROLES:
        for operation in patched.get("paths", {}).get(path, {}).values():
            operation["security"] = [{SECURITY_SCHEME: []}]
            responses = operation.setdefault("responses", {})
            for status, description in (_ANSWERS | _PATH_ANSWERS.get(path, {})).items():
                responses[status] = {
                    "description": description,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
                    },
                }
    for path in HEALTH_PATHS:  # serving.middleware.HealthDetail answers JSON, 503 when not alive / ready
        for operation in patched.get("paths", {}).get(path, {}).values():
            operation["responses"] = {
                status: {
                    "description": description,
                    "content": {"application/json": {"schema": _HEALTH_BODY}},
                }
                for status, description in (
                    ("200", "Alive / ready"),
                    ("503", "Not alive / not ready, and why"),
                )
            }
    return patched
