"""GET /metrics (issue 16, R-DLV-8: faults are monitored and alerted): the series exist, move with
real traffic, are computed at scrape time where they need a query, and only the allowed scrapers
read them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import CallbackDelivery, MessageStatus, OutboxEntry

from ..delivery.flow.conftest import add_message, make_sendable
from ..delivery.flow.live import live_tenant, only_channel, statuses, wait_for

S = MessageStatus

SERIES = {
    "sms_messages_accepted_total",
    "sms_messages_refused_total",
    "sms_submit_parts_total",
    "sms_submit_messages_total",
    "sms_submit_rtt_seconds_count",
    "sms_smpp_binds",
    "sms_channel_rate_limit",
    "sms_receipts_total",
    "sms_receipt_lag_seconds_count",
    "sms_messages_final_total",
    "sms_ledger_entries_total",
    "sms_channel_up",
    "sms_channel_tps_limit",
    "sms_outbox_backlog",
    "sms_messages_backlog",
    "sms_callbacks",
    "sms_receipts_parked",
}


def test_r_dlv_8_series_exist_and_move_after_a_send(live_db, smsc_factory, worker, scrape):
    """R-DLV-8: a real send (API → worker → simulator → receipt) moves intake, submit, bind, rate,
    round-trip, receipt, lag and ledger series; a refused recipient moves the refusal series."""
    sim = smsc_factory(credentials={"demo": "demo"}, receipt_delay=0.05)
    channel = only_channel(port=sim.port, tps_limit=50)
    tenant, client = live_tenant("Metrics Co.")
    template = make_sendable(tenant, signature="MetricsShop")
    ch = str(channel.pk)
    before = scrape()
    worker()

    response = client.post(
        "/api/v1/batches",
        {
            "signature": "MetricsShop",
            "template": template,
            "params": {"code": "123456"},
            "recipients": ["13800138001", "not-a-number"],
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    sent = [m["id"] for m in response.json()["messages"] if m["status"] != S.REJECTED]
    wait_for(lambda: statuses(tenant, sent) == {sent[0]: S.DELIVERED}, timeout=30, what="delivered")
    after = wait_for(
        lambda: (
            (s := scrape()).value("sms_receipt_lag_seconds_count") > before.value("sms_receipt_lag_seconds_count") and s
        ),
        what="receipt lag observed",
    )

    assert SERIES <= after.names(), SERIES - after.names()

    def moved(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("sms_messages_accepted_total", message_type="verification") == 1
    assert moved("sms_messages_refused_total", reason="invalid_number") == 1
    assert moved("sms_submit_parts_total", channel=ch, outcome="ok") == 1
    assert moved("sms_submit_messages_total", channel=ch, result="submitted") == 1
    assert moved("sms_submit_rtt_seconds_count", system_id="demo") >= 1
    assert moved("sms_receipts_total", channel=ch, status=S.DELIVERED) == 1
    assert moved("sms_messages_final_total", status=S.DELIVERED) == 1
    assert moved("sms_receipt_lag_seconds_count") >= 1
    assert moved("sms_ledger_entries_total", kind="hold") >= 1
    assert moved("sms_ledger_entries_total", kind="capture") >= 1
    assert after.value("sms_smpp_binds", channel=ch) == 1
    assert after.value("sms_channel_rate_limit", channel=ch) == 50
    assert after.value("sms_channel_tps_limit", channel=ch) == 50
    assert after.value("sms_channel_up", channel=ch) == 1
    assert after.value("sms_channel_info", channel=ch, name=channel.name) == 1


def test_refused_whole_request_counts_its_messages_by_code(live_db, scrape):
    """R-BIL-1: a batch refused for too little balance counts every recipient under its code."""
    tenant, client = live_tenant("Metrics Poor Co.")
    template = make_sendable(tenant, signature="PoorShop", balance=0)
    before = scrape()
    response = client.post(
        "/api/v1/batches",
        {
            "signature": "PoorShop",
            "template": template,
            "params": {"code": "123456"},
            "recipients": ["13800138002", "13800138003", "13800138004"],
        },
        format="json",
    )
    assert response.status_code == 402, response.json()
    code = response.json()["code"]
    after = scrape()
    assert (
        after.value("sms_messages_refused_total", reason=code) - before.value("sms_messages_refused_total", reason=code)
        == 3
    )
    assert after.value("sms_messages_accepted_total") == before.value("sms_messages_accepted_total")


@pytest.mark.django_db
def test_backlog_gauges_are_counted_at_scrape_time(tenant_a, scrape):
    """Queued / unknown messages in tenant schemas, due outbox entries and pending callbacks are
    read when scraped (not kept by the hot path)."""
    before = scrape()
    queued = add_message(tenant_a, status=S.QUEUED)
    add_message(tenant_a, status=S.UNKNOWN_SUBMISSION)
    OutboxEntry.objects.create(
        tenant=tenant_a,
        request_id=queued.request_id,
        message_ids=[queued.pk],
        available_at=timezone.now() - timedelta(minutes=3),
    )
    CallbackDelivery.objects.create(
        tenant=tenant_a, url="http://127.0.0.1:9/x", event="status", body="{}", next_attempt_at=timezone.now()
    )
    after = scrape()
    assert (
        after.value("sms_messages_backlog", status="queued") - before.value("sms_messages_backlog", status="queued")
        == 1
    )
    assert (
        after.value("sms_messages_backlog", status="unknown_submission")
        - before.value("sms_messages_backlog", status="unknown_submission")
        == 1
    )
    assert after.value("sms_outbox_backlog") - before.value("sms_outbox_backlog") == 1
    assert after.value("sms_outbox_oldest_seconds") >= 170
    assert after.value("sms_callbacks", state="pending") - before.value("sms_callbacks", state="pending") == 1


@pytest.mark.django_db
def test_scrape_is_a_constant_number_of_queries(tenant_a, tenant_b, client, django_assert_max_num_queries):
    """Cheap at any tenant count: channels, the public counts, the active tenants and their
    message backlog (100 schemas a statement) are four statements here (each counted twice:
    django-tenants sets the search_path before every query in tests)."""
    for tenant in (tenant_a, tenant_b):
        m = add_message(tenant, status=S.QUEUED)
        OutboxEntry.objects.create(
            tenant=tenant, request_id=m.request_id, message_ids=[m.pk], available_at=timezone.now()
        )
    with django_assert_max_num_queries(8):
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


# --- access --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_token_is_required_when_configured(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    missing = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert missing.status_code == 401
    assert missing.json()["code"] == "metrics_token_required"
    wrong = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "metrics_token_invalid"
    ok = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert ok.status_code == 200
    assert "sms_channel_up" in ok.content.decode() or "sms_outbox_backlog" in ok.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("remote", "extra"),
    [
        ("203.0.113.9", {}),  # outside METRICS_ALLOWED_IPS
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}),  # loopback, but through a proxy
        ("not-an-ip", {}),
    ],
)
def test_without_token_only_direct_internal_scrapers_pass(client, remote, extra):
    response = client.get("/metrics", REMOTE_ADDR=remote, **extra)
    assert response.status_code == 403
    assert response.json()["code"] == "metrics_forbidden"
    assert response.json()["message"]


@pytest.mark.django_db
def test_allowed_networks_are_a_setting(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.2.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
def test_other_methods_get_a_json_405(client):
    response = client.post("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_backlog_is_counted_in_chunks_of_schemas(tenant_a, tenant_b, scrape, monkeypatch):
    """Hundreds of active tenants in one statement exhaust PostgreSQL's lock table (found with
    1,000 tenants): the backlog query takes SCHEMAS_PER_STATEMENT schemas at a time."""
    from smsplatform import metrics

    before = scrape()
    for tenant in (tenant_a, tenant_b):
        m = add_message(tenant, status=S.QUEUED)
        OutboxEntry.objects.create(
            tenant=tenant, request_id=m.request_id, message_ids=[m.pk], available_at=timezone.now()
        )
    monkeypatch.setattr(metrics, "SCHEMAS_PER_STATEMENT", 1)
    after = scrape()
    assert (
        after.value("sms_messages_backlog", status="queued") - before.value("sms_messages_backlog", status="queued")
        == 2
    )
