"""A tenant's admin page at a glance (issue 14 item 3): balance and held in the account currency,
packages, volume 7/30 days, signatures and template versions by state, complaints, violations,
keys, each linking to the filtered list (R-BIL-1/3, R-CMP-1/2/7, R-TEN-2)."""

import re
import secrets
from datetime import timedelta
from html import unescape

from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from billing.services import topup
from compliance.models import Complaint, Signature, VolumeCounter
from tests.conftest import SYSTEM


def login(role: str | None) -> Client:
    name = f"{role or 'root'}-{secrets.token_hex(3)}"
    if role is None:
        user = User.objects.create_superuser(name, "r@example.com", "pw-glance-1")
    else:
        user = User.objects.create_user(name, password="pw-glance-1", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def glance_links(html: str) -> dict[str, str]:
    block = html[html.index('id="tenant-glance"') :]
    block = block[: block.index("</table>")]
    return {
        unescape(text).strip(): unescape(href) for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', block)
    }


def test_tenant_page_shows_money_volume_filings_and_links_R_BIL_1_R_CMP_1(db, make_tenant):
    tenant = make_tenant(f"Glance {secrets.token_hex(3)} Co.")
    topup(tenant=tenant, amount=12_345_000, actor=SYSTEM, idempotency_key=f"g-{secrets.token_hex(4)}")
    Signature.objects.create(tenant=tenant, text="GlanceA", status="pending")
    Signature.objects.create(tenant=tenant, text="GlanceB", status="approved")
    Complaint.objects.create(
        tenant=tenant,
        source="carrier",
        number="+8613800002222",
        text="x",
        answer_due_at=timezone.now() - timedelta(hours=1),
    )
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    VolumeCounter.objects.create(tenant=tenant, granularity="day", bucket_start=today, count=40)
    VolumeCounter.objects.create(tenant=tenant, granularity="day", bucket_start=today - timedelta(days=10), count=2)
    root = login(None)
    html = root.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert "CNY 12.345000 spendable" in html
    assert "1 open (1 overdue)" in html
    links = glance_links(html)
    assert links["40 last 7 days"].endswith(f"tenant={tenant.pk}&preset=7d")
    assert "42 last 30 days" in links
    for text in ("1 pending", "1 approved", "40 last 7 days"):
        response = root.get(links[text])
        assert response.status_code == 200, text
    pending = root.get(links["1 pending"])
    assert [s.text for s in pending.context["cl"].result_list] == ["GlanceA"]
    for text, url in links.items():
        assert root.get(url).status_code == 200, text


def test_tenant_page_links_only_where_the_role_may_go(db, make_tenant):
    tenant = make_tenant(f"Glance {secrets.token_hex(3)} Co.")
    html = login("reviewer").get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    links = glance_links(html)
    assert not any("/billing/" in url or "/apikey/" in url for url in links.values())
    assert 'id="tenant-glance"' in html


def test_signatures_and_template_versions_filter_by_tenant(db, make_tenant):
    a, b = make_tenant(f"SigA {secrets.token_hex(2)}"), make_tenant(f"SigB {secrets.token_hex(2)}")
    Signature.objects.create(tenant=a, text="OnlyA", status="pending")
    Signature.objects.create(tenant=b, text="OnlyB", status="pending")
    root = login(None)
    listed = root.get("/admin/compliance/signature/", {"tenant__id__exact": a.pk})
    assert [s.text for s in listed.context["cl"].result_list] == ["OnlyA"]
    assert root.get("/admin/compliance/templateversion/", {"template__tenant__id__exact": a.pk}).status_code == 200
