"""After termination (R-TEN-8, 002 §10.2, 003): hand a terminated tenant's data back, then delete it.

1. Export: one ZIP under MEDIA_ROOT/terminations/ with the send log (the auditor export's
   machinery, delivery.sendlog, numbers unmasked: it is the tenant's own data), replies, templates
   with their versions, signatures, opt-outs and consents; its SHA-256 is recorded and the tenant
   is told by a `termination` notice (e-mail + inbox: its API keys are revoked) to collect it.
2. Deletion, by the daily job once allowed: not before the retention floor of the youngest
   record (R-AUD-1: six calendar months, or AUDIT_RETENTION_DAYS if longer), never while any
   legal hold of the tenant is active (R-AUD-5; the case says why it waits), and never before
   the export exists. It drops the tenant's schema (send log, replies, opt-outs, consents) and
   clears the personal data the public schema keeps about it (contact person, phone, e-mail; an
   individual's name; callback settings and bodies; API key secrets; uploaded documents). The
   Tenant row and its licence number stay: a terminated licence never registers again (R-TEN-3).
   The deletion is recorded in the operation trail (`termination.delete`).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django_tenants.utils import schema_context

from .models import AfterTermination, AfterTerminationState, NoticeKind, Tenant, TenantKind, TenantState
from .services import Actor, record_operation

SYSTEM = Actor.system("after_termination")


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def open_case(*, tenant: Tenant) -> AfterTermination:
    """The tenant's after-termination record (created once, when first seen terminated)."""
    case, _ = AfterTermination.objects.get_or_create(
        tenant=tenant, defaults={"terminated_at": tenant.state_changed_at or timezone.now()}
    )
    return case


# --- export ----------------------------------------------------------------------------------


def _compliance_rows(tenant: Tenant) -> dict[str, list[dict]]:
    from compliance.models import Consent, OptOut, Signature, Template

    templates = [
        {
            "code": t.code,
            "name": t.name,
            "message_type": t.message_type,
            "created_at": _iso(t.created_at),
            "versions": [
                {"number": v.number, "body": v.body, "variables": v.variables, "status": v.status}
                for v in t.versions.order_by("number")
            ],
        }
        for t in Template.objects.filter(tenant=tenant).order_by("pk")
    ]
    signatures = [
        {"text": s.text, "purpose": s.purpose, "status": s.status, "created_at": _iso(s.created_at)}
        for s in Signature.objects.filter(tenant=tenant).order_by("pk")
    ]
    with schema_context(tenant.schema_name):
        opt_outs = [
            {"number": o.number, "source": o.source, "keyword": o.keyword, "created_at": _iso(o.created_at)}
            for o in OptOut.objects.order_by("pk")
        ]
        consents = [
            {
                "number": c.number,
                "scope": c.scope,
                "source": c.source,
                "granted_at": _iso(c.granted_at),
                "withdrawn_at": _iso(c.withdrawn_at),
            }
            for c in Consent.objects.order_by("pk")
        ]
        from delivery.models import InboundMessage

        replies = [
            {"source": r.source, "destination": r.destination, "text": r.text, "received_at": _iso(r.received_at)}
            for r in InboundMessage.objects.order_by("pk")
        ]
    return {
        "templates": templates,
        "signatures": signatures,
        "opt_outs": opt_outs,
        "consents": consents,
        "replies": replies,
    }


def export_tenant_data(*, case: AfterTermination, actor: Actor = SYSTEM) -> AfterTermination:
    """Write the data-return ZIP (once) and tell the tenant (R-TEN-8)."""
    from delivery.sendlog.export import SendLogFilters, SendLogResource, file_sha256, iter_send_log, write_export

    case = AfterTermination.objects.select_related("tenant").get(pk=case.pk)
    if case.exported_at is not None or case.state == AfterTerminationState.DELETED:
        return case
    tenant = case.tenant
    directory = Path(settings.MEDIA_ROOT) / "terminations"
    directory.mkdir(parents=True, exist_ok=True)
    relative = f"terminations/{tenant.schema_name}-{secrets.token_hex(8)}.zip"
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        send_log = Path(tmp) / "send_log.csv"
        counts["send_log"] = write_export(
            rows=iter_send_log(filters=SendLogFilters.build(tenant_ids=[tenant.pk])),
            resource=SendLogResource(full_numbers=True),
            fmt="csv",
            path=send_log,
        )
        connection.set_schema_to_public()
        rows = _compliance_rows(tenant)
        with zipfile.ZipFile(Path(settings.MEDIA_ROOT) / relative, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(send_log, "send_log.csv")
            for name, items in rows.items():
                counts[name] = len(items)
                archive.writestr(f"{name}.json", json.dumps(items, ensure_ascii=False, indent=1))
            archive.writestr(
                "README.txt",
                f"Data of {tenant.name} ({tenant.schema_name}), exported {timezone.now().isoformat()} "
                "after the termination of the service (R-TEN-8).\n",
            )
    path = Path(settings.MEDIA_ROOT) / relative
    digest = file_sha256(path)
    from .notices import notify

    with transaction.atomic():
        case = AfterTermination.objects.select_for_update().get(pk=case.pk)
        case.export_file, case.export_sha256, case.export_size = relative, digest, path.stat().st_size
        case.export_counts, case.exported_at = counts, timezone.now()
        case.state = AfterTerminationState.EXPORTED
        case.save()
        record_operation(
            actor=actor,
            action="termination.export",
            tenant=tenant,
            obj=case,
            after={"file": relative, "sha256": digest, "counts": counts},
        )
        notify(
            tenant=tenant,
            kind=NoticeKind.TERMINATION,
            subject_zh="服务终止后的数据返还",
            subject_en="Your data after the termination of service",
            body_zh=f"服务已终止。您的数据（发送记录、模板、签名、退订与授权记录）已导出，SHA-256：{digest}。"
            "请联系平台领取；保存期满后，平台将依法删除这些数据。",
            body_en=f"Service has ended. Your data (send log, templates, signatures, opt-outs, consents) has been "
            f"exported (SHA-256 {digest}). Contact us to receive it; once the retention period has passed "
            "the platform deletes it.",
            data={"sha256": digest, "counts": counts},
            dedupe_key=f"termination:{tenant.pk}:export",
            channels=("inbox", "email"),
            actor=actor,
        )
    return case


# --- deletion --------------------------------------------------------------------------------


def last_record_at(*, tenant: Tenant) -> datetime | None:
    from delivery.models import InboundMessage, Message

    with schema_context(tenant.schema_name):
        latest = [
            Message.objects.aggregate(at=Max("created_at"))["at"],
            InboundMessage.objects.aggregate(at=Max("received_at"))["at"],
        ]
    return max((at for at in latest if at), default=None)


def deletion_allowed_at(*, case: AfterTermination) -> datetime:
    """R-AUD-1: the retention of the youngest record (or of the termination itself) has passed."""
    from delivery.sendlog.retention import earliest_purge, retention_days

    youngest = max(at for at in (case.last_record_at, case.terminated_at) if at)
    return max(earliest_purge(youngest), youngest + timedelta(days=retention_days()))


def _erase_public_personal_data(tenant: Tenant) -> dict[str, int]:
    """Personal data the public schema keeps about the tenant and its recipients."""
    from delivery.models import CallbackDelivery, CarrierMessageId, DeliverySettings

    from .models import ApiKey, Qualification

    summary = {
        "callbacks": CallbackDelivery.objects.filter(tenant=tenant).delete()[0],  # bodies hold numbers
        "carrier_ids": CarrierMessageId.objects.filter(tenant=tenant).delete()[0],
        "api_key_secrets": ApiKey.objects.filter(tenant=tenant).update(secret_encrypted=b"", secret_hash=""),
        "callback_settings": DeliverySettings.objects.filter(tenant=tenant).update(callback_url="", callback_secret=""),
    }
    documents = 0
    for item in Qualification.objects.filter(tenant=tenant).exclude(file=""):
        item.file.delete(save=False)
        Qualification.objects.filter(pk=item.pk).update(file="")
        documents += 1
    from compliance.models import SignatureProof

    for proof in SignatureProof.objects.filter(signature__tenant=tenant).exclude(file=""):
        proof.file.delete(save=False)
        SignatureProof.objects.filter(pk=proof.pk).update(file="")
        documents += 1
    summary["documents"] = documents
    profile = {"contact_name": "", "contact_phone": "", "contact_email": ""}
    if tenant.kind == TenantKind.INDIVIDUAL:  # an individual's name is personal data too
        profile["name"] = f"deleted individual {tenant.pk}"
    Tenant.objects.filter(pk=tenant.pk).update(**profile)
    return summary


def delete_tenant_data(
    *, case: AfterTermination, actor: Actor = SYSTEM, now: datetime | None = None
) -> AfterTermination:
    """Delete the schema and personal data if R-AUD-1 and R-AUD-5 allow; otherwise record why not."""
    from .legal_hold import active_holds

    now = now or timezone.now()
    with transaction.atomic():
        case = AfterTermination.objects.select_for_update().select_related("tenant").get(pk=case.pk)
        tenant = case.tenant
        if case.state == AfterTerminationState.DELETED:
            return case
        if tenant.state != TenantState.TERMINATED:  # never, whatever the record says
            raise ValueError(f"tenant {tenant.pk} is not terminated")
        case.last_checked_at = now
        case.last_record_at = last_record_at(tenant=tenant)
        case.delete_after = deletion_allowed_at(case=case)
        holds = list(active_holds(tenant=tenant).values_list("pk", flat=True))
        reason = ""
        if case.exported_at is None:
            reason = "the data has not been exported yet"
        elif now < case.delete_after:
            reason = f"retention (R-AUD-1) until {case.delete_after.isoformat()}"
        elif holds:
            reason = f"active legal holds (R-AUD-5): {', '.join(map(str, holds))}"
        if reason:
            if reason != case.blocked_reason and holds and now >= case.delete_after:
                record_operation(
                    actor=actor, action="termination.delete_held", tenant=tenant, obj=case, after={"holds": holds}
                )
            case.blocked_reason = reason
            case.save(update_fields=["last_checked_at", "last_record_at", "delete_after", "blocked_reason"])
            return case
        schema = tenant.schema_name
        with connection.cursor() as cursor:
            # Deferred FK checks of rows written in this transaction must run before the drop.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema)} CASCADE")
        connection.set_schema_to_public()
        summary = {"schema": schema, **_erase_public_personal_data(tenant)}
        case.state, case.deleted_at, case.blocked_reason, case.deletion_summary = (
            AfterTerminationState.DELETED,
            now,
            "",
            summary,
        )
        case.save()
        record_operation(
            actor=actor,
            action="termination.delete",
            tenant=tenant,
            obj=case,
            after={
                **summary,
                "delete_after": case.delete_after.isoformat(),
                "last_record_at": _iso(case.last_record_at),
            },
        )
    return case


def process_terminated_tenants(*, now: datetime | None = None) -> list[AfterTermination]:
    """The daily job: every terminated tenant is exported once, then deleted when allowed."""
    cases = []
    tenants = Tenant.objects.filter(state=TenantState.TERMINATED).exclude(kind=TenantKind.PLATFORM)
    for tenant in tenants.exclude(after_termination__state=AfterTerminationState.DELETED).order_by("pk"):
        case = open_case(tenant=tenant)
        if case.exported_at is None:
            case = export_tenant_data(case=case)
        cases.append(delete_tenant_data(case=case, now=now))
    return cases
