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
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from smsplatform import metrics
from smsplatform.db import insert_rows
from tenants.models import Tenant, TenantState
from tenants.services import Actor, record_operation

from .errors import (
    BillingError,
    CompensationTooHigh,
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
    Price,
    Refund,
    RefundState,
)
from .rules import compensation_cap, format_money

__all__ = [
    "BillingError",
    "CompensationTooHigh",
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
    "assign_plan",
    "set_low_balance_alert",
    "expire_packages",
    "scan_dormancy",
    "act_on_dormancy",
    "cancel_dormancy_case",
]

logger = logging.getLogger(__name__)

PRICE_NOTICE = timedelta(days=7)  # R-BIL-4


# --- accounts and the ledger core ------------------------------------------------------------


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
        from .actors import send_low_balance_alert

        account_id, balance = account.pk, account.balance
        # robust: a broker hiccup after commit must not fail the send that crossed the threshold
        transaction.on_commit(lambda: send_low_balance_alert.send(account_id, balance, threshold), robust=True)


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


def topup(
    *, tenant: Tenant, amount: int, actor: Actor, idempotency_key: str, reference: str = "", reason: str = ""
) -> LedgerEntry:
    """R-BIL-1: an operator books money received. `amount` in micro-units, > 0."""
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount("A top-up must be a positive whole number of micro-units.")
    with transaction.atomic():
        entry, booked = _book(
            tenant=tenant,
            kind=EntryKind.TOPUP,
            amount=amount,
            key=idempotency_key,
            actor=actor,
            reference=reference,
            reason=reason,
            credited=True,
        )
        if booked:
            record_operation(
                actor=actor,
                action="billing.topup",
                tenant=tenant,
                obj=entry,
                reason=reason,
                after={"amount": amount, "balance": entry.balance_after},
            )
    return entry


def adjust(*, tenant: Tenant, amount: int, actor: Actor, reason: str, idempotency_key: str) -> LedgerEntry:
    """A manual correction (signed). Never below zero; always with a reason."""
    if not isinstance(amount, int) or amount == 0:
        raise InvalidAmount("An adjustment is a non-zero whole number of micro-units.")
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

    The balance never goes negative: what the balance cannot cover is recorded as outstanding
    (entry.details["outstanding"]) for finance to collect.
    """
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidAmount("A penalty must be a positive whole number of micro-units.")
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
        record_operation(
            actor=actor, action="billing.penalty", tenant=tenant, obj=entry, reason=reason, after=entry.details
        )
    return entry


def forfeit(*, tenant: Tenant, actor: Actor, reason: str, idempotency_key: str) -> LedgerEntry:
    """R-CMP-6 / R-BIL-3: forfeit the remaining cash balance and every package credit.

    Funds already held for messages in flight are left to settle (captured or released).
    entry.details says how much cash and how many package segments were forfeited.
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
            details={"cash": account.balance, "package_segments": segments, "packages": [g.pk for g in grants]},
        )
        _save_entries([entry])
        _store_account(account)
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
        grants = _usable_grants(account, now)
        plans: list[tuple[HoldLine, int, list[tuple[PackageGrant, int]]]] = []
        used: set[int] = set()
        cash_total = 0
        for line in lines:
            need, takes = line.segments, []
            for grant in grants:
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


def _settle(
    *,
    hold_ids: list[int],
    idempotency_key: str,
    to_state: str,
    values_sql: str,
    values: list,
    now: datetime,
    reason: str = "",
) -> tuple[list[tuple[int, int, int]], dict[int, Account]]:
    """Move holds from held to `to_state` exactly once; returns the (hold id, account id, amount)
    settled now and the locked accounts.

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
                RETURNING h.id, h.account_id, h.amount""",  # noqa: S608 - table name from model meta
            [to_state, now, reason[:200], *values, todo],
        )
        return list(cursor.fetchall()), accounts


def _book_settlement(
    settled: list[tuple[int, int, int]],
    accounts: dict[int, Account],
    *,
    kind: str,
    idempotency_key: str,
    actor: Actor,
    now: datetime,
    reason: str = "",
) -> None:
    per_account: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _, account_id, amount in settled:
        per_account[account_id][0] += 1
        per_account[account_id][1] += amount
    entries = []
    for account_id, (count, total) in sorted(per_account.items()):
        account = accounts[account_id]
        amount = total if kind == EntryKind.RELEASE else 0
        entries.append(
            _entry(
                account=account,
                kind=kind,
                amount=amount,
                held_delta=-total,
                key=f"{idempotency_key}#{account_id}",
                actor=actor,
                reason=reason,
                reference=f"{count} holds",
                details={"holds": count},
                created_at=now,
            )
        )
    _save_entries(entries)
    for account_id in per_account:
        _store_account(accounts[account_id], credited=False)


def capture_holds(*, captures: list[Capture], idempotency_key: str) -> int:
    """R-BIL-2: the carrier accepted these messages: held → captured (billed). Holds already
    captured or released are skipped; returns how many were captured now. The hold keeps the
    carrier message id and submit time (R-BIL-8)."""
    by_id = {c.hold_id: c for c in captures}
    if not by_id:
        return 0
    ids = list(by_id)
    now = timezone.now()  # the hold's settled_at and the entry's created_at: one instant, one month
    with transaction.atomic():
        settled, accounts = _settle(
            hold_ids=ids,
            idempotency_key=idempotency_key,
            to_state=HoldState.CAPTURED,
            now=now,
            values_sql=", carrier_message_id = v.cid, submitted_at = v.ts "
            "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(id, cid, ts)",
            values=[ids, [by_id[i].carrier_message_id[:100] for i in ids], [by_id[i].submitted_at for i in ids]],
        )
        if settled:
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
        released = [hold_id for hold_id, _, _ in settled]
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE {PackageGrant._meta.db_table} AS g
                    SET segments_remaining = g.segments_remaining + u.total
                    FROM (SELECT grant_id, SUM(segments) AS total FROM {HoldPackageUse._meta.db_table}
                          WHERE hold_id = ANY(%s) GROUP BY grant_id) AS u
                    WHERE g.id = u.grant_id AND g.state = 'active'""",  # noqa: S608 - names from model meta
                [released],
            )
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


# --- prices and plans (R-BIL-4) ----------------------------------------------------------------


def default_plan() -> Plan:
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        plan, _ = Plan.objects.get_or_create(code="standard", defaults={"name": "Standard", "is_default": True})
    return plan


def check_price_notice(
    *, plan: Plan, message_type: str, country: str, carrier: str, effective_from: datetime, now: datetime
) -> None:
    """R-BIL-4: a change takes effect no sooner than 7 days after it is announced.

    The first price of a destination is not a change (nobody was charged differently before),
    so it may start at once; every later one needs the notice.
    """
    if effective_from < now:
        raise PriceNoticeTooShort("A price cannot take effect in the past.")
    exists = Price.objects.filter(
        plan=plan, message_type=message_type, country=country.upper(), carrier=carrier
    ).exists()
    if exists and effective_from < now + PRICE_NOTICE:
        raise PriceNoticeTooShort(
            details={"earliest": (now + PRICE_NOTICE).isoformat(), "effective_from": effective_from.isoformat()}
        )


def announce_price(
    *,
    plan: Plan,
    message_type: str,
    country: str,
    unit_price: int,
    actor: Actor,
    effective_from: datetime | None = None,
    carrier: str = "",
) -> Price:
    """Announce a price (a new row; history is kept). R-BIL-4. `effective_from` None = now
    (allowed only for the first price of a destination)."""
    if not isinstance(unit_price, int) or unit_price < 0:
        raise InvalidAmount("A unit price is a whole, non-negative number of micro-units.")
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
        price = Price.objects.create(
            plan=plan,
            message_type=message_type,
            country=country,
            carrier=carrier,
            unit_price=unit_price,
            effective_from=effective_from,
            announced_at=now,
            announced_by=actor.label,
        )
        record_operation(
            actor=actor,
            action="billing.announce_price",
            obj=price,
            after={
                "plan": plan.code,
                "message_type": message_type,
                "country": country,
                "carrier": carrier,
                "unit_price": unit_price,
                "effective_from": effective_from.isoformat(),
            },
        )
        from tenants.duty_notices import notify_price_change  # issue 18 hook

        notify_price_change(price=price)  # R-BIL-4: announced to the plan's tenants (R-DLV-7)
    return price


def assign_plan(*, tenant: Tenant, plan: Plan | None, actor: Actor) -> Account:
    with transaction.atomic():
        account = _locked_account(tenant)
        before = {"plan": account.plan.code if account.plan else None}
        Account.objects.filter(pk=account.pk).update(plan=plan)
        account.plan = plan
        record_operation(
            actor=actor,
            action="billing.assign_plan",
            tenant=tenant,
            obj=account,
            before=before,
            after={"plan": plan.code if plan else None},
        )
    return account


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


def expire_packages(*, account: Account, actor: Actor, reason: str) -> int:
    """R-BIL-3: expire the account's remaining package credits (idle ones, after notice).
    Never refunded. Returns the number of segments expired."""
    now = timezone.now()
    with transaction.atomic():
        Account.objects.select_for_update().get(pk=account.pk)
        grants = list(PackageGrant.objects.filter(account=account, state=PackageState.ACTIVE))
        segments = sum(g.segments_remaining for g in grants)
        PackageGrant.objects.filter(pk__in=[g.pk for g in grants]).update(
            state=PackageState.EXPIRED, segments_remaining=0, ended_at=now
        )
        record_operation(
            actor=actor,
            action="billing.expire_packages",
            tenant=account.tenant,
            obj=account,
            reason=reason,
            after={"segments": segments, "packages": [g.pk for g in grants]},
        )
    return segments


# --- refunds and invoices (R-BIL-5, R-BIL-7) -----------------------------------------------------


def _open_invoices(account: Account) -> int:
    return Invoice.objects.filter(account=account, state=InvoiceState.ISSUED).count()


def _complete_refund(refund: Refund, account: Account, actor: Actor) -> Refund:
    """Refund the remaining cash balance (the account is locked). Held funds settle on their own;
    packages are never refunded (R-BIL-3)."""
    entry = _entry(
        account=account,
        kind=EntryKind.REFUND,
        amount=-account.balance,
        held_delta=0,
        key=f"refund:{refund.pk}",
        actor=actor,
        reason=refund.reason,
        reference=f"refund {refund.pk} ({refund.cause})",
        details={"cause": refund.cause},
    )
    _save_entries([entry])
    _store_account(account)
    refund.amount, refund.entry, refund.state, refund.completed_at = (
        -entry.amount,
        entry,
        RefundState.COMPLETED,
        timezone.now(),
    )
    refund.save(update_fields=["amount", "entry", "state", "completed_at"])
    record_operation(
        actor=actor,
        action="billing.refund",
        tenant=account.tenant,
        obj=refund,
        reason=refund.reason,
        after={"cause": refund.cause, "amount": refund.amount},
    )
    return refund


def request_refund(*, tenant: Tenant, cause: str, actor: Actor, reason: str, idempotency_key: str) -> Refund:
    """R-BIL-5: refund the remaining cash balance when the platform ends the service or is in
    breach. Refused for customer-ended or violation-terminated accounts. If invoices were issued
    and not all returned, the refund waits (state waiting_invoices) until they are."""
    if cause not in REFUNDABLE_CAUSES:
        raise RefundRefused(f"No refund when the cause is {cause} (R-BIL-5).", details={"cause": cause})
    with transaction.atomic():
        account = _locked_account(tenant)
        existing = Refund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.account_id != account.pk:
                raise IdempotencyConflict(details={"idempotency_key": idempotency_key})
            return existing
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
        cap = compensation_cap(month_usage(account=account, month=dispute.month))
        if compensation > cap:
            raise CompensationTooHigh(details={"cap": cap, "requested": compensation})
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
            after={"compensation": compensation, "cap": cap},
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
            if webhook_url:
                from smsplatform.webhooks import OutboundUrlRefused, check_outbound_url

                try:
                    check_outbound_url(webhook_url)  # SSRF: public http(s) only, refused when saved
                except OutboundUrlRefused as exc:
                    raise BillingError(exc.message, code="invalid_webhook_url") from exc
            account.alert_webhook_url = webhook_url
            if webhook_url and not account.alert_webhook_secret:
                from tenants.services import encrypt_secret

                account.alert_webhook_secret = encrypt_secret(secrets.token_hex(32))  # encrypted at rest
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
    from tenants.duty_notices import notify_low_balance as to_inbox  # issue 18 hook

    to_inbox(
        tenant=tenant,
        balance_text=format_money(balance, account.currency),
        threshold_text=format_money(threshold, account.currency),
        crossing_id=f"{account.pk}:{threshold}:{timezone.now():%Y%m%d%H}",
    )
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
        from smsplatform.webhooks import OutboundUrlRefused

        try:
            sent["webhook"] = post_signed_webhook(
                url=account.alert_webhook_url, secret=webhook_secret_of(account), payload=payload
            )
        except OutboundUrlRefused as exc:  # refused again at call time (SSRF): no retry helps
            logger.warning("low-balance webhook of %s refused: %s", tenant.schema_name, exc.message)
            sent["webhook"] = "blocked"
    return sent


def webhook_secret_of(account: Account) -> str:
    """The webhook's HMAC key in clear (stored encrypted, R-TEN-2)."""
    from tenants.services import decrypt_secret

    return decrypt_secret(account.alert_webhook_secret)


def post_signed_webhook(*, url: str, secret: str, payload: dict) -> int:
    """POST through the shared outbound check (smsplatform.webhooks: public address, no redirect)."""
    from smsplatform import webhooks

    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(timezone.now().timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Billing-Timestamp": timestamp,
        "X-Billing-Signature": sign_webhook(secret=secret, timestamp=timestamp, body=body),
    }
    return webhooks.post(url, body=body, headers=headers, timeout=settings.BILLING_WEBHOOK_TIMEOUT_SECONDS)


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
    open_cases = set(DormancyCase.objects.filter(state=DormancyState.NOTIFIED).values_list("tenant_id", "kind"))
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
        if account is not None:
            idle_after = now - timedelta(days=days["package_idle"])
            for grant in PackageGrant.objects.filter(
                account=account, state=PackageState.ACTIVE, segments_remaining__gt=0
            ):
                if (grant.last_used_at or grant.starts_at) <= idle_after:
                    kinds.append(DormancyKind.PACKAGE_IDLE)
                    break
        for kind in kinds:
            if (tenant.pk, kind) in open_cases:
                continue
            with transaction.atomic():
                case = DormancyCase.objects.create(
                    tenant=tenant,
                    kind=kind,
                    last_use_at=last_use,
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
                    after={"kind": kind, "act_after": case.act_after.isoformat()},
                )
                case_id = case.pk
                transaction.on_commit(lambda case_id=case_id: _enqueue_dormancy_notice(case_id), robust=True)
            opened.append(case)
    return opened


def _enqueue_dormancy_notice(case_id: int) -> None:
    from .actors import send_dormancy_notice

    send_dormancy_notice.send(case_id)


def notify_dormancy(*, case_id: int) -> None:
    case = DormancyCase.objects.select_related("tenant").get(pk=case_id)
    tenant = case.tenant
    from tenants.duty_notices import notify_dormancy as to_inbox  # issue 18 hook

    to_inbox(case=case)  # R-TEN-4 in the inbox and webhook (R-DLV-7); the e-mail stays below
    if tenant.contact_email:
        send_mail(
            f"Notice: {DormancyKind(case.kind).label}",
            f"{tenant.name}: {DormancyKind(case.kind).label} (last use {case.last_use_at:%Y-%m-%d}). "
            f"Unless the account is used again, action is taken after {timezone.localtime(case.act_after):%Y-%m-%d}.",
            None,
            [tenant.contact_email],
        )


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
        return not PackageGrant.objects.filter(account=account, last_used_at__gt=case.found_at).exists()
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
                segments = expire_packages(
                    account=account_for(tenant), actor=actor, reason=DormancyKind(case.kind).label
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
