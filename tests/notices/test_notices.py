"""R-DLV-7: notices reach the tenant by e-mail, signed webhook (retried) and the API inbox, and
every delivery is recorded. Notice periods of announced changes are enforced."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from delivery.channels import delivery_settings_for
from delivery.models import CallbackDelivery, CallbackState
from delivery.services import decrypt_secret, deliver_callback, sign_body
from tenants import notices
from tenants.actors import send_notice_email
from tenants.models import (
    Notice,
    NoticeChannel,
    NoticeDelivery,
    NoticeDeliveryState,
    NoticeKind,
    OperationRecord,
)

from .conftest import SYSTEM, set_callback_url

TEXT = {
    "subject_zh": "投诉通知",
    "subject_en": "Complaint filed",
    "body_zh": "您有一条新的投诉，请在72小时内答复。",
    "body_en": "A complaint was filed; answer within 72 hours.",
}


def send(tenant, kind=NoticeKind.GENERAL, **extra):
    return notices.notify(tenant=tenant, kind=kind, actor=SYSTEM, **TEXT, **extra)


def delivery(notice, channel) -> NoticeDelivery:
    return NoticeDelivery.objects.get(notice=notice, channel=channel)


def test_notice_is_emailed_in_both_languages_and_the_delivery_recorded_R_DLV_7(tenant_a):
    notice = send(tenant_a, kind=NoticeKind.COMPLAINT)
    item = delivery(notice, NoticeChannel.EMAIL)
    assert item.state == NoticeDeliveryState.PENDING
    send_notice_email.fn(item.pk)  # the job's body, as the worker runs it
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [tenant_a.contact_email]
    assert "投诉通知" in sent.subject
    assert "Complaint filed" in sent.subject
    assert "72小时" in sent.body
    assert "72 hours" in sent.body
    item.refresh_from_db()
    assert item.state == NoticeDeliveryState.SENT
    assert item.sent_at is not None
    assert item.attempts == 1


def test_notice_is_in_the_inbox_at_once_R_DLV_7(tenant_a):
    notice = send(tenant_a)
    assert delivery(notice, NoticeChannel.INBOX).state == NoticeDeliveryState.SENT
    assert OperationRecord.objects.filter(action="notice.send", tenant=tenant_a, object_id=str(notice.pk)).exists()


def test_notice_webhook_is_signed_with_the_tenants_callback_secret_R_DLV_7(tenant_a, webhook):
    set_callback_url(tenant_a, webhook.url)
    notice = send(tenant_a, kind=NoticeKind.COMPLAINT, data={"complaint_id": 7})
    item = delivery(notice, NoticeChannel.WEBHOOK)
    deliver_callback(callback_id=item.callback_id)
    headers, body = webhook.received[0]
    secret = decrypt_secret(delivery_settings_for(tenant=tenant_a).callback_secret)
    assert headers["X-Signature"] == sign_body(secret=secret, body=body)
    assert headers["X-Event"] == "notice"
    payload = json.loads(body)
    assert payload["notice_id"] == notice.pk
    assert payload["kind"] == "complaint"
    assert payload["subject"] == {"zh": "投诉通知", "en": "Complaint filed"}
    assert payload["data"] == {"complaint_id": 7}
    notices.sync_webhook_deliveries()
    item.refresh_from_db()
    assert item.state == NoticeDeliveryState.SENT
    assert item.attempts == 1


def test_failing_webhook_is_retried_then_recorded_failed_R_DLV_7(tenant_a, webhook, settings):
    settings.DELIVERY_CALLBACK_MAX_ATTEMPTS = 2
    webhook.answer(503)
    set_callback_url(tenant_a, webhook.url)
    notice = send(tenant_a)
    item = delivery(notice, NoticeChannel.WEBHOOK)
    deliver_callback(callback_id=item.callback_id)
    callback = CallbackDelivery.objects.get(pk=item.callback_id)
    assert callback.state == CallbackState.PENDING
    assert callback.next_attempt_at > timezone.now()
    notices.sync_webhook_deliveries()
    item.refresh_from_db()
    assert item.state == NoticeDeliveryState.PENDING  # a retry is due
    deliver_callback(callback_id=item.callback_id)
    assert len(webhook.received) == 2
    notices.sync_webhook_deliveries()
    item.refresh_from_db()
    assert item.state == NoticeDeliveryState.FAILED
    assert item.attempts == 2
    assert "503" in item.last_error


def test_failing_email_is_recorded_and_retried_R_DLV_7(tenant_a, settings, monkeypatch):
    settings.NOTICES_EMAIL_MAX_ATTEMPTS = 2
    retries = []
    monkeypatch.setattr(notices, "_enqueue_email_later", lambda pk, attempts: retries.append((pk, attempts)))
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens
    notice = send(tenant_a)
    item = delivery(notice, NoticeChannel.EMAIL)
    notices.deliver_notice_email(delivery_id=item.pk)
    item.refresh_from_db()
    assert item.state == NoticeDeliveryState.PENDING
    assert item.attempts == 1
    assert item.last_error
    notices.deliver_notice_email(delivery_id=item.pk)
    item.refresh_from_db()
    assert item.state == NoticeDeliveryState.FAILED
    assert item.attempts == 2


def test_missing_addresses_are_recorded_as_skipped_R_DLV_7(make_tenant):
    tenant = make_tenant("No Address Co.")
    tenant.contact_email = ""
    tenant.save(update_fields=["contact_email"])
    notice = send(tenant)
    assert delivery(notice, NoticeChannel.EMAIL).state == NoticeDeliveryState.SKIPPED
    webhook = delivery(notice, NoticeChannel.WEBHOOK)
    assert webhook.state == NoticeDeliveryState.SKIPPED
    assert "callback URL" in webhook.last_error
    assert delivery(notice, NoticeChannel.INBOX).state == NoticeDeliveryState.SENT


def test_one_occurrence_is_told_once_R_DLV_7(tenant_a):
    first = send(tenant_a, dedupe_key="complaint:1")
    again = send(tenant_a, dedupe_key="complaint:1")
    assert first.pk == again.pk
    assert Notice.objects.filter(tenant=tenant_a, dedupe_key="complaint:1").count() == 1
    assert NoticeDelivery.objects.filter(notice=first).count() == 3


# --- notice periods ------------------------------------------------------------------------


def test_function_change_needs_one_month_by_default_R_DLV_7(tenant_a):
    now = timezone.now()
    with pytest.raises(notices.NoticePeriodTooShort) as refused:
        send(tenant_a, kind=NoticeKind.FUNCTION_CHANGE, effective_at=now + timedelta(days=8))
    assert refused.value.code == "notice_period_too_short"
    assert not Notice.objects.filter(tenant=tenant_a, kind=NoticeKind.FUNCTION_CHANGE).exists()
    ok = send(
        tenant_a,
        kind=NoticeKind.FUNCTION_CHANGE,
        effective_at=notices.add_calendar_months(now, 1) + timedelta(minutes=1),
    )
    assert ok.pk


def test_function_change_period_setting_never_goes_below_seven_days_R_DLV_7(tenant_a, settings):
    settings.NOTICES_FUNCTION_CHANGE_DAYS = 2
    with pytest.raises(notices.NoticePeriodTooShort):
        send(tenant_a, kind=NoticeKind.FUNCTION_CHANGE, effective_at=timezone.now() + timedelta(days=3))
    assert send(tenant_a, kind=NoticeKind.FUNCTION_CHANGE, effective_at=timezone.now() + timedelta(days=7, minutes=1))


@pytest.mark.parametrize("kind", [NoticeKind.PRICE_CHANGE, NoticeKind.TERMS_CHANGE])
def test_price_and_terms_changes_need_seven_days_R_BIL_4_R_TEN_7(tenant_a, kind):
    with pytest.raises(notices.NoticePeriodTooShort):
        send(tenant_a, kind=kind, effective_at=timezone.now() + timedelta(days=6, hours=23))
    with pytest.raises(notices.NoticePeriodTooShort) as missing:
        send(tenant_a, kind=kind)
    assert missing.value.code == "effective_at_required"
    assert send(tenant_a, kind=kind, effective_at=timezone.now() + timedelta(days=7, minutes=1))


def test_calendar_month_clamps_to_the_month_end():
    from datetime import UTC, datetime

    assert notices.add_calendar_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert notices.add_calendar_months(datetime(2026, 12, 15, tzinfo=UTC), 1) == datetime(2027, 1, 15, tzinfo=UTC)


# --- the API inbox -------------------------------------------------------------------------


def test_inbox_lists_only_the_callers_notices_R_DLV_7(client_a, tenant_a, tenant_b):
    mine = send(tenant_a)
    theirs = send(tenant_b)
    response = client_a.get("/api/v1/notices")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert mine.pk in ids
    assert theirs.pk not in ids
    row = next(r for r in response.json()["results"] if r["id"] == mine.pk)
    assert row["subject_zh"] == "投诉通知"
    assert row["body_en"] == TEXT["body_en"]
    assert {d["channel"] for d in row["deliveries"]} == {"inbox", "email", "webhook"}
    assert client_a.get(f"/api/v1/notices/{theirs.pk}").status_code == 404


def test_acknowledge_records_time_and_key_and_filters_the_inbox_R_DLV_7(client_a, tenant_a):
    notice = send(tenant_a)
    response = client_a.post(f"/api/v1/notices/{notice.pk}/acknowledge")
    assert response.status_code == 200
    assert response.json()["acknowledged_at"]
    notice.refresh_from_db()
    assert notice.acknowledged_by_label == f"key:{client_a.key_id}"
    open_ids = [r["id"] for r in client_a.get("/api/v1/notices?unacknowledged=true").json()["results"]]
    assert notice.pk not in open_ids
    first = notice.acknowledged_at
    client_a.post(f"/api/v1/notices/{notice.pk}/acknowledge")
    notice.refresh_from_db()
    assert notice.acknowledged_at == first


def test_acknowledging_another_tenants_notice_is_not_found_and_changes_nothing(client_a, tenant_b):
    theirs = send(tenant_b)
    response = client_a.post(f"/api/v1/notices/{theirs.pk}/acknowledge")
    assert response.status_code == 404
    assert response.json()["code"] == "notice_not_found"
    theirs.refresh_from_db()
    assert theirs.acknowledged_at is None


def test_inbox_refuses_an_unknown_kind_filter(client_a):
    response = client_a.get("/api/v1/notices?kind=nonsense")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
