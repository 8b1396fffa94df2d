"""Operators run tenants from the admin; every action goes through services and is recorded."""

import re

from django.contrib.auth.models import User

from tenants.models import OperationRecord, Tenant, TenantState

from ..conftest import unique_licence


def test_operator_creates_a_tenant_with_its_schema(client, operator_user):
    client.force_login(operator_user)
    licence = unique_licence()
    response = client.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Admin Made Co.",
            "kind": "enterprise",
            "licence_number": licence,
            "contact_name": "Zhang San",
            "contact_phone": "+8613800000002",
            "contact_email": "z@example.com",
            "activate": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    tenant = Tenant.objects.get(licence_number=licence)
    assert tenant.state == TenantState.ACTIVE
    assert OperationRecord.objects.filter(
        tenant=tenant, action="tenant.register", actor_label="user:operator1"
    ).exists()


def test_admin_refuses_a_terminated_licence(client, operator_user, make_tenant):
    from tenants import services

    from ..conftest import SYSTEM

    old = make_tenant("Gone Co.")
    services.terminate_tenant(tenant=old, actor=SYSTEM, reason="fraud")
    client.force_login(operator_user)
    response = client.post(
        "/admin/tenants/tenant/add/",
        {
            "name": "Gone Again",
            "kind": "enterprise",
            "licence_number": old.licence_number,
            "contact_name": "x",
            "contact_phone": "+8613800000003",
            "contact_email": "g@example.com",
        },
        follow=True,
    )
    assert "cannot register again" in response.content.decode()
    assert Tenant.objects.filter(licence_number=old.licence_number).count() == 1


def test_operator_suspends_with_a_reason(client, operator_user, make_tenant):
    tenant = make_tenant("Suspend Me Co.")
    client.force_login(operator_user)
    response = client.post(
        f"/admin/tenants/tenant/{tenant.pk}/state/", {"to_state": "suspended", "reason": "spam complaints"}
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.state == TenantState.SUSPENDED
    assert tenant.state_reason == "spam complaints"


def test_issued_key_secret_is_shown_once(client, operator_user, make_tenant):
    tenant = make_tenant("Key Page Co.")
    client.force_login(operator_user)
    page = client.post(f"/admin/tenants/tenant/{tenant.pk}/issue-key/", {"label": "prod"}).content.decode()
    secret = re.search(r'id="access-key-secret">([^<]+)<', page).group(1)
    key_id = re.search(r'id="access-key-id">([^<]+)<', page).group(1)
    assert tenant.api_keys.filter(access_key_id=key_id, label="prod").exists()
    # The tenant page lists the key but never the secret again.
    change_page = client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert key_id in change_page
    assert secret not in change_page


def test_staff_without_permission_cannot_change_state(client, make_tenant):
    tenant = make_tenant("Protected Co.")
    user = User.objects.create_user("nobody", password="pw-nobody-1", is_staff=True)
    client.force_login(user)
    response = client.post(f"/admin/tenants/tenant/{tenant.pk}/state/", {"to_state": "suspended", "reason": "x"})
    assert response.status_code == 403
    tenant.refresh_from_db()
    assert tenant.state == TenantState.ACTIVE


def test_role_groups_exist_with_permissions(db):
    from django.contrib.auth.models import Group

    names = set(Group.objects.values_list("name", flat=True))
    assert {"operator", "reviewer", "finance", "auditor"} <= names
    auditor = Group.objects.get(name="auditor")
    assert not auditor.permissions.filter(codename__startswith="change_").exists()
