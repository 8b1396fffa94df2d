"""R-TEN-1..3: tenants, schemas, isolation, states."""

import pytest
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from tenants import registration, services
from tenants.models import OperationRecord, TenantState

from ..conftest import SYSTEM, create_tenant, unique_licence


def test_creating_a_tenant_makes_its_schema(make_tenant):
    """R-TEN-1: each customer gets its own PostgreSQL schema."""
    tenant = make_tenant("Schema Co.")
    assert schema_exists(tenant.schema_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [tenant.schema_name])
        tenant_tables = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", ["tenant_template"])
        template_tables = cursor.fetchone()[0]
    # Cloned from the template: the same tables, none of the public ones.
    assert tenant_tables == template_tables
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = 'tenants_tenant'",
            [tenant.schema_name],
        )
        assert cursor.fetchone()[0] == 0


def test_new_tenant_waits_for_review_until_approved(make_tenant):
    """R-TEN-3: pending review -> active."""
    tenant = make_tenant("Pending Co.", activate=False)
    assert tenant.state == TenantState.PENDING
    services.approve_tenant(tenant=tenant, actor=SYSTEM)
    tenant.refresh_from_db()
    assert tenant.state == TenantState.ACTIVE


def test_every_state_change_is_recorded_with_actor_and_reason(make_tenant):
    """R-TEN-3 / R-AUD-3: who, when, why."""
    tenant = make_tenant("Recorded Co.")
    services.suspend_tenant(tenant=tenant, actor=services.Actor.system("ops-bot"), reason="complaint spike")
    record = OperationRecord.objects.filter(tenant=tenant, action="tenant.suspended").get()
    assert record.actor_label == "ops-bot"
    assert record.reason == "complaint spike"
    assert record.before == {"state": "active"}
    assert record.after == {"state": "suspended"}


def test_state_change_needs_a_reason(make_tenant):
    tenant = make_tenant("Reasonless Co.")
    with pytest.raises(services.TenantError) as err:
        services.suspend_tenant(tenant=tenant, actor=SYSTEM, reason="  ")
    assert err.value.code == "reason_required"
    tenant.refresh_from_db()
    assert tenant.state == TenantState.ACTIVE


def test_suspended_tenant_can_be_reactivated(make_tenant):
    """R-TEN-3: suspension is reversible."""
    tenant = make_tenant("Reversible Co.")
    services.suspend_tenant(tenant=tenant, actor=SYSTEM, reason="late payment")
    services.reactivate_tenant(tenant=tenant, actor=SYSTEM, reason="paid")
    tenant.refresh_from_db()
    assert tenant.state == TenantState.ACTIVE


def test_terminated_tenant_cannot_be_reactivated(make_tenant):
    """R-TEN-3: terminated is permanent (封号且不再开通)."""
    tenant = make_tenant("Final Co.")
    services.terminate_tenant(tenant=tenant, actor=SYSTEM, reason="fraud")
    for to_state in (TenantState.ACTIVE, TenantState.SUSPENDED, TenantState.PENDING):
        with pytest.raises(services.InvalidStateTransition):
            services.change_tenant_state(tenant=tenant, to_state=to_state, actor=SYSTEM, reason="try again")
    tenant.refresh_from_db()
    assert tenant.state == TenantState.TERMINATED


def test_terminated_licence_number_cannot_register_again(make_tenant):
    """R-TEN-3: a new registration with a terminated tenant's licence number is refused."""
    tenant = make_tenant("Banned Co.")
    services.terminate_tenant(tenant=tenant, actor=SYSTEM, reason="gambling ads")
    with pytest.raises(registration.LicenceTerminated):
        registration.register_tenant(
            name="Banned Co. Reborn",
            licence_number=tenant.licence_number.lower(),
            contact_name="x",
            contact_phone="+8613800000001",
            contact_email="x@example.com",
            actor=SYSTEM,
        )


def test_licence_number_registers_once(make_tenant):
    tenant = make_tenant("Once Co.")
    with pytest.raises(registration.LicenceAlreadyRegistered):
        registration.register_tenant(
            name="Twice Co.",
            licence_number=tenant.licence_number,
            contact_name="x",
            contact_phone="+8613800000001",
            contact_email="x@example.com",
            actor=SYSTEM,
        )


def test_terminating_revokes_all_keys(make_tenant):
    tenant = make_tenant("Keys Co.")
    services.issue_api_key(tenant=tenant, actor=SYSTEM)
    services.issue_api_key(tenant=tenant, actor=SYSTEM)
    services.terminate_tenant(tenant=tenant, actor=SYSTEM, reason="violation")
    assert not tenant.api_keys.filter(revoked_at__isnull=True).exists()


def test_profile_update_keeps_before_and_after(make_tenant):
    """R-TEN-1: real-name data is kept current, changes recorded."""
    tenant = make_tenant("Profile Co.")
    registration.update_tenant_profile(tenant=tenant, changes={"contact_name": "Wang Fang"}, actor=SYSTEM)
    record = OperationRecord.objects.get(tenant=tenant, action="tenant.update_profile")
    assert record.before["contact_name"] == "Test Contact"
    assert record.after["contact_name"] == "Wang Fang"


def test_operation_records_are_append_only(make_tenant):
    """R-AUD-3: the database refuses UPDATE and DELETE on the trail."""
    from django.db import DatabaseError, transaction

    tenant = make_tenant("Trail Co.")
    record = OperationRecord.objects.filter(tenant=tenant).first()
    with pytest.raises(DatabaseError), transaction.atomic():
        OperationRecord.objects.filter(pk=record.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        OperationRecord.objects.filter(pk=record.pk).delete()


def test_data_in_one_schema_is_invisible_from_another(tenant_a, tenant_b):
    """Isolation at the SQL level: a table created in A's schema is not reachable in B's."""
    with tenant_context(tenant_a), connection.cursor() as cursor:
        cursor.execute("CREATE TABLE isolation_probe (v text)")
        cursor.execute("INSERT INTO isolation_probe VALUES ('secret of A')")
    with tenant_context(tenant_b), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('isolation_probe')")
        assert cursor.fetchone()[0] is None


def test_tenant_creation_clones_the_template(db):
    """Tenants are cloned from the template schema, not migrated one by one (fast creation)."""
    tenant = create_tenant("Clone Co.")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(tenant.schema_name)}.django_migrations")
        assert cursor.fetchone()[0] > 0


def test_unique_licence_helper_is_unique():
    assert unique_licence() != unique_licence()
