"""Set-up and measurement for the restart scenarios (tests/reliability/test_restarts.py), run as
`manage.py shell -c` against the PRIVATE PostgreSQL (its own process, its own settings): the
tenant, templates, money and channel come from the same services the other tests use; the
measurement prints one JSON line."""

from __future__ import annotations

import json

LONG_BODY = "尊敬的客户您好，您本月的账单已经生成，" * 8 + "验证码${code}。"  # 3 UCS-2 parts
TOPUP = 1_000_000_000


def setup(*, sim_port: int) -> None:
    from django.db import connection

    from compliance import services as compliance
    from tenants import services as tenant_services
    from tests.conftest import create_tenant
    from tests.delivery.flow.conftest import _actor, make_sendable
    from tests.delivery.flow.live import SYSTEM, only_channel

    tenant = create_tenant("Restart Co.")
    key, secret = tenant_services.issue_api_key(tenant=tenant, actor=SYSTEM, label="restarts")
    connection.set_schema_to_public()
    single = make_sendable(tenant, body="Your code is ${code}.", message_type="notification", balance=TOPUP)
    long = compliance.file_template(
        tenant=tenant,
        name="long",
        message_type="notification",
        body=LONG_BODY,
        variables={"code": {"kind": "code"}},
        actor=_actor("customer"),
    )
    compliance.approve_template_version(version=long.versions.get(), actor=_actor("reviewer"))
    channel = only_channel(port=sim_port)
    print(
        "SETUP "
        + json.dumps(
            {
                "tenant_id": tenant.pk,
                "key_id": key.access_key_id,
                "secret": secret,
                "single": single,
                "long": long.code,
                "channel_id": channel.pk,
            }
        )
    )


def measure(*, tenant_id: int) -> None:
    from django.db.models import Count, Sum
    from django_tenants.utils import tenant_context

    from billing.models import EntryKind, Hold, LedgerEntry
    from billing.selectors import account_of
    from delivery.models import Message, MessagePart
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    account = account_of(tenant=tenant)
    topups = LedgerEntry.objects.filter(account=account, kind=EntryKind.TOPUP).aggregate(s=Sum("amount"))["s"] or 0
    captured = Hold.objects.filter(account=account, state="captured").aggregate(s=Sum("amount"))["s"] or 0
    with tenant_context(tenant):
        messages = {m["id"]: m["status"] for m in Message.objects.values("id", "status")}
        by_status = dict(Message.objects.values_list("status").annotate(n=Count("id")))
        parts = MessagePart.objects.count()
    print(
        "MEASURE "
        + json.dumps(
            {
                "messages": messages,
                "by_status": by_status,
                "parts": parts,
                "balance": account.balance,
                "held": account.held,
                "captured": captured,
                "topups": topups,
                "captured_holds": Hold.objects.filter(account=account, state="captured").count(),
                "open_holds": Hold.objects.filter(account=account, state="held").count(),
            }
        )
    )
