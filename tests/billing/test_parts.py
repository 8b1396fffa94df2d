"""R-BIL-2 / R-BIL-8: a long message is billed for the parts the carrier accepted, to the
micro-unit; the rest of its hold is released in the same booking; the reconciliation report and
the detailed bill compare per part and per message (issue 12, item 1)."""

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing import selectors, services
from billing.models import EntryKind, Hold, HoldState, LedgerEntry, PackageProduct
from delivery.models import Message, MessagePart, SendRequest

from .conftest import DELIVERY, FINANCE, fund, key, lines

PRICE = 35_000


def hold_one(tenant, segments, *, message_type=None):
    return services.hold_messages(
        tenant=tenant,
        lines=lines(1, segments=segments, unit_price=PRICE, message_type=message_type),
        idempotency_key=key("hold"),
        actor=DELIVERY,
    )[0]


def capture(hold, segments=None, *, k=None):
    return services.capture_holds(
        captures=[services.Capture(hold.pk, f"cid-{hold.pk}", timezone.now(), segments=segments)],
        idempotency_key=k or key("cap"),
    )


def test_r_bil_2_capturing_1_of_3_parts_bills_one_segment_and_releases_the_rest(tenant):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 3 * PRICE
    assert capture(hold, 1) == 1
    hold.refresh_from_db()
    assert (hold.state, hold.captured_segments, hold.charged) == (HoldState.CAPTURED, 1, PRICE)
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - PRICE
    account = services.account_for(tenant)
    assert selectors.ledger_is_consistent(account=account)
    assert account.held == 0


def test_r_bil_2_partial_capture_is_one_idempotent_booking(tenant):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    k = key("cap")
    assert capture(hold, 2, k=k) == 1
    entries = LedgerEntry.objects.filter(idempotency_key__startswith=k)
    assert sorted(entries.values_list("kind", "amount", "held_delta")) == [
        (EntryKind.CAPTURE, 0, -2 * PRICE),
        (EntryKind.RELEASE, PRICE, -PRICE),
    ]
    assert capture(hold, 2, k=k) == 0  # a replay moves nothing
    assert capture(hold, 3) == 0  # settled once: a second capture with another key neither
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 2 * PRICE


def test_r_bil_2_none_captures_every_segment(tenant):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    capture(hold, None)
    hold.refresh_from_db()
    assert (hold.captured_segments, hold.charged) == (3, 3 * PRICE)


@pytest.mark.parametrize("bad", [0, -1, 4, True, 1.0])
def test_r_bil_2_capture_of_an_impossible_part_count_is_refused_and_changes_nothing(tenant, bad):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    with pytest.raises(services.InvalidAmount):
        capture(hold, bad)
    hold.refresh_from_db()
    assert hold.state == HoldState.HELD
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 3 * PRICE


def test_r_bil_3_partial_capture_uses_package_segments_first_and_gives_the_rest_back(tenant):
    product = PackageProduct.objects.create(name="two", segments=2, price=0, validity_days=30)
    grant = services.buy_package(tenant=tenant, product=product, actor=FINANCE, idempotency_key=key())
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)  # 2 package segments + 1 cash segment
    assert (hold.package_segments, hold.amount) == (2, PRICE)
    capture(hold, 1)
    hold.refresh_from_db()
    grant.refresh_from_db()
    assert (hold.captured_segments, hold.package_charged, hold.charged) == (1, 1, 0)
    assert grant.segments_remaining == 1  # the refused part's package segment is back
    assert selectors.balance_of(tenant=tenant) == 1_000_000  # its cash segment too


def test_r_bil_2_delivered_wins_a_late_receipt_captures_a_released_hold_if_the_money_is_there(tenant):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 2)
    services.release_holds(hold_ids=[hold.pk], idempotency_key=key("rel"), reason="thought failed")
    assert selectors.balance_of(tenant=tenant) == 1_000_000
    k = key("late")
    result = services.capture_released_holds(
        captures=[services.Capture(hold.pk, "late-cid", timezone.now(), segments=2)], idempotency_key=k
    )
    assert (result.captured, result.uncollectable) == ([hold.pk], [])
    hold.refresh_from_db()
    assert (hold.state, hold.captured_segments, hold.charged, hold.carrier_message_id) == (
        HoldState.CAPTURED,
        2,
        2 * PRICE,
        "late-cid",
    )
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 2 * PRICE
    again = services.capture_released_holds(
        captures=[services.Capture(hold.pk, "late-cid", timezone.now())], idempotency_key=k
    )
    assert again.captured == []
    assert selectors.balance_of(tenant=tenant) == 1_000_000 - 2 * PRICE
    statement = selectors.statement_for(tenant=tenant, year=timezone.localtime().year, month=timezone.localtime().month)
    assert statement["charges"] == 2 * PRICE
    assert selectors.ledger_is_consistent(account=services.account_for(tenant))


def test_r_bil_2_delivered_wins_never_takes_the_balance_below_zero(tenant):
    fund(tenant, 2 * PRICE)
    hold = hold_one(tenant, 2)
    services.release_holds(hold_ids=[hold.pk], idempotency_key=key("rel"))
    services.adjust(tenant=tenant, amount=-PRICE, actor=FINANCE, reason="spent", idempotency_key=key())
    result = services.capture_released_holds(
        captures=[services.Capture(hold.pk, "late", timezone.now())], idempotency_key=key("late")
    )
    assert (result.captured, result.uncollectable) == ([], [hold.pk])
    assert Hold.objects.get(pk=hold.pk).state == HoldState.RELEASED
    assert selectors.balance_of(tenant=tenant) == PRICE


# --- reconciliation and the detailed bill, per part (R-BIL-8, R-BIL-7) ---------------------------


def long_message(tenant, hold, *, accepted_parts, receipts=None):
    """A 3-part message as delivery stores it: MessagePart rows only for the parts the carrier
    accepted, each with its carrier id and receipt state."""
    now = timezone.now()
    with tenant_context(tenant):
        request = SendRequest.objects.create(kind="single", body_hash="p" * 64, total=1, accepted=1)
        message = Message.objects.create(
            request=request,
            recipient="+8613800000001",
            segments=hold.segments,
            unit_price=PRICE,
            amount=hold.amount,
            hold_id=hold.pk,
            status="submitted",
            status_at=now,
            submitted_at=now,
        )
        for part in accepted_parts:
            MessagePart.objects.create(
                message=message,
                part=part,
                parts=hold.segments,
                carrier_message_id=f"c{hold.pk}-{part}",
                submitted_at=now,
                status=(receipts or {}).get(part, "submitted"),
                stat="DELIVRD" if (receipts or {}).get(part) == "delivered" else "",
            )
    return message


def test_r_bil_8_refused_parts_billed_are_reported_as_a_mismatch(tenant):
    """The finding: parts 2-3 refused, 3 captured, and the report said matches=True."""
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    message = long_message(tenant, hold, accepted_parts=[1])
    capture(hold, None)  # the old sender: everything captured
    now = timezone.localtime()
    report = selectors.reconciliation_for(tenant=tenant, year=now.year, month=now.month)
    assert (report["carrier_accepted_segments"], report["billed_segments"], report["matches"]) == (1, 3, False)
    assert report["mismatch_count"] == 1
    [row] = report["mismatches"]
    assert row["message_id"] == message.pk
    assert (row["carrier_accepted_parts"], row["billed_parts"], row["difference"]) == (1, 3, 2)
    assert row["carrier_message_ids"] == [f"c{hold.pk}-1"]


def test_r_bil_8_parts_billed_equal_parts_accepted_when_captured_per_part(tenant, client_a):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    long_message(tenant, hold, accepted_parts=[1, 3], receipts={1: "delivered"})
    capture(hold, 2)
    report = client_a.get(f"/api/v1/billing/reconciliation/{timezone.localtime():%Y-%m}").json()
    assert report["carrier_accepted_segments"] == report["billed_segments"] == 2
    assert report["billed_amount"] == 2 * PRICE
    assert report["delivered_parts"] == 1
    assert report["matches"] is True
    assert report["mismatches"] == []


def test_r_bil_8_an_accepted_part_left_unbilled_is_reported(tenant):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 2)
    long_message(tenant, hold, accepted_parts=[1, 2])
    capture(hold, 1)
    now = timezone.localtime()
    report = selectors.reconciliation_for(tenant=tenant, year=now.year, month=now.month)
    assert report["matches"] is False
    assert report["mismatches"][0]["difference"] == -1


def test_r_bil_7_detailed_bill_shows_status_parts_billed_carrier_ids_and_receipts(tenant, client_a):
    fund(tenant, 1_000_000)
    hold = hold_one(tenant, 3)
    message = long_message(tenant, hold, accepted_parts=[1, 2], receipts={1: "delivered"})
    capture(hold, 2)
    rows = client_a.get(f"/api/v1/billing/statements/{timezone.localtime():%Y-%m}/messages").json()
    rows = rows.get("results", rows)
    [row] = [r for r in rows if r["id"] == hold.pk]
    assert row["message_id"] == message.pk
    assert row["status"] == "submitted"
    assert (row["segments"], row["parts_billed"], row["charged"]) == (3, 2, 2 * PRICE)
    assert [p["carrier_message_id"] for p in row["parts"]] == [f"c{hold.pk}-1", f"c{hold.pk}-2"]
    assert [p["receipt"] for p in row["parts"]] == ["DELIVRD", "submitted"]
