"""R-AUD-5: legal holds keep records past the purge (R-AUD-1) and erasure (R-AUD-4) until
released, and say so; evidence packages carry messages, carrier ids, real-name data and times,
with a SHA-256, and their hand-over is recorded once."""

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from delivery.models import ErasureState
from delivery.sendlog.retention import RETENTION_FLOOR_DAYS, anonymised_recipient, purge_tenant, request_erasure
from tenants import legal_hold
from tenants.models import HoldBasis, HoldScope, OperationRecord

from ..audit.conftest import make_message
from .conftest import SYSTEM

OLD = timedelta(days=RETENTION_FLOOR_DAYS + 30)


def exists(tenant, message) -> bool:
    from delivery.models import Message

    with schema_context(tenant.schema_name):
        return Message.objects.filter(pk=message.pk).exists()


def reload(tenant, message):
    from delivery.models import Message

    with schema_context(tenant.schema_name):
        return Message.objects.get(pk=message.pk)


def hold(tenant, **kwargs):
    kwargs.setdefault("basis", HoldBasis.AUTHORITY_REQUEST)
    kwargs.setdefault("reference", "PSB-2026-0042")
    kwargs.setdefault("reason", "police request")
    return legal_hold.place_hold(tenant=tenant, actor=SYSTEM, **kwargs)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_purge_skips_held_messages_and_says_so_R_AUD_5(tenant_a):
    kept = make_message(tenant_a, age=OLD)
    gone = make_message(tenant_a, age=OLD)
    hold(tenant_a, scope=HoldScope.MESSAGES, message_ids=[kept.pk])
    result = purge_tenant(tenant=tenant_a)
    assert exists(tenant_a, kept)
    assert not exists(tenant_a, gone)
    assert result.held == 1
    record = OperationRecord.objects.filter(action="sendlog.purge", tenant=tenant_a).first()
    assert record.after["held_by_legal_hold"] == 1


def test_tenant_wide_hold_keeps_every_old_row_R_AUD_5(tenant_a):
    first = make_message(tenant_a, age=OLD)
    second = make_message(tenant_a, age=OLD, recipient="+8613812340000")
    hold(tenant_a, basis=HoldBasis.VIOLATION, reference="violation:1")
    result = purge_tenant(tenant=tenant_a)
    assert exists(tenant_a, first)
    assert exists(tenant_a, second)
    assert result.messages == 0
    assert result.held >= 2


def test_number_hold_keeps_that_numbers_rows_in_its_time_range_R_AUD_5(tenant_a):
    number = "+8613877770001"
    inside = make_message(tenant_a, recipient=number, age=OLD)
    before = make_message(tenant_a, recipient=number, age=OLD + timedelta(days=100))
    other = make_message(tenant_a, age=OLD)
    now = timezone.now()
    hold(
        tenant_a,
        basis=HoldBasis.COMPLAINT,
        scope=HoldScope.NUMBER,
        number="13877770001",
        from_at=now - OLD - timedelta(days=5),
        to_at=now,
    )
    purge_tenant(tenant=tenant_a)
    assert exists(tenant_a, inside)
    assert not exists(tenant_a, before)
    assert not exists(tenant_a, other)


def test_released_hold_lets_the_purge_proceed_R_AUD_5(tenant_a):
    message = make_message(tenant_a, age=OLD)
    placed = hold(tenant_a, scope=HoldScope.MESSAGES, message_ids=[message.pk])
    purge_tenant(tenant=tenant_a)
    assert exists(tenant_a, message)
    legal_hold.release_hold(hold=placed, actor=SYSTEM, reason="case closed")
    purge_tenant(tenant=tenant_a)
    assert not exists(tenant_a, message)
    assert OperationRecord.objects.filter(action="legal_hold.release", object_id=str(placed.pk)).exists()


def test_erasure_skips_held_rows_waits_and_says_so_R_AUD_5(tenant_a):
    number = "+8613877770002"
    held = make_message(tenant_a, recipient=number, age=OLD)
    free = make_message(tenant_a, recipient=number, age=OLD)
    hold(tenant_a, basis=HoldBasis.DISPUTE, scope=HoldScope.MESSAGES, message_ids=[held.pk])
    erasure = request_erasure(tenant=tenant_a, number=number, actor=SYSTEM, reason="recipient asked")
    assert reload(tenant_a, held).recipient == number
    assert reload(tenant_a, free).recipient == anonymised_recipient(number)
    assert erasure.state == ErasureState.WAITING
    assert erasure.rows_held == 1
    assert erasure.not_before > timezone.now()
    assert OperationRecord.objects.filter(action="erasure.held", object_id=str(erasure.pk)).exists()


def test_erasure_completes_after_the_hold_is_released_R_AUD_5(tenant_a):
    from delivery.sendlog.retention import process_erasure

    number = "+8613877770003"
    held = make_message(tenant_a, recipient=number, age=OLD)
    placed = hold(tenant_a, scope=HoldScope.NUMBER, number=number)
    erasure = request_erasure(tenant=tenant_a, number=number, actor=SYSTEM)
    assert erasure.state == ErasureState.WAITING
    legal_hold.release_hold(hold=placed, actor=SYSTEM, reason="released by the court")
    erasure = process_erasure(erasure_id=erasure.pk)
    assert erasure.state == ErasureState.DONE
    assert erasure.rows_held == 0
    assert reload(tenant_a, held).recipient == anonymised_recipient(number)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"reason": " "}, "reason_required"),
        ({"scope": HoldScope.MESSAGES}, "messages_required"),
        ({"scope": HoldScope.NUMBER, "number": "not a number"}, "invalid_number"),
        ({"basis": "gossip"}, "invalid_basis"),
    ],
)
def test_bad_hold_is_refused_and_nothing_is_placed(tenant_a, kwargs, code):
    from smsplatform.errors import DomainError
    from tenants.models import LegalHold

    before = LegalHold.objects.count()
    with pytest.raises(DomainError) as refused:
        hold(tenant_a, **kwargs)
    assert refused.value.code == code
    assert LegalHold.objects.count() == before


# --- evidence packages ---------------------------------------------------------------------


def test_evidence_package_holds_messages_carrier_ids_real_name_data_and_its_sha256_R_AUD_5(tenant_a, media):
    message = make_message(tenant_a, content="【Acme】非法内容", parts=2)
    placed = hold(tenant_a, scope=HoldScope.MESSAGES, message_ids=[message.pk])
    package = legal_hold.compile_evidence_package(
        hold=placed, request_reference="公(网)调证字[2026]42号", authority="Shanghai PSB", actor=SYSTEM
    )
    body = (Path(media) / package.file_name).read_bytes()
    assert hashlib.sha256(body).hexdigest() == package.sha256
    assert package.file_size == len(body)
    document = json.loads(body)
    assert document["tenant"]["licence_number"] == tenant_a.licence_number
    assert document["tenant"]["name"] == tenant_a.name
    [row] = document["messages"]
    assert row["content"] == "【Acme】非法内容"
    assert row["recipient"] == message.recipient
    assert [p["carrier_message_id"] for p in row["carrier_message_ids"]] == [f"c{message.pk}x1", f"c{message.pk}x2"]
    assert row["created_at"]
    assert row["submitted_at"]
    assert [e["to"] for e in row["status_history"]][:2] == ["accepted", "submitted"]
    assert legal_hold.verify_package(package=package)
    assert OperationRecord.objects.filter(action="evidence.compile", object_id=str(package.pk)).exists()


def test_evidence_from_a_violation_places_a_hold_on_its_messages_R_AUD_5(tenant_a, media):
    from compliance.models import Violation

    message = make_message(tenant_a, age=OLD)
    violation = Violation.objects.create(
        tenant=tenant_a,
        category="fraud",
        evidence="bank impersonation",
        message_reference=f"{tenant_a.schema_name}:{message.pk}",
        recorded_by="tests",
    )
    package = legal_hold.evidence_from_violation(
        violation_id=violation.pk, request_reference="REQ-1", authority="PSB", actor=SYSTEM
    )
    assert package.violation_id == violation.pk
    assert package.hold.basis == HoldBasis.VIOLATION
    assert package.hold.message_ids == [message.pk]
    assert package.message_count == 1
    purge_tenant(tenant=tenant_a)
    assert exists(tenant_a, message)  # the violation's message outlives the purge


def test_hand_over_is_recorded_once_R_AUD_5(tenant_a, media):
    message = make_message(tenant_a)
    placed = hold(tenant_a, scope=HoldScope.MESSAGES, message_ids=[message.pk])
    package = legal_hold.compile_evidence_package(hold=placed, request_reference="R-9", authority="PSB", actor=SYSTEM)
    package = legal_hold.record_handover(
        package=package, handed_to="Officer Li, case 42", method="encrypted USB, in person", actor=SYSTEM
    )
    assert package.handed_over_at is not None
    assert OperationRecord.objects.filter(action="evidence.hand_over", object_id=str(package.pk)).exists()
    with pytest.raises(legal_hold.AlreadyHandedOver):
        legal_hold.record_handover(package=package, handed_to="someone else", method="mail", actor=SYSTEM)


def test_package_from_a_released_hold_is_refused(tenant_a, media):
    placed = hold(tenant_a)
    legal_hold.release_hold(hold=placed, actor=SYSTEM, reason="done")
    with pytest.raises(legal_hold.LegalHoldError) as refused:
        legal_hold.compile_evidence_package(hold=placed, request_reference="R", authority="PSB", actor=SYSTEM)
    assert refused.value.code == "hold_released"
