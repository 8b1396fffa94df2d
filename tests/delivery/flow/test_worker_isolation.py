"""A dramatiq worker thread never carries one job's tenant schema into the next job
(smsplatform.broker.TenantIsolationMiddleware; actors enter schemas themselves)."""

import dramatiq
from django.db import connection

from .live import live_tenant, wait_for

seen: list[tuple[str, str]] = []


@dramatiq.actor(queue_name="test_isolation", max_retries=0)
def careless_job(tag: str, schema: str | None) -> None:
    """Records the schema it starts in, then (carelessly) leaves the connection in a tenant's."""
    seen.append((tag, connection.schema_name))
    if schema:
        from tenants.models import Tenant

        connection.set_tenant(Tenant.objects.get(schema_name=schema))


def test_a_job_never_starts_in_the_previous_jobs_schema(live_db, worker):
    tenant, _ = live_tenant("Isolation Co.")
    seen.clear()
    worker(threads=1)
    careless_job.send("first", tenant.schema_name)
    wait_for(lambda: len(seen) == 1, what="first job")
    careless_job.send("second", None)
    wait_for(lambda: len(seen) == 2, what="second job")
    assert seen == [("first", "public"), ("second", "public")]
