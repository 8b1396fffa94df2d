"""Readable everywhere (issue 14 item 5): money in the account currency with its unit, the ledger
without today's balance on every row, template variables as a table, held messages filtered and
searched (R-BIL-9, R-CMP-2, R-CMP-3)."""

import secrets

from django.contrib.auth.models import User
from django.test import Client
from django_tenants.utils import schema_context

from billing.services import HoldLine, hold_messages, topup
from compliance.models import Template, TemplateVersion
from delivery.models import Message
from tests.audit.conftest import make_message
from tests.conftest import SYSTEM


def root() -> Client:
    user = User.objects.create_superuser(f"root-{secrets.token_hex(3)}", "r@example.com", "pw-read-1")
    client = Client()
    client.force_login(user)
    return client


def test_ledger_rows_show_the_tenant_and_every_amount_with_its_currency_R_BIL_9(db, make_tenant):
    tenant = make_tenant(f"Ledger {secrets.token_hex(3)} Co.")
    topup(tenant=tenant, amount=5_000_000, actor=SYSTEM, idempotency_key=f"l-{secrets.token_hex(4)}")
    hold_messages(
        tenant=tenant,
        lines=[HoldLine(reference="x:1", segments=1, unit_price=35_000)],
        idempotency_key=f"h-{secrets.token_hex(4)}",
        actor=SYSTEM,
    )
    html = root().get("/admin/billing/ledgerentry/", {"q": tenant.name}).content.decode()
    assert "CNY 0.035000" in html  # the held change, not "35000"
    assert "CNY -0.035000" in html
    # today's balance (4.965) appears once, as the hold row's balance after, not on every row
    assert html.count("CNY 4.965000") == 1
    assert ">35000<" not in html


def test_hold_list_shows_prices_in_currency_R_BIL_2(db, make_tenant):
    tenant = make_tenant(f"Holds {secrets.token_hex(3)} Co.")
    topup(tenant=tenant, amount=1_000_000, actor=SYSTEM, idempotency_key=f"l-{secrets.token_hex(4)}")
    hold_messages(
        tenant=tenant,
        lines=[HoldLine(reference=f"{tenant.schema_name}:7", segments=2, unit_price=35_000)],
        idempotency_key=f"h-{secrets.token_hex(4)}",
        actor=SYSTEM,
    )
    html = root().get("/admin/billing/hold/", {"q": tenant.name}).content.decode()
    assert "CNY 0.035000" in html
    assert "CNY 0.070000" in html


def test_template_variables_are_a_table_with_default_limits_R_CMP_2(db, make_tenant):
    tenant = make_tenant(f"Vars {secrets.token_hex(3)} Co.")
    template = Template.objects.create(
        tenant=tenant, code=f"T{secrets.token_hex(4)}", name="n", message_type="notification"
    )
    version = TemplateVersion.objects.create(
        template=template,
        number=1,
        body="Order ${order} total ${amount}",
        variables={"order": {"kind": "text", "max_length": 10}, "amount": {"kind": "number"}},
    )
    html = root().get(f"/admin/compliance/templateversion/{version.pk}/change/").content.decode()
    assert '<table class="template-variables">' in html
    assert "<td><code>${amount}</code></td><td>number</td><td>≤ 12 chars</td>" in html
    assert "{&#x27;order&#x27;" not in html


def test_held_messages_filter_by_tenant_search_and_reason_R_CMP_3(db, tenant_a, tenant_b):
    from django.contrib.auth.models import Group

    user = User.objects.create_user(f"rev-{secrets.token_hex(3)}", password="pw-read-1", is_staff=True)
    user.groups.add(Group.objects.get(name="reviewer"))
    client = Client()
    client.force_login(user)
    a = make_message(tenant_a, status="held", template="TPL_SPIKE", recipient="+8613911112222")
    b = make_message(tenant_b, status="held", template="TPL_GAMB")
    with schema_context(tenant_a.schema_name):
        Message.objects.filter(pk=a.pk).update(detail="volume spike (R-CMP-8)")
    with schema_context(tenant_b.schema_name):
        Message.objects.filter(pk=b.pk).update(detail="banned content: gambling")
    page = "/admin/delivery/heldmessagereview/"

    def listed(**params) -> set[str]:
        html = client.get(page, params).content.decode()
        return {
            key
            for key, value in (("a", f'value="{tenant_a.pk}:{a.pk}"'), ("b", f'value="{tenant_b.pk}:{b.pk}"'))
            if value in html
        }

    assert listed() >= {"a", "b"}
    assert listed(tenant=tenant_b.pk) == {"b"}
    assert listed(q="TPL_SPIKE") == {"a"}
    assert listed(q="13911112222") == {"a"}
    assert listed(why="gambling") == {"b"}
    assert "match these filters" in client.get(page, {"q": "nothing-like-this"}).content.decode()
