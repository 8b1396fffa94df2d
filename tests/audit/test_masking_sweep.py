"""R-AUD-2/R-AUD-4: full recipient numbers reach no one without delivery.view_full_number — admin
lists and detail pages, the trail's before/after, callback bodies, global blocks, every export —
and the send-log recipient filter is no oracle for the hidden digits."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance.models import GlobalBlock
from delivery.models import CallbackDelivery
from delivery.sendlog.jobs import ExportError, request_export
from tenants.models import OperationRecord

from .conftest import make_message

NUMBER = "+8613899990001"
DIGITS = "13899990001"


@pytest.fixture
def rows(tenant_a):
    block = GlobalBlock.objects.create(number="+8613899990002", reason="complaint")
    callback = CallbackDelivery.objects.create(
        tenant=tenant_a,
        url="https://example.com/cb",
        event="receipt",
        body=f'{{"recipient": "{NUMBER}", "status": "delivered"}}',
        next_attempt_at=timezone.now(),
    )
    record = OperationRecord.objects.create(
        actor_kind="user",
        actor_label="user:op",
        action="compliance.opt_out",
        object_type="OptOut",
        object_id="1",
        reason=f"customer {DIGITS} asked",
        before={"number": NUMBER},
        after={"numbers": [NUMBER, "13899990003"]},
    )
    return {"block": block, "callback": callback, "record": record}


def _pages(rows):
    return [
        reverse("admin:tenants_operationrecord_changelist"),
        reverse("admin:tenants_operationrecord_change", args=[rows["record"].pk]),
        reverse("admin:compliance_globalblock_changelist"),
        reverse("admin:compliance_globalblock_change", args=[rows["block"].pk]),
        reverse("admin:delivery_callbackdelivery_change", args=[rows["callback"].pk]),
        reverse("admin:delivery_callbackdelivery_changelist"),
    ]


def test_admin_pages_mask_numbers_for_an_auditor_R_AUD_2(rows, auditor):
    """Every page holding numbers, for the auditor; a page the auditor may not open at all (the
    delivery configuration: callbacks) is checked for an operator, who also lacks full numbers."""
    from django.contrib.auth.models import Group, User

    operator = User.objects.create_user("operator-masking", password="pw-masking-1", is_staff=True)
    operator.groups.add(Group.objects.get(name="operator"))
    clients = {}
    for who, user in (("auditor", auditor), ("operator", operator)):
        clients[who] = Client()
        clients[who].force_login(user)
    seen = 0
    for url in _pages(rows):
        response = clients["auditor"].get(url)
        if response.status_code == 403:
            response = clients["operator"].get(url)
        assert response.status_code == 200, url
        seen += 1
        html = response.content.decode()
        for digits in (DIGITS, "13899990002", "13899990003"):
            assert digits not in html, (url, digits)
    assert seen == len(_pages(rows))


def test_admin_pages_show_numbers_to_a_user_with_view_full_number_R_AUD_2(rows, full_auditor):
    client = Client()
    client.force_login(full_auditor)
    html = client.get(reverse("admin:tenants_operationrecord_change", args=[rows["record"].pk])).content.decode()
    assert DIGITS in html


@pytest.mark.parametrize("model", ["tenants_operationrecord", "compliance_globalblock"])
def test_admin_exports_mask_numbers_R_AUD_2(rows, auditor, model):
    client = Client()
    client.force_login(auditor)
    response = client.post(reverse(f"admin:{model}_export"), {"format": "0", "export_items": []})
    if response.status_code == 200 and response.get("Content-Disposition"):
        body = response.content.decode()
        assert "13899990002" not in body
        assert DIGITS not in body
    else:  # the export form wants its field choices: ask for every field
        form = client.get(reverse(f"admin:{model}_export")).context["form"]
        data = {"format": "0", **{name: "on" for name in form.fields if name not in ("format", "resource")}}
        response = client.post(reverse(f"admin:{model}_export"), data)
        assert response.status_code == 200
        body = response.content.decode()
        assert "13899990002" not in body
        assert DIGITS not in body


def test_operation_record_export_job_masks_before_and_after_R_AUD_2(rows, auditor, export_media):
    job = request_export(kind="operation_records", fmt="csv", filters={}, user=auditor)
    content = (export_media / job.file_name).read_text()
    assert DIGITS not in content
    assert "13899990003" not in content
    assert "****" in content


@pytest.mark.parametrize("fragment", ["0001", "9990001", "13899990001", "138****0001"])
def test_send_log_recipient_filter_needs_a_whole_number_without_view_full_number_R_AUD_2(
    tenant_a, auditor, export_media, fragment
):
    make_message(tenant_a, recipient=NUMBER)
    with pytest.raises(ExportError) as refused:
        request_export(
            kind="send_log", fmt="csv", filters={"tenant_ids": [tenant_a.pk], "recipient": fragment}, user=auditor
        )
    assert refused.value.code == "recipient_filter_needs_full_number"


def test_send_log_recipient_filter_matches_a_whole_number_exactly_R_AUD_2(tenant_a, auditor, export_media):
    make_message(tenant_a, recipient=NUMBER)
    make_message(tenant_a, recipient="+86" + DIGITS[:-1] + "9")
    job = request_export(
        kind="send_log", fmt="csv", filters={"tenant_ids": [tenant_a.pk], "recipient": NUMBER}, user=auditor
    )
    assert job.rows_written == 1
