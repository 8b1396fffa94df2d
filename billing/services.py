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

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Sum
from django.utils import timezone

from smsplatform.db import insert_rows
from tenants.models import Tenant, TenantState
from tenants.services import Actor, record_operation

from .errors import (
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
from .models import (
    REFUNDABLE_CAUSES,
    Account,
    Currency,
    Dispute,
    DisputeState,
    DormancyCase,
    DormancyKind,
    DormancyState,
    EntryKind,
    Hold,
    HoldPackageUse,
    HoldState,
    Invoice,
    InvoiceState,
    LedgerEntry,
    PackageGrant,
    PackageProduct,
    PackageState,
    Plan,
    PlanAssignment,
    Price,
    Receivable,
    ReceivableState,
    Refund,
    RefundCause,
    RefundState,
)
from .rules import MAX_AMOUNT, compensation_cap, format_money

__all__ = [
    "BillingError",
    "CompensationTooHigh",
    "CurrencyMismatch",
    "DisputeRefused",
    "IdempotencyConflict",
    "InsufficientBalance",
    "InvalidAmount",
    "InvalidState",
    "InvoiceRefused",
    "NoPrice",
    "PriceNoticeTooShort",
    "RefundRefused",
    "Capture",
    "HoldLine",
    "account_for",
    "hold_messages",
    "hold_message_ids",
    "capture_holds",
    "release_holds",
    "topup",
    "adjust",
    "forfeit",
    "penalty",
    "buy_package",
    "request_refund",
    "issue_invoice",
    "return_invoice",
    "open_dispute",
    "resolve_dispute",
    "reject_dispute",
    "announce_price",
    "announce_price_change",
    "assign_plan",
    "set_default_plan",
    "save_plan",
    "default_plan",
    "check_price_notice",
    "capture_released_holds",
    "LateCaptureResult",
    "release_stale_held_messages",
    "set_low_balance_alert",
    "expire_packages",
    "scan_dormancy",
    "act_on_dormancy",
    "cancel_dormancy_case",
]

logger = logging.getLogger(__name__)

PRICE_NOTICE = timedelta(days=7)  # R-BIL-4


# --- accounts and the ledger core ------------------------------------------------------------


def enqueue(actor_name: str, *args) -> None:
    """Send a job to one of billing.actors by name (queue `billing`): services never import the
    actors module, which imports them (no import circle)."""
    import dramatiq

    broker = dramatiq.get_broker()
    broker.declare_queue("billing")
    broker.enqueue(dramatiq.Message(queue_name="billing", actor_name=actor_name, args=args, kwargs={}, options={}))


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
        transaction.on_commit(lambda: enqueue("send_low_balance_alert", account_id, balance, threshold), robust=True)


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


# --- holds, captures, releases (R-BIL-2) -------------------------------------------------------


@dataclass(frozen=True)
class HoldLine:
    reference: str  # e.g. "<schema>:<message id>"
    segments: int
    unit_price: int  # micro-units per segment
    price_id: int | None = None
    message_type: str | None = None  # lets packages limited to some message types apply


@dataclass(frozen=True)
class Capture:
    hold_id: int
    carrier_message_id: str
    submitted_at: datetime
    segments: int | None = None  # segments (parts) the carrier accepted; None = all of the hold's


def _usable_grants(account: Account, now: datetime) -> list[PackageGrant]:
    return list(
        PackageGrant.objects.filter(
            account=account, state=PackageState.ACTIVE, segments_remaining__gt=0, starts_at__lte=now, expires_at__gt=now
        ).order_by("expires_at", "id")
    )


def hold_messages(*, tenant: Tenant, lines: list[HoldLine], idempotency_key: str, actor: Actor) -> list[Hold]:
    """R-BIL-2: reserve funds for accepted messages. One account lock and a constant number of
    queries for the whole batch; packages first (soonest-expiring, R-BIL-3), then cash.

    All or nothing: raises InsufficientBalance (402). The same idempotency_key again returns the
    holds of the first call and moves no money.
    """
    booked = _book_holds(tenant=tenant, lines=lines, idempotency_key=idempotency_key, actor=actor)
    if isinstance(booked, LedgerEntry):
        return list(booked.holds.order_by("id"))
    ids, entry, account, plans, now = booked
    holds = [
        Hold(
            pk=hold_id,
            account=account,
            tenant_id=account.tenant_id,
            entry=entry,
            reference=line.reference,
            message_type=line.message_type or "",
            segments=line.segments,
            package_segments=package_segments,
            unit_price=line.unit_price,
            amount=(line.segments - package_segments) * line.unit_price,
            price_id=line.price_id,
            created_at=now,
        )
        for hold_id, (line, package_segments, _) in zip(ids, plans, strict=True)
    ]
    for hold in holds:  # stored rows, as bulk_create would have marked them
        hold._state.adding, hold._state.db = False, connection.alias
    return holds


def hold_message_ids(*, tenant: Tenant, lines: list[HoldLine], idempotency_key: str, actor: Actor) -> list[int]:
    """hold_messages() for the API intake hot path: the same booking, but only the hold ids (in
    the order of `lines`) come back, so no 1000 model instances are built for a batch."""
    booked = _book_holds(tenant=tenant, lines=lines, idempotency_key=idempotency_key, actor=actor)
    if isinstance(booked, LedgerEntry):
        return list(booked.holds.order_by("id").values_list("id", flat=True))
    return booked[0]


def _book_holds(*, tenant: Tenant, lines: list[HoldLine], idempotency_key: str, actor: Actor):
    """The booking behind hold_messages(): the first call's LedgerEntry on a replay, else
    (hold ids in line order, entry, account, plans, now)."""
    if not lines:
        return [], None, None, [], None
    for line in lines:
        if line.segments < 1 or line.unit_price < 0:
            raise InvalidAmount(f"Invalid hold line {line.reference!r}: segments >= 1, unit_price >= 0.")
    now = timezone.now()
    with transaction.atomic():
        account = _locked_account(tenant)
        previous = _replayed(idempotency_key, account, EntryKind.HOLD)
        if previous is not None:
            return previous
        price_ids = {line.price_id for line in lines if line.price_id}
        if price_ids:  # R-BIL-1: never charge a price in another currency than the account's
            other = list(
                Price.objects.filter(pk__in=price_ids)
                .exclude(currency=account.currency)
                .values_list("currency", flat=True)[:1]
            )
            if other:
                raise CurrencyMismatch(details={"account_currency": account.currency, "currency": other[0]})
        grants = _usable_grants(account, now)
        # R-BIL-3: a package limited to some message types pays for its types before an
        # any-type package does (which could pay for anything), each group soonest-expiring first.
        limited = [g for g in grants if g.message_types]
        general = [g for g in grants if not g.message_types]
        ordered = limited + general
        plans: list[tuple[HoldLine, int, list[tuple[PackageGrant, int]]]] = []
        used: set[int] = set()
        cash_total = 0
        for line in lines:
            need, takes = line.segments, []
            for grant in ordered if line.message_type else general:
                if need == 0:
                    break
                if grant.segments_remaining == 0 or (
                    grant.message_types and line.message_type not in grant.message_types
                ):
                    continue
                take = min(need, grant.segments_remaining)
                grant.segments_remaining -= take
                grant.last_used_at = now
                used.add(grant.pk)
                takes.append((grant, take))
                need -= take
            package_segments = line.segments - need
            cash_total += need * line.unit_price
            plans.append((line, package_segments, takes))
        entry = _entry(
            account=account,
            kind=EntryKind.HOLD,
            amount=-cash_total,
            held_delta=cash_total,
            key=idempotency_key,
            actor=actor,
            reference=lines[0].reference if len(lines) == 1 else f"{len(lines)} messages",
            details={
                "holds": len(lines),
                "segments": sum(line.segments for line in lines),
                "package_segments": sum(p for _, p, _ in plans),
            },
            created_at=now,
        )
        _save_entries([entry])
        # Rows as tuples through one INSERT (smsplatform.db): bulk_create's per-value
        # compilation of 1000 Hold instances was a large part of a batch request's time.
        created_at = now.isoformat()  # formatted once for every row
        ids = insert_rows(
            Hold,
            (
                "account_id",
                "tenant_id",
                "entry_id",
                "reference",
                "message_type",
                "segments",
                "package_segments",
                "unit_price",
                "amount",
                "price_id",
                "created_at",
            ),
            [
                (
                    account.pk,
                    account.tenant_id,
                    entry.pk,
                    line.reference,
                    line.message_type or "",
                    line.segments,
                    package_segments,
                    line.unit_price,
                    (line.segments - package_segments) * line.unit_price,
                    line.price_id,
                    created_at,
                )
                for line, package_segments, _ in plans
            ],
            returning="id",
        )
        if used:
            insert_rows(
                HoldPackageUse,
                ("hold_id", "grant_id", "segments"),
                [
                    (hold_id, grant.pk, take)
                    for hold_id, (_, _, takes) in zip(ids, plans, strict=True)
                    for grant, take in takes
                ],
            )
            PackageGrant.objects.bulk_update(
                [g for g in grants if g.pk in used], ["segments_remaining", "last_used_at"]
            )
        _store_account(account)
    return ids, entry, account, plans, now


def _lock_accounts(account_ids: set[int]) -> dict[int, Account]:
    """Lock several accounts in a fixed order (id) so concurrent batches never deadlock."""
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=account_ids).order_by("pk")}


@dataclass(frozen=True)
class _Settled:
    """One hold settled now: its cash `amount` held, the cash `charged` (0 for a release) and the
    package segments it held and kept (charged)."""

    hold_id: int
    account_id: int
    amount: int
    charged: int
    package_segments: int
    package_charged: int


def _settle(
    *,
    hold_ids: list[int],
    idempotency_key: str,
    to_state: str,
    values_sql: str,
    values: list,
    now: datetime,
    reason: str = "",
) -> tuple[list[_Settled], dict[int, Account]]:
    """Move holds from held to `to_state` exactly once; returns the holds settled now and the
    locked accounts.

    Skips accounts whose entry for this key exists already (a retry moves no money).
    """
    if not idempotency_key:
        raise InvalidAmount("An idempotency key is required.", code="idempotency_key_required")
    table = Hold._meta.db_table
    candidates = set(Hold.objects.filter(pk__in=hold_ids, state=HoldState.HELD).values_list("account_id", flat=True))
    if not candidates:
        return [], {}
    accounts = _lock_accounts(candidates)
    keys = {aid: f"{idempotency_key}#{aid}" for aid in accounts}
    replayed = set(LedgerEntry.objects.filter(idempotency_key__in=keys.values()).values_list("account_id", flat=True))
    todo = [aid for aid in accounts if aid not in replayed]
    if not todo:
        return [], accounts
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} AS h SET state = %s, settled_at = %s, release_reason = %s {values_sql}
                WHERE h.id = v.id AND h.state = 'held' AND h.account_id = ANY(%s)
                RETURNING h.id, h.account_id, h.amount, h.charged, h.package_segments, h.package_charged""",  # noqa: S608 - table name from model meta
            [to_state, now, reason[:200], *values, todo],
        )
        return [_Settled(*row) for row in cursor.fetchall()], accounts


def _return_package_segments(returns: dict[int, int]) -> None:
    """Give package segments of holds back to the packages they came from (hold id → segments).

    A whole release gives back everything (one statement per table); a partly accepted long
    message gives back what its refused parts took, latest-expiring package first (the customer
    keeps the longest-lived credit). Forfeited, expired or refunded packages take nothing back.
    """
    if not returns:
        return
    uses_table, grants_table = HoldPackageUse._meta.db_table, PackageGrant._meta.db_table
    uses = list(
        HoldPackageUse.objects.filter(hold_id__in=list(returns))
        .exclude(returned=F("segments"))
        .select_related("grant")
        .order_by("hold_id", "-grant__expires_at", "-grant_id")
    )
    back: dict[int, int] = defaultdict(int)
    changed = []
    for use in uses:
        want = returns[use.hold_id]
        take = min(want, use.segments - use.returned)
        if take <= 0:
            continue
        use.returned += take
        returns[use.hold_id] = want - take
        back[use.grant_id] += take
        changed.append(use)
    if not changed:
        return
    HoldPackageUse.objects.bulk_update(changed, ["returned"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {grants_table} AS g SET segments_remaining = g.segments_remaining + u.total
                FROM unnest(%s::bigint[], %s::int[]) AS u(grant_id, total)
                WHERE g.id = u.grant_id AND g.state = 'active'""",  # noqa: S608 - names from model meta
            [list(back), list(back.values())],
        )
    _ = uses_table


def _book_settlement(
    settled: list[_Settled],
    accounts: dict[int, Account],
    *,
    kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    reason: str = "",
) -> None:
    """Book what the settled holds did, one entry per account and movement:

    - a capture: the cash charged leaves `held` (kind capture); the cash of refused parts goes
      back to the balance (kind release, key `<key>#<account>#rest`);
    - a release: all of it goes back to the balance.

    On an account that was forfeited or refunded (`Account.sweep`), cash released by holds booked
    before that goes the same way at once (R-BIL-5, R-CMP-6): it never reappears as balance.
    """
    per_account: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # holds, charged, released, swept
    for s in settled:
        account = accounts[s.account_id]
        row = per_account[s.account_id]
        row[0] += 1
        row[1] += s.charged
        row[2] += s.amount - s.charged
        if account.sweep and account.sweep_until_hold and s.hold_id <= account.sweep_until_hold:
            row[3] += s.amount - s.charged
    entries = []
    for account_id, (count, charged, released, swept) in sorted(per_account.items()):
        account = accounts[account_id]
        key = f"{idempotency_key}#{account_id}"
        if kind == EntryKind.CAPTURE:
            entries.append(
                _entry(
                    account=account,
                    kind=EntryKind.CAPTURE,
                    amount=0,
                    held_delta=-charged,
                    key=key,
                    actor=actor,
                    reference=f"{count} holds",
                    details={"holds": count},
                    created_at=now,
                )
            )
            key = f"{key}#rest"
        if kind == EntryKind.RELEASE or released:
            entries.append(
                _entry(
                    account=account,
                    kind=EntryKind.RELEASE,
                    amount=released,
                    held_delta=-released,
                    key=key,
                    actor=actor,
                    reason=reason or "parts refused by the carrier",
                    reference=f"{count} holds",
                    details={"holds": count},
                    created_at=now,
                )
            )
        if swept:
            entries.append(
                _entry(
                    account=account,
                    kind=account.sweep,
                    amount=-swept,
                    held_delta=0,
                    key=f"{key}#sweep",
                    actor=actor,
                    reason=f"released after the {account.sweep} ({account.sweep_reference})",
                    reference=account.sweep_reference,
                    details={"swept": swept, "sweep_of": account.sweep_reference},
                    created_at=now,
                )
            )
    _save_entries(entries)
    for account_id in per_account:
        _store_account(accounts[account_id], credited=False)


def capture_holds(*, captures: list[Capture], idempotency_key: str) -> int:
    """R-BIL-2: the carrier accepted these messages: held → captured (billed). Holds already
    captured or released are skipped; returns how many were captured now. The hold keeps the
    carrier message id and submit time (R-BIL-8).

    `Capture.segments` = k of the hold's n segments accepted (None: all): k segments are billed
    (package segments first, as the hold took them) and the rest is released, in one booking
    under one key.
    """
    by_id = {c.hold_id: c for c in captures}
    if not by_id:
        return 0
    partial = {i: c.segments for i, c in by_id.items() if c.segments is not None}
    for hold_id, k in partial.items():
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidAmount(
                "Captured segments are a whole number >= 1 (release the hold when nothing was accepted).",
                details={"hold_id": hold_id, "segments": k},
            )
    if partial:
        sizes = dict(Hold.objects.filter(pk__in=list(partial)).values_list("pk", "segments"))
        too_many = {i: k for i, k in partial.items() if i in sizes and k > sizes[i]}
        if too_many:
            raise InvalidAmount(
                "More segments captured than the hold has.",
                details={"holds": {str(i): {"captured": k, "held": sizes[i]} for i, k in too_many.items()}},
            )
    ids = list(by_id)
    now = timezone.now()  # the hold's settled_at and the entry's created_at: one instant, one month
    k_sql = "LEAST(COALESCE(v.seg, h.segments), h.segments)"
    with transaction.atomic():
        settled, accounts = _settle(
            hold_ids=ids,
            idempotency_key=idempotency_key,
            to_state=HoldState.CAPTURED,
            now=now,
            values_sql=(
                ", carrier_message_id = v.cid, submitted_at = v.ts"
                f", captured_segments = {k_sql}"
                f", package_charged = LEAST({k_sql}, h.package_segments)"
                f", charged = GREATEST({k_sql} - h.package_segments, 0) * h.unit_price"
                " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::int[]) AS v(id, cid, ts, seg)"
            ),
            values=[
                ids,
                [by_id[i].carrier_message_id[:100] for i in ids],
                [by_id[i].submitted_at for i in ids],
                [by_id[i].segments for i in ids],
            ],
        )
        if settled:
            _return_package_segments(
                {
                    s.hold_id: s.package_segments - s.package_charged
                    for s in settled
                    if s.package_charged < s.package_segments
                }
            )
            _book_settlement(
                settled,
                accounts,
                kind=EntryKind.CAPTURE,
                idempotency_key=idempotency_key,
                now=now,
                actor=Actor.system("billing.capture"),
            )
    return len(settled)


def release_holds(*, hold_ids: list[int], idempotency_key: str, reason: str = "") -> int:
    """R-BIL-2: failed before carrier acceptance: held → released; the cash and the package
    segments the holds took go back. Returns how many were released now."""
    ids = list(dict.fromkeys(hold_ids))
    if not ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        settled, accounts = _settle(
            hold_ids=ids,
            idempotency_key=idempotency_key,
            to_state=HoldState.RELEASED,
            now=now,
            values_sql="FROM unnest(%s::bigint[]) AS v(id)",
            values=[ids],
            reason=reason,
        )
        if not settled:
            return 0
        _return_package_segments({s.hold_id: s.package_segments for s in settled if s.package_segments})
        _book_settlement(
            settled,
            accounts,
            kind=EntryKind.RELEASE,
            idempotency_key=idempotency_key,
            now=now,
            actor=Actor.system("billing.release"),
            reason=reason,
        )
    return len(settled)


@dataclass(frozen=True)
class LateCaptureResult:
    captured: list[int]
    uncollectable: list[int]  # the balance no longer covers them: delivered, but not billed


def capture_released_holds(*, captures: list[Capture], idempotency_key: str) -> LateCaptureResult:
    """R-BIL-2 "delivered wins": a hold released because its message was thought failed, when a
    late receipt proves the carrier took it. The accepted segments are charged from the balance
    at the hold's unit price (the packages the hold once used may have been spent since), only
    if the balance still covers them; otherwise the hold stays released and is listed as
    uncollectable (never a negative balance, R-BIL-9). Holds never captured before only; a
    retry with the same key charges nothing twice.
    """
    by_id = {c.hold_id: c for c in captures}
    captured: list[int] = []
    uncollectable: list[int] = []
    if not by_id:
        return LateCaptureResult(captured, uncollectable)
    if not idempotency_key:
        raise InvalidAmount("An idempotency key is required.", code="idempotency_key_required")
    now = timezone.now()
    with transaction.atomic():
        account_ids = set(
            Hold.objects.filter(pk__in=list(by_id), state=HoldState.RELEASED).values_list("account_id", flat=True)
        )
        accounts = _lock_accounts(account_ids)
        for account_id, account in accounts.items():
            key = f"{idempotency_key}#{account_id}"
            if _replayed(key, account, EntryKind.CAPTURE) is not None:
                continue
            holds = list(
                Hold.objects.select_for_update()
                .filter(pk__in=list(by_id), account_id=account_id, state=HoldState.RELEASED)
                .order_by("pk")
            )
            total, taken = 0, []
            for hold in holds:
                k = by_id[hold.pk].segments or hold.segments
                if k < 1 or k > hold.segments:
                    raise InvalidAmount("Captured segments out of range.", details={"hold_id": hold.pk})
                cost = k * hold.unit_price
                if total + cost > account.balance:
                    uncollectable.append(hold.pk)
                    continue
                total += cost
                taken.append((hold, k, cost))
            if not taken:
                continue
            entry = _entry(
                account=account,
                kind=EntryKind.CAPTURE,
                amount=-total,
                held_delta=0,
                key=key,
                actor=Actor.system("billing.late_capture"),
                reason="late receipt: delivered after release",
                reference=f"{len(taken)} holds (late)",
                details={"holds": len(taken), "late": True},
                created_at=now,
            )
            _save_entries([entry])
            _store_account(account)
            for hold, k, cost in taken:
                capture = by_id[hold.pk]
                hold.state, hold.captured_segments, hold.charged, hold.package_charged = HoldState.CAPTURED, k, cost, 0
                hold.carrier_message_id, hold.submitted_at = capture.carrier_message_id[:100], capture.submitted_at
                hold.settled_at = now
                captured.append(hold.pk)
            Hold.objects.bulk_update(
                [h for h, _, _ in taken],
                [
                    "state",
                    "captured_segments",
                    "charged",
                    "package_charged",
                    "carrier_message_id",
                    "submitted_at",
                    "settled_at",
                ],
            )
    return LateCaptureResult(captured, uncollectable)


# --- prices and plans (R-BIL-4) ----------------------------------------------------------------
#
# One path for every change of what a tenant pays: a price (new, changed, carrier- or
# country-specific), a tenant's plan, the default plan. Each goes through a function here that
# enforces the 7-day notice, records the operation and announces the change to the tenants it
# affects (announce_price_change).


def default_plan() -> Plan:
    """The plan in force now for accounts without their own (created on first use)."""
    from .selectors import default_plan_at

    plan = default_plan_at(at=timezone.now())
    if plan is None:
        plan, _ = Plan.objects.get_or_create(code="standard", defaults={"name": "Standard", "is_default": True})
        PlanAssignment.objects.create(account=None, plan=plan, effective_from=timezone.now(), announced_by="system")
    return plan


def _notice_error(*, now: datetime, effective_from: datetime) -> PriceNoticeTooShort:
    return PriceNoticeTooShort(
        details={"earliest": (now + PRICE_NOTICE).isoformat(), "effective_from": effective_from.isoformat()}
    )


def check_price_notice(
    *, plan: Plan, message_type: str, country: str, carrier: str, effective_from: datetime, now: datetime
) -> None:
    """R-BIL-4: a change takes effect no sooner than 7 days after it is announced.

    A price is a change when any price already covers the messages it will apply to: for a
    carrier-specific price that is the same carrier's price or the any-carrier price of the
    destination (its messages are charged that today). Only the very first price of a
    destination (nobody could send there before) may start at once.
    """
    if effective_from < now:
        raise PriceNoticeTooShort("A price cannot take effect in the past.")
    exists = Price.objects.filter(
        plan=plan, message_type=message_type, country=country.upper(), carrier__in={"", carrier}
    ).exists()
    if exists and effective_from < now + PRICE_NOTICE:
        raise _notice_error(now=now, effective_from=effective_from)


def _plan_tenants(plan: Plan, *, at: datetime) -> list[Tenant]:
    """Tenants that pay by `plan` at `at` (their own assignment, or the default)."""
    from .selectors import plan_of

    tenants = Tenant.objects.exclude(schema_name="public").exclude(state=TenantState.TERMINATED)
    return [t for t in tenants.iterator() if (p := plan_of(tenant=t, at=at)) is not None and p.pk == plan.pk]


def announce_price_change(*, tenants: list[Tenant], subject: str, text: str, actor: Actor, details: dict) -> int:
    """R-BIL-4 / R-DLV-7: tell each affected tenant that what it pays will change, and when.

    The one place price notices leave the billing app: today an e-mail (after commit) and an
    operation record per tenant; re-point it at the notices service when that exists.
    """
    for tenant in tenants:
        record_operation(
            actor=actor, action="billing.price_change_notice", tenant=tenant, reason=subject, after=details
        )
        if tenant.contact_email:
            email = tenant.contact_email
            transaction.on_commit(
                lambda email=email: send_mail(subject, text, None, [email], fail_silently=True), robust=True
            )
    return len(tenants)


def announce_price(
    *,
    plan: Plan,
    message_type: str,
    country: str,
    unit_price: int,
    actor: Actor,
    effective_from: datetime | None = None,
    carrier: str = "",
    currency: str = "CNY",
) -> Price:
    """Announce a price (a new row; history is kept). R-BIL-4. `effective_from` None = now
    (allowed only for the first price of a destination). Tenants paying by the plan are told."""
    if not isinstance(unit_price, int) or isinstance(unit_price, bool) or unit_price < 0 or unit_price > MAX_AMOUNT:
        raise InvalidAmount("A unit price is a whole, non-negative number of micro-units.")
    if currency not in Currency.values:
        raise CurrencyMismatch(f"Unknown currency {currency!r}.", details={"currency": currency})
    now = timezone.now()
    effective_from = effective_from or now
    country = country.upper()
    with transaction.atomic():
        Plan.objects.select_for_update().get(pk=plan.pk)  # serialise announcements per plan
        check_price_notice(
            plan=plan,
            message_type=message_type,
            country=country,
            carrier=carrier,
            effective_from=effective_from,
            now=now,
        )
        is_change = Price.objects.filter(
            plan=plan, message_type=message_type, country=country, carrier__in={"", carrier}
        ).exists()
        price = Price.objects.create(
            plan=plan,
            message_type=message_type,
            country=country,
            carrier=carrier,
            unit_price=unit_price,
            currency=currency,
            effective_from=effective_from,
            announced_at=now,
            announced_by=actor.label,
        )
        after = {
            "plan": plan.code,
            "message_type": message_type,
            "country": country,
            "carrier": carrier,
            "unit_price": unit_price,
            "currency": currency,
            "effective_from": effective_from.isoformat(),
        }
        record_operation(actor=actor, action="billing.announce_price", obj=price, after=after)
        if is_change:
            where = f"{country}/{carrier}" if carrier else country
            announce_price_change(
                tenants=_plan_tenants(plan, at=effective_from),
                subject=f"Price change from {effective_from:%Y-%m-%d}: {message_type} to {where}",
                text=(
                    f"From {effective_from:%Y-%m-%d %H:%M} UTC the price of a {message_type} message segment to "
                    f"{where} will be {format_money(unit_price, currency)} (plan {plan.name}). "
                    "Your current and announced prices: GET /api/v1/billing/prices."
                ),
                actor=actor,
                details=after,
            )
    return price


def _needs_notice(accounts_filter: dict) -> bool:
    """A plan change alters what someone pays once they have sent anything (R-BIL-4)."""
    return Hold.objects.filter(**accounts_filter).exists()


def assign_plan(*, tenant: Tenant, plan: Plan | None, actor: Actor, effective_from: datetime | None = None) -> Account:
    """The plan a tenant pays by (None: back to the default), from `effective_from` (default now).

    R-BIL-4: once the tenant has sent anything, a plan change is a price change: announced at
    least 7 days ahead (PriceNoticeTooShort) and the tenant is told. A tenant that never sent
    may be set up at once.
    """
    from .selectors import plan_of

    now = timezone.now()
    effective_from = effective_from or now
    with transaction.atomic():
        account = _locked_account(tenant)
        if effective_from < now:
            raise PriceNoticeTooShort("A plan change cannot take effect in the past.")
        current = plan_of(tenant=tenant, at=effective_from)
        target = plan
        if target is None:
            from .selectors import default_plan_at

            target = default_plan_at(at=effective_from)
        changes = (current.pk if current else None) != (target.pk if target else None)
        if changes and effective_from < now + PRICE_NOTICE and _needs_notice({"account": account}):
            raise _notice_error(now=now, effective_from=effective_from)
        before = {"plan": current.code if current else None}
        PlanAssignment.objects.create(
            account=account, plan=plan, effective_from=effective_from, announced_at=now, announced_by=actor.label
        )
        if effective_from <= now:
            Account.objects.filter(pk=account.pk).update(plan=plan)
            account.plan = plan
        after = {"plan": plan.code if plan else None, "effective_from": effective_from.isoformat()}
        record_operation(
            actor=actor, action="billing.assign_plan", tenant=tenant, obj=account, before=before, after=after
        )
        if changes and effective_from > now:
            announce_price_change(
                tenants=[tenant],
                subject=f"Price plan change from {effective_from:%Y-%m-%d}",
                text=(
                    f"From {effective_from:%Y-%m-%d %H:%M} UTC your messages are charged by the plan "
                    f"{target.name if target else 'default'}. See GET /api/v1/billing/prices."
                ),
                actor=actor,
                details=after,
            )
    return account


def set_default_plan(*, plan: Plan, actor: Actor, effective_from: datetime | None = None) -> PlanAssignment:
    """Make `plan` the default (the plan of every account without its own) from `effective_from`.

    R-BIL-4: when an account that pays by the default has sent anything, this changes what it
    pays: at least 7 days' notice, and those tenants are told. The `is_default` flag moves when
    the change is immediate (a scheduled one is read through the assignment rows).
    """
    from .selectors import default_plan_at

    now = timezone.now()
    effective_from = effective_from or now
    if effective_from < now:
        raise PriceNoticeTooShort("A plan change cannot take effect in the past.")
    with transaction.atomic():
        Plan.objects.select_for_update().filter(pk=plan.pk).get()
        current = default_plan_at(at=effective_from)
        changes = current is None or current.pk != plan.pk
        affected = (
            [t for t in _plan_tenants(current, at=effective_from) if not _own_plan(t, effective_from)]
            if changes and current is not None
            else []
        )
        if affected and effective_from < now + PRICE_NOTICE and Hold.objects.filter(tenant__in=affected).exists():
            raise _notice_error(now=now, effective_from=effective_from)
        assignment = PlanAssignment.objects.create(
            account=None, plan=plan, effective_from=effective_from, announced_at=now, announced_by=actor.label
        )
        if effective_from <= now:
            Plan.objects.filter(is_default=True).exclude(pk=plan.pk).update(is_default=False)
            Plan.objects.filter(pk=plan.pk).update(is_default=True)
        after = {
            "default_plan": plan.code,
            "before": current.code if current else None,
            "effective_from": effective_from.isoformat(),
        }
        record_operation(actor=actor, action="billing.set_default_plan", obj=plan, after=after)
        if affected and effective_from > now:
            announce_price_change(
                tenants=affected,
                subject=f"Price plan change from {effective_from:%Y-%m-%d}",
                text=(
                    f"From {effective_from:%Y-%m-%d %H:%M} UTC your messages are charged by the plan {plan.name}. "
                    "See GET /api/v1/billing/prices."
                ),
                actor=actor,
                details=after,
            )
    return assignment


def _own_plan(tenant: Tenant, at: datetime) -> bool:
    from .selectors import own_plan_at

    return own_plan_at(tenant=tenant, at=at) is not None


def save_plan(*, plan: Plan, actor: Actor, code: str, name: str) -> Plan:
    """Edit a plan's code or name (what it charges changes only through prices and the default
    flag, which have their own services). Recorded (R-AUD-3)."""
    with transaction.atomic():
        before = {"code": plan.code, "name": plan.name} if plan.pk else None
        plan.code, plan.name = code, name
        if plan.pk:
            plan.save(update_fields=["code", "name"])
        else:
            plan.is_default = False  # a new plan becomes the default only through set_default_plan
            plan.save()
        record_operation(
            actor=actor, action="billing.save_plan", obj=plan, before=before, after={"code": code, "name": name}
        )
    return plan


# --- packages (R-BIL-3) --------------------------------------------------------------------------


def buy_package(
    *, tenant: Tenant, product: PackageProduct, actor: Actor, idempotency_key: str, paid: bool = True
) -> PackageGrant:
    """Book a package. `paid`: the customer paid the product's price now (booked as a top-up
    immediately spent on the package); otherwise the price comes out of the cash balance."""
    now = timezone.now()
    with transaction.atomic():
        account = _locked_account(tenant)
        previous = _replayed(idempotency_key, account, EntryKind.PACKAGE)
        if previous is not None:
            return PackageGrant.objects.get(entry=previous)
        if product.currency != account.currency:
            raise CurrencyMismatch(details={"account_currency": account.currency, "currency": product.currency})
        entries = []
        if paid and product.price:
            entries.append(
                _entry(
                    account=account,
                    kind=EntryKind.TOPUP,
                    amount=product.price,
                    held_delta=0,
                    key=f"{idempotency_key}#topup",
                    actor=actor,
                    reference=f"package {product.name}",
                )
            )
        entries.append(
            _entry(
                account=account,
                kind=EntryKind.PACKAGE,
                amount=-product.price,
                held_delta=0,
                key=idempotency_key,
                actor=actor,
                reference=f"package {product.name}",
                details={"product": product.pk, "segments": product.segments},
            )
        )
        _save_entries(entries)
        _store_account(account)
        grant = PackageGrant.objects.create(
            account=account,
            product=product,
            entry=entries[-1],
            segments_total=product.segments,
            segments_remaining=product.segments,
            message_types=list(product.message_types or []),
            starts_at=now,
            expires_at=now + timedelta(days=product.validity_days),
        )
        record_operation(
            actor=actor,
            action="billing.buy_package",
            tenant=tenant,
            obj=grant,
            after={
                "product": product.name,
                "segments": product.segments,
                "price": product.price,
                "paid": paid,
                "expires_at": grant.expires_at.isoformat(),
            },
        )
    return grant


def expire_packages(*, account: Account, actor: Actor, reason: str, grants: list[PackageGrant] | None = None) -> int:
    """R-BIL-3: expire remaining package credits: the given packages (an idle-package case is
    about one package, on its own clock), or every active one when `grants` is None. Never
    refunded. Returns the number of segments expired."""
    now = timezone.now()
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=account.pk)
        rows = PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE)
        if grants is not None:
            rows = rows.filter(pk__in=[g.pk for g in grants])
        found = list(rows)
        segments = sum(g.segments_remaining for g in found)
        PackageGrant.objects.filter(pk__in=[g.pk for g in found]).update(
            state=PackageState.EXPIRED, segments_remaining=0, ended_at=now
        )
        record_operation(
            actor=actor,
            action="billing.expire_packages",
            tenant=account.tenant,
            obj=account,
            reason=reason,
            after={"segments": segments, "packages": [g.pk for g in found]},
        )
    return segments


# --- refunds and invoices (R-BIL-5, R-BIL-7) -----------------------------------------------------


def _open_invoices(account: Account) -> int:
    return Invoice.objects.filter(account=account, state=InvoiceState.ISSUED).count()


def _unused_package_value(grant: PackageGrant) -> int:
    """R-BIL-3/5: what the unused part of a package is worth: its price pro rata of the segments
    left (rounded down to the micro-unit; what was used is not refunded)."""
    price = grant.entry.amount * -1 if grant.entry.kind == EntryKind.PACKAGE else grant.product.price
    return price * grant.segments_remaining // grant.segments_total if grant.segments_total else 0


def _complete_refund(refund: Refund, account: Account, actor: Actor) -> Refund:
    """Refund the remaining cash balance and the unused value of active packages (the account is
    locked; R-BIL-5, platform causes only). The packages end (state refunded); the package value
    comes back as a `package` entry (the reverse of the purchase) and leaves with the balance in
    one `refund` entry. Held funds settle later: what a release gives back is refunded in the same
    booking (Account.sweep)."""
    now = timezone.now()
    grants = list(
        PackageGrant.objects.select_related("entry", "product").filter(
            account=account, state=PackageState.ACTIVE, segments_remaining__gt=0
        )
    )
    values = {g.pk: _unused_package_value(g) for g in grants}
    package_value = sum(values.values())
    entries = []
    if package_value:
        entries.append(
            _entry(
                account=account,
                kind=EntryKind.PACKAGE,
                amount=package_value,
                held_delta=0,
                key=f"refund:{refund.pk}#packages",
                actor=actor,
                reason=refund.reason,
                reference=f"refund {refund.pk}: unused package value",
                details={"packages": {str(g.pk): [g.segments_remaining, values[g.pk]] for g in grants}},
            )
        )
    entries.append(
        _entry(
            account=account,
            kind=EntryKind.REFUND,
            amount=-account.balance,
            held_delta=0,
            key=f"refund:{refund.pk}",
            actor=actor,
            reason=refund.reason,
            reference=f"refund {refund.pk} ({refund.cause})",
            details={"cause": refund.cause, "package_value": package_value, "held_in_flight": account.held},
        )
    )
    _save_entries(entries)
    _store_account(account)
    _start_sweep(account, kind=EntryKind.REFUND, reference=f"refund {refund.pk}")
    if grants:
        PackageGrant.objects.filter(pk__in=[g.pk for g in grants]).update(
            state=PackageState.REFUNDED, segments_remaining=0, ended_at=now
        )
    entry = entries[-1]
    refund.amount, refund.entry, refund.state, refund.completed_at = (
        -entry.amount,
        entry,
        RefundState.COMPLETED,
        now,
    )
    refund.save(update_fields=["amount", "entry", "state", "completed_at"])
    record_operation(
        actor=actor,
        action="billing.refund",
        tenant=account.tenant,
        obj=refund,
        reason=refund.reason,
        after={"cause": refund.cause, "amount": refund.amount, "package_value": package_value},
    )
    return refund


def _violation_record(tenant: Tenant, account: Account) -> str | None:
    """Why this tenant broke the agreement, if it did: terminated or forfeited for a violation
    (R-CMP-6). Read from compliance's enforcement records and the ledger."""
    from compliance.models import EnforcementAction  # compliance books through billing; we only read

    action = (
        EnforcementAction.objects.filter(tenant=tenant, kind__in=["terminate", "forfeit"])
        .order_by("-created_at")
        .first()
    )
    if action is not None:
        return f"{action.kind}: {action.reason}"
    if LedgerEntry.objects.filter(account=account, kind=EntryKind.FORFEIT).exists():
        return "balance forfeited for a violation"
    return None


def request_refund(*, tenant: Tenant, cause: str, actor: Actor, reason: str, idempotency_key: str) -> Refund:
    """R-BIL-5: refund the remaining cash balance and the unused value of packages when the
    platform ends the service or is in breach. Refused for customer-ended accounts and for a
    tenant terminated (or forfeited) for a violation, whatever cause is given. If invoices were
    issued and not all returned, the refund waits (state waiting_invoices) until they are."""
    if cause not in REFUNDABLE_CAUSES:
        raise RefundRefused(f"No refund when the cause is {cause} (R-BIL-5).", details={"cause": cause})
    with transaction.atomic():
        account = _locked_account(tenant)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.account_id != account.pk:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            return existing
        violation = _violation_record(tenant, account)
        if violation is not None:
            raise RefundRefused(
                "No refund: the tenant was terminated or forfeited for a violation (R-BIL-5).",
                details={"cause": cause, "violation": violation, "refund_cause": RefundCause.VIOLATION},
            )
        if Refund.objects.filter(account=account, state=RefundState.WAITING_INVOICES).exists():
            raise InvalidState("A refund is already waiting for invoices to be returned.")
        refund = Refund.objects.create(
            account=account,
            cause=cause,
            reason=reason,
            idempotency_key=idempotency_key,
            requested_by=actor.label,
            state=RefundState.WAITING_INVOICES,
        )
        if _open_invoices(account):
            record_operation(
                actor=actor,
                action="billing.refund_waiting",
                tenant=tenant,
                obj=refund,
                reason=reason,
                after={"cause": cause, "open_invoices": _open_invoices(account)},
            )
            return refund
        return _complete_refund(refund, account, actor)


def issue_invoice(*, entry: LedgerEntry, number: str, amount: int, actor: Actor) -> Invoice:
    """R-BIL-7: invoices follow actual transactions: only against a top-up, never more than it."""
    if entry.kind != EntryKind.TOPUP:
        raise InvoiceRefused("Invoices are issued against top-ups only.")
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount("An invoice amount is a positive whole number of micro-units.")
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=entry.account_id)
        invoiced = Invoice.objects.filter(entry=entry).aggregate(total=Sum("amount"))["total"] or 0
        if invoiced + amount > entry.amount:
            raise InvoiceRefused(details={"top_up": entry.amount, "already_invoiced": invoiced})
        if Invoice.objects.filter(number=number).exists():
            raise InvoiceRefused(f"Invoice number {number} is already used.", details={"number": number})
        invoice = Invoice.objects.create(account_id=entry.account_id, entry=entry, number=number, amount=amount)
        record_operation(
            actor=actor,
            action="billing.issue_invoice",
            tenant=entry.account.tenant,
            obj=invoice,
            after={"number": number, "amount": amount, "entry": entry.pk},
        )
    return invoice


def return_invoice(*, invoice: Invoice, actor: Actor) -> Invoice:
    """Mark an invoice returned; a refund waiting for the last open invoice completes now (R-BIL-5)."""
    with transaction.atomic():
        account = Account.objects.select_for_update().select_related("tenant").get(pk=invoice.account_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.state != InvoiceState.ISSUED:
            raise InvalidState("This invoice was already returned.")
        invoice.state, invoice.returned_at = InvoiceState.RETURNED, timezone.now()
        invoice.save(update_fields=["state", "returned_at"])
        record_operation(
            actor=actor,
            action="billing.return_invoice",
            tenant=account.tenant,
            obj=invoice,
            after={"number": invoice.number},
        )
        if not _open_invoices(account):
            for refund in Refund.objects.filter(account=account, state=RefundState.WAITING_INVOICES):
                _complete_refund(refund, account, actor)
    return invoice


# --- disputes (R-BIL-8) -----------------------------------------------------------------------------


def month_start(moment: datetime) -> date:
    local = timezone.localtime(moment)
    return date(local.year, local.month, 1)


def open_dispute(
    *, tenant: Tenant, month: date, description: str, actor: Actor, now: datetime | None = None
) -> Dispute:
    """R-BIL-8: a tenant disputes the current month's bill (only within that month)."""
    now = now or timezone.now()
    if month.replace(day=1) != month_start(now):
        raise DisputeRefused(details={"month": month.strftime("%Y-%m"), "current": month_start(now).strftime("%Y-%m")})
    with transaction.atomic():
        account = _locked_account(tenant)
        dispute = Dispute.objects.create(
            account=account, month=month.replace(day=1), description=description, created_at=now
        )
        record_operation(
            actor=actor,
            action="billing.open_dispute",
            tenant=tenant,
            obj=dispute,
            reason=description,
            after={"month": dispute.month.isoformat()},
        )
    return dispute


def resolve_dispute(*, dispute: Dispute, compensation: int, resolution: str, actor: Actor) -> Dispute:
    """Close a dispute; compensation (credited to the balance) is capped at 10% of that month's
    usage (R-BIL-8)."""
    from .selectors import month_usage

    if not isinstance(compensation, int) or compensation < 0:
        raise InvalidAmount("Compensation is a whole, non-negative number of micro-units.")
    with transaction.atomic():
        account = Account.objects.select_for_update().select_related("tenant").get(pk=dispute.account_id)
        dispute = Dispute.objects.select_for_update().get(pk=dispute.pk)
        if dispute.state != DisputeState.OPEN:
            raise InvalidState("This dispute is closed.")
        # R-BIL-8: 10% of the month's usage per tenant and month, across all its disputes
        # (the account lock serialises two decisions on the same month).
        cap = compensation_cap(month_usage(account=account, month=dispute.month))
        paid = (
            Dispute.objects.filter(account=account, month=dispute.month, state=DisputeState.RESOLVED).aggregate(
                total=Sum("compensation")
            )["total"]
            or 0
        )
        if compensation > cap - paid:
            raise CompensationTooHigh(
                details={"cap": cap, "already_compensated": paid, "left": max(cap - paid, 0), "requested": compensation}
            )
        if compensation:
            entry = _entry(
                account=account,
                kind=EntryKind.COMPENSATION,
                amount=compensation,
                held_delta=0,
                key=f"dispute:{dispute.pk}",
                actor=actor,
                reason=resolution,
                reference=f"dispute {dispute.month:%Y-%m}",
            )
            _save_entries([entry])
            _store_account(account, credited=True)
            dispute.entry = entry
        dispute.state, dispute.compensation, dispute.resolution = DisputeState.RESOLVED, compensation, resolution
        dispute.resolved_at = timezone.now()
        dispute.save(update_fields=["state", "compensation", "resolution", "resolved_at", "entry"])
        record_operation(
            actor=actor,
            action="billing.resolve_dispute",
            tenant=account.tenant,
            obj=dispute,
            reason=resolution,
            after={"compensation": compensation, "cap": cap, "already_compensated": paid},
        )
    return dispute


def reject_dispute(*, dispute: Dispute, resolution: str, actor: Actor) -> Dispute:
    with transaction.atomic():
        dispute = Dispute.objects.select_for_update().select_related("account__tenant").get(pk=dispute.pk)
        if dispute.state != DisputeState.OPEN:
            raise InvalidState("This dispute is closed.")
        dispute.state, dispute.resolution, dispute.resolved_at = DisputeState.REJECTED, resolution, timezone.now()
        dispute.save(update_fields=["state", "resolution", "resolved_at"])
        record_operation(
            actor=actor, action="billing.reject_dispute", tenant=dispute.account.tenant, obj=dispute, reason=resolution
        )
    return dispute


# --- low-balance alerts (R-BIL-6) ---------------------------------------------------------------------


def set_low_balance_alert(
    *, tenant: Tenant, threshold: int | None, actor: Actor, webhook_url: str | None = None
) -> Account:
    """The tenant's threshold (None switches alerts off) and optional webhook. Setting it arms the
    alert; a webhook gets a signing secret on first use (shown in the API response)."""
    if threshold is not None and (not isinstance(threshold, int) or threshold < 0):
        raise InvalidAmount("The threshold is a whole, non-negative number of micro-units.")
    with transaction.atomic():
        account = _locked_account(tenant)
        before = {"threshold": account.low_balance_threshold, "webhook_url": account.alert_webhook_url}
        account.low_balance_threshold = threshold
        account.low_balance_alerted = False
        if webhook_url is not None:
            if webhook_url and not webhook_url.startswith(("https://", "http://")):
                raise BillingError("The webhook must be an http(s) URL.", code="invalid_webhook_url")
            account.alert_webhook_url = webhook_url
            if webhook_url and not account.alert_webhook_secret:
                account.alert_webhook_secret = secrets.token_hex(32)
        account.save(
            update_fields=["low_balance_threshold", "low_balance_alerted", "alert_webhook_url", "alert_webhook_secret"]
        )
        record_operation(
            actor=actor,
            action="billing.set_low_balance_alert",
            tenant=tenant,
            obj=account,
            before=before,
            after={"threshold": threshold, "webhook_url": account.alert_webhook_url},
        )
    return account


def sign_webhook(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>" (the receiver checks X-Billing-Signature)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def notify_low_balance(*, account_id: int, balance: int, threshold: int) -> dict:
    """Send the alert: e-mail to the tenant's contact and a signed POST to its webhook, if set.
    Called by billing.actors.send_low_balance_alert after the crossing committed."""
    account = Account.objects.select_related("tenant").get(pk=account_id)
    tenant = account.tenant
    subject = f"Low balance: {format_money(balance, account.currency)}"
    text = (
        f"The balance of {tenant.name} is {format_money(balance, account.currency)}, below your alert "
        f"threshold of {format_money(threshold, account.currency)}. Please top up to keep sending."
    )
    sent = {"email": False, "webhook": None}
    if tenant.contact_email:
        send_mail(subject, text, None, [tenant.contact_email])
        sent["email"] = True
    if account.alert_webhook_url:
        payload = {
            "event": "billing.low_balance",
            "tenant": tenant.schema_name,
            "balance": balance,
            "threshold": threshold,
            "currency": account.currency,
        }
        sent["webhook"] = post_signed_webhook(
            url=account.alert_webhook_url, secret=account.alert_webhook_secret, payload=payload
        )
    return sent


def post_signed_webhook(*, url: str, secret: str, payload: dict) -> int:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(timezone.now().timestamp()))
    request = urllib.request.Request(  # noqa: S310 - tenant-configured http(s) URL (URLField)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Billing-Timestamp": timestamp,
            "X-Billing-Signature": sign_webhook(secret=secret, timestamp=timestamp, body=body),
        },
    )
    timeout = settings.BILLING_WEBHOOK_TIMEOUT_SECONDS
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.status


# --- dormancy (R-TEN-4, R-TEN-5, R-BIL-3) -----------------------------------------------------------------


def last_use_of(account: Account) -> datetime | None:
    """Last actual use = the latest hold (a send), or the account's creation when it never sent."""
    return Hold.objects.filter(account=account).aggregate(last=Max("created_at"))["last"]


def _service_expired(account: Account, now: datetime) -> bool:
    """R-TEN-5: the paid service has expired: the term ended, or every package bought has ended."""
    if account.service_expires_at is not None:
        return account.service_expires_at <= now
    grants = PackageGrant.objects.filter(account=account)
    return grants.exists() and not grants.filter(state=PackageState.ACTIVE, expires_at__gt=now).exists()


def scan_dormancy(*, now: datetime | None = None) -> list[DormancyCase]:
    """The daily job's first half: find candidates, open a case per (tenant, kind) and notify.

    Thresholds come from settings (BILLING_DORMANCY_*). Nothing is acted on here.
    """
    now = now or timezone.now()
    days = settings.BILLING_DORMANCY_DAYS
    notice = timedelta(days=settings.BILLING_DORMANCY_NOTICE_DAYS)
    opened = []
    open_cases = set(
        DormancyCase.objects.filter(state=DormancyState.NOTIFIED, package__isnull=True).values_list("tenant_id", "kind")
    )
    open_packages = set(
        DormancyCase.objects.filter(state=DormancyState.NOTIFIED, package__isnull=False).values_list(
            "package_id", flat=True
        )
    )
    # Pending tenants never started; terminated ones are over: neither is dormant.
    tenants = Tenant.objects.exclude(schema_name="public").filter(state__in=[TenantState.ACTIVE, TenantState.SUSPENDED])
    for tenant in tenants.iterator():
        account = Account.objects.filter(tenant=tenant).first()
        last_use = (last_use_of(account) if account else None) or (account.created_at if account else tenant.created_at)
        idle = now - last_use
        kinds = []
        if tenant.state == TenantState.ACTIVE:
            if account and _service_expired(account, now) and idle >= timedelta(days=days["idle_expired"]):
                kinds.append(DormancyKind.IDLE_EXPIRED)
            elif idle >= timedelta(days=days["idle"]):
                kinds.append(DormancyKind.IDLE)
        activity = tenant.last_activity_at or tenant.created_at
        if now - activity >= timedelta(days=days["no_login"]):
            kinds.append(DormancyKind.NO_LOGIN)
        found: list[tuple[str, PackageGrant | None]] = [(kind, None) for kind in kinds]
        if account is not None:
            # R-BIL-3: each package on its own clock: a case per idle package, so a package
            # bought (or used) after another one's notice is never expired with it.
            idle_after = now - timedelta(days=days["package_idle"])
            for grant in PackageGrant.objects.filter(
                account=account, state=PackageState.ACTIVE, segments_remaining__gt=0
            ).order_by("id"):
                if (grant.last_used_at or grant.starts_at) <= idle_after and grant.pk not in open_packages:
                    found.append((DormancyKind.PACKAGE_IDLE, grant))
        for kind, grant in found:
            if grant is None and (tenant.pk, kind) in open_cases:
                continue
            with transaction.atomic():
                case = DormancyCase.objects.create(
                    tenant=tenant,
                    kind=kind,
                    package=grant,
                    last_use_at=(grant.last_used_at or grant.starts_at) if grant else last_use,
                    found_at=now,
                    notified_at=now,
                    act_after=now + notice,
                )
                record_operation(
                    actor=Actor.system("billing.dormancy"),
                    action="billing.dormancy_notice",
                    tenant=tenant,
                    obj=case,
                    reason=DormancyKind(kind).label,
                    after={
                        "kind": kind,
                        "act_after": case.act_after.isoformat(),
                        "package": grant.pk if grant else None,
                    },
                )
                case_id = case.pk
                transaction.on_commit(lambda case_id=case_id: _enqueue_dormancy_notice(case_id), robust=True)
            opened.append(case)
    return opened


def _enqueue_dormancy_notice(case_id: int) -> None:
    enqueue("send_dormancy_notice", case_id)


def notify_dormancy(*, case_id: int) -> None:
    case = DormancyCase.objects.select_related("tenant").get(pk=case_id)
    tenant = case.tenant
    if tenant.contact_email:
        send_mail(
            f"Notice: {DormancyKind(case.kind).label}",
            f"{tenant.name}: {DormancyKind(case.kind).label} (last use {case.last_use_at:%Y-%m-%d}). "
            f"Unless the account is used again, action is taken after {timezone.localtime(case.act_after):%Y-%m-%d}.",
            None,
            [tenant.contact_email],
        )


def _idle_packages(case: DormancyCase, account: Account) -> list[PackageGrant]:
    """The packages an idle-package case may expire: its own package (older cases without one:
    the packages that existed when it was found), still active and not used since."""
    grants = PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE, segments_remaining__gt=0)
    grants = grants.filter(pk=case.package_id) if case.package_id else grants.filter(starts_at__lte=case.found_at)
    return [g for g in grants if g.last_used_at is None or g.last_used_at <= case.found_at]


def _still_dormant(case: DormancyCase, now: datetime) -> bool:
    tenant = case.tenant
    account = Account.objects.filter(tenant=tenant).first()
    if case.kind in (DormancyKind.IDLE, DormancyKind.IDLE_EXPIRED):
        last = last_use_of(account) if account else None
        return last is None or last <= case.found_at
    if case.kind == DormancyKind.NO_LOGIN:
        return tenant.last_activity_at is None or tenant.last_activity_at <= case.found_at
    if case.kind == DormancyKind.PACKAGE_IDLE:
        if account is None:
            return False
        return bool(_idle_packages(case, account))
    return False


def act_on_dormancy(*, now: datetime | None = None) -> list[DormancyCase]:
    """The daily job's second half: after the notice period, act on cases still dormant (suspend
    the tenant, or expire idle package credits); cases used again meanwhile are resolved."""
    from tenants.services import change_tenant_state

    now = now or timezone.now()
    actor = Actor.system("billing.dormancy")
    actions = settings.BILLING_DORMANCY_ACTIONS
    done = []
    for case in DormancyCase.objects.filter(state=DormancyState.NOTIFIED, act_after__lte=now).select_related("tenant"):
        with transaction.atomic():
            case = DormancyCase.objects.select_for_update().select_related("tenant").get(pk=case.pk)
            if case.state != DormancyState.NOTIFIED:
                continue
            tenant = case.tenant
            if not _still_dormant(case, now):
                case.state, case.outcome = DormancyState.RESOLVED, "used again during the notice period"
            elif case.kind == DormancyKind.PACKAGE_IDLE:
                account = account_for(tenant)
                segments = expire_packages(
                    account=account,
                    actor=actor,
                    reason=DormancyKind(case.kind).label,
                    grants=_idle_packages(case, account),
                )
                case.state, case.outcome = DormancyState.ACTED, f"expired {segments} idle package segments"
            else:
                action = actions.get(case.kind, "suspend")
                target = {"suspend": TenantState.SUSPENDED, "terminate": TenantState.TERMINATED}[action]
                if tenant.state in (TenantState.ACTIVE, TenantState.SUSPENDED) and tenant.state != target:
                    change_tenant_state(
                        tenant=tenant,
                        to_state=target,
                        actor=actor,
                        reason=f"dormancy: {DormancyKind(case.kind).label} (R-TEN-4)",
                    )
                case.state, case.outcome = DormancyState.ACTED, f"tenant {target}"
            case.acted_at = now
            case.save(update_fields=["state", "outcome", "acted_at"])
            record_operation(
                actor=actor,
                action=f"billing.dormancy_{case.state}",
                tenant=tenant,
                obj=case,
                reason=case.outcome,
                after={"kind": case.kind},
            )
        done.append(case)
    return done


def cancel_dormancy_case(*, case: DormancyCase, actor: Actor, reason: str) -> DormancyCase:
    with transaction.atomic():
        case = DormancyCase.objects.select_for_update().select_related("tenant").get(pk=case.pk)
        if case.state != DormancyState.NOTIFIED:
            raise InvalidState("Only open cases can be cancelled.")
        case.state, case.outcome, case.acted_at = DormancyState.CANCELLED, reason, timezone.now()
        case.save(update_fields=["state", "outcome", "acted_at"])
        record_operation(actor=actor, action="billing.dormancy_cancelled", tenant=case.tenant, obj=case, reason=reason)
    return case


_ = NoPrice  # re-exported: callers catch billing.services.NoPrice


# --- messages held for review (R-BIL-2, R-CMP-3/8) -------------------------------------------------


def release_stale_held_messages(*, now: datetime | None = None, tenant_ids: list[int] | None = None) -> int:
    """Money held for a message waiting for review is not held forever: a message nobody reviewed
    within BILLING_HELD_REVIEW_TIMEOUT_HOURS (default 72) is cancelled with a reason and its hold
    released. Each tenant in its own transaction; rows locked and re-checked, so a reviewer's
    concurrent decision wins and nothing is released twice. Returns how many were cancelled."""
    from django_tenants.utils import tenant_context

    from delivery import services as delivery
    from delivery.models import Message, MessageStatus
    from delivery.sendlog import customer_tenants

    now = now or timezone.now()
    hours = getattr(settings, "BILLING_HELD_REVIEW_TIMEOUT_HOURS", 72)
    cutoff = now - timedelta(hours=hours)
    actor = Actor.system("billing.held_timeout")
    total = 0
    for tenant in customer_tenants(tenant_ids or ()):
        with tenant_context(tenant), transaction.atomic():
            messages = list(
                Message.objects.select_for_update(skip_locked=True)
                .filter(status=MessageStatus.HELD, status_at__lt=cutoff)
                .order_by("pk")
            )
            if not messages:
                continue
            detail = f"not reviewed within {hours} h: cancelled, held funds released"
            for m in messages:
                delivery.transition(
                    message=m, to_status=MessageStatus.CANCELLED, at=now, detail=detail, reason="review_timeout"
                )
            delivery.release_messages_holds(messages=messages, key_prefix="heldtimeout", reason="review timeout")
            record_operation(
                actor=actor,
                action="billing.held_review_timeout",
                tenant=tenant,
                reason=detail,
                after={"messages": [m.pk for m in messages]},
            )
            delivery.enqueue_status_callbacks(tenant=tenant, messages=messages)
            total += len(messages)
    return total
