"""R-CMP-3 / R-CMP-8 held messages: reviewers see every tenant's held messages on one admin page
and release or reject them; rejecting is final and gives the held money back (R-BIL-2)."""

import pytest
from django.contrib.auth.models import Group, User
from django_tenants.utils import tenant_context

from billing.models import Hold
from compliance import services as compliance
from delivery.models import Message, MessageStatus, OutboxEntry
from tenants.models import OperationRecord
from tenants.services import Actor

from .conftest import make_sendable

S = MessageStatus
PAGE = "/admin/delivery/heldmessagereview/"


@pytest.fixture
def reviewer(db):
    user = User.objects.create_user("heldreviewer", password="pw-heldreviewer-1", is_staff=True)
    user.groups.add(Group.objects.get(name="reviewer"))
    return user


def _held(client_a, tenant, count=2):
    """Real held messages: a banned-content rule with action hold matches the rendered text."""
    template = make_sendable(tenant)
    compliance.create_banned_rule(
        pattern="demoshop", category="third_party_ads", action="hold", actor=Actor.system("ops")
    )
    ids = []
    for i in range(count):
        body = {"to": f"1380013800{i}", "signature": "DemoShop", "template": template, "params": {"code": "123456"}}
        response = client_a.post("/api/v1/messages", body, format="json")
        assert response.status_code == 202, response.json()
        assert response.json()["status"] == S.HELD
        ids.append(response.json()["id"])
    return ids


def _status(tenant, pk):
    with tenant_context(tenant):
        return Message.objects.get(pk=pk)


def test_reviewer_releases_a_held_message_from_the_admin_R_CMP_3(client, client_a, tenant_a, reviewer):
    held, other = _held(client_a, tenant_a)
    client.force_login(reviewer)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert tenant_a.name in html
    assert f'value="{tenant_a.pk}:{held}"' in html
    response = client.post(PAGE, {"operation": "release", "selected": [f"{tenant_a.pk}:{held}"]})
    assert response.status_code == 302
    assert _status(tenant_a, held).status == S.ACCEPTED
    assert _status(tenant_a, other).status == S.HELD  # only the selected one
    assert OutboxEntry.objects.filter(tenant=tenant_a, message_ids=[held]).exists()
    assert OperationRecord.objects.filter(action="delivery.release_held", actor_label="user:heldreviewer").exists()
    assert f'value="{tenant_a.pk}:{held}"' not in client.get(PAGE).content.decode()


def test_reviewer_rejects_a_held_message_and_its_hold_is_released_R_CMP_3(client, client_a, tenant_a, reviewer):
    held, _ = _held(client_a, tenant_a)
    hold_id = _status(tenant_a, held).hold_id
    client.force_login(reviewer)
    refused = client.post(PAGE, {"operation": "reject", "selected": [f"{tenant_a.pk}:{held}"], "reason": ""})
    assert refused.status_code == 302
    assert _status(tenant_a, held).status == S.HELD  # a reason is required: nothing changed
    client.post(PAGE, {"operation": "reject", "selected": [f"{tenant_a.pk}:{held}"], "reason": "gambling ad"})
    message = _status(tenant_a, held)
    assert (message.status, message.reason) == (S.REJECTED, "rejected_by_reviewer")
    assert Hold.objects.get(pk=hold_id).state == "released"
    record = OperationRecord.objects.get(action="delivery.reject_held", tenant=tenant_a)
    assert (record.reason, record.after["messages"]) == ("gambling ad", [held])
    # A second click rejects nothing twice and releases nothing twice.
    client.post(PAGE, {"operation": "reject", "selected": [f"{tenant_a.pk}:{held}"], "reason": "again"})
    assert OperationRecord.objects.filter(action="delivery.reject_held", tenant=tenant_a).count() == 1


def test_held_messages_page_needs_the_reviewer_permission(client, client_a, tenant_a, operator_user):
    held, _ = _held(client_a, tenant_a)
    client.force_login(operator_user)  # operators manage channels; reviewers decide held messages
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"operation": "release", "selected": [f"{tenant_a.pk}:{held}"]}).status_code == 403
    assert _status(tenant_a, held).status == S.HELD


def test_held_messages_of_two_tenants_are_listed_together_R_CMP_8(
    client, client_a, client_b, tenant_a, tenant_b, reviewer
):
    held_a, _ = _held(client_a, tenant_a)
    held_b = client_b.post(
        "/api/v1/messages",
        {
            "to": "13800138001",
            "signature": "BShop",
            "template": make_sendable(tenant_b, signature="BShop", body="BShop ${code}"),
            "params": {"code": "123456"},
        },
        format="json",
    ).json()["id"]
    with tenant_context(tenant_b):
        Message.objects.filter(pk=held_b).update(status=S.HELD)  # as a spike hold leaves it (R-CMP-8)
    client.force_login(reviewer)
    html = client.get(PAGE).content.decode()
    assert f'value="{tenant_a.pk}:{held_a}"' in html
    assert f'value="{tenant_b.pk}:{held_b}"' in html
