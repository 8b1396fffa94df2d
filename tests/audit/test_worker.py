"""R-AUD-2: a background export run by a real dramatiq worker on the Redis broker.

Uses `live_db` (committed data, the worker's own connections): fresh tenant and user, unique names.
"""

import csv
import secrets
import time

import dramatiq
import pytest
from django.contrib.auth.models import User
from django.db import connection
from django_tenants.utils import schema_context

from delivery.models import ExportJob, ExportState
from delivery.sendlog.export import SendLogFilters, message_queryset
from delivery.sendlog.jobs import request_export
from smsplatform.masking import mask_number

from ..conftest import create_tenant
from .conftest import make_auditor, make_message


def test_export_actor_is_on_the_audit_queue(db):
    """(Also makes pytest-django create the test database when this module runs alone: it only
    does so for sessions with a `db` test, and `live_db` alone is not one.)"""
    from delivery.actors import run_export_job

    assert run_export_job.queue_name == "audit"


@pytest.fixture
def worker(live_db, monkeypatch):
    import delivery.actors  # noqa: F401  (declares the audit queue on the broker)

    # Worker threads close their connections after each job, so none outlives the test database.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)

    broker = dramatiq.get_broker()
    broker.flush("audit")
    w = dramatiq.Worker(broker, queues={"audit"}, worker_threads=1, worker_timeout=100)
    w.start()
    yield w
    w.stop()
    connection.close()


def test_real_worker_writes_the_filtered_rows_R_AUD_2(worker, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AUDIT_EXPORT_CHUNK_ROWS = 4
    tag = secrets.token_hex(4)
    tenant = create_tenant(f"Worker Export {tag}")
    for n in range(10):
        make_message(
            tenant,
            signature=f"W{tag}",
            status="delivered" if n % 2 else "expired",
            recipient=f"+86139{tag[:4].encode().hex()[:4]}{n:04d}"[:14],
        )
    auditor = make_auditor(f"wk{tag}")
    filters = {"tenant_ids": [tenant.pk], "signature": f"W{tag}", "statuses": ["expired"]}
    job = request_export(kind="send_log", fmt="csv", filters=filters, user=auditor, background=True)
    assert job.state == ExportState.QUEUED
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in (ExportState.DONE, ExportState.FAILED):
            break
        time.sleep(0.1)
    assert job.state == ExportState.DONE, job.error
    with open(settings.MEDIA_ROOT / job.file_name, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with schema_context(tenant.schema_name):
        expected = list(
            message_queryset(filters=SendLogFilters.from_dict(filters)).order_by("id").values_list("id", "recipient")
        )
    assert [(int(r["message_id"]), r["recipient"]) for r in rows] == [(i, "'" + mask_number(n)) for i, n in expected]
    assert job.rows_written == 5
    User.objects.filter(pk=auditor.pk).update(is_active=False)
    assert ExportJob.objects.get(pk=job.pk).sha256 == job.sha256
