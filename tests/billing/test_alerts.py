"""R-BIL-6: crossing the low-balance threshold notifies once (e-mail + signed webhook, after
commit) until a top-up brings the balance back to the threshold."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone

from billing import actors, services
from billing.models import Account
from smsplatform import webhooks
from smsplatform.models import WebhookDelivery, WebhookState

from .conftest import DELIVERY, FINANCE, fund, key, lines


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    answers: list = []  # status codes to answer, in order; then 204

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(self.answers.pop(0) if self.answers else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    _Receiver.received = []
    _Receiver.answers = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Receiver.received
    server.shutdown()
    server.server_close()


def spend(tenant, n):
    services.hold_messages(tenant=tenant, lines=lines(n), idempotency_key=key(), actor=DELIVERY)


def test_r_bil_6_crossing_the_threshold_enqueues_one_alert_after_commit(tenant, django_capture_on_commit_callbacks):
    fund(tenant, 1_000_000)
    services.set_low_balance_alert(tenant=tenant, threshold=900_000, actor=FINANCE)
    with django_capture_on_commit_callbacks() as callbacks:
        spend(tenant, 2)  # 930_000: still above
    assert callbacks == []
    with django_capture_on_commit_callbacks() as callbacks:
        spend(tenant, 1)  # 895_000: crossed
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        spend(tenant, 1)  # still below: no second alert
    assert callbacks == []
    assert Account.objects.get(tenant=tenant).low_balance_alerted


def test_r_bil_6_topup_above_threshold_rearms_the_alert(tenant, django_capture_on_commit_callbacks):
    fund(tenant, 1_000_000)
    services.set_low_balance_alert(tenant=tenant, threshold=990_000, actor=FINANCE)
    spend(tenant, 1)
    fund(tenant, 100_000)  # 1_065_000 >= threshold: re-armed
    assert not Account.objects.get(tenant=tenant).low_balance_alerted
    with django_capture_on_commit_callbacks() as callbacks:
        spend(tenant, 3)  # 960_000: crossed again
    assert len(callbacks) == 1


def test_r_bil_6_alert_sends_mail_and_signed_webhook(tenant, webhook_server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    server, received = webhook_server
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/billing"
    account = services.set_low_balance_alert(tenant=tenant, threshold=500_000, actor=FINANCE, webhook_url=url)
    actors.send_low_balance_alert_job.fn(account.pk, 400_000, 500_000)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [tenant.contact_email]
    assert "CNY 0.400000" in mail.outbox[0].body
    headers, body = received[0]
    assert json.loads(body) == {
        "event": "billing.low_balance",
        "tenant": tenant.schema_name,
        "balance": 400_000,
        "threshold": 500_000,
        "currency": "CNY",
    }
    expected = webhooks.sign(
        secret=services.webhook_secret_of(account), timestamp=headers["X-Billing-Timestamp"], body=body
    )
    assert headers["X-Billing-Signature"] == expected


def test_r_bil_6_alert_reaches_mail_through_a_real_worker_after_commit(live_db, settings):
    """End to end: the crossing commits, on_commit enqueues on the Redis broker, a dramatiq worker
    runs the actor, the mail goes out."""
    import dramatiq
    from dramatiq import Worker

    from ..conftest import create_tenant

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    broker = dramatiq.get_broker()
    broker.flush("billing")
    tenant = create_tenant("Alert Worker Co.")
    fund(tenant, 1_000_000)
    services.set_low_balance_alert(tenant=tenant, threshold=980_000, actor=FINANCE)
    spend(tenant, 1)  # 965_000: crossed, committed → enqueued
    worker = Worker(broker, queues={"billing"}, worker_threads=1, worker_timeout=100)
    db_settings = connections.settings["default"]
    max_age = db_settings["CONN_MAX_AGE"]
    db_settings["CONN_MAX_AGE"] = 0  # the worker thread closes its connection after each job
    worker.start()
    try:
        broker.join("billing", timeout=20_000)
        worker.join()
    finally:
        worker.stop()
        db_settings["CONN_MAX_AGE"] = max_age
    assert [m.to for m in mail.outbox] == [[tenant.contact_email]]
    assert "CNY 0.965000" in mail.outbox[0].body


def test_r_bil_6_webhook_must_be_http(tenant):
    with pytest.raises(services.BillingError):
        services.set_low_balance_alert(tenant=tenant, threshold=1, actor=FINANCE, webhook_url="file:///etc/passwd")


def test_r_bil_6_unreachable_webhook_is_retried_without_sending_the_email_again(tenant, settings):
    """R-BIL-6: a webhook that cannot be reached is recorded for a retry with back-off; the alert
    job itself succeeds, so the queue never re-runs it and the e-mail goes out once."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    account = services.set_low_balance_alert(
        tenant=tenant, threshold=500_000, actor=FINANCE, webhook_url="http://127.0.0.1:9/closed"
    )
    actors.send_low_balance_alert_job.fn(account.pk, 400_000, 500_000)  # must not raise (a raise = a re-run)
    assert len(mail.outbox) == 1
    item = WebhookDelivery.objects.get(tenant=tenant, event="billing.low_balance")
    assert (item.state, item.attempts) == (WebhookState.PENDING, 1)
    assert item.next_attempt_at > timezone.now()


def test_r_bil_6_failed_webhook_is_retried_on_its_own_and_recorded(tenant, webhook_server, settings):
    """R-BIL-6: a non-2xx answer is retried by the webhook's own job (signed again), the e-mail is
    not re-sent, and the record shows the outcome."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    server, received = webhook_server
    _Receiver.answers = [503]
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/billing"
    account = services.set_low_balance_alert(tenant=tenant, threshold=500_000, actor=FINANCE, webhook_url=url)
    actors.send_low_balance_alert_job.fn(account.pk, 400_000, 500_000)
    item = WebhookDelivery.objects.get(tenant=tenant, event="billing.low_balance")
    assert (item.state, item.last_status_code) == (WebhookState.PENDING, 503)
    webhooks.deliver_webhook(webhook_id=item.pk)  # the retry job, once the back-off is over
    item.refresh_from_db()
    assert (item.state, item.attempts) == (WebhookState.DELIVERED, 2)
    headers, body = received[1]
    expected = webhooks.sign(
        secret=services.webhook_secret_of(account), timestamp=headers["X-Billing-Timestamp"], body=body
    )
    assert headers["X-Billing-Signature"] == expected
    assert len(mail.outbox) == 1


def test_r_bil_6_a_webhook_whose_retry_job_was_lost_is_found_by_the_sweep(tenant, settings):
    """R-BIL-6: the periodic retry_due_webhooks_job finds pending webhooks past their next try."""
    from smsplatform.crypto import encrypt_secret

    item = webhooks.record_webhook(
        tenant=tenant,
        url="http://127.0.0.1:9/closed",
        event="billing.low_balance",
        body="{}",
        scheme="billing",
        secret_token=encrypt_secret("k"),
    )
    assert item.pk not in webhooks.due_webhooks()  # its job is still on its way
    later = timezone.now() + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3 + 1)
    assert item.pk in webhooks.due_webhooks(now=later)
