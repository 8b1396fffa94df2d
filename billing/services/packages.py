"""Packages (R-BIL-3): bought, used before cash by the holds, expired when idle."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from tenants.models import Tenant
from tenants.services import Actor, record_operation

from ..errors import (
    CurrencyMismatch,
)
from ..models import (
    Account,
    EntryKind,
    PackageGrant,
    PackageProduct,
    PackageState,
)
from .ledger import _entry, _locked_account, _replayed, _save_entries, _store_account

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
