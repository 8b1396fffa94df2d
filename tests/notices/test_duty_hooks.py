"""R-DLV-7: the duties of other apps tell the tenant through the notice service: complaints
(R-CMP-7), maintenance (R-DLV-6), price changes (R-BIL-4), low balance (R-BIL-6), dormancy (R-TEN-4)."""

from datetime import timedelta

from django.utils import timezone

from tenants.models import Notice, NoticeKind

from .conftest import SYSTEM


def test_filed_complaint_tells_the_tenant_at_once_with_its_deadline_R_CMP_7(tenant_a):
    from compliance.services import file_complaint

    complaint = file_complaint(tenant=tenant_a, source="12321", number="+8613800000001", text="spam", actor=SYSTEM)
    notice = Notice.objects.get(tenant=tenant_a, kind=NoticeKind.COMPLAINT)
    assert notice.data["complaint_id"] == complaint.pk
    assert notice.data["answer_due_at"] == complaint.answer_due_at.isoformat()
    assert {d.channel for d in notice.deliveries.all()} == {"inbox", "email", "webhook"}


def test_scheduled_maintenance_is_announced_to_tenants_R_DLV_6(tenant_a, tenant_b):
    from delivery.calendar import earliest_maintenance_start
    from delivery.maintenance import schedule_maintenance
    from delivery.models import Channel
    from smsplatform.crypto import encrypt_secret

    channel = Channel.objects.create(
        name="maint-ch", host="127.0.0.1", port=2775, system_id="x", password=encrypt_secret("x")
    )
    start = earliest_maintenance_start() + timedelta(hours=1)
    item = schedule_maintenance(
        channel=channel, starts_at=start, ends_at=start + timedelta(hours=2), notice="SMSC upgrade", actor=SYSTEM
    )
    for tenant in (tenant_a, tenant_b):
        notice = Notice.objects.get(tenant=tenant, kind=NoticeKind.MAINTENANCE)
        assert notice.data["maintenance_id"] == item.pk
        assert notice.effective_at == start


def test_announced_price_change_tells_the_plans_tenants_R_BIL_4(tenant_a):
    from billing import services as billing

    billing.topup(tenant=tenant_a, amount=1_000_000, actor=SYSTEM, idempotency_key=f"t-{timezone.now().timestamp()}")
    first = dict(plan=billing.default_plan(), message_type="marketing", country="JP", actor=SYSTEM)
    billing.announce_price(**first, unit_price=80_000, effective_from=timezone.now() + timedelta(seconds=1))
    starts = timezone.now() + timedelta(days=8)
    billing.announce_price(**first, unit_price=90_000, effective_from=starts)  # a change: announced
    notice = Notice.objects.get(tenant=tenant_a, kind=NoticeKind.PRICE_CHANGE)
    assert "0.09" in notice.body_en
    assert notice.effective_at == starts
