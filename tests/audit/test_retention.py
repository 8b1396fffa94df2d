"""R-AUD-1 (send log kept ≥ 180 days, purge floor) and R-AUD-4 (erasure after the retention minimum)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from delivery.models import ErasureState
from delivery.sendlog.retention import (
    RETENTION_FLOOR_DAYS,
    RetentionTooShort,
    anonymised_recipient,
    earliest_purge,
    process_due_erasures,
    process_erasure,
    purge_send_log,
    purge_tenant,
    request_erasure,
)
from tenants.models import OperationRecord
from tenants.services import Actor

from .conftest import make_message

SYSTEM = Actor.system("tests")


def exists(tenant, message) -> bool:
    from delivery.models import Message

    with schema_context(tenant.schema_name):
        return Message.objects.filter(pk=message.pk).exists()


def reload(tenant, message):
    from delivery.models import Message

    with schema_context(tenant.schema_name):
        return Message.objects.get(pk=message.pk)


def test_purge_refuses_a_retention_below_180_days_R_AUD_1(tenant_a, settings):
    old = make_message(tenant_a, age=timedelta(days=400))
    settings.AUDIT_RETENTION_DAYS = 179
    with pytest.raises(RetentionTooShort) as refused:
        purge_send_log()
    assert "180" in refused.value.message
    assert exists(tenant_a, old)  # refused before touching anything


def test_purge_refuses_an_explicit_short_setting_for_one_tenant_R_AUD_1(tenant_a):
    old = make_message(tenant_a, age=timedelta(days=400))
    with pytest.raises(RetentionTooShort):
        purge_tenant(tenant=tenant_a, days=30)
    assert exists(tenant_a, old)


def test_purge_deletes_only_rows_older_than_retention_R_AUD_1(tenant_a, settings):
    settings.AUDIT_RETENTION_DAYS = RETENTION_FLOOR_DAYS
    # Six calendar months are at most 184 days: 186 days is past the floor whatever the date.
    old = make_message(tenant_a, age=timedelta(days=186), parts=2)
    young = make_message(tenant_a, age=timedelta(days=RETENTION_FLOOR_DAYS - 1))
    result = purge_tenant(tenant=tenant_a, actor=SYSTEM)
    assert result.messages >= 1
    assert result.requests >= 1
    assert not exists(tenant_a, old)
    assert exists(tenant_a, young)
    assert OperationRecord.objects.filter(action="sendlog.purge", tenant=tenant_a).exists()


def test_purge_with_longer_retention_keeps_rows_between_floor_and_setting_R_AUD_1(tenant_a, settings):
    settings.AUDIT_RETENTION_DAYS = 365
    middle = make_message(tenant_a, age=timedelta(days=200))
    ancient = make_message(tenant_a, age=timedelta(days=366))
    purge_tenant(tenant=tenant_a)
    assert exists(tenant_a, middle)
    assert not exists(tenant_a, ancient)


def test_purge_removes_status_history_and_parts_with_the_message(tenant_a):
    from delivery.models import MessagePart, StatusEvent

    old = make_message(tenant_a, age=timedelta(days=300), parts=2)
    purge_tenant(tenant=tenant_a)
    with schema_context(tenant_a.schema_name):
        assert not StatusEvent.objects.filter(message_id=old.pk).exists()
        assert not MessagePart.objects.filter(message_id=old.pk).exists()


# --- erasure --------------------------------------------------------------------------------


def test_erasure_of_old_rows_anonymises_them_at_once_R_AUD_4(tenant_a):
    number = "+8613866660001"
    old = make_message(tenant_a, recipient=number, age=timedelta(days=RETENTION_FLOOR_DAYS + 5))
    erasure = request_erasure(tenant=tenant_a, number="13866660001", actor=SYSTEM, reason="recipient asked")
    assert erasure.state == ErasureState.DONE
    assert erasure.rows_anonymised == 1
    assert erasure.number == ""
    assert erasure.not_before is None
    row = reload(tenant_a, old)
    assert row.recipient == anonymised_recipient(number)
    assert row.recipient.startswith("~")
    assert row.content == ""
    assert row.params == {}
    assert OperationRecord.objects.filter(action="erasure.complete", object_id=str(erasure.pk)).exists()


def test_erasure_of_young_rows_waits_and_says_until_when_R_AUD_4(tenant_a):
    number = "+8613866660002"
    young = make_message(tenant_a, recipient=number, age=timedelta(days=10))
    erasure = request_erasure(tenant=tenant_a, number=number, actor=SYSTEM)
    assert erasure.state == ErasureState.WAITING
    assert erasure.not_before == earliest_purge(young.created_at)  # six calendar months, next day
    assert reload(tenant_a, young).recipient == number  # untouched: R-AUD-1 keeps it 180 days


def test_waiting_erasure_completes_once_the_minimum_has_passed_R_AUD_4(tenant_a):
    number = "+8613866660003"
    young = make_message(tenant_a, recipient=number, age=timedelta(days=10), content="secret text")
    erasure = request_erasure(tenant=tenant_a, number=number, actor=SYSTEM)
    before_due = erasure.not_before - timedelta(minutes=1)
    assert process_due_erasures(now=before_due) == 0 or reload(tenant_a, young).recipient == number
    assert process_erasure(erasure_id=erasure.pk, now=before_due).state == ErasureState.WAITING
    assert reload(tenant_a, young).content == "secret text"
    assert process_due_erasures(now=erasure.not_before + timedelta(minutes=1)) >= 1
    erasure.refresh_from_db()
    assert erasure.state == ErasureState.DONE
    assert erasure.rows_anonymised == 1
    assert reload(tenant_a, young).content == ""


def test_erasure_anonymises_old_rows_now_and_leaves_young_ones_R_AUD_4(tenant_a):
    number = "+8613866660004"
    old = make_message(tenant_a, recipient=number, age=timedelta(days=200))
    young = make_message(tenant_a, recipient=number, age=timedelta(days=20))
    erasure = request_erasure(tenant=tenant_a, number=number, actor=SYSTEM)
    assert erasure.state == ErasureState.WAITING
    assert erasure.rows_anonymised == 1
    assert reload(tenant_a, old).recipient.startswith("~")
    assert reload(tenant_a, young).recipient == number


def test_erasure_touches_only_its_tenant_R_AUD_4(tenant_a, tenant_b):
    number = "+8613866660005"
    mine = make_message(tenant_a, recipient=number, age=timedelta(days=300))
    theirs = make_message(tenant_b, recipient=number, age=timedelta(days=300))
    request_erasure(tenant=tenant_a, number=number, actor=SYSTEM)
    assert reload(tenant_a, mine).recipient.startswith("~")
    assert reload(tenant_b, theirs).recipient == number
    assert connection.schema_name == "public"


def test_erasure_api_waits_then_get_shows_state_and_not_before_R_AUD_4(client_a, tenant_a):
    make_message(tenant_a, recipient="+8613866660006", age=timedelta(days=3))
    created = client_a.post(
        "/api/v1/erasure-requests",
        {"number": "+8613866660006", "reason": "user asked"},
        format="json",
        REMOTE_ADDR="203.0.113.9",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "waiting"
    assert body["not_before"]
    shown = client_a.get(f"/api/v1/erasure-requests/{body['id']}").json()
    assert shown["state"] == "waiting"
    assert shown["not_before"] == body["not_before"]


def test_customer_api_writes_record_the_caller_ip_R_AUD_3(client_a, tenant_a):
    response = client_a.post(
        "/api/v1/erasure-requests", {"number": "+8613866660007"}, format="json", REMOTE_ADDR="198.51.100.7"
    )
    assert response.status_code == 201
    record = OperationRecord.objects.get(action="erasure.request", object_id=str(response.json()["id"]))
    assert record.ip_address == "198.51.100.7"
    assert record.actor_kind == "api_key"


def test_erasure_api_is_scoped_to_the_caller(client_a, client_b):
    created = client_a.post("/api/v1/erasure-requests", {"number": "+8613866660008"}, format="json").json()
    assert client_b.get(f"/api/v1/erasure-requests/{created['id']}").status_code == 404


def test_erasure_refuses_a_malformed_number(client_a):
    response = client_a.post("/api/v1/erasure-requests", {"number": "not a number"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_number"


def test_not_before_is_in_the_future_for_a_fresh_message(tenant_a):
    make_message(tenant_a, recipient="+8613866660009")
    erasure = request_erasure(tenant=tenant_a, number="+8613866660009", actor=SYSTEM)
    assert erasure.not_before > timezone.now() + timedelta(days=RETENTION_FLOOR_DAYS - 1)


def test_erasure_removes_the_number_from_old_callback_bodies_R_AUD_4(tenant_a):
    from django.utils import timezone as tz

    from delivery.models import CallbackDelivery

    number = "+8613866660010"
    make_message(tenant_a, recipient=number, age=timedelta(days=200))
    callback = CallbackDelivery.objects.create(
        tenant=tenant_a,
        url="https://example.com/cb",
        event="status",
        body=f'{{"to": "{number}", "status": "delivered"}}',
        next_attempt_at=tz.now(),
    )
    CallbackDelivery.objects.filter(pk=callback.pk).update(created_at=tz.now() - timedelta(days=200))
    request_erasure(tenant=tenant_a, number=number, actor=SYSTEM)
    callback.refresh_from_db()
    assert number not in callback.body
    assert anonymised_recipient(number) in callback.body


def test_suspended_tenant_can_still_file_an_erasure_request_R_AUD_4(client_a, tenant_a):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=tenant_a.pk).update(state="suspended")
    response = client_a.post("/api/v1/erasure-requests", {"number": "+8613866660011"}, format="json")
    assert response.status_code == 201
