"""Receipt corpus (R-DLV-4, R-BIL-8): 60 messages of two tenants, one or two parts each, whose
carrier ids come back in every form SMSCs use — hex in submit_sm_resp and decimal in the receipt
or the reverse, upper/lower case, leading zeros, receipted_message_id TLV instead of the text
`id:`, message_state TLV over `stat:`, upper-case keys, dates with or without seconds — in
shuffled order, some before their submit response, every one twice, plus receipts for ids nobody
sent and a receipt for a real id on another channel. Afterwards every message has the status of
its own receipts, no known receipt is left unmatched, and the strangers matched nothing."""

import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from delivery.inbound import record_receipt
from delivery.models import Message, MessageStatus, PendingReceipt
from delivery.sender import apply_submit_results
from delivery.smpp.receipts import format_receipt, normalise_message_id, parse_receipt
from delivery.smpp.results import SubmitResult

from ..delivery.flow.conftest import add_message

S = MessageStatus
pytestmark = pytest.mark.faults
DONE = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)


def receipt_pdu(style: int, *, sent_id: int, stat: str) -> dict:
    """A receipt as an SMSC would send it, for a message whose numeric id is `sent_id`."""
    text = format_receipt(message_id=format(sent_id, "X"), stat=stat, submit_date=DONE, done_date=DONE)
    if style == 0:  # hex id, as in the submit response, upper case
        return {"short_message": text}
    if style == 1:  # decimal id in the text; submit response was hex
        return {"short_message": text.replace(f"id:{sent_id:X}", f"id:{sent_id}")}
    if style == 2:  # id only in the receipted_message_id TLV (NUL-terminated, lower case)
        return {
            "short_message": text.replace(f"id:{sent_id:X} ", ""),
            "tlvs": {"receipted_message_id": f"{sent_id:x}".encode() + b"\x00"},
        }
    if style == 3:  # upper-case keys, lower-case stat, leading zeros on the id
        return {
            "short_message": text.replace(f"id:{sent_id:X}", f"ID:{sent_id:012X}")
            .upper()
            .replace(f"STAT:{stat}", f"stat:{stat.lower()}")
        }
    # message_state TLV (numeric) wins over a contradicting text stat
    state = {"DELIVRD": 2, "UNDELIV": 5}[stat]
    other = "UNDELIV" if stat == "DELIVRD" else "DELIVRD"
    return {"short_message": text.replace(f"stat:{stat}", f"stat:{other}"), "tlvs": {"message_state": state}}


def test_receipt_corpus_every_form_matches_its_message_once(
    tenant_a, tenant_b, make_channel, figure, django_capture_on_commit_callbacks, settings
):
    settings.DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS = 0  # no colliding ids here: variants apply at once
    rng = random.Random(7)
    # the other channel is another SMSC account: its receipts never match this account's ids
    channel, other_channel = make_channel(), make_channel(route=False, port=2776)
    expected: dict[tuple[int, int], str] = {}
    submits, receipts = [], []
    for n in range(60):
        tenant = (tenant_a, tenant_b)[n % 2]
        parts = 1 + (n % 3 == 0)
        msg = add_message(
            tenant, status=S.SUBMITTING, recipient=f"+86138{n:08d}", claim_token="tok", channel_id=channel.pk
        )
        stats = [rng.choice(["DELIVRD", "DELIVRD", "UNDELIV"]) for _ in range(parts)]
        expected[(tenant.pk, msg.pk)] = S.DELIVERED if set(stats) == {"DELIVRD"} else S.UNDELIVERED
        ids = [0xA0000000 + n * 16 + p for p in range(parts)]
        submits.append(
            [
                SubmitResult(
                    ref=f"{tenant.schema_name}:{msg.pk}:tok",
                    part=p + 1,
                    parts=parts,
                    message_id=normalise_message_id(format(i, "X")),
                    command_status=0,
                    transient=False,
                )
                for p, i in enumerate(ids)
            ]
        )
        for i, stat in zip(ids, stats, strict=True):
            receipts += [receipt_pdu(rng.randrange(5), sent_id=i, stat=stat)] * 2  # every receipt twice
    strangers = [receipt_pdu(s, sent_id=0xBEEF0000 + s, stat="DELIVRD") for s in range(5)]
    wrong_bind = receipt_pdu(0, sent_id=0xA0000000, stat="UNDELIV")  # a real id, on another channel's bind

    rng.shuffle(receipts)
    half = len(receipts) // 2
    with django_capture_on_commit_callbacks(execute=True):
        for pdu in receipts[:half]:  # these arrive before their submit response (parked)
            record_receipt(channel_id=channel.pk, receipt=parse_receipt(**pdu))
        record_receipt(channel_id=other_channel.pk, receipt=parse_receipt(**wrong_bind))
        order = list(range(len(submits)))
        rng.shuffle(order)
        for k in order:
            apply_submit_results(channel_id=channel.pk, results=submits[k])
        for pdu in receipts[half:] + strangers:
            record_receipt(channel_id=channel.pk, receipt=parse_receipt(**pdu))

    got = {}
    for tenant in (tenant_a, tenant_b):
        with tenant_context(tenant):
            got.update(
                {
                    (tenant.pk, pk): s
                    for pk, s in Message.objects.filter(pk__in=[m for t, m in expected if t == tenant.pk]).values_list(
                        "pk", "status"
                    )
                }
            )
    connection.set_schema_to_public()
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    open_receipts = PendingReceipt.objects.filter(applied_at__isnull=True)
    stranger_ids = {parse_receipt(**pdu).message_id for pdu in strangers}
    unmatched_known = open_receipts.filter(channel_id=channel.pk).exclude(carrier_message_id__in=stranger_ids).count()
    parked_strangers = open_receipts.filter(carrier_message_id__in=stranger_ids).count()
    scale = f"60 messages / {sum(len(b) for b in submits)} parts, {len(receipts)} receipts (each twice), 5 forms"
    figure("receipts unmatched (known carrier ids)", unmatched_known, unit="receipts", scale=scale)
    figure("messages with a wrong final status after the corpus", len(wrong), scale=scale)
    assert not wrong, wrong
    assert unmatched_known == 0
    assert parked_strangers == len(strangers)  # unknown ids wait (and expire), touching nothing
    assert open_receipts.filter(channel_id=other_channel.pk).count() == 1  # another bind's receipt matched nothing
    assert Counter(got.values()) == Counter(expected.values())


def _submit(tenant, msg, carrier_id: str, *, channel_id: int) -> None:
    apply_submit_results(
        channel_id=channel_id,
        results=[
            SubmitResult(
                ref=f"{tenant.schema_name}:{msg.pk}:tok",
                part=1,
                parts=1,
                message_id=carrier_id,
                command_status=0,
                transient=False,
            )
        ],
    )


def test_an_early_receipt_never_lands_on_an_older_message_through_an_id_variant(
    tenant_a, tenant_b, make_channel, django_capture_on_commit_callbacks, settings
):
    """Issue 10: decimal ids everywhere; tenant B's message "64" waits for its receipt; the
    receipt "100" of tenant A's new message beats A's submit result. Hex 0x64 = 100, but the
    variant is tried only after the wait: "100" is applied to A's message once its id is recorded."""
    settings.DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS = 60
    channel = make_channel()
    older = add_message(
        tenant_b, status=S.SUBMITTING, recipient="+8613900000064", claim_token="tok", channel_id=channel.pk
    )
    newer = add_message(
        tenant_a, status=S.SUBMITTING, recipient="+8613900000100", claim_token="tok", channel_id=channel.pk
    )
    with django_capture_on_commit_callbacks(execute=True):
        _submit(tenant_b, older, "64", channel_id=channel.pk)
        early = format_receipt(message_id="100", stat="DELIVRD", submit_date=DONE, done_date=DONE)
        record_receipt(channel_id=channel.pk, receipt=parse_receipt(short_message=early))
    with tenant_context(tenant_b):
        assert Message.objects.get(pk=older.pk).status == S.SUBMITTED  # untouched
    with django_capture_on_commit_callbacks(execute=True):
        _submit(tenant_a, newer, "100", channel_id=channel.pk)
    with tenant_context(tenant_a):
        assert Message.objects.get(pk=newer.pk).status == S.DELIVERED
    with tenant_context(tenant_b):
        assert Message.objects.get(pk=older.pk).status == S.SUBMITTED
    connection.set_schema_to_public()


def test_a_receipt_matches_only_its_own_smsc_account(
    tenant_a, tenant_b, make_channel, django_capture_on_commit_callbacks
):
    """Issue 10: two SMSC accounts issue the same id "777"; each receipt finds the message of its
    own account (channels sharing the account count as one), never the other's."""
    first, first_twin, second = make_channel(), make_channel(route=False), make_channel(route=False, port=2790)
    a = add_message(tenant_a, status=S.SUBMITTING, recipient="+8613700000001", claim_token="tok", channel_id=first.pk)
    b = add_message(tenant_b, status=S.SUBMITTING, recipient="+8613700000002", claim_token="tok", channel_id=second.pk)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(tenant_a, a, "777", channel_id=first.pk)
        _submit(tenant_b, b, "777", channel_id=second.pk)
        undeliv = format_receipt(message_id="777", stat="UNDELIV", submit_date=DONE, done_date=DONE)
        record_receipt(channel_id=second.pk, receipt=parse_receipt(short_message=undeliv))
        delivrd = format_receipt(message_id="777", stat="DELIVRD", submit_date=DONE, done_date=DONE)
        record_receipt(channel_id=first_twin.pk, receipt=parse_receipt(short_message=delivrd))  # same account
    with tenant_context(tenant_a):
        assert Message.objects.get(pk=a.pk).status == S.DELIVERED
    with tenant_context(tenant_b):
        assert Message.objects.get(pk=b.pk).status == S.UNDELIVERED
    connection.set_schema_to_public()


def _receipt(carrier_id: str, *, number: str, tenant, channel) -> None:
    from delivery.sender import source_address

    text = format_receipt(message_id=carrier_id, stat="DELIVRD", submit_date=DONE, done_date=DONE)
    with tenant_context(tenant):
        to = source_address(channel=channel, tenant=tenant)
    connection.set_schema_to_public()
    record_receipt(
        channel_id=channel.pk,
        receipt=parse_receipt(short_message=text),
        source_addr=number.lstrip("+"),
        destination_addr=to,
    )


@pytest.mark.parametrize("policy", ["resend", "fail"])
def test_a_dead_senders_receipt_is_its_evidence_never_another_messages_receipt_by_a_variant_R_DLV_3(
    tenant_a, tenant_b, make_channel, django_capture_on_commit_callbacks, settings, policy
):
    """Issue 16 (scale-out, worker SIGKILL): decimal ids. The SMSC took tenant A's message "419"
    but its worker died before recording the id (→ unknown_submission); its receipt "419" comes
    back from A's recipient. Read as hex, 0x419 = 1049, the id of tenant B's message that still
    waits for its own receipt. The receipt goes to another handset than B's message, so it is
    never B's: it stays A's evidence, A is reconciled from it (not resent, not failed: R-DLV-3,
    R-BIL-2) and B's message is untouched until its own receipt comes."""
    from datetime import timedelta

    from django.utils import timezone

    from delivery.sweeps import reconcile_unknown_submissions

    from ..delivery.flow.conftest import add_outbox

    settings.DELIVERY_RECEIPT_VARIANT_WAIT_SECONDS = 0
    settings.DELIVERY_UNKNOWN_POLICY = {"default": (policy, 0)}
    channel = make_channel()
    waiting = add_message(
        tenant_b, status=S.SUBMITTING, recipient="+8613900001049", claim_token="tok", channel_id=channel.pk
    )
    earlier = timezone.now() - timedelta(minutes=3)
    lost = add_message(
        tenant_a,
        status=S.UNKNOWN_SUBMISSION,
        recipient="+8613900000419",
        channel_id=channel.pk,
        submitting_at=earlier,
        submit_attempts=1,
    )
    with tenant_context(tenant_a):
        Message.objects.filter(pk=lost.pk).update(status_at=earlier)
    connection.set_schema_to_public()
    add_outbox(tenant_a, [lost])
    add_outbox(tenant_b, [waiting])
    with django_capture_on_commit_callbacks(execute=True):
        _submit(tenant_b, waiting, "1049", channel_id=channel.pk)
        _receipt("419", number=lost.recipient, tenant=tenant_a, channel=channel)
        reconcile_unknown_submissions()
    connection.set_schema_to_public()
    with tenant_context(tenant_b):
        assert Message.objects.get(pk=waiting.pk).status == S.SUBMITTED  # not delivered by A's receipt
    with tenant_context(tenant_a):
        settled = Message.objects.get(pk=lost.pk)
        assert settled.status == S.DELIVERED, (settled.status, settled.reason, settled.detail)
        assert list(settled.parts.values_list("carrier_message_id", flat=True)) == ["419"]
    connection.set_schema_to_public()
    # B's own receipt still delivers B's message.
    with django_capture_on_commit_callbacks(execute=True):
        _receipt("1049", number=waiting.recipient, tenant=tenant_b, channel=channel)
    with tenant_context(tenant_b):
        assert Message.objects.get(pk=waiting.pk).status == S.DELIVERED
    connection.set_schema_to_public()
