"""R-BIL-7: statistics by day/hour/type/status/channel/carrier/country, delivery rate, latency percentiles."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.stats import InvalidStatsQuery, platform_stats, tenant_stats

from .conftest import make_message


@pytest.fixture
def fresh(make_tenant):
    """A tenant with a known send log: 4 delivered (latency 1, 2, 3, 10 s), 1 undelivered, 1 rejected."""
    tenant = make_tenant("Stats Co.")
    for latency in (1, 2, 3, 10):
        make_message(tenant, status="delivered", latency=latency, channel_id=7, carrier="china_mobile")
    make_message(
        tenant, status="undelivered", latency=4, channel_id=8, carrier="china_unicom", message_type="marketing"
    )
    make_message(
        tenant, status="rejected", channel_id=None, carrier="china_unicom", country="US", message_type="international"
    )
    return tenant


def test_totals_count_messages_and_delivery_rate_R_BIL_7(fresh):
    totals = tenant_stats(tenant=fresh)["totals"]
    assert totals["total"] == 6
    assert totals["submitted"] == 5
    assert totals["delivered"] == 4
    assert totals["delivery_rate"] == 0.8
    assert totals["failed"] == 2
    assert totals["segments"] == 6
    assert totals["amount"] == 6 * 35_000


def test_receipt_latency_percentiles_use_percentile_cont_R_BIL_7(fresh):
    totals = tenant_stats(tenant=fresh)["totals"]
    # latencies 1, 2, 3, 4, 10 → continuous percentiles
    assert totals["latency_p50"] == 3.0
    assert totals["latency_p90"] == pytest.approx(7.6)
    assert totals["latency_p99"] == pytest.approx(9.76)


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("status", {"delivered": 4, "undelivered": 1, "rejected": 1}),
        ("channel", {7: 4, 8: 1, None: 1}),
        ("carrier", {"china_mobile": 4, "china_unicom": 2}),
        ("country", {"CN": 5, "US": 1}),
        ("type", {"verification": 4, "marketing": 1, "international": 1}),
    ],
)
def test_counts_by_dimension_R_BIL_7(fresh, group_by, expected):
    groups = tenant_stats(tenant=fresh, group_by=group_by)["groups"]
    assert {g["key"]: g["total"] for g in groups} == expected


def test_counts_by_day_and_hour_R_BIL_7(make_tenant):
    tenant = make_tenant("Days Co.")
    make_message(tenant, age=timedelta(days=2))
    make_message(tenant, age=timedelta(days=2))
    make_message(tenant)
    days = tenant_stats(tenant=tenant, group_by="day")["groups"]
    assert [g["total"] for g in days] == [2, 1]
    hours = tenant_stats(tenant=tenant, group_by="hour")["groups"]
    assert sum(g["total"] for g in hours) == 3
    assert len(hours) == 2


def test_delivery_rate_per_channel_R_BIL_7(fresh):
    by_channel = {g["key"]: g for g in tenant_stats(tenant=fresh, group_by="channel")["groups"]}
    assert by_channel[7]["delivery_rate"] == 1.0
    assert by_channel[8]["delivery_rate"] == 0.0
    assert by_channel[None]["delivery_rate"] is None


def test_platform_wide_walks_every_tenant_schema_R_BIL_7(fresh, make_tenant):
    other = make_tenant("Other Stats Co.")
    make_message(other, status="delivered", latency=100)
    data = platform_stats(group_by="tenant", tenant_ids=[fresh.pk, other.pk])
    assert {g["key"]: g["total"] for g in data["groups"]} == {fresh.schema_name: 6, other.schema_name: 1}
    assert data["totals"]["total"] == 7
    assert data["totals"]["latency_p99"] > 90


def test_range_is_bounded(fresh):
    now = timezone.now()
    with pytest.raises(InvalidStatsQuery):
        tenant_stats(tenant=fresh, date_from=now - timedelta(days=400), date_to=now)
    with pytest.raises(InvalidStatsQuery):
        tenant_stats(tenant=fresh, group_by="nope")


def test_stats_api_returns_the_callers_own_figures_R_BIL_7(client_a, tenant_a, client_b):
    make_message(tenant_a, status="delivered", signature="ApiStats")
    mine = client_a.get("/api/v1/stats/summary", {"group_by": "status"})
    assert mine.status_code == 200, mine.content
    body = mine.json()
    assert body["totals"]["total"] >= 1
    assert body["group_by"] == "status"
    assert "from" in body
    theirs = client_b.get("/api/v1/stats/summary").json()
    assert theirs["totals"]["total"] == 0


def test_stats_api_refuses_an_unknown_grouping(client_a):
    response = client_a.get("/api/v1/stats/summary", {"group_by": "tenant"})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_stats_api_accepts_an_explicit_range(client_a, tenant_a):
    make_message(tenant_a, age=timedelta(days=5))
    now = timezone.now()
    response = client_a.get(
        "/api/v1/stats/summary",
        {"from": (now - timedelta(days=6)).isoformat(), "to": (now - timedelta(days=4)).isoformat(), "group_by": "day"},
    )
    assert response.status_code == 200
    assert response.json()["totals"]["total"] == 1
