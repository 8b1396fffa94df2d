"""Admin: auditors request exports, follow them, download them behind a permission check; dashboard."""

import csv
import io

from django.contrib.auth.models import User

from delivery.models import ErasureRequest, ExportJob
from tenants.models import OperationRecord

from .conftest import grant, make_auditor, make_message


def test_auditor_requests_a_filtered_csv_and_downloads_it_R_AUD_2(client, tenant_a, auditor, export_media):
    make_message(tenant_a, signature="AdminDl", recipient="+8613877770001")
    make_message(tenant_a, signature="AdminOther", recipient="+8613877770002")
    client.force_login(auditor)
    assert client.get("/admin/delivery/exportjob/add/").status_code == 200
    response = client.post(
        "/admin/delivery/exportjob/add/",
        {
            "kind": "send_log",
            "tenants": [tenant_a.pk],
            "signature": "AdminDl",
            "format": "csv",
            "reason": "police request 5",
        },
    )
    assert response.status_code == 302, response.content[:1500]
    job = ExportJob.objects.filter(requested_by=auditor).latest("id")
    listing = client.get("/admin/delivery/exportjob/")
    assert f"/admin/delivery/exportjob/{job.pk}/download/".encode() in listing.content
    download = client.get(f"/admin/delivery/exportjob/{job.pk}/download/")
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert [r["recipient"] for r in rows] == ["'+86138****0001"]
    assert OperationRecord.objects.filter(action="export.download", object_id=str(job.pk)).exists()


def test_another_user_cannot_download_someone_elses_export_R_AUD_2(client, tenant_a, auditor, export_media):
    from delivery.sendlog.jobs import request_export

    make_message(tenant_a, signature="Mine")
    job = request_export(kind="send_log", fmt="csv", user=auditor, filters={"signature": "Mine"})
    client.force_login(make_auditor())
    assert client.get(f"/admin/delivery/exportjob/{job.pk}/download/").status_code == 403


def test_unmasked_export_needs_view_full_number_to_download_R_AUD_2(client, tenant_a, full_auditor, export_media):
    from delivery.sendlog.jobs import request_export

    make_message(tenant_a, signature="Full")
    job = request_export(kind="send_log", fmt="csv", user=full_auditor, filters={"signature": "Full"})
    full_auditor.user_permissions.remove(*full_auditor.user_permissions.filter(codename="view_full_number"))
    client.force_login(User.objects.get(pk=full_auditor.pk))
    assert client.get(f"/admin/delivery/exportjob/{job.pk}/download/").status_code == 403


def test_export_files_are_not_public_static_files(client, tenant_a, auditor, export_media):
    from delivery.sendlog.jobs import request_export

    make_message(tenant_a, signature="Hidden")
    job = request_export(kind="send_log", fmt="csv", user=auditor, filters={"signature": "Hidden"})
    assert client.get(f"/media/{job.file_name}").status_code == 404
    assert client.get(f"/admin/delivery/exportjob/{job.pk}/download/").status_code == 302  # to the login


def test_progress_endpoint_reports_the_job(client, tenant_a, auditor, export_media):
    from delivery.sendlog.jobs import request_export

    make_message(tenant_a, signature="Prog")
    job = request_export(kind="send_log", fmt="csv", user=auditor, filters={"signature": "Prog"})
    client.force_login(auditor)
    body = client.get(f"/admin/delivery/exportjob/{job.pk}/progress/").json()
    assert body == {"id": job.pk, "state": "done", "rows_written": 1, "estimated_rows": 1, "percent": 100}


def test_auditor_has_no_write_permission_besides_export_R_AUD_2(auditor):
    from delivery.roles import ROLE_PERMISSIONS

    writes = [p for p in auditor.get_all_permissions() if p.split(".", 1)[1].startswith(("add_", "change_", "delete_"))]
    assert writes == []
    assert "delivery.export_send_log" in ROLE_PERMISSIONS["auditor"]


def test_operator_files_an_erasure_request_in_the_admin_R_AUD_4(client, operator_user, tenant_a):
    operator = grant(operator_user, "delivery.add_erasurerequest", "delivery.view_erasurerequest")
    client.force_login(operator)
    make_message(tenant_a, recipient="+8613877770009")
    response = client.post(
        "/admin/delivery/erasurerequest/add/",
        {"tenant": tenant_a.pk, "number": "+8613877770009", "reason": "letter"},
        follow=True,
    )
    assert response.status_code == 200
    erasure = ErasureRequest.objects.get(tenant=tenant_a, reason="letter")
    assert erasure.state == "waiting"
    assert b"wait until" in response.content


def test_dashboard_renders_with_local_chart_library_R_BIL_7(client, operator_user, tenant_a):
    make_message(tenant_a, status="delivered")
    client.force_login(operator_user)
    page = client.get("/admin/dashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert "cdn" not in html.lower()
    assert 'id="dashboard-data"' in html
    assert "Delivery rate per channel" in html


def test_dashboard_needs_a_staff_login(client, db):
    assert client.get("/admin/dashboard/").status_code == 302


def test_dashboard_breaks_down_one_tenant_by_dimension_R_BIL_7(client, operator_user, make_tenant):
    tenant = make_tenant("Breakdown Co.")
    make_message(tenant, carrier="china_telecom")
    make_message(tenant, carrier="china_telecom")
    make_message(tenant, carrier="china_unicom")
    client.force_login(operator_user)
    page = client.get("/admin/dashboard/", {"tenant": tenant.pk, "group_by": "carrier", "days": 7})
    assert {g["key"]: g["total"] for g in page.context["breakdown"]["groups"]} == {
        "china_telecom": 2,
        "china_unicom": 1,
    }
    assert "china_telecom" in page.content.decode()


def test_dashboard_is_a_url_of_the_platform_admin_site_not_a_patch_R_BIL_7():
    """Issue 19: PlatformAdminSite.get_urls adds the dashboard; nothing replaces admin.site.get_urls."""
    from django.contrib import admin
    from django.urls import reverse

    from smsplatform.admin_site import PlatformAdminSite

    assert isinstance(admin.site, PlatformAdminSite)
    assert "get_urls" not in vars(admin.site)
    assert reverse("admin:dashboard") == "/admin/dashboard/"
