"""R-DLV-4, issue 16: receipts a send job read on its bind are applied from memory in the
transaction that records its results. Only by the exact carrier id the job has just recorded, on
the job's own bind; the rest stays parked (PendingReceipt, applied_at unset) for
apply_pending_receipts, which alone matches hex/decimal variants.

pytest-django runs each test in a transaction that never commits, so on_commit hooks (the
after-commit apply) never run here: a message delivered below was delivered in memory."""

from types import SimpleNamespace

from delivery.inbound import store_receipts
from delivery.models import MessageStatus, PendingReceipt
from delivery.sender import apply_submit_results

from .test_receipts import receipt, results, status_of, submitting

S = MessageStatus


def pdu(mid, **kwargs):
    return SimpleNamespace(is_receipt=True, receipt=receipt(mid, **kwargs), source_addr="4911", destination_addr="1")


def test_receipt_read_during_the_job_is_applied_with_its_result_R_DLV_4(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    stored = store_receipts(channel_id=channel.pk, pdus=[pdu("J1")])
    assert [r.pk for r in stored] == list(PendingReceipt.objects.values_list("pk", flat=True))

    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["J1"]), receipts=stored)

    assert status_of(tenant_a, msg) == S.DELIVERED
    assert PendingReceipt.objects.get(pk=stored[0].pk).applied_at is not None


def test_long_message_waits_for_every_part_and_takes_the_worst_R_DLV_4(tenant_a, make_channel):
    channel = make_channel()
    msg = submitting(tenant_a, channel)
    stored = store_receipts(channel_id=channel.pk, pdus=[pdu("K1"), pdu("K2", stat="UNDELIV", status="undelivered")])
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["K1", "K2", "K3"]), receipts=stored)
    assert status_of(tenant_a, msg) == S.SUBMITTED  # part 3 has no receipt yet
    assert PendingReceipt.objects.filter(applied_at__isnull=True).count() == 0


def test_variant_or_other_bind_receipt_stays_parked_R_DLV_4(tenant_a, make_channel):
    channel, other = make_channel(), make_channel()
    msg = submitting(tenant_a, channel)
    # "12" (decimal) vs "c" (its hex form): a variant, matched only by apply_pending_receipts
    variant = store_receipts(channel_id=channel.pk, pdus=[pdu("12")])
    elsewhere = store_receipts(channel_id=other.pk, pdus=[pdu("c")])

    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["c"]), receipts=variant + elsewhere)

    assert status_of(tenant_a, msg) == S.SUBMITTED
    assert PendingReceipt.objects.filter(applied_at__isnull=True).count() == 2


def test_message_receipted_within_its_job_is_written_final_once_with_its_whole_history_R_DLV_4(tenant_a, make_channel):
    """Issue 16: every part of a message answered and receipted within one job: the message goes
    submitted → its final status in the results transaction (no second read, lock and UPDATE of
    the rows just written), with both status events, the parts final, the receipts applied, the
    worst part's outcome and its error code; the carrier ids stay recorded for later duplicates."""
    from django_tenants.utils import tenant_context

    from delivery.models import CarrierMessageId, Message, MessagePart, StatusEvent

    channel = make_channel()
    msg = submitting(tenant_a, channel)
    stored = store_receipts(channel_id=channel.pk, pdus=[pdu("M1"), pdu("M2", stat="UNDELIV", status="undelivered")])
    apply_submit_results(channel_id=channel.pk, results=results(tenant_a, msg, ["M1", "M2"]), receipts=stored)

    with tenant_context(tenant_a):
        message = Message.objects.get(pk=msg.pk)
        moves = list(StatusEvent.objects.filter(message=msg).values_list("from_status", "to_status", "detail"))
        parts = list(MessagePart.objects.filter(message=msg).order_by("part").values_list("status", "stat", "err"))
    assert (message.status, message.error_code) == (S.UNDELIVERED, "001")
    assert message.submitted_at is not None
    assert message.done_at is not None
    assert moves[-2:] == [(S.SUBMITTING, S.SUBMITTED, ""), (S.SUBMITTED, S.UNDELIVERED, "receipt UNDELIV")]
    assert parts == [(S.DELIVERED, "DELIVRD", "000"), (S.UNDELIVERED, "UNDELIV", "001")]
    assert PendingReceipt.objects.filter(applied_at__isnull=True).count() == 0
    assert CarrierMessageId.objects.filter(message_id=msg.pk).count() == 2

    # the same receipt again (redelivered by the SMSC) changes nothing
    again = store_receipts(channel_id=channel.pk, pdus=[pdu("M2", stat="DELIVRD")])
    from delivery.inbound import apply_pending_receipts

    assert apply_pending_receipts(carrier_ids=[r.carrier_message_id for r in again]) == 1
    assert status_of(tenant_a, msg) == S.UNDELIVERED


def test_a_receipt_marked_applied_again_keeps_its_first_time_R_DLV_4(make_channel):
    """inbound.mark_applied goes by id alone (issue 16: no `applied_at IS NULL` filter for the
    planner to misuse), so a second marking must leave the first applied_at as it was."""
    from datetime import timedelta

    from django.utils import timezone

    from delivery.inbound import mark_applied

    channel = make_channel()
    [first, second] = store_receipts(channel_id=channel.pk, pdus=[pdu("A1"), pdu("A2")])
    then = timezone.now() - timedelta(minutes=5)
    mark_applied([first.pk], then)
    mark_applied([first.pk, second.pk], timezone.now())
    applied = dict(PendingReceipt.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "applied_at"))
    assert applied[first.pk] == then
    assert applied[second.pk] > then


def test_status_callbacks_of_receipted_messages_cost_no_query_per_message_R_DLV_4(tenant_a, make_channel):
    """A tenant with a callback URL: the status callbacks of a job's messages (made final by
    receipts, in the job or after it) are built from the rows the job loaded. The callback
    reads request_id and segments, which those loads had left out (one more SELECT per message),
    and messages whose receipts differ in their done time were written one UPDATE each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import tenant_context

    from delivery.callbacks import update_callback_settings
    from delivery.inbound import PartOutcome, apply_outcomes
    from delivery.models import CallbackDelivery
    from tenants.services import Actor

    update_callback_settings(tenant=tenant_a, callback_url="https://example.com/hook", actor=Actor.system("tests"))
    channel = make_channel()

    def job_queries(n: int, prefix: str) -> tuple[int, int]:
        messages = [submitting(tenant_a, channel) for _ in range(n)]
        ids = [f"{prefix}{i}" for i in range(n)]
        stored = store_receipts(channel_id=channel.pk, pdus=[pdu(cid) for cid in ids[: n // 2]])
        items = [r for m, cid in zip(messages, ids, strict=True) for r in results(tenant_a, m, [cid])]
        with CaptureQueriesContext(connection) as in_job:
            apply_submit_results(channel_id=channel.pk, results=items, receipts=stored)
        later = [PartOutcome(m.pk, 1, "delivered", "DELIVRD", "000", None) for m in messages[n // 2 :]]
        with CaptureQueriesContext(connection) as after:
            apply_outcomes(tenant=tenant_a, outcomes=later)
        with tenant_context(tenant_a):
            assert {status_of(tenant_a, m) for m in messages} == {S.DELIVERED}
        return len(in_job), len(after)

    before = CallbackDelivery.objects.count()
    assert job_queries(2, "Q") == job_queries(8, "R")
    assert CallbackDelivery.objects.count() - before == 10  # one status callback per message


def test_status_callbacks_of_refused_messages_cost_no_query_per_message_R_DLV_4(tenant_a, make_channel):
    """The same for messages a carrier refused for good: their status callbacks are queued
    together (two queries), not one settings read and one INSERT per message."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from delivery.callbacks import update_callback_settings
    from delivery.models import CallbackDelivery
    from delivery.smpp.results import SubmitResult
    from tenants.services import Actor

    update_callback_settings(tenant=tenant_a, callback_url="https://example.com/hook", actor=Actor.system("tests"))
    channel = make_channel()

    def job_queries(n: int) -> int:
        messages = [submitting(tenant_a, channel) for _ in range(n)]
        refused = [
            SubmitResult(
                ref=f"{tenant_a.schema_name}:{m.pk}:tok1",
                part=1,
                parts=1,
                message_id="",
                command_status=0x45,
                transient=False,
            )
            for m in messages
        ]
        with CaptureQueriesContext(connection) as ctx:
            outcome = apply_submit_results(channel_id=channel.pk, results=refused)
        assert outcome["failed"] == n
        assert {status_of(tenant_a, m) for m in messages} == {S.FAILED}
        return len(ctx)

    job_queries(1)  # the per-thread routing table is loaded once (sender._untried_channel)
    before = CallbackDelivery.objects.count()
    assert job_queries(2) == job_queries(6)
    assert CallbackDelivery.objects.count() - before == 8
