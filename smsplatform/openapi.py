"""The OpenAPI schema tells the truth about errors (issue 13, item 8).

Every error the API answers has one shape (smsplatform.errors: {"code", "message", "details"}),
so the schema declares it once as the `Error` component and every 4xx response refers to it.
Responses any operation can give are added here rather than on each view:

- 400 malformed input (headers, body, query), 401 no or bad credentials, 403 the tenant's state
  or a signature refused, 429 the rate limit: every authenticated operation;
- 404: operations with path parameters (an id of another tenant is "not found" too);
- 413 a body over the size limit and 415 an unsupported content type: operations with a body;
- 409 refused in the current state, 422 refused by a business rule: every write.

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
    "required": ["code", "message", "details"],
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
WRITES = {
    "409": "Refused in the current state (`conflict` or the operation's own code).",
    "422": "Refused by a business rule (compliance, routing: e.g. `signature_not_approved`, `banned_content`).",
}
WITH_BODY = {
    "413": "The body is larger than the API accepts (`payload_too_large`).",
    "415": "The body's content type is not accepted (`unsupported_media_type`).",
}


# An example per status: a real answer of the platform (issue 14: Swagger examples that can be sent).
EXAMPLES = {
    "400": ("validation_error", "The request is invalid.", {"to": ["This field is required."]}),
    "401": ("authentication_failed", "Incorrect authentication credentials.", None),
    "402": ("insufficient_balance", "The balance cannot cover this send.", None),
    "403": ("tenant_suspended", "This account is suspended: complaint overdue.", None),
    "404": ("not_found", "Not found.", None),
    "409": ("conflict", "The request conflicts with the current state.", None),
    "413": ("payload_too_large", "The body is larger than 2621440 bytes.", {"max_bytes": 2621440}),
    "415": ("unsupported_media_type", 'Unsupported media type "text/plain" in request.', None),
    "422": ("opted_out", "The recipient opted out.", {"to": "+8613800138000", "client_ref": None}),
    "429": ("rate_limited", "Request was throttled. Expected available in 12 seconds.", None),
}


def _error_content(status: str) -> dict:
    code, message, details = EXAMPLES.get(status, ("error", "The request was refused.", None))
    return {
        "application/json": {"schema": _ERROR_REF, "example": {"code": code, "message": message, "details": details}}
    }


def _error_response(status: str, description: str) -> dict:
    return {"description": description, "content": _error_content(status)}


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
                responses.setdefault(status, _error_response(status, description))
            for parameter in operation.get("parameters", []):
                enum = parameter.get("schema", {}).get("enum")
                if parameter.get("in") == "query" and enum and "" not in enum:
                    enum.append("")  # an empty filter is no filter (django-filter), not an error
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = _error_content(status)
    return result
