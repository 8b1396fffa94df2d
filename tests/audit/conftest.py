"""Fixtures for the audit tests: message rows in tenant schemas, auditor users, export dirs."""

import itertools
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from django_tenants.utils import schema_context

_seq = itertools.count(1)


def grant(user: User, *perms: str) -> User:
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    # has_perm caches per instance: hand back a fresh one.
    return User.objects.get(pk=user.pk)


def make_auditor(username: str | None = None, *, full_numbers: bool = False, password: str = "pw-auditor-1") -> User:
    """An auditor as the roles make one: the auditor group (tenants/roles.py), plus unmasked
    numbers only when asked (granted per user)."""
    user = User.objects.create_user(username or f"auditor{secrets.token_hex(3)}", password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="auditor"))
    return grant(user, *(["delivery.view_full_number"] if full_numbers else []))


def make_message(
    tenant,
    *,
    recipient: str = "+8613812341234",
    age: timedelta = timedelta(0),
    status: str = "delivered",
    content: str = "【Acme】Your code is 123456",
    signature: str = "Acme",
    template: str = "TPL_1",
    message_type: str = "verification",
    channel_id: int | None = 1,
    carrier: str = "china_mobile",
    country: str = "CN",
    latency: float | None = 5.0,
    params: dict | None = None,
    client_ref: str | None = None,
    parts: int = 1,
    error_code: str = "",
):
    """One send-log row (with its request, parts and status history) created `age` ago."""
    from delivery.models import Message, MessagePart, SendRequest, StatusEvent

    created = timezone.now() - age
    submitted = created + timedelta(seconds=1) if status not in ("rejected", "accepted", "failed") else None
    done = (
        submitted + timedelta(seconds=latency) if submitted and latency is not None and status != "submitted" else None
    )
    with schema_context(tenant.schema_name):
        request = SendRequest.objects.create(kind="single", body_hash="x" * 64, total=1, accepted=1)
        message = Message.objects.create(
            request=request,
            recipient=recipient,
            country=country,
            carrier=carrier,
            signature=signature,
            template=template,
            signature_id=1,
            template_id=1,
            template_version=2,
            message_type=message_type,
            params=params if params is not None else {"code": "123456"},
            content=content,
            encoding="ucs2",
            segments=1,
            unit_price=35_000,
            amount=35_000,
            status=status,
            status_at=done or submitted or created,
            channel_id=channel_id,
            submitted_at=submitted,
            done_at=done,
            error_code=error_code,
            client_ref=client_ref or f"ref-{next(_seq)}",
        )
        Message.objects.filter(pk=message.pk).update(created_at=created)
        SendRequest.objects.filter(pk=request.pk).update(created_at=created)
        StatusEvent.objects.create(message=message, from_status="", to_status="accepted", at=created)
        if submitted:
            StatusEvent.objects.create(message=message, from_status="accepted", to_status="submitted", at=submitted)
            for n in range(1, parts + 1):
                MessagePart.objects.create(
                    message=message,
                    part=n,
                    parts=parts,
                    carrier_message_id=f"c{message.pk}x{n}",
                    submitted_at=submitted,
                    status=status,
                    stat="DELIVRD",
                    err="000",
                )
        if done:
            StatusEvent.objects.create(message=message, from_status="submitted", to_status=status, at=done)
        message.refresh_from_db()
    return message


@pytest.fixture
def export_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def auditor(db):
    return make_auditor()


@pytest.fixture
def full_auditor(db):
    return make_auditor(full_numbers=True)
