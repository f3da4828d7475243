"""The service's OpenAPI document as it really answers: BentoML's generated `/docs.json`, completed with
the API-key scheme and the error answers of this service's own endpoints.

BentoML documents a 400 whose `detail` is a string, while its validation errors carry a list of
pydantic error objects; it does not know the 401 / 403 / 413 / 503 answers of the middleware and the
batching dispatcher. `document_service` fixes both, so that generated clients and contract tests
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
    "503": "Overloaded or shutting down; retry",
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
            for status, description in _ANSWERS.items():
                responses[status] = {
                    "description": description,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
                    },
                }
    return patched
