"""A tenant at a glance, for its admin page: money, volume, filings, complaints, violations and keys,
each with the admin URL of the filtered list it summarises (R-TEN-1, R-BIL-1/3, R-CMP-1/2/6/7/8).

Every figure is an indexed query on the tenant's own rows; volume comes from the intake counters
(compliance.VolumeCounter, one row per UTC day), not from counting the send log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from .models import Tenant


@dataclass(frozen=True)
class GlanceLine:
    label: str
    value: str
    url: str | None = None
    parts: list[tuple[str, int, str | None]] = field(default_factory=list)


def _link(user, perm: str, name: str, *args, **params) -> str | None:
    if not user.has_perm(perm):
        return None
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(params)}" if params else url


def tenant_glance(*, tenant: Tenant, user) -> list[GlanceLine]:
    from billing.models import Account, PackageGrant
    from billing.money import format_money
    from compliance.models import Complaint, Signature, TemplateVersion, Violation, VolumeCounter

    from .models import ApiKey

    lines: list[GlanceLine] = []
    now = timezone.now()
    account = Account.objects.filter(tenant=tenant).first()
    if account is None:
        lines.append(GlanceLine("Balance", "no account yet (created at the first top-up)"))
    else:
        lines.append(
            GlanceLine(
                "Balance",
                f"{format_money(account.balance, account.currency)} spendable · "
                f"{format_money(account.held, account.currency)} held",
                _link(user, "billing.view_account", "billing_account_change", account.pk),
            )
        )
        grants = PackageGrant.objects.filter(account=account, state="active", expires_at__gt=now).aggregate(
            n=Count("id"), left=Sum("segments_remaining")
        )
        lines.append(
            GlanceLine(
                "Packages",
                f"{grants['n']} active, {grants['left'] or 0} segments left",
                _link(
                    user, "billing.view_packagegrant", "billing_packagegrant_changelist", account__id__exact=account.pk
                ),
            )
        )
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    volume = {}
    for days in (7, 30):
        volume[days] = (
            VolumeCounter.objects.filter(
                tenant=tenant, granularity="day", bucket_start__gte=day - timedelta(days=days - 1)
            ).aggregate(n=Sum("count"))["n"]
            or 0
        )
    lines.append(
        GlanceLine(
            "Volume",
            "",
            parts=[
                (
                    "last 7 days",
                    volume[7],
                    _link(user, "delivery.view_message", "delivery_message_changelist", tenant=tenant.pk, preset="7d"),
                ),
                (
                    "last 30 days",
                    volume[30],
                    _link(user, "delivery.view_message", "delivery_message_changelist", tenant=tenant.pk, preset="30d"),
                ),
            ],
        )
    )
    signatures = dict(Signature.objects.filter(tenant=tenant).values_list("status").annotate(n=Count("id")))
    lines.append(
        GlanceLine(
            "Signatures",
            "" if signatures else "none filed",
            parts=[
                (
                    status,
                    n,
                    _link(
                        user,
                        "compliance.view_signature",
                        "compliance_signature_changelist",
                        tenant__id__exact=tenant.pk,
                        status__exact=status,
                    ),
                )
                for status, n in sorted(signatures.items())
            ],
        )
    )
    versions = dict(
        TemplateVersion.objects.filter(template__tenant=tenant).values_list("status").annotate(n=Count("id"))
    )
    lines.append(
        GlanceLine(
            "Template versions",
            "" if versions else "none filed",
            parts=[
                (
                    status,
                    n,
                    _link(
                        user,
                        "compliance.view_templateversion",
                        "compliance_templateversion_changelist",
                        template__tenant__id__exact=tenant.pk,
                        status__exact=status,
                    ),
                )
                for status, n in sorted(versions.items())
            ],
        )
    )
    complaints = Complaint.objects.filter(tenant=tenant)
    lines.append(
        GlanceLine(
            "Complaints",
            f"{complaints.filter(status__in=['open', 'escalated']).count()} open "
            f"({complaints.filter(status__in=['open', 'escalated'], answer_due_at__lt=now).count()} overdue), "
            f"{complaints.count()} in all",
            _link(user, "compliance.view_complaint", "compliance_complaint_changelist", tenant__id__exact=tenant.pk),
        )
    )
    lines.append(
        GlanceLine(
            "Violations",
            f"{Violation.objects.filter(tenant=tenant).count()} recorded",
            _link(user, "compliance.view_violation", "compliance_violation_changelist", tenant__id__exact=tenant.pk),
        )
    )
    keys = ApiKey.objects.filter(tenant=tenant)
    lines.append(
        GlanceLine(
            "API keys",
            f"{keys.filter(revoked_at__isnull=True).count()} active, {keys.count()} issued",
            _link(user, "tenants.view_apikey", "tenants_apikey_changelist", tenant__id__exact=tenant.pk),
        )
    )
    lines.append(
        GlanceLine(
            "Operation trail",
            "every recorded action about this tenant",
            _link(
                user, "tenants.view_operationrecord", "tenants_operationrecord_changelist", tenant__id__exact=tenant.pk
            ),
        )
    )
    return lines
