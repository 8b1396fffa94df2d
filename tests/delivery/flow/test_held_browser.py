"""Headless Chromium: a reviewer opens Delivery › Held messages, releases one held message and
rejects another with a reason (R-CMP-3 / R-CMP-8 holds), as an operator would click it."""

import secrets

import pytest
from django.contrib.auth.models import Group, User
from django_tenants.utils import schema_context

from delivery.models import Message, OutboxEntry
from tenants.models import OperationRecord

from ...audit.conftest import make_message
from ...audit.test_browser import browser, live_app  # noqa: F401 (fixtures)
from ...conftest import create_tenant

pytestmark = pytest.mark.browser


def test_reviewer_releases_and_rejects_held_messages_in_the_browser_R_CMP_3(live_app, browser):  # noqa: F811
    tag = secrets.token_hex(3)
    tenant = create_tenant(f"Held Browser {tag} Co.")
    keep, drop = (
        make_message(
            tenant,
            status="held",
            recipient=f"+861390000{n:04d}",
            content=f"【Held{tag}】message {n}",
            channel_id=None,
            latency=None,
        )
        for n in (1, 2)
    )
    password = f"pw-{secrets.token_hex(6)}"
    reviewer = User.objects.create_user(f"rev{tag}", password=password, is_staff=True)
    reviewer.groups.add(Group.objects.get(name="reviewer"))

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{live_app}/admin/login/?next=/admin/")
    page.fill("#id_username", reviewer.username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_app}/admin/")
    page.click("text=Held messages")
    page.wait_for_selector(f"#held-{tenant.pk}-{keep.pk}")
    assert page.locator(f"#held-{tenant.pk}-{drop.pk}").count() == 1

    page.check(f"#held-{tenant.pk}-{keep.pk}")
    page.click("button[value=release]")
    page.wait_for_selector(".messagelist")
    assert "Released 1 message" in page.inner_text(".messagelist")
    assert page.locator(f"#held-{tenant.pk}-{keep.pk}").count() == 0

    page.check(f"#held-{tenant.pk}-{drop.pk}")
    page.fill("#id_reason", "gambling ad, recipient list bought")
    page.click("button[value=reject]")
    page.wait_for_selector(".messagelist")
    assert "Rejected 1 message" in page.inner_text(".messagelist")

    with schema_context(tenant.schema_name):
        assert Message.objects.get(pk=keep.pk).status == "accepted"
        rejected = Message.objects.get(pk=drop.pk)
    assert (rejected.status, rejected.reason) == ("rejected", "rejected_by_reviewer")
    assert OutboxEntry.objects.filter(tenant=tenant, message_ids=[keep.pk]).exists()
    assert OperationRecord.objects.filter(
        action="delivery.release_held", tenant=tenant, actor_label=f"user:{reviewer.username}"
    ).exists()
    assert OperationRecord.objects.get(action="delivery.reject_held", tenant=tenant).reason.startswith("gambling")


@pytest.fixture(autouse=True)
def _no_outbox_left_behind(live_db):
    """live_db commits: the released message's outbox entry would be relayed by the next live
    test's relay_outbox() onto that test's channel. Mark this test's entries relayed afterwards."""
    from django.utils import timezone

    before = set(OutboxEntry.objects.values_list("pk", flat=True))
    yield
    OutboxEntry.objects.exclude(pk__in=before).filter(relayed_at__isnull=True).update(relayed_at=timezone.now())
