"""The admin landing page and the dashboard (issue 14 item 2): today's work as counts that link to
exactly the filtered queue, for the queues the user may open; names, not ids or schema names;
an out-of-range period is said, not silently replaced (R-BIL-7, R-CMP-1/2/3/7, R-BIL-6)."""

import re
import secrets
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from compliance.models import Complaint, Signature
from delivery.models import Channel
from tests.audit.conftest import make_message


def staff(role: str | None = None, *, superuser: bool = False) -> Client:
    name = f"{role or 'root'}-{secrets.token_hex(3)}"
    if superuser:
        user = User.objects.create_superuser(name, "r@example.com", "pw-land-1")
    else:
        user = User.objects.create_user(name, password="pw-land-1", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def card(html: str, key: str) -> tuple[int, str]:
    match = re.search(rf'id="work-{key}" href="([^"]+)"><span class="n">(\d+)</span>', html)
    assert match, f"no {key} card"
    return int(match.group(2)), unescape(match.group(1))


def changelist_ids(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return {obj.pk for obj in response.context["cl"].result_list}


def test_landing_counts_link_to_exactly_the_counted_queue_R_CMP_1_R_CMP_7(db, tenant_a):
    root = staff(superuser=True)
    Signature.objects.create(tenant=tenant_a, text=f"Land{secrets.token_hex(2)}", status="pending")
    Complaint.objects.create(
        tenant=tenant_a,
        source="carrier",
        number="+8613800001111",
        text="spam",
        answer_due_at=timezone.now() - timedelta(hours=1),
    )
    Complaint.objects.create(
        tenant=tenant_a,
        source="carrier",
        number="+8613800001112",
        text="fresh",
        answer_due_at=timezone.now() + timedelta(hours=70),
    )
    Channel.objects.create(
        name=f"down-{secrets.token_hex(3)}",
        host="h",
        system_id="s",
        password="x",
        down_until=timezone.now() + timedelta(minutes=5),
    )
    html = root.get("/admin/").content.decode()
    for key in ("signatures", "complaints", "channels_down", "templates", "rectifications", "low_balances"):
        count, url = card(html, key)
        assert len(changelist_ids(root, url)) == count, key
    assert (
        card(html, "complaints")[0]
        == Complaint.objects.filter(answer_due_at__lt=timezone.now()).exclude(status__in=["answered", "closed"]).count()
    )
    assert 'id="work-dashboard"' in html
    assert 'id="work-messages"' in html


def test_landing_counts_held_messages_across_tenants_R_CMP_3(db, tenant_a, tenant_b):
    root = staff(superuser=True)
    before = card(root.get("/admin/").content.decode(), "held")[0]
    make_message(tenant_a, status="held")
    make_message(tenant_b, status="held")
    count, url = card(root.get("/admin/").content.decode(), "held")
    assert count == before + 2
    assert root.get(url).status_code == 200


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        ("reviewer", {"signatures", "templates", "held"}, {"low_balances", "channels_down"}),
        ("finance", {"low_balances", "channels_down"}, {"held", "complaints"}),
        ("auditor", {"complaints"}, {"held", "channels_down"}),
    ],
)
def test_landing_shows_only_the_queues_a_role_may_open(db, role, shown, hidden):
    html = staff(role).get("/admin/").content.decode()
    for key in shown:
        assert f'id="work-{key}"' in html, key
    for key in hidden:
        assert f'id="work-{key}"' not in html, key


def test_dashboard_cards_link_like_the_landing_page_and_name_channels_and_tenants_R_BIL_7(db, tenant_a):
    client = staff("operator")
    channel = Channel.objects.create(name=f"CMCC-{secrets.token_hex(2)}", host="h", system_id="s", password="x")
    make_message(tenant_a, channel_id=channel.pk)
    make_message(tenant_a, channel_id=None, status="rejected")
    response = client.get("/admin/dashboard/", {"group_by": "tenant", "days": 7})
    html = response.content.decode()
    assert 'id="dash-complaints" href="' in html
    labels = [g["key"] for g in response.context["chart_data"]["by_channel"]]
    assert channel.name in labels
    assert "not routed" in labels
    assert not any(str(label).startswith("channel ") for label in labels)
    assert tenant_a.name in [g["key"] for g in response.context["breakdown"]["groups"]]
    assert tenant_a.schema_name not in [g["key"] for g in response.context["breakdown"]["groups"]]
    days = [g["key"] for g in response.context["chart_data"]["by_day"]]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in days)


def test_dashboard_takes_a_year_and_says_when_a_period_is_refused(db):
    client = staff("operator")
    year = client.get("/admin/dashboard/", {"days": 365})
    assert year.context["data"]["days"] == 365
    refused = client.get("/admin/dashboard/", {"days": 9999})
    assert refused.status_code == 200
    assert 'id="breakdown-errors"' in refused.content.decode()


def test_view_site_leads_to_the_api_reference(db, client):
    html = staff("operator").get("/admin/").content.decode()
    assert '<a href="/api/docs/">View site</a>' in html
    assert client.get("/api/docs/").status_code == 200
