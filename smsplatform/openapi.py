"""OpenAPI post-processing (drf-spectacular): one error schema for every operation (issue 14).

Every error the API answers has the body {"code", "message", "details"} (smsplatform.errors).
The hook adds that `Error` schema and, to each operation, the error responses every endpoint
can give (400, 401, 403, 404, 429) plus those an endpoint declared by description only (402,
409, 422 …), each with an example that is a real answer of the platform.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string", "description": "stable, machine-readable (docs/api.md lists them all)"},
        "message": {"type": "string", "description": "for people"},
        "details": {
            "nullable": True,
            "description": "field errors for validation_error (field → messages); context for other codes",
        },
    },
}

EXAMPLES = {
    "400": ("validation_error", "The request is invalid.", {"to": ["This field is required."]}),
    "401": ("authentication_failed", "Incorrect authentication credentials.", None),
    "402": ("insufficient_balance", "The balance cannot cover this send.", None),
    "403": ("tenant_suspended", "This account is suspended: complaint overdue.", None),
    "404": ("not_found", "Not found.", None),
    "409": ("conflict", "The request conflicts with the current state.", None),
    "422": ("opted_out", "The recipient opted out.", {"to": "+8613800138000", "client_ref": None}),
    "429": ("rate_limited", "Request was throttled. Expected available in 12 seconds.", None),
}
ALWAYS = ("400", "401", "403", "404", "429")


def _error_response(status: str, description: str | None = None) -> dict:
    code, message, details = EXAMPLES.get(status, ("error", "The request was refused.", None))
    return {
        "description": description or code,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Error"},
                "example": {"code": code, "message": message, "details": details},
            }
        },
    }


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if status.startswith(("4", "5")):
                    # every error answer is the Error body, with an example (some views declared
                    # a description only, others a schema without an example)
                    responses[status] = _error_response(status, response.get("description"))
            for status in ALWAYS:
                responses.setdefault(status, _error_response(status))
    return result
