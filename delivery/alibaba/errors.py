"""Our refusal reasons and domain error codes → Alibaba's error codes: the one table (docs/alibaba.md).

Business errors answer HTTP 200 with Code != "OK" (as Alibaba does); authentication and request
errors answer the HTTP status Alibaba uses for them.
"""

from __future__ import annotations


class AlibabaError(Exception):
    """An answer in Alibaba's error shape: {"Code", "Message", "RequestId"}."""

    def __init__(self, code: str, message: str, http_status: int = 200):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


# our code (refusal reason or DomainError.code) → Alibaba code; business errors, HTTP 200
BUSINESS_CODES: dict[str, str] = {
    # compliance gate (R-CMP-1/2/3/4/5/6/8/9)
    "signature_not_approved": "isv.SMS_SIGNATURE_ILLEGAL",
    "invalid_signature": "isv.SMS_SIGNATURE_ILLEGAL",
    "signature_exists": "isv.SMS_SIGNATURE_ILLEGAL",
    "invalid_proof": "isv.SMS_SIGNATURE_ILLEGAL",
    "proof_required": "isv.SMS_SIGNATURE_ILLEGAL",
    "template_not_approved": "isv.SMS_TEMPLATE_ILLEGAL",
    "invalid_template": "isv.SMS_TEMPLATE_ILLEGAL",
    "international_template_required": "isv.SMS_TEMPLATE_ILLEGAL",
    "domestic_number": "isv.MOBILE_NUMBER_ILLEGAL",
    "invalid_number": "isv.MOBILE_NUMBER_ILLEGAL",
    "no_recipients": "isv.MOBILE_NUMBER_ILLEGAL",
    "batch_too_large": "isv.MOBILE_COUNT_OVER_LIMIT",
    "missing_parameter": "isv.TEMPLATE_MISSING_PARAMETERS",
    "invalid_parameter": "isv.TEMPLATE_PARAMS_ILLEGAL",
    "invalid_json": "isv.INVALID_JSON_PARAM",
    "banned_content": "isv.BLACK_KEY_CONTROL_LIMIT",
    "opted_out": "isv.BLACK_KEY_CONTROL_LIMIT",
    "globally_blocked": "isv.BLACK_KEY_CONTROL_LIMIT",
    "no_consent": "isv.BLACK_KEY_CONTROL_LIMIT",
    "frequency_limited": "isv.BUSINESS_LIMIT_CONTROL",
    "volume_capped": "isv.DAY_LIMIT_CONTROL",
    "sending_suspended": "isv.OUT_OF_SERVICE",
    "tenant_suspended": "isv.OUT_OF_SERVICE",
    "tenant_pending": "isv.ACCOUNT_ABNORMAL",
    "tenant_terminated": "isv.ACCOUNT_ABNORMAL",
    "country_disabled": "isv.PRODUCT_UN_SUBSCRIPT",
    "country_not_enabled": "isv.PRODUCT_UN_SUBSCRIPT",
    "sender_not_allowed": "isv.SMS_SIGNATURE_ILLEGAL",
    "opt_out_text_missing": "isv.SMS_TEMPLATE_ILLEGAL",
    "quiet_hours": "isv.BUSINESS_LIMIT_CONTROL",
    "too_many_segments": "isv.TEMPLATE_PARAMS_ILLEGAL",
    "no_price": "isv.PRODUCT_UN_SUBSCRIPT",
    # billing (R-BIL-1)
    "insufficient_balance": "isv.AMOUNT_NOT_ENOUGH",
    # idempotency (OutId reused with another body) and review states
    "client_ref_conflict": "isv.OUT_ID_CONFLICT",
    "review_conflict": "isv.INVALID_PARAMETERS",
    "invalid_state_transition": "isv.INVALID_PARAMETERS",
    "invalid_send_at": "isv.INVALID_PARAMETERS",
    "validation_error": "isv.INVALID_PARAMETERS",
}

# Authentication and request errors (not business answers): code → HTTP status, as Alibaba sends them.
AUTH_STATUS = {
    "MissingParameter": 400,
    "IncompleteSignature": 400,
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAccessKeyId.Inactive": 403,
    "SignatureDoesNotMatch": 400,
    "SignatureNonceUsed": 400,
    "InvalidTimeStamp.Expired": 400,
    "InvalidTimeStamp.Format": 400,
    "UnsupportedSignatureMethod": 400,
    "InvalidAction.NotFound": 404,
    "InvalidVersion": 400,
    "Throttling.User": 400,
    "isp.SYSTEM_ERROR": 500,
}


def auth_error(code: str, message: str) -> AlibabaError:
    return AlibabaError(code, message, AUTH_STATUS[code])


def business_code(reason: str, detail: str = "") -> str:
    """The Alibaba code for one of our refusal reasons (a missing template parameter has its own)."""
    if reason == "invalid_parameter" and detail.startswith("Missing parameters"):
        return BUSINESS_CODES["missing_parameter"]
    return BUSINESS_CODES.get(reason, "isv.BUSINESS_REFUSED")


def from_reason(reason: str, detail: str = "") -> AlibabaError:
    return AlibabaError(business_code(reason, detail), detail or reason)
