"""Today's work for the operators' landing page and dashboard: one count per queue, each with the
admin URL of exactly that queue, shown only to people who may open it.

Every count is an indexed query on a small set (pending filings, held messages, overdue items);
held messages are counted per tenant schema in one UNION ALL (R-CMP-3/8 holds live with the
messages). R-CMP-1/2 reviews, R-CMP-7 complaints, R-CMP-6 rectifications, R-BIL-6 low balances,
R-DLV-3 channels down.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db import connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone


@dataclass(frozen=True)
class WorkItem:
    key: str
    label: str
    count: int
    url: str
    rule: str

    @property
    def urgent(self) -> bool:
        return self.count > 0


def _url(name: str, **params) -> str:
    url = reverse(f"admin:{name}")
    return f"{url}?{urlencode(params)}" if params else url


def held_message_count() -> int:
    """Held messages over every customer schema (status index; held sets are small)."""
    from tenants.selectors import customer_tenants

    schemas = [t.schema_name for t in customer_tenants()]
    if not schemas:
        return 0
    qn = connection.ops.quote_name
    union = " UNION ALL ".join(
        f"SELECT count(*) AS n FROM {qn(s)}.delivery_message WHERE status = 'held'"  # noqa: S608 - quoted names
        for s in schemas
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(sum(n), 0) FROM ({union}) h")  # noqa: S608
        return int(cursor.fetchone()[0])


def low_balance_account_ids(limit: int = 200) -> list[int]:
    from billing.models import Account

    return list(
        Account.objects.filter(low_balance_threshold__isnull=False, balance__lte=F("low_balance_threshold"))
        .order_by("balance")
        .values_list("pk", flat=True)[:limit]
    )


def todays_work(*, user) -> list[WorkItem]:
    """The queues `user` may open, with their counts and links (in the order people work them)."""
    from compliance.models import Complaint, ComplianceSettings, Signature, TemplateVersion
    from delivery.models import Channel

    now = timezone.now()
    stamp = now.isoformat()
    items: list[WorkItem] = []

    def add(perm: str, key: str, label: str, count_fn, url: str, rule: str) -> None:
        if user.has_perm(perm):
            items.append(WorkItem(key=key, label=label, count=count_fn(), url=url, rule=rule))

    add(
        "compliance.view_signature",
        "signatures",
        "Signatures to review",
        lambda: Signature.objects.filter(status="pending").count(),
        _url("compliance_signature_changelist", status__exact="pending"),
        "R-CMP-1",
    )
    add(
        "compliance.view_templateversion",
        "templates",
        "Templates to review",
        lambda: TemplateVersion.objects.filter(status="pending").count(),
        _url("compliance_templateversion_changelist", status__exact="pending"),
        "R-CMP-2",
    )
    add(
        "delivery.review_held_messages",
        "held",
        "Held messages",
        held_message_count,
        _url("delivery_heldmessagereview_changelist"),
        "R-CMP-3/8",
    )
    overdue = {"status__in": "open,escalated", "answer_due_at__lt": stamp}
    add(
        "compliance.view_complaint",
        "complaints",
        "Overdue complaints",
        lambda: Complaint.objects.filter(status__in=["open", "escalated"], answer_due_at__lt=now).count(),
        _url("compliance_complaint_changelist", **overdue),
        "R-CMP-7",
    )
    add(
        "compliance.view_compliancesettings",
        "rectifications",
        "Overdue rectifications",
        lambda: ComplianceSettings.objects.filter(
            rectification_deadline__lt=now, rectification_done_at__isnull=True
        ).count(),
        _url(
            "compliance_compliancesettings_changelist",
            rectification_deadline__lt=stamp,
            rectification_done_at__isnull="True",
        ),
        "R-CMP-6",
    )
    if user.has_perm("billing.view_account"):
        ids = low_balance_account_ids()
        items.append(
            WorkItem(
                key="low_balances",
                label="Low balances",
                count=len(ids),
                # the exact accounts (a balance-vs-threshold comparison has no URL filter)
                url=_url("billing_account_changelist", id__in=",".join(map(str, ids)) or "0"),
                rule="R-BIL-6",
            )
        )
    add(
        "delivery.view_channel",
        "channels_down",
        "Channels down",
        lambda: Channel.objects.filter(enabled=True, down_until__gt=now).count(),
        _url("delivery_channel_changelist", enabled__exact="1", down_until__gt=stamp),
        "R-DLV-3",
    )
    return items
