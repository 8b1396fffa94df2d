"""R-DLV-4 receipts: mapped through the public carrier-id lookup, parked when early, one per part,
idempotent; no receipt in 72 h → unknown. R-BIL-8: carrier ids kept per part."""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from delivery.inbound import record_receipt
from delivery.models import CarrierMessageId, Message, MessageStatus, PendingReceipt
from delivery.sender import apply_submit_results
from delivery.smpp.receipts import Receipt
from delivery.smpp.results import SubmitResult
from delivery.sweeps import expire_receipts

from .conftest import add_message

S = MessageStatus


def submitting(tenant, channel, *, token="tok1"):
    return add_message(tenant, status=S.SUBMITTING, claim_token=token, channel_id=channel.pk)


def results(tenant, msg, ids, *, token="tok1"):
    return [
        SubmitResult(
            ref=f"{tenant.schema_name}:{msg.pk}:{token}",
            part=i,
            parts=len(ids),
            message_id=mid,
            command_status=0,
            transient=False,
        )
        for i, mid in enumerate(ids, start=1)
    ]


def receipt(mid, stat="DELIVRD", status="delivered"):
    now = datetime.now(UTC)
    return Receipt(
        message_id=mid,
        stat=stat,
        err="000" if stat == "DELIVRD" else "001",
        submit_date=now,
        done_date=now,
        status=status,
    )


def status_of(tenant, msg):
    with tenant_context(tenant):
        return Message.objects.get(pk=msg.pk).status


def test_submit_result_records_carrier_ids_per_part_R_BIL_8(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["A1", "A2"]))
    assert status_of(tenant_a, msg) == S.SUBMITTED
    rows = CarrierMessageId.objects.filter(schema_name=tenant_a.schema_name, message_id=msg.pk).order_by("part")
    assert [(r.carrier_message_id, r.part) for r in rows] == [("A1", 1), ("A2", 2)]


def test_long_message_is_delivered_when_every_part_is(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["B1", "B2"]))
    record_receipt(channel_id=channel.pk, receipt=receipt("B1"))
    assert status_of(tenant_a, msg) == S.SUBMITTED
    record_receipt(channel_id=channel.pk, receipt=receipt("B2"))
    assert status_of(tenant_a, msg) == S.DELIVERED


def test_mixed_part_outcomes_take_the_worst(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["C1", "C2"]))
    record_receipt(channel_id=channel.pk, receipt=receipt("C1"))
    record_receipt(channel_id=channel.pk, receipt=receipt("C2", "UNDELIV", "undelivered"))
    assert status_of(tenant_a, msg) == S.UNDELIVERED


def test_duplicate_receipts_have_no_effect(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["D1"]))
    record_receipt(channel_id=channel.pk, receipt=receipt("D1"))
    record_receipt(channel_id=channel.pk, receipt=receipt("D1"))
    record_receipt(channel_id=channel.pk, receipt=receipt("D1", "UNDELIV", "undelivered"))
    with tenant_context(tenant_a):
        m = Message.objects.get(pk=msg.pk)
        assert m.status == S.DELIVERED
        assert m.events.filter(to_status=S.DELIVERED).count() == 1


def test_receipt_before_the_submit_response_is_parked_then_applied(
    tenant_a, make_channel, django_capture_on_commit_callbacks
):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    assert record_receipt(channel_id=channel.pk, receipt=receipt("E1")) is False
    assert PendingReceipt.objects.filter(carrier_message_id="E1", applied_at__isnull=True).exists()
    with django_capture_on_commit_callbacks(execute=True):
        apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["E1"]))
    assert status_of(tenant_a, msg) == S.DELIVERED
    assert PendingReceipt.objects.get(carrier_message_id="E1").applied_at is not None


def test_receipt_matches_hex_and_decimal_forms_of_the_id(tenant_a, make_channel, settings):
    """A decimal receipt id for a hex submit id matches once the variant wait has passed (issue 10:
    its own exact id could still be on its way), then by the one candidate of the account."""
    from delivery.inbound import apply_pending_receipts
    from delivery.smpp.receipts import normalise_message_id

    channel = make_channel()
    msg = submitting(tenant_a, channel)
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, [normalise_message_id("00000012AB")]))
    record_receipt(channel_id=channel.pk, receipt=receipt(normalise_message_id(str(0x12AB))))
    assert status_of(tenant_a, msg) == S.SUBMITTED  # a variant, not yet
    settings.DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS = 0
    apply_pending_receipts()
    assert status_of(tenant_a, msg) == S.DELIVERED


def test_result_of_an_older_claim_is_ignored(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel, token="new")
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["F1"], token="old"))
    assert status_of(tenant_a, msg) == S.SUBMITTING


def test_no_receipt_within_72_hours_means_unknown(tenant_a, make_channel):
    from delivery.models import OutboxEntry

    msg = add_message(tenant_a, status=S.SUBMITTED, submitted_at=timezone.now() - timedelta(hours=73))
    fresh = add_message(tenant_a, status=S.SUBMITTED, submitted_at=timezone.now() - timedelta(hours=1))
    OutboxEntry.objects.create(
        tenant=tenant_a,
        request_id=msg.request_id,
        message_ids=[msg.pk],
        available_at=timezone.now(),
        relayed_at=timezone.now(),
    )
    assert expire_receipts() >= 1
    assert status_of(tenant_a, msg) == S.UNKNOWN
    assert status_of(tenant_a, fresh) == S.SUBMITTED


def test_a_reused_carrier_id_belongs_to_the_newest_submission(tenant_a, make_channel):
    channel = make_channel()
    old = submitting(tenant_a, channel, token="t-old")
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, old, ["R1"], token="t-old"))
    new = submitting(tenant_a, channel, token="t-new")
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, new, ["R1"], token="t-new"))
    record_receipt(channel_id=channel.pk, receipt=receipt("R1"))
    assert status_of(tenant_a, new) == S.DELIVERED
    assert status_of(tenant_a, old) == S.SUBMITTED


def test_housekeeping_drops_only_old_working_rows(tenant_a, make_channel):
    from delivery.sweeps import purge_housekeeping

    channel = make_channel()
    old = PendingReceipt.objects.create(
        channel=channel, carrier_message_id="OLD", stat="DELIVRD", status="delivered", applied_at=timezone.now()
    )
    fresh = PendingReceipt.objects.create(channel=channel, carrier_message_id="NEW", stat="DELIVRD", status="delivered")
    PendingReceipt.objects.filter(pk=old.pk).update(applied_at=timezone.now() - timedelta(days=2))
    purge_housekeeping()
    assert not PendingReceipt.objects.filter(pk=old.pk).exists()
    assert PendingReceipt.objects.filter(pk=fresh.pk).exists()


def _failed_after_submit(tenant, channel, ids, *, reason):
    msg = submitting(tenant, channel)
    apply_submit_results(channel_id=channel.pk, results=results(tenant, msg, ids))
    with tenant_context(tenant):  # as the unknown-submission policy or a timeout leaves it
        Message.objects.filter(pk=msg.pk).update(status=S.FAILED, reason=reason)
    return msg


def test_receipts_deliver_a_message_failed_for_want_of_an_answer_R_DLV_4(tenant_a, make_channel):
    """Issue 20 "delivered wins": every part's receipt, matched by its exact carrier id."""
    channel = make_channel()
    msg = _failed_after_submit(tenant_a, channel, ["W1", "W2"], reason="validity_expired")
    record_receipt(channel_id=channel.pk, receipt=receipt("W1"))
    assert status_of(tenant_a, msg) == S.FAILED  # one part is not yet evidence for the message
    record_receipt(channel_id=channel.pk, receipt=receipt("W2"))
    with tenant_context(tenant_a):
        message = Message.objects.get(pk=msg.pk)
        last = message.events.order_by("-pk").first()
    assert (message.status, message.reason) == (S.DELIVERED, "")
    assert (last.from_status, last.to_status) == (S.FAILED, S.DELIVERED)


def test_a_refused_message_stays_failed_whatever_its_receipts_say_R_DLV_4(tenant_a, make_channel):
    channel = make_channel()
    msg = _failed_after_submit(tenant_a, channel, ["X1"], reason="submit_refused")
    record_receipt(channel_id=channel.pk, receipt=receipt("X1"))
    assert status_of(tenant_a, msg) == S.FAILED
