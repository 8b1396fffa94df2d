"""Headless Chromium: an auditor exports a filtered CSV in the admin and checks its rows; the
dashboard renders its charts (R-AUD-2, R-BIL-7).

Runs the WSGI app in a thread (ThreadedWSGIServer) under `live_db` with a fresh tenant and user —
pytest-django's live_server would flush the shared test tenants. Screenshots go to
$AUDIT_SCREENSHOT_DIR (docs/img for the auditor's guide) or the test's tmp dir.
"""

import csv
import os
import secrets
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from delivery.models import ExportJob
from tenants.models import OperationRecord

from ..conftest import create_tenant
from .conftest import make_auditor, make_message

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def test_dashboard_template_loads_chart_library_from_static(db):
    """(A `db` test: pytest-django creates the test database only for sessions that have one.)"""
    from django.contrib.staticfiles import finders

    assert finders.find("vendor/chartjs/chart.umd.min.js")


@pytest.fixture
def live_app(live_db, settings, tmp_path):
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    settings.MEDIA_ROOT = tmp_path / "media"
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(StaticFilesHandler(get_wsgi_application()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    connection.close()


@pytest.fixture
def browser(monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip("apt-get install -y chromium")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM checks are
    # plain synchronous code all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
        # While Playwright's loop runs, Django keeps a separate connection for this context:
        # close it, or it outlives the test database.
        from django.db import connections

        connections.close_all()


def shots(tmp_path) -> Path:
    path = Path(os.environ.get("AUDIT_SCREENSHOT_DIR") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_auditor_exports_a_filtered_csv_and_sees_the_dashboard_R_AUD_2(live_app, browser, tmp_path):
    tag = secrets.token_hex(3)
    tenant = create_tenant(f"Browser Audit {tag} Co.")
    wanted = [
        make_message(
            tenant,
            signature=f"Brw{tag}",
            status="delivered",
            recipient=f"+861390000{n:04d}",
            channel_id=1 + n % 2,
            age=timedelta(days=n % 5, hours=n),
        )
        for n in range(6)
    ]
    make_message(tenant, signature=f"Brw{tag}", status="undelivered", recipient="+8613900009998", channel_id=2)
    make_message(tenant, signature="Elsewhere", status="delivered", recipient="+8613900009999", channel_id=3)
    for n in range(12):  # some volume for the charts
        make_message(
            tenant,
            status=("delivered", "delivered", "undelivered", "expired")[n % 4],
            channel_id=1 + n % 3,
            latency=2 + n,
            age=timedelta(days=n % 7, hours=n),
            message_type=("verification", "marketing")[n % 2],
        )
    password = f"pw-{secrets.token_hex(6)}"
    auditor = make_auditor(f"aud{tag}", password=password)
    out = shots(tmp_path)

    page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page.goto(f"{live_app}/admin/login/?next=/admin/")
    page.fill("#id_username", auditor.username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_app}/admin/")

    page.goto(f"{live_app}/admin/delivery/exportjob/add/")
    page.select_option("select[name=tenants]", value=str(tenant.pk))
    page.select_option("select[name=statuses]", value="delivered")
    page.fill("input[name=signature]", f"Brw{tag}")
    page.select_option("select[name=format]", value="csv")
    page.fill("textarea[name=reason]", "Public security bureau request 2026-117")
    page.screenshot(path=str(out / "export-form.png"), full_page=True)
    page.click("#export-submit")
    page.wait_for_url(f"{live_app}/admin/delivery/exportjob/")
    page.screenshot(path=str(out / "export-list.png"), full_page=True)

    with page.expect_download() as download:
        page.click("a.export-download >> nth=0")
    with open(download.value.path(), encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(r["message_id"]) for r in rows) == sorted(m.pk for m in wanted)
    assert {r["status"] for r in rows} == {"delivered"}
    assert all(r["recipient"].startswith("'+86139****") for r in rows)
    job = ExportJob.objects.filter(requested_by=auditor).latest("id")
    assert job.rows_written == 6
    assert job.filters["signature"] == f"Brw{tag}"
    assert OperationRecord.objects.filter(action="export.send_log", object_id=str(job.pk)).exists()

    page.goto(f"{live_app}/admin/tenants/operationrecord/?q=export")
    page.screenshot(path=str(out / "operation-records.png"), full_page=True)

    page.goto(f"{live_app}/admin/dashboard/")
    page.wait_for_selector("body[data-charts-ready='1']", timeout=10_000)
    assert page.locator("#chart-volume").bounding_box()["height"] > 50
    page.screenshot(path=str(out / "dashboard.png"), full_page=True)
    assert (out / "dashboard.png").stat().st_size > 10_000
