"""Headless Chromium through the operators' console and the auditor's export (issue 14): the
landing counts and their links, message search and detail, the tenant page, channels live, and
an export with a date preset downloaded from its job page. Screenshots go to
$AUDIT_SCREENSHOT_DIR (docs/img for docs/operations.md and docs/audit.md) or the test's tmp dir.
R-AUD-1, R-AUD-2, R-CMP-7, R-DLV-3."""

import csv
import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from compliance.models import Complaint
from delivery import channel_live
from delivery.models import Channel
from delivery.smpp import pool
from smsplatform import crypto
from smsplatform.shared_redis import shared_redis
from tests.delivery.conftest import PASSWORD, SYSTEM_ID, smsc, smsc_factory  # noqa: F401 - fixtures

from ..conftest import create_tenant
from .conftest import make_auditor, make_message
from .test_browser import browser, live_app, shots  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def login(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def test_operator_works_through_the_console_R_AUD_1_R_CMP_7_R_DLV_3(live_app, browser, smsc, tmp_path):  # noqa: F811
    tag = secrets.token_hex(3)
    tenant = create_tenant(f"Console {tag} Trading Co.")
    number = f"+86139{secrets.randbelow(10**8):08d}"
    target = make_message(tenant, recipient=number, parts=2, params={"code": "246810"}, client_ref=f"order-{tag}")
    for n in range(5):
        make_message(tenant, status=("delivered", "undelivered")[n % 2], age=timedelta(hours=n + 1))
    Complaint.objects.create(
        tenant=tenant,
        source="12321",
        number="+8613800001234",
        text="unsolicited",
        answer_due_at=timezone.now() - timedelta(hours=2),
    )
    channel = Channel.objects.create(
        name=f"CMCC-{tag}",
        host="127.0.0.1",
        port=smsc.port,
        system_id=SYSTEM_ID,
        password=crypto.encrypt_secret(PASSWORD),
        tps_limit=100,
        bind_count=2,
    )
    Channel.objects.create(
        name=f"CUCC-{tag}",
        host="10.255.255.1",
        system_id="x",
        password="x",
        down_until=timezone.now() + timedelta(minutes=3),
        last_error="connect_failed: timed out",
    )
    client = shared_redis()  # ids restart with each test database; Redis keeps them
    for key in client.scan_iter(f"*channel_live:{channel.pk}:*"):
        client.delete(key)
    holder = pool.SessionRegistry.acquire(channel)
    pool.SessionRegistry.limiter_for(channel)
    channel_live.publish_figures(force=True)
    password = f"pw-{secrets.token_hex(6)}"
    user = User.objects.create_user(f"op{tag}", password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    out = shots(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        login(page, live_app, user.username, password)

        # landing: today's work, each count linking to its queue
        complaints = page.locator("#work-complaints .n")
        count = int(complaints.inner_text())
        assert count >= 1
        page.screenshot(path=str(out / "console-landing.png"), full_page=True)
        page.click("#work-complaints")
        page.wait_for_url(re.compile(r"answer_due_at__lt="))
        assert page.locator("#result_list tbody tr").count() == count

        # find a message by its recipient; numbers stay masked for this operator
        page.goto(f"{live_app}/admin/")
        page.click("#work-messages")
        page.fill("#id_q", number[3:])
        page.click("#message-search")
        page.wait_for_selector("tr.message-row")
        assert page.locator("tr.message-row").count() == 1
        assert number not in page.content()
        assert f"{number[:6]}****{number[-4:]}" in page.content()
        page.screenshot(path=str(out / "message-search.png"), full_page=True)
        page.click("a.message-link")
        page.wait_for_selector("#message-history")
        assert page.locator("#message-parts tr").count() == 3  # header + 2 parts
        assert page.locator("#message-params").inner_text().count("246810") == 1
        page.screenshot(path=str(out / "message-detail.png"), full_page=True)

        # on to the tenant at a glance, and from there to its week of messages
        page.click("#message-tenant")
        page.wait_for_selector("#tenant-glance")
        assert "1 open (1 overdue)" in page.locator("#tenant-glance").inner_text()
        page.screenshot(path=str(out / "tenant-glance.png"), full_page=True)
        page.click("#tenant-glance >> text=last 7 days")
        page.wait_for_selector("tr.message-row")
        assert page.locator("tr.message-row").count() == 6
        assert target.client_ref in page.content()

        # channels live
        page.goto(f"{live_app}/admin/delivery/channel/")
        rows = page.locator("#result_list tbody tr")
        text = rows.filter(has_text=f"CMCC-{tag}").inner_text()
        assert "1 / 2" in text
        assert "100/s" in text
        assert "down until" in rows.filter(has_text=f"CUCC-{tag}").inner_text()
        # at 1366 px the filters sit above the table: no column hides under them
        assert page.locator("#changelist-filter").bounding_box()["y"] < page.locator("#result_list").bounding_box()["y"]
        page.screenshot(path=str(out / "channels-live.png"), full_page=True)
    finally:
        pool.SessionRegistry.discard(holder)


def test_auditor_exports_last_7_days_and_downloads_from_the_job_page_R_AUD_2(live_app, browser, tmp_path):  # noqa: F811
    tag = secrets.token_hex(3)
    tenant = create_tenant(f"Preset Audit {tag} Co.")
    wanted = [make_message(tenant, signature=f"Pre{tag}", age=timedelta(days=n)) for n in range(3)]
    make_message(tenant, signature=f"Pre{tag}", age=timedelta(days=20))  # outside the period
    password = f"pw-{secrets.token_hex(6)}"
    auditor = make_auditor(f"aud{tag}", password=password)
    out = shots(tmp_path)

    page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    login(page, live_app, auditor.username, password)
    page.goto(f"{live_app}/admin/delivery/exportjob/add/")
    page.select_option("select[name=tenants]", value=str(tenant.pk))
    page.select_option("select[name=period]", value="last_7_days")
    page.fill("input[name=signature]", f"Pre{tag}")
    page.fill("textarea[name=reason]", "Court order 2026-88")
    page.click("#export-submit")
    page.wait_for_url(f"{live_app}/admin/delivery/exportjob/")
    page.click("#result_list tbody tr >> nth=0 >> th a")
    page.wait_for_selector("a.export-download")
    body = page.locator("#content").inner_text()
    assert "inclusive (Asia/Shanghai)" in body
    assert f"signature Pre{tag}" in body
    assert "3 rows" in body
    page.screenshot(path=str(out / "export-job.png"), full_page=True)
    with page.expect_download() as download:
        page.click("a.export-download")
    with open(download.value.path(), encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["message_id"]) for r in rows) == sorted(m.pk for m in wanted)
