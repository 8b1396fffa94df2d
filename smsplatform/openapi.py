"""The OpenAPI schema tells the truth about errors (issue 13, item 8).

Every error the API answers has one shape (smsplatform.errors: {"code", "message", "details"}),
so the schema declares it once as the `Error` component and every 4xx response refers to it.
Responses any operation can give are added here rather than on each view:

- 400 malformed input (headers, body, query), 401 no or bad credentials, 403 the tenant's state
  or a signature refused, 429 the rate limit: every authenticated operation;
- 404: operations with path parameters (an id of another tenant is "not found" too);
- 413 a body over the size limit and 415 an unsupported content type: operations with a body;
- 409 refused in the current state: every write.

Query enums also list "" (an empty filter parameter means no filter).

Errors an operation gives for its own reasons (402, 409, 422 …) are declared on the view with
`extend_schema(responses=…)`; their bodies are rewritten to `Error` here as well.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error format of the API; the codes are listed in docs/api.md.",
    "properties": {
        "code": {"type": "string", "description": "stable, machine-readable"},
        "message": {"type": "string", "description": "for people"},
        "details": {"description": "what exactly was wrong (field errors, limits); may be null", "nullable": True},
    },
    "required": ["code", "message"],
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}

COMMON = {
    "400": "The request is malformed or invalid (`validation_error`, `malformed_request`, …).",
    "401": "No credentials, or credentials that do not authenticate.",
    "403": "The account's state (suspended, terminated) or the key does not allow this.",
    "429": "Rate limit exceeded (`rate_limited`); retry after the `Retry-After` header.",
}
WITH_PATH_PARAMETERS = {"404": "No such object for this tenant (`not_found`)."}
# Writes a service may refuse in the current state (smsplatform.errors.Conflict and the apps'
# own 409 errors: a closed month, an answered request, a duplicate …).
WRITES = {"409": "Refused in the current state (`conflict` or the operation's own code)."}
WITH_BODY = {
    "413": "The body is larger than the API accepts (`payload_too_large`).",
    "415": "The body's content type is not accepted (`unsupported_media_type`).",
}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "put", "post", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON)
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                extra.update(WITH_PATH_PARAMETERS)
            if "requestBody" in operation:
                extra.update(WITH_BODY)
            if method != "get":
                extra.update(WRITES)
            for status, description in extra.items():
                responses.setdefault(status, _error_response(description))
            for parameter in operation.get("parameters", []):
                enum = parameter.get("schema", {}).get("enum")
                if parameter.get("in") == "query" and enum and "" not in enum:
                    enum.append("")  # an empty filter is no filter (django-filter), not an error
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    return result
