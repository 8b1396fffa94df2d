"""Delivery: channels, routes, messages, receipts, replies, callbacks (R-DLV-1..6).

Public schema (platform records): Channel, Route, CarrierPrefix, ProvincePrefix, Maintenance,
TenantNumber, DeliverySettings, OutboxEntry, CarrierMessageId, PendingReceipt, CallbackDelivery,
ExportJob, ErasureRequest (the send log's exports and erasure requests).
Tenant schema (customer PII, TenantScoped): SendRequest, Message, MessagePart, StatusEvent,
InboundMessage.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from smsplatform.message_types import MessageType
from smsplatform.tenancy import TenantScoped


class Carrier(models.TextChoices):
    CHINA_MOBILE = "china_mobile", "China Mobile"
    CHINA_UNICOM = "china_unicom", "China Unicom"
    CHINA_TELECOM = "china_telecom", "China Telecom"


# --- public: channels and routing (R-DLV-2) ------------------------------------------------


class Channel(models.Model):
    """One SMPP account at a carrier or aggregator (R-DLV-3)."""

    name = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=200)
    port = models.PositiveIntegerField(default=2775)
    system_id = models.CharField(max_length=16)
    # Encrypted at rest (smsplatform.crypto.encrypt_secret); the clear text only reaches the bind.
    password = models.CharField(max_length=300)
    system_type = models.CharField(max_length=13, blank=True)
    source_addr = models.CharField("source address", max_length=21, blank=True)
    bind_count = models.PositiveSmallIntegerField(
        default=1, help_text="binds each worker process may hold (the account's total is max_binds)"
    )
    max_binds = models.PositiveSmallIntegerField(
        "bind limit of the account",
        null=True,
        blank=True,
        help_text="binds the SMSC account allows at once, senders and listener together, across every process "
        "and host (shared through Redis); empty = no limit",
    )
    bind_mode = models.CharField(
        max_length=12,
        choices=[("transceiver", "transceiver"), ("split", "transmitter (senders) + receiver (listener)")],
        default="transceiver",
        help_text="split needs a bind limit of at least 2 (one bind is kept for the receiver)",
    )
    tps_limit = models.PositiveIntegerField(
        "TPS limit",
        null=True,
        blank=True,
        help_text="parts/second for the channel across every worker process and host (shared through Redis); "
        "empty = no limit",
    )
    window_size = models.PositiveSmallIntegerField(default=10)
    receipt_time_zone = models.CharField(
        max_length=40,
        default="Asia/Shanghai",
        help_text="the zone the SMSC writes receipt dates in (CN carriers: Asia/Shanghai)",
    )
    receipt_id_match = models.CharField(
        "receipt id matching",
        max_length=10,
        choices=[("auto", "exact, then hex/decimal variants"), ("exact", "exact id only")],
        default="auto",
        help_text="auto: a receipt whose exact id is unknown may match one hex/decimal/zero-padded variant of "
        "the same SMSC account, after a short wait and only when exactly one message fits",
    )
    query_sm_enabled = models.BooleanField(
        "ask the SMSC (query_sm)",
        default=False,
        help_text="parts long submitted without a receipt are asked for with query_sm and settled by the "
        "answer (issue 21); leave off for carriers that do not support query_sm",
    )
    enabled = models.BooleanField(default=True)
    # Set by the senders when binds fail; routing skips the channel until then (failover).
    down_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("manage_channels", "Can manage SMPP channels, routes and maintenance")]
        constraints = [
            models.CheckConstraint(condition=Q(window_size__gte=1), name="channel_window_positive"),
            # split mode keeps one bind for the receiver: an account of one bind cannot do it
            models.CheckConstraint(
                condition=~Q(bind_mode="split") | Q(max_binds__isnull=True) | Q(max_binds__gte=2),
                name="channel_split_needs_two_binds",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def queue_name(self) -> str:
        return f"channel.{self.pk}"


class CarrierPrefix(models.Model):
    """Mobile number prefix → carrier (Chinese carriers; editable, seeded by a migration)."""

    prefix = models.CharField(max_length=8, unique=True)
    carrier = models.CharField(max_length=20, choices=Carrier.choices)

    class Meta:
        ordering = ["prefix"]
        verbose_name_plural = "carrier prefixes"

    def __str__(self) -> str:
        return f"{self.prefix} → {self.carrier}"


class ProvincePrefix(models.Model):
    """Optional number-segment table: first 7 digits → province (号段归属地). May stay empty."""

    prefix = models.CharField(max_length=7, unique=True)
    province = models.CharField(max_length=40)
    city = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["prefix"]
        verbose_name_plural = "province prefixes"

    def __str__(self) -> str:
        return f"{self.prefix} → {self.province}"


class Route(models.Model):
    """A routing rule: empty criteria match anything. Lower priority number wins; among equal
    priorities channels are ordered by weighted random choice; the rest are failovers."""

    name = models.CharField(max_length=100)
    message_type = models.CharField(max_length=20, choices=MessageType.choices, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2; empty = any")
    carrier = models.CharField(max_length=20, choices=Carrier.choices, blank=True)
    province = models.CharField(max_length=40, blank=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="routes")
    priority = models.PositiveIntegerField(default=100)
    weight = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [models.CheckConstraint(condition=Q(weight__gte=1), name="route_weight_positive")]

    def __str__(self) -> str:
        return f"{self.name} → {self.channel}"


class Maintenance(models.Model):
    """Planned channel maintenance, announced ≥ 1 working day ahead (R-DLV-6)."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="maintenances")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    notice = models.TextField(help_text="what tenants see")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after_start")
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"


class PublicHoliday(models.Model):
    """A day of the public-holiday calendar (R-DLV-6 working days).

    A row is either a holiday (not a working day, whatever the weekday) or, with
    `is_makeup_workday`, a weekend day China moves into a working day (调休). Days without a
    row follow the week: Monday–Friday work, Saturday and Sunday rest."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)
    is_makeup_workday = models.BooleanField(
        "make-up working day", default=False, help_text="a weekend day that is a working day (调休)"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}{' (working day)' if self.is_makeup_workday else ''}"


class HeldMessageReview(models.Model):
    """No table: carries the permission and the admin entry of the held-messages review page
    (R-CMP-3 hold-for-review, R-CMP-8 spikes). Held messages live in the tenants' schemas."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("review_held_messages", "Can release or reject held messages (recorded)")]
        verbose_name = "held message"
        verbose_name_plural = "held messages"


class TenantNumber(models.Model):
    """A tenant's source-address extension: replies to channel source + extension reach it (R-DLV-5)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="numbers")
    extension = models.CharField(max_length=8, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.extension} → {self.tenant_id}"


class DeliverySettings(models.Model):
    """Per-tenant delivery settings: default callback URL and the callback signing secret."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="delivery_settings")
    callback_url = models.URLField(blank=True)
    callback_secret = models.CharField(max_length=300, help_text="encrypted at rest (services.encrypt_secret)")
    # R-DLV-4/5: the body of status and reply callbacks; "alibaba" = SmsReport / SmsUp arrays
    # (delivery/alibaba/push.py) for customers coming from Alibaba Cloud SMS.
    callback_format = models.CharField(
        max_length=10,
        choices=[("platform", "Platform JSON"), ("alibaba", "Alibaba SmsReport / SmsUp")],
        default="platform",
    )

    class Meta:
        verbose_name_plural = "delivery settings"

    def __str__(self) -> str:
        return f"delivery settings of {self.tenant_id}"


# --- public: outbox, carrier-id lookup, receipts, callbacks -------------------------------


class OutboxEntry(models.Model):
    """Work to enqueue, written in the accept transaction (transactional outbox, R-DLV-1).

    The relay turns due entries into channel jobs; `relayed_at` marks them done. A scheduled send
    waits here until `available_at`."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT)
    request_id = models.BigIntegerField(help_text="SendRequest id in the tenant schema")
    message_ids = models.JSONField()
    available_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    relayed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["available_at"], condition=Q(relayed_at__isnull=True), name="outbox_pending")]

    def __str__(self) -> str:
        return f"outbox {self.pk} ({len(self.message_ids)} messages)"


class CarrierMessageId(models.Model):
    """carrier message id (normalised) → tenant message part; receipts find their message here."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, db_index=False)  # the unique pair leads with it
    carrier_message_id = models.CharField(max_length=80)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT)
    schema_name = models.CharField(max_length=63)
    message_id = models.BigIntegerField()
    part = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "carrier_message_id"], name="carrier_message_id_unique_per_channel"
            )
        ]
        indexes = [models.Index(fields=["carrier_message_id"])]

    def __str__(self) -> str:
        return f"{self.carrier_message_id} → {self.schema_name}:{self.message_id}/{self.part}"


class RecentRecipient(models.Model):
    """Which tenant last sent to a number through an SMSC account (public): a reply to the bare
    source address (no tenant extension) goes to that tenant, so no opt-out is dropped (issue 10,
    R-CMP-4, R-DLV-5). One row per (channel, number), overwritten by each accepted submission."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, db_index=False)  # the unique pair leads with it
    recipient = models.CharField(max_length=20)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "recipient"], name="recent_recipient_unique")]

    def __str__(self) -> str:
        return f"{self.recipient} ← tenant {self.tenant_id}"


class PendingReceipt(models.Model):
    """A receipt that arrived before its carrier id was recorded, or not yet applied (R-DLV-4)."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, null=True, blank=True)
    carrier_message_id = models.CharField(max_length=80)
    stat = models.CharField(max_length=10)
    status = models.CharField(max_length=20)
    err = models.CharField(max_length=10, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    source_addr = models.CharField(max_length=32, blank=True)
    destination_addr = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], condition=Q(applied_at__isnull=True), name="pending_receipt_open"),
            models.Index(fields=["carrier_message_id"], name="pending_receipt_carrier_id"),  # no LIKE copy
        ]

    def __str__(self) -> str:
        return f"receipt {self.carrier_message_id} {self.stat}"


class CallbackState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class CallbackDelivery(models.Model):
    """One event POSTed to a tenant's endpoint, with its retries (visible in the admin)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT)
    url = models.URLField(max_length=500)
    event = models.CharField(max_length=30)
    body = models.TextField()
    state = models.CharField(max_length=20, choices=CallbackState.choices, default=CallbackState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "callback deliveries"
        constraints = [models.CheckConstraint(condition=Q(state__in=CallbackState.values), name="callback_state_valid")]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.state})"


# --- tenant schema: messages (R-DLV-1, R-AUD-1) ------------------------------------------


class MessageStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    SCHEDULED = "scheduled", "Scheduled"
    HELD = "held", "Held for review"
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    UNKNOWN_SUBMISSION = "unknown_submission", "Submission unknown (reconciling)"
    SUBMITTED = "submitted", "Submitted"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown (no receipt)"
    CANCELLED = "cancelled", "Cancelled"


S = MessageStatus
# The one table of allowed moves (R-DLV-1): a final state never goes backwards. `unknown` (no
# receipt in time) still accepts a late receipt, which is a move forward.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.ACCEPTED: frozenset({S.QUEUED, S.SCHEDULED, S.HELD, S.REJECTED, S.CANCELLED, S.FAILED}),
    S.SCHEDULED: frozenset({S.QUEUED, S.CANCELLED, S.FAILED}),
    S.HELD: frozenset({S.ACCEPTED, S.SCHEDULED, S.REJECTED, S.CANCELLED}),  # released by a reviewer
    S.QUEUED: frozenset({S.SUBMITTING, S.QUEUED, S.FAILED, S.CANCELLED}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.QUEUED, S.FAILED, S.UNKNOWN_SUBMISSION}),
    S.UNKNOWN_SUBMISSION: frozenset(
        {S.SUBMITTED, S.QUEUED, S.FAILED, S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED}
    ),
    S.SUBMITTED: frozenset({S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED}),
    S.DELIVERED: frozenset(),
    S.UNDELIVERED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
FINAL_STATES = frozenset(state for state, moves in TRANSITIONS.items() if not moves)


class SendRequest(TenantScoped, models.Model):
    """One API call (single or batch): the idempotency record for client_ref (R-DLV-1)."""

    class Kind(models.TextChoices):
        SINGLE = "single", "Single"
        BATCH = "batch", "Batch"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True)
    body_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(default=202)
    response_body = models.JSONField(default=dict)
    total = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    send_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.pk}"


class Message(TenantScoped, models.Model):
    """One message to one recipient, with everything the send log keeps (R-AUD-1)."""

    request = models.ForeignKey(SendRequest, on_delete=models.PROTECT, related_name="messages")
    client_ref = models.CharField(max_length=64, null=True, blank=True)
    recipient = models.CharField(max_length=20)
    country = models.CharField(max_length=2, blank=True)
    carrier = models.CharField(max_length=20, blank=True)
    province = models.CharField(max_length=40, blank=True)
    signature = models.CharField(max_length=40, blank=True)
    template = models.CharField(max_length=40, blank=True)
    signature_id = models.BigIntegerField(null=True, blank=True)
    template_id = models.BigIntegerField(null=True, blank=True)
    template_version = models.PositiveIntegerField(null=True, blank=True)
    message_type = models.CharField(max_length=20, blank=True)
    params = models.JSONField(default=dict, blank=True)
    content = models.TextField(blank=True)
    encoding = models.CharField(max_length=6, blank=True)
    segments = models.PositiveSmallIntegerField(default=0)
    unit_price = models.BigIntegerField(default=0)
    price_id = models.BigIntegerField(null=True, blank=True)
    amount = models.BigIntegerField(default=0)
    hold_id = models.BigIntegerField(null=True, blank=True)
    #: the UDH reference of a long message, fixed at its first claim: a part resent later carries
    #: the same one, so the handset joins it to the parts the carrier already took (issue 10)
    concat_ref = models.PositiveSmallIntegerField(null=True, blank=True)
    #: parts sent whose answer was lost (link dropped, response timed out): the SMSC may hold them,
    #: so they wait for evidence; the other missing parts were refused or never sent (issue 10)
    unknown_parts = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=MessageStatus.choices, default=MessageStatus.ACCEPTED)
    status_at = models.DateTimeField()
    reason = models.CharField(max_length=60, blank=True, help_text="rejection / failure code")
    detail = models.TextField(blank=True)
    send_at = models.DateTimeField(null=True, blank=True)
    callback_url = models.URLField(max_length=500, blank=True)
    # Routing and submission.
    channel_id = models.BigIntegerField(null=True, blank=True)
    tried_channels = models.JSONField(default=list, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    submitting_at = models.DateTimeField(null=True, blank=True)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=MessageStatus.values), name="message_status_valid")
        ]
        # each status change writes every index again (no HOT update): only those used (issue 16)
        indexes = [
            models.Index(fields=["status", "submitting_at"], name="message_status_submitting"),
            models.Index(fields=["recipient"], name="message_recipient"),
            models.Index(fields=["client_ref"], name="message_client_ref"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} → {self.recipient} ({self.status})"


class MessagePart(TenantScoped, models.Model):
    """One SMPP part of a (possibly long) message: its carrier id and its own receipt."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="parts", db_index=False)  # unique pair
    part = models.PositiveSmallIntegerField()
    parts = models.PositiveSmallIntegerField()
    carrier_message_id = models.CharField(max_length=80)
    #: the id exactly as the SMSC wrote it in submit_sm_resp (carrier_message_id is normalised):
    #: query_sm must repeat it as given (issue 21); empty when only a receipt told us the id
    smsc_message_id = models.CharField(max_length=80, blank=True, default="")
    submitted_at = models.DateTimeField()
    status = models.CharField(max_length=20, default=MessageStatus.SUBMITTED)
    stat = models.CharField(max_length=10, blank=True)
    err = models.CharField(max_length=10, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    #: last query_sm about this part (delivery/query.py): asked again only after the interval
    queried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "part"], name="message_part_unique")]

    def __str__(self) -> str:
        return f"{self.message_id}/{self.part}: {self.carrier_message_id}"


class StatusEvent(TenantScoped, models.Model):
    """Status history of a message (R-AUD-1)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    at = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.from_status} → {self.to_status}"


class InboundMessage(TenantScoped, models.Model):
    """A reply (MO) that reached this tenant (R-DLV-5)."""

    source = models.CharField(max_length=32, db_index=True)
    destination = models.CharField(max_length=32)
    text = models.TextField()
    keyword_action = models.CharField(max_length=20, blank=True)
    channel_id = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"reply from {self.source}"


class SpooledInbound(models.Model):
    """A deliver_sm that was spooled locally during a database outage (delivery/spool.py) and has
    been stored since: its key makes a second replay of the same entry a no-op (issue 21)."""

    key = models.CharField(max_length=64, unique=True)
    applied_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"spooled {self.key}"


# --- service levels and incidents (R-DLV-8): services in delivery/service_levels.py ------------


class ServiceLevelTarget(models.Model):
    """A delivery-rate and/or receipt-latency target for a channel, a tenant, both, or the whole
    platform (neither), evaluated over a sliding window of the send log (R-DLV-8)."""

    name = models.CharField(max_length=100)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    min_delivery_rate = models.DecimalField(
        "minimum delivery rate (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="delivered / settled messages in the window, e.g. 95.00; empty: not watched",
    )
    max_latency_seconds = models.PositiveIntegerField(
        "maximum receipt latency (s)", null=True, blank=True, help_text="at the percentile below; empty: not watched"
    )
    latency_percentile = models.PositiveSmallIntegerField(default=90, help_text="50–99")
    window_minutes = models.PositiveIntegerField(default=60)
    settle_seconds = models.PositiveIntegerField(
        default=600,
        help_text="messages younger than this are not judged yet (a receipt may still come); "
        "at least the latency target",
    )
    min_messages = models.PositiveIntegerField(default=20, help_text="fewer settled messages: no verdict")
    enabled = models.BooleanField(default=True)
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # The last evaluation (the periodic job writes these).
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    breached_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "service-level target"
        constraints = [
            models.CheckConstraint(
                condition=Q(min_delivery_rate__isnull=False) | Q(max_latency_seconds__isnull=False),
                name="sla_target_watches_something",
            ),
            models.CheckConstraint(
                condition=Q(min_delivery_rate__isnull=True) | Q(min_delivery_rate__gte=0, min_delivery_rate__lte=100),
                name="sla_target_rate_is_percent",
            ),
            models.CheckConstraint(
                condition=Q(latency_percentile__gte=50, latency_percentile__lte=99), name="sla_target_percentile_range"
            ),
            models.CheckConstraint(condition=Q(window_minutes__gte=1), name="sla_target_window_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class IncidentState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class IncidentCause(models.TextChoices):
    UNKNOWN = "unknown", "Not yet known"
    PLATFORM = "platform", "The platform's own fault (compensated)"
    CARRIER = "carrier", "Carrier / upstream"
    TENANT = "tenant", "The tenant's side"


class Incident(models.Model):
    """A fault with its impact (R-DLV-8): opened by a breached target or an operator, announced to
    the affected tenants, closed by an operator (recovery notice); the platform's own faults are
    compensated (IncidentCompensation)."""

    title = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=IncidentState.choices, default=IncidentState.OPEN)
    cause = models.CharField(max_length=10, choices=IncidentCause.choices, default=IncidentCause.UNKNOWN)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True, help_text="targets met again (the job saw it)")
    channels = models.ManyToManyField(Channel, blank=True, related_name="+")
    tenants = models.ManyToManyField("tenants.Tenant", blank=True, related_name="+", verbose_name="affected tenants")
    target = models.ForeignKey(
        ServiceLevelTarget, on_delete=models.PROTECT, null=True, blank=True, related_name="incidents"
    )
    impact = models.TextField(blank=True, help_text="what the tenants saw: messages delayed or lost, for how long")
    measurements = models.JSONField(default=dict, blank=True, help_text="the breach that opened it, and the worst seen")
    opened_by_label = models.CharField(max_length=200)
    closed_by_label = models.CharField(max_length=200, blank=True)
    resolution = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [
            ("close_incident", "Can close incidents (R-DLV-8)"),
            ("compensate_incident", "Can compensate tenants for the platform's faults (R-DLV-8)"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=IncidentState.values), name="incident_state_valid"),
            models.CheckConstraint(condition=Q(cause__in=IncidentCause.values), name="incident_cause_valid"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="incident_ends_after_start",
            ),
            # One open incident per target: a breach that lasts updates it, never opens a second.
            models.UniqueConstraint(
                fields=["target"], condition=Q(state="open", target__isnull=False), name="incident_one_open_per_target"
            ),
        ]

    def __str__(self) -> str:
        return f"incident {self.pk}: {self.title}"


class IncidentCompensation(models.Model):
    """Money credited to a tenant for an incident that was the platform's fault (R-DLV-8, R-BIL-5):
    a billing ledger entry (billing.services.adjust), once per incident and tenant."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="compensations")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(help_text="micro-units (1 CNY = 1,000,000)")
    reason = models.TextField()
    ledger_entry_id = models.BigIntegerField(null=True, blank=True, help_text="billing.LedgerEntry id")
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["incident", "tenant"], name="incident_compensation_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="incident_compensation_positive"),
        ]

    def __str__(self) -> str:
        return f"compensation {self.amount} to {self.tenant_id} for incident {self.incident_id}"


# --- the send log's exports and erasure requests (R-AUD-2, R-AUD-4): services in delivery/sendlog/ ---
# Moved from tenants (issue 19); the tables keep their names.


class ExportKind(models.TextChoices):
    SEND_LOG = "send_log", "Send log"
    OPERATION_RECORDS = "operation_records", "Operation records"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"
    JSON = "json", "JSON"


class ExportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """One auditor export (R-AUD-2): who asked, with which filters, how many rows, the file's hash.

    The file lands under MEDIA_ROOT/exports and is only served through a permission-checked admin
    view. Every job is also written to the operation trail (R-AUD-3).
    """

    kind = models.CharField(max_length=30, choices=ExportKind.choices, default=ExportKind.SEND_LOG)
    format = models.CharField(max_length=10, choices=ExportFormat.choices, default=ExportFormat.CSV)
    filters = models.JSONField(default=dict, blank=True)
    full_numbers = models.BooleanField(default=False, help_text="recipient numbers unmasked (view_full_number)")
    state = models.CharField(max_length=20, choices=ExportState.choices, default=ExportState.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="export_jobs"
    )
    requested_by_label = models.CharField(max_length=200)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="the lawful request this export answers")
    background = models.BooleanField(default=False)
    estimated_rows = models.PositiveBigIntegerField(default=0)
    rows_written = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True, help_text="relative to MEDIA_ROOT")
    file_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField("SHA-256", max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tenants_exportjob"
        ordering = ["-created_at", "-id"]
        permissions = [
            ("export_send_log", "Can export send logs (R-AUD-2)"),
            ("view_full_number", "Can see full recipient numbers in send logs and exports (R-AUD-2)"),
            ("export_operation_records", "Can export the operation trail (R-AUD-3)"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=ExportState.values), name="export_job_state_valid"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.kind}, {self.format}, {self.state})"

    @property
    def progress_percent(self) -> int:
        if self.state == ExportState.DONE:
            return 100
        if not self.estimated_rows:
            return 0
        return min(99, int(100 * self.rows_written / self.estimated_rows))


class ErasureState(models.TextChoices):
    WAITING = "waiting", "Waiting for the retention minimum"
    DONE = "done", "Done (rows anonymised)"


class ErasureRequest(models.Model):
    """A recipient's request to delete their data at one tenant (R-AUD-4).

    Message rows are anonymised only once they are older than the retention minimum (R-AUD-1);
    until then the request waits and `not_before` says until when. The number itself is kept
    only while the request waits, then cleared; the keyed hash stays to prove what was erased.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="erasure_requests")
    number = models.CharField(max_length=32, blank=True, help_text="cleared once the erasure is done")
    number_hash = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=20, choices=ErasureState.choices, default=ErasureState.WAITING)
    not_before = models.DateTimeField(null=True, blank=True, help_text="younger rows wait until then")
    requested_by_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    rows_anonymised = models.PositiveBigIntegerField(default=0)
    rows_held = models.PositiveBigIntegerField(default=0, help_text="rows kept by a legal hold (R-AUD-5)")
    created_at = models.DateTimeField(auto_now_add=True)
    last_processed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tenants_erasurerequest"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=ErasureState.values), name="erasure_state_valid"),
        ]

    def __str__(self) -> str:
        return f"erasure {self.pk} at {self.tenant_id} ({self.state})"
