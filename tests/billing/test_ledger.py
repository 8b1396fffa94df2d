"""R-BIL-9 ledger, R-BIL-1 prepaid, R-CMP-6 penalty/forfeit: every change is one immutable entry,
balance = sum of entries, never negative, idempotent by key."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Sum

from billing import selectors, services
from billing.models import Account, EntryKind, LedgerEntry
from tenants.models import OperationRecord

from .conftest import FINANCE, fund, key


def test_r_bil_9_an_account_exists_once_per_tenant(tenant):
    """An active tenant's account exists from activation (its R-TEN-5 term lives there); asking
    for it again never makes a second one, and its balance is the empty ledger's: 0."""
    assert selectors.balance_of(tenant=tenant) == 0
    first = services.account_for(tenant)
    assert services.account_for(tenant).pk == first.pk
    assert Account.objects.filter(tenant=tenant).count() == 1


def test_r_bil_1_topup_books_one_entry_and_records_the_operation(tenant):
    entry = services.topup(tenant=tenant, amount=100_000_000, actor=FINANCE, idempotency_key=key(), reason="bank 123")
    assert entry.kind == EntryKind.TOPUP
    assert entry.amount == 100_000_000
    assert entry.balance_after == 100_000_000
    assert entry.actor_label == "user:finance-tests"
    assert selectors.balance_of(tenant=tenant) == 100_000_000
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.topup", object_id=str(entry.pk)).exists()


def test_r_bil_9_same_idempotency_key_books_one_entry(tenant):
    k = key()
    first = services.topup(tenant=tenant, amount=5_000_000, actor=FINANCE, idempotency_key=k)
    again = services.topup(tenant=tenant, amount=5_000_000, actor=FINANCE, idempotency_key=k)
    assert again.pk == first.pk
    assert LedgerEntry.objects.filter(idempotency_key=k).count() == 1
    assert selectors.balance_of(tenant=tenant) == 5_000_000


def test_r_bil_9_key_reused_for_another_operation_is_a_conflict(tenant):
    k = key()
    services.topup(tenant=tenant, amount=5_000_000, actor=FINANCE, idempotency_key=k)
    with pytest.raises(services.IdempotencyConflict):
        services.adjust(tenant=tenant, amount=1, actor=FINANCE, reason="x", idempotency_key=k)


def test_r_bil_9_ledger_entries_cannot_be_updated(tenant):
    entry = fund(tenant, 1_000_000)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=999_000_000)


def test_r_bil_9_ledger_entries_cannot_be_deleted(tenant):
    entry = fund(tenant, 1_000_000)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_ledgerentry WHERE id = %s", [entry.pk])


def test_r_bil_9_database_refuses_a_negative_balance(tenant):
    fund(tenant, 1_000_000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(tenant=tenant).update(balance=-1)


def test_r_bil_9_balance_equals_sum_of_entries(tenant):
    fund(tenant, 10_000_000)
    services.adjust(tenant=tenant, amount=-2_500_000, actor=FINANCE, reason="correction", idempotency_key=key())
    services.penalty(tenant=tenant, amount=1_000_000, actor=FINANCE, reason="illegal message", idempotency_key=key())
    account = Account.objects.get(tenant=tenant)
    assert account.balance == account.entries.aggregate(s=Sum("amount"))["s"] == 6_500_000
    assert selectors.ledger_is_consistent(account=account)


def test_r_bil_1_adjustment_cannot_overdraw(tenant):
    fund(tenant, 1_000_000)
    with pytest.raises(services.InsufficientBalance):
        services.adjust(tenant=tenant, amount=-1_000_001, actor=FINANCE, reason="too much", idempotency_key=key())
    assert selectors.balance_of(tenant=tenant) == 1_000_000


def test_r_bil_9_topup_refuses_non_positive_or_float_amounts(tenant):
    for amount in (0, -5, 1.5):
        with pytest.raises(services.InvalidAmount):
            services.topup(tenant=tenant, amount=amount, actor=FINANCE, idempotency_key=key())


def test_r_cmp_6_penalty_charges_1000_per_illegal_message(tenant):
    fund(tenant, 5_000 * 1_000_000)
    entry = services.penalty(
        tenant=tenant, amount=2 * 1000 * 1_000_000, actor=FINANCE, reason="2 illegal messages", idempotency_key=key()
    )
    assert entry.kind == EntryKind.PENALTY
    assert entry.amount == -2_000_000_000
    assert selectors.balance_of(tenant=tenant) == 3_000_000_000


def test_r_cmp_6_penalty_beyond_balance_charges_what_is_there_and_records_the_rest(tenant):
    fund(tenant, 10_000_000)
    entry = services.penalty(
        tenant=tenant, amount=50_000_000_000, actor=FINANCE, reason="channel cut", idempotency_key=key()
    )
    assert entry.amount == -10_000_000
    assert {k: entry.details[k] for k in ("assessed", "charged", "outstanding")} == {
        "assessed": 50_000_000_000,
        "charged": 10_000_000,
        "outstanding": 49_990_000_000,
    }
    assert selectors.balance_of(tenant=tenant) == 0


def test_r_cmp_6_forfeit_takes_balance_and_packages(tenant):
    from billing.models import PackageProduct, PackageState

    fund(tenant, 7_000_000)
    product = PackageProduct.objects.create(name="1k", segments=1000, price=30_000_000, validity_days=365)
    grant = services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    k = key()
    entry = services.forfeit(tenant=tenant, actor=FINANCE, reason="R-CMP-6 fraud", idempotency_key=k)
    assert entry.amount == -7_000_000
    assert entry.details["package_segments"] == 1000
    grant.refresh_from_db()
    assert grant.state == PackageState.FORFEITED
    assert grant.segments_remaining == 0
    assert selectors.balance_of(tenant=tenant) == 0
    assert services.forfeit(tenant=tenant, actor=FINANCE, reason="again", idempotency_key=k).pk == entry.pk
    assert OperationRecord.objects.filter(tenant=tenant, action="billing.forfeit").count() == 1
