"""The auditor's console (issue 14 item 6): a documented way to create one, date presets, an empty
export that says why, the job page with filters as text and a download link, and a readable trail
CSV (BOM, Chinese as written, zoned times) (R-AUD-2, R-AUD-3)."""

import csv
import io
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from delivery.models import ExportJob
from tenants import services
from tenants.models import OperationRecord

from .conftest import make_auditor, make_message


def test_create_staff_user_makes_an_auditor_who_can_log_in_R_AUD_3(db):
    out = io.StringIO()
    name = f"aud-{secrets.token_hex(3)}"
    call_command("create_staff_user", name, "--role", "auditor", "--email", "a@example.com", stdout=out)
    password = out.getvalue().split("Password (shown once): ")[1].split()[0]
    user = User.objects.get(username=name)
    assert user.is_staff
    assert not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["auditor"]
    assert not user.has_perm("delivery.view_full_number")
    assert user.has_perm("delivery.export_send_log")
    assert user.check_password(password)
    assert OperationRecord.objects.filter(action="staff.create_user", after__username=name).exists()


def test_create_staff_user_grants_full_numbers_only_when_asked_and_refuses_bad_input(db):
    name = f"aud-{secrets.token_hex(3)}"
    call_command("create_staff_user", name, "--role", "auditor", "--full-numbers", stdout=io.StringIO())
    assert User.objects.get(username=name).has_perm("delivery.view_full_number")
    with pytest.raises(CommandError, match="exists"):
        call_command("create_staff_user", name, "--role", "auditor", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("create_staff_user", "x", "--role", "superhero", stdout=io.StringIO())


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_last_month_preset_fills_the_dates_in_the_platform_zone_R_AUD_2(db, tenant_a, export_media):
    client = _login(make_auditor())
    response = client.post(
        "/admin/delivery/exportjob/add/",
        {"kind": "send_log", "tenants": [tenant_a.pk], "period": "last_month", "format": "csv", "reason": "r"},
    )
    assert response.status_code == 302
    job = ExportJob.objects.latest("id")
    today = timezone.localdate()
    last = today.replace(day=1) - timedelta(days=1)
    assert job.filters["date_from"].startswith(last.replace(day=1).isoformat())
    page = client.get(f"/admin/delivery/exportjob/{job.pk}/change/").content.decode()
    assert f"from {last.replace(day=1):%Y-%m-%d} to {last:%Y-%m-%d} inclusive (Asia/Shanghai)" in page
    assert "&quot;date_to&quot;" not in page  # not raw JSON


def test_an_empty_export_says_why_and_its_page_has_the_download_link_R_AUD_2(db, tenant_a, export_media):
    make_message(tenant_a, signature="Present", recipient="+8613866660001")
    client = _login(make_auditor())
    response = client.post(
        "/admin/delivery/exportjob/add/",
        {"kind": "send_log", "tenants": [tenant_a.pk], "signature": "Absent", "format": "csv", "reason": "r"},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "is empty" in text
    assert "No row matched" in text
    assert "signature Absent" in text
    assert "Their send log holds messages from" in text
    job = ExportJob.objects.latest("id")
    page = client.get(f"/admin/delivery/exportjob/{job.pk}/change/").content.decode()
    assert f"/admin/delivery/exportjob/{job.pk}/download/" in page
    assert "No row matched" in page


def test_trail_csv_has_a_bom_readable_chinese_and_zoned_times_R_AUD_3(db, auditor):
    services.record_operation(
        actor=services.Actor.system("t"), action="trail.cn", reason="跑分", after={"note": "跑分平台"}
    )
    response = _login(auditor).post(
        "/admin/tenants/operationrecord/export/?action=trail.cn",
        {
            "format": "0",
            "resource": "0",
            "operationrecordresource_created_at": "on",
            "operationrecordresource_action": "on",
            "operationrecordresource_after": "on",
        },
    )
    raw = response.content
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    assert "跑分平台" in text
    assert "\\u8dd1" not in text
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["created_at"].endswith("+08:00")
