"""Billing's domain errors (mapped once to API responses by smsplatform.errors).

Re-exported from billing.services, which is where callers import them from.
"""

from rest_framework import status

from smsplatform.errors import DomainError


class BillingError(DomainError):
    code = "billing_error"


class InsufficientBalance(BillingError):
    """R-BIL-1: prepaid; too little balance refuses the send with a clear error."""

    code = "insufficient_balance"
    http_status = status.HTTP_402_PAYMENT_REQUIRED
    default_message = "The account balance is too low for this request."


class NoPrice(BillingError):
    code = "no_price"
    http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_message = "No price is in force for this message type and destination."


class InvalidAmount(BillingError):
    code = "invalid_amount"
    default_message = "The amount is not valid."


class IdempotencyConflict(BillingError):
    code = "idempotency_conflict"
    http_status = status.HTTP_409_CONFLICT
    default_message = "This idempotency key was already used for a different operation."


class PriceNoticeTooShort(BillingError):
    """R-BIL-4: a price change takes effect no sooner than 7 days after it is announced."""

    code = "price_notice_too_short"
    default_message = "A price change must be announced at least 7 days before it takes effect."


class RefundRefused(BillingError):
    """R-BIL-5: no refund when the customer ended the service or was terminated for a violation."""

    code = "refund_refused"
    http_status = status.HTTP_409_CONFLICT
    default_message = "No refund for this cause."


class DisputeRefused(BillingError):
    code = "dispute_refused"
    http_status = status.HTTP_409_CONFLICT
    default_message = "A month can only be disputed within that month."


class CompensationTooHigh(BillingError):
    code = "compensation_too_high"
    default_message = "Compensation is capped at 10% of the month's usage."


class InvoiceRefused(BillingError):
    code = "invoice_refused"
    http_status = status.HTTP_409_CONFLICT
    default_message = "Invoices follow actual top-ups and cannot exceed them."


class InvalidState(BillingError):
    code = "invalid_state"
    http_status = status.HTTP_409_CONFLICT
    default_message = "This record is not in a state that allows the operation."


class CurrencyMismatch(BillingError):
    """R-BIL-1: one currency per account; a booking in another currency is refused, never converted."""

    code = "currency_mismatch"
    http_status = status.HTTP_409_CONFLICT
    default_message = "The booking's currency is not the account's currency."
