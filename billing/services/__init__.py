"""Every change of money: one function per operation, one transaction each.

Money flow (docs/billing.md has a worked example). Each account has two buckets, both caches of
ledger sums and both kept >= 0 by CHECK constraints:

- `balance`: spendable cash = sum(entry.amount)
- `held`:    cash reserved for accepted messages = sum(entry.held_delta)

    top-up   amount +x                  a hold     amount -x, held +x
    capture  held -x   (the charge)     a release  amount +x, held -x
    refund / penalty / forfeit / package purchase   amount -x

A hold moves cash out of `balance` into `held` (so it cannot be spent twice: `balance` is what a
new hold can take), a capture takes it out of `held` for good, a release puts it back. Each hold
row is settled exactly once: settlement is an UPDATE ... WHERE state = 'held'.

Concurrency (R-BIL-9): every change locks the account row first (select_for_update; several
accounts are locked in id order), then checks the idempotency key, then books. Two calls with the
same key serialise on the lock, and the second finds the first one's entry; the unique
constraint on `idempotency_key` is the backstop.
"""

from ..errors import (
    BillingError,
    CompensationTooHigh,
    CurrencyMismatch,
    DisputeRefused,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidAmount,
    InvalidState,
    InvoiceRefused,
    NoPrice,
    PriceNoticeTooShort,
    RefundRefused,
)
from .alerts import notify_low_balance, set_low_balance_alert, webhook_secret_of
from .dormancy import act_on_dormancy, cancel_dormancy_case, last_use_of, notify_dormancy, scan_dormancy
from .holds import (
    Capture,
    HoldLine,
    LateCaptureResult,
    capture_holds,
    capture_released_holds,
    hold_message_ids,
    hold_messages,
    release_holds,
)
from .invoices import issue_invoice
from .ledger import account_for, adjust, enqueue, forfeit, penalty, topup
from .packages import buy_package, expire_packages
from .prices import (
    PRICE_NOTICE,
    announce_price,
    announce_price_change,
    assign_plan,
    check_price_notice,
    default_plan,
    save_plan,
    set_default_plan,
)
from .refunds_disputes import (
    month_start,
    open_dispute,
    reject_dispute,
    request_refund,
    resolve_dispute,
    return_invoice,
)

__all__ = [
    "BillingError",
    "Capture",
    "CompensationTooHigh",
    "CurrencyMismatch",
    "DisputeRefused",
    "HoldLine",
    "IdempotencyConflict",
    "InsufficientBalance",
    "InvalidAmount",
    "InvalidState",
    "InvoiceRefused",
    "LateCaptureResult",
    "NoPrice",
    "PRICE_NOTICE",
    "PriceNoticeTooShort",
    "RefundRefused",
    "account_for",
    "act_on_dormancy",
    "adjust",
    "announce_price",
    "announce_price_change",
    "assign_plan",
    "buy_package",
    "cancel_dormancy_case",
    "capture_holds",
    "capture_released_holds",
    "check_price_notice",
    "default_plan",
    "enqueue",
    "expire_packages",
    "forfeit",
    "hold_message_ids",
    "hold_messages",
    "issue_invoice",
    "last_use_of",
    "month_start",
    "notify_dormancy",
    "notify_low_balance",
    "open_dispute",
    "penalty",
    "reject_dispute",
    "release_holds",
    "request_refund",
    "resolve_dispute",
    "return_invoice",
    "save_plan",
    "scan_dormancy",
    "set_default_plan",
    "set_low_balance_alert",
    "webhook_secret_of",
    "topup",
]
