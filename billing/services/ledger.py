"""The ledger core (R-BIL-1, R-BIL-9, R-CMP-6): accounts, entries, top-ups, adjustments,
penalties (receivables beyond the balance), forfeits (with the sweep of in-flight holds)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from smsplatform import jobs, metrics
from tenants.models import Tenant
from tenants.services import Actor, record_operation

from ..errors import (
    BillingError,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidAmount,
)
from ..models import (
    Account,
    EntryKind,
    Hold,
    LedgerEntry,
    PackageGrant,
    PackageState,
    Receivable,
    ReceivableState,
)
from ..money import MAX_AMOUNT, format_money

logger = logging.getLogger(__name__)


# --- accounts and the ledger core ------------------------------------------------------------


def enqueue(actor_name: str, *args) -> None:
    """Send a job to one of billing.actors by name (queue `billing`; smsplatform.jobs)."""
    jobs.enqueue(actor_name, *args, queue="billing")


def account_for(tenant: Tenant) -> Account:
    """The tenant's account, created on first use (one per tenant: OneToOne + get_or_create)."""
    account, _ = Account.objects.get_or_create(tenant=tenant)
    return account


def _locked_account(tenant: Tenant) -> Account:
    """Lock the tenant's account row for this transaction (creating the account if needed)."""
    try:
        return Account.objects.select_for_update().get(tenant=tenant)
    except Account.DoesNotExist:
        account_for(tenant)
        return Account.objects.select_for_update().get(tenant=tenant)


def _replayed(key: str, account: Account, kind: str) -> LedgerEntry | None:
    """The entry a previous call with this key booked, if any (call with the account locked)."""
    if not key:
        raise InvalidAmount("An idempotency key is required.", code="idempotency_key_required")
    entry = LedgerEntry.objects.filter(idempotency_key=key).first()
    if entry is None:
        return None
    if entry.account_id != account.pk or entry.kind != kind:
        raise IdempotencyConflict(details={"idempotency_key": key})
    return entry


def _entry(
    *,
    account: Account,
    kind: str,
    amount: int,
    held_delta: int,
    key: str,
    actor: Actor,
    reference: str = "",
    reason: str = "",
    details: dict | None = None,
    created_at: datetime | None = None,
) -> LedgerEntry:
    """Build (not save) the next entry of a locked account and move the cached sums along.

    Refuses to take the balance or the held bucket below zero (R-BIL-1, R-BIL-9).
    """
    balance, held = account.balance + amount, account.held + held_delta
    if balance < 0:
        raise InsufficientBalance(
            details={
                "required": -amount,
                "available": account.balance,
                "message": f"need {format_money(-amount)}, have {format_money(account.balance)}",
            }
        )
    if held < 0:  # cannot happen through these services; the CHECK constraint would refuse it too
        raise BillingError("Held funds would go negative.", code="held_negative")
    account.balance, account.held = balance, held
    return LedgerEntry(
        account=account,
        kind=kind,
        amount=amount,
        held_delta=held_delta,
        balance_after=balance,
        held_after=held,
        reference=reference[:200],
        reason=reason,
        actor_kind=actor.kind,
        actor_label=actor.label,
        idempotency_key=key,
        details=details or {},
        created_at=created_at or timezone.now(),
    )


def _save_entries(entries: list[LedgerEntry]) -> None:
    try:
        LedgerEntry.objects.bulk_create(entries)
        metrics.count_ledger(entries)
    except IntegrityError as exc:  # the enclosing atomic() rolls everything back
        # Same key used concurrently for another account (the lock only serialises one account).
        raise IdempotencyConflict(details={"idempotency_keys": [e.idempotency_key for e in entries]}) from exc


def _store_account(account: Account, *, credited: bool = False) -> None:
    """Write the cached sums back (the row is locked) and handle the low-balance alert (R-BIL-6).

    Crossing below the threshold alerts once (after commit); a top-up that brings the balance
    back to the threshold or above re-arms the alert.
    """
    alert = False
    threshold = account.low_balance_threshold
    if threshold is not None:
        if account.balance < threshold and not account.low_balance_alerted and not credited:
            account.low_balance_alerted = alert = True
        elif credited and account.balance >= threshold:
            account.low_balance_alerted = False
    Account.objects.filter(pk=account.pk).update(
        balance=account.balance, held=account.held, low_balance_alerted=account.low_balance_alerted
    )
    if alert:
        account_id, balance = account.pk, account.balance
        # robust: a broker hiccup after commit must not fail the send that crossed the threshold
        transaction.on_commit(
            lambda: enqueue("send_low_balance_alert_job", account_id, balance, threshold), robust=True
        )


def _book(
    *,
    tenant: Tenant,
    kind: str,
    amount: int,
    key: str,
    actor: Actor,
    reference: str = "",
    reason: str = "",
    details: dict | None = None,
    credited: bool = False,
) -> tuple[LedgerEntry, bool]:
    """Lock, replay or book one cash entry. Returns (entry, booked_now). Call inside atomic()."""
    account = _locked_account(tenant)
    previous = _replayed(key, account, kind)
    if previous is not None:
        return previous, False
    entry = _entry(
        account=account,
        kind=kind,
        amount=amount,
        held_delta=0,
        key=key,
        actor=actor,
        reference=reference,
        reason=reason,
        details=details,
    )
    _save_entries([entry])
    _store_account(account, credited=credited)
    return entry, True


def _check_amount(amount, *, what: str, allow_negative: bool = False) -> None:
    """Whole micro-units within MAX_AMOUNT (never a float, a bool or a number the columns cannot
    hold: a clear error instead of a database overflow)."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidAmount(f"{what} must be a whole number of micro-units.")
    if amount == 0 or (amount < 0 and not allow_negative):
        raise InvalidAmount(f"{what} must be {'non-zero' if allow_negative else 'positive'}.")
    if abs(amount) > MAX_AMOUNT:
        raise InvalidAmount(f"{what} is beyond the largest booking ({format_money(MAX_AMOUNT)}).")


def _check_currency(account: Account, currency: str | None) -> None:
    """R-BIL-1: a booking in another currency than the account's is refused."""
    if currency is not None and currency != account.currency:
        raise CurrencyMismatch(details={"account_currency": account.currency, "currency": currency})


def _collect_receivables(account: Account, *, key: str, actor: Actor) -> list[LedgerEntry]:
    """R-CMP-6: money owed beyond the balance (receivables) is taken from a top-up, oldest first:
    one `collection` entry per receivable. Call with the account locked, after the credit."""
    entries = []
    for receivable in (
        Receivable.objects.select_for_update()
        .filter(account=account, state=ReceivableState.OPEN)
        .order_by("created_at", "id")
    ):
        if account.balance <= 0:
            break
        take = min(account.balance, receivable.outstanding)
        entries.append(
            _entry(
                account=account,
                kind=EntryKind.COLLECTION,
                amount=-take,
                held_delta=0,
                key=f"{key}#collect#{receivable.pk}",
                actor=actor,
                reason=receivable.reason,
                reference=f"receivable {receivable.pk}",
                details={"receivable": receivable.pk},
            )
        )
        receivable.collected += take
        if receivable.collected == receivable.amount:
            receivable.state, receivable.settled_at = ReceivableState.SETTLED, timezone.now()
        receivable.save(update_fields=["collected", "state", "settled_at"])
    return entries


def topup(
    *,
    tenant: Tenant,
    amount: int,
    actor: Actor,
    idempotency_key: str,
    reference: str = "",
    reason: str = "",
    currency: str | None = None,
) -> LedgerEntry:
    """R-BIL-1: an operator books money received. `amount` in micro-units, > 0, in the account's
    currency (`currency` given and different: CurrencyMismatch). Open receivables are collected
    from it at once (R-CMP-6)."""
    _check_amount(amount, what="A top-up")
    with transaction.atomic():
        account = _locked_account(tenant)
        previous = _replayed(idempotency_key, account, EntryKind.TOPUP)
        if previous is not None:
            return previous
        _check_currency(account, currency)
        entry = _entry(
            account=account,
            kind=EntryKind.TOPUP,
            amount=amount,
            held_delta=0,
            key=idempotency_key,
            actor=actor,
            reference=reference,
            reason=reason,
        )
        collections = _collect_receivables(account, key=idempotency_key, actor=actor)
        _save_entries([entry, *collections])
        _store_account(account, credited=True)
        record_operation(
            actor=actor,
            action="billing.topup",
            tenant=tenant,
            obj=entry,
            reason=reason,
            after={
                "amount": amount,
                "balance": account.balance,
                "collected": -sum(e.amount for e in collections),
            },
        )
    return entry


def adjust(*, tenant: Tenant, amount: int, actor: Actor, reason: str, idempotency_key: str) -> LedgerEntry:
    """A manual correction (signed). Never below zero; always with a reason."""
    _check_amount(amount, what="An adjustment", allow_negative=True)
    if not reason.strip():
        raise BillingError("A reason is required.", code="reason_required")
    with transaction.atomic():
        entry, booked = _book(
            tenant=tenant,
            kind=EntryKind.ADJUST,
            amount=amount,
            key=idempotency_key,
            actor=actor,
            reason=reason,
            credited=amount > 0,
        )
        if booked:
            record_operation(
                actor=actor,
                action="billing.adjust",
                tenant=tenant,
                obj=entry,
                reason=reason,
                after={"amount": amount, "balance": entry.balance_after},
            )
    return entry


def penalty(*, tenant: Tenant, amount: int, actor: Actor, reason: str, idempotency_key: str) -> LedgerEntry:
    """R-CMP-6: liquidated damages booked as a penalty charge.

    The balance never goes negative: what it cannot cover becomes a `Receivable` (on the
    statement, in the admin), collected from the next top-ups. entry.details says assessed,
    charged, outstanding and the receivable's id.
    """
    _check_amount(amount, what="A penalty")
    if not reason.strip():
        raise BillingError("A reason is required.", code="reason_required")
    with transaction.atomic():
        account = _locked_account(tenant)
        previous = _replayed(idempotency_key, account, EntryKind.PENALTY)
        if previous is not None:
            return previous
        charged = min(amount, account.balance)
        entry = _entry(
            account=account,
            kind=EntryKind.PENALTY,
            amount=-charged,
            held_delta=0,
            key=idempotency_key,
            actor=actor,
            reason=reason,
            details={"assessed": amount, "charged": charged, "outstanding": amount - charged},
        )
        _save_entries([entry])
        _store_account(account)
        if amount > charged:
            receivable = Receivable.objects.create(account=account, entry=entry, amount=amount - charged, reason=reason)
            entry.details["receivable"] = receivable.pk  # for the caller; the stored row is immutable
        record_operation(
            actor=actor, action="billing.penalty", tenant=tenant, obj=entry, reason=reason, after=entry.details
        )
    return entry


def _start_sweep(account: Account, *, kind: str, reference: str) -> None:
    """From now on, cash released by holds booked so far goes the way of `kind` (forfeit or
    refund) instead of back to the balance (R-BIL-5, R-CMP-6). Holds booked later are not swept."""
    last_hold = Hold.objects.filter(account=account).aggregate(last=Max("id"))["last"]
    account.sweep, account.sweep_reference, account.sweep_until_hold = kind, reference[:200], last_hold
    Account.objects.filter(pk=account.pk).update(
        sweep=kind, sweep_reference=reference[:200], sweep_until_hold=last_hold
    )


def forfeit(*, tenant: Tenant, actor: Actor, reason: str, idempotency_key: str) -> LedgerEntry:
    """R-CMP-6 / R-BIL-3: forfeit the remaining cash balance and every package credit.

    Funds already held for messages in flight settle later: a capture charges them, and what a
    release would give back is forfeited in the same booking (Account.sweep), so no money
    reappears on a forfeited account. entry.details says how much cash and how many package
    segments were forfeited now.
    """
    if not reason.strip():
        raise BillingError("A reason is required.", code="reason_required")
    now = timezone.now()
    with transaction.atomic():
        account = _locked_account(tenant)
        previous = _replayed(idempotency_key, account, EntryKind.FORFEIT)
        if previous is not None:
            return previous
        grants = list(PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE))
        segments = sum(g.segments_remaining for g in grants)
        entry = _entry(
            account=account,
            kind=EntryKind.FORFEIT,
            amount=-account.balance,
            held_delta=0,
            key=idempotency_key,
            actor=actor,
            reason=reason,
            details={
                "cash": account.balance,
                "package_segments": segments,
                "packages": [g.pk for g in grants],
                "held_in_flight": account.held,
            },
        )
        _save_entries([entry])
        _store_account(account)
        _start_sweep(account, kind=EntryKind.FORFEIT, reference=f"forfeit {idempotency_key}")
        PackageGrant.objects.filter(pk__in=[g.pk for g in grants]).update(
            state=PackageState.FORFEITED, segments_remaining=0, ended_at=now
        )
        record_operation(
            actor=actor, action="billing.forfeit", tenant=tenant, obj=entry, reason=reason, after=entry.details
        )
    return entry
