"""Send answers a customer developer can act on (issue 14 item 8, R-DLV-1): a batch's refused
recipient carries the same code and message a single send gives; "no reason" is null everywhere;
times come back in one zone."""

from .conftest import make_sendable


def test_batch_refusals_say_why_like_a_single_send_R_DLV_1(client_a, tenant_a):
    template = make_sendable(tenant_a)
    single = client_a.post(
        "/api/v1/messages",
        {"to": "13800138001", "signature": "DemoShop", "template": template, "params": {"code": "12"}},
        format="json",
    )
    assert single.status_code == 422
    batch = client_a.post(
        "/api/v1/batches",
        {
            "signature": "DemoShop",
            "template": template,
            "params": {"code": "123456"},
            "recipients": ["13800138002", {"to": "13800138003", "params": {"code": "12"}}],
        },
        format="json",
    )
    assert batch.status_code == 202
    ok, refused = batch.json()["messages"]
    assert (refused["reason"], refused["message"]) == (single.json()["code"], single.json()["message"])
    assert "code" in refused["message"]  # names the variable
    assert ok["reason"] is None
    assert ok["message"] is None


def test_no_reason_is_null_in_reads_as_in_send_answers(client_a, tenant_a):
    template = make_sendable(tenant_a)
    sent = client_a.post(
        "/api/v1/messages",
        {"to": "13800138004", "signature": "DemoShop", "template": template, "params": {"code": "123456"}},
        format="json",
    ).json()
    assert sent["reason"] is None
    read = client_a.get(f"/api/v1/messages/{sent['id']}").json()
    assert read["reason"] is None
    assert read["error_code"] is None
    listed = client_a.get("/api/v1/messages").json()["results"]
    assert all(m["reason"] != "" for m in listed)


def test_scheduled_time_is_answered_in_the_zone_the_reads_use(client_a, tenant_a):
    from datetime import UTC, datetime, timedelta

    template = make_sendable(tenant_a)
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    sent = client_a.post(
        "/api/v1/messages",
        {
            "to": "13800138005",
            "signature": "DemoShop",
            "template": template,
            "params": {"code": "123456"},
            "send_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        format="json",
    ).json()
    assert sent["send_at"] == (at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    assert client_a.get(f"/api/v1/messages/{sent['id']}").json()["send_at"] == sent["send_at"]
