"""Tenants (customers), their domains, API keys and the platform's operation records.

All of these live in the public schema. R-TEN-1..3, R-AUD-3.
"""

from django.conf import settings
from django.core.management import call_command
from django.db import connection, models, transaction
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name


class TenantState(models.TextChoices):
    PENDING = "pending", "Pending review"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"


# R-TEN-3: terminated is final ("封号且不再开通").
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TenantState.PENDING: frozenset({TenantState.ACTIVE, TenantState.TERMINATED}),
    TenantState.ACTIVE: frozenset({TenantState.SUSPENDED, TenantState.TERMINATED}),
    TenantState.SUSPENDED: frozenset({TenantState.ACTIVE, TenantState.TERMINATED}),
    TenantState.TERMINATED: frozenset(),
}


class TenantKind(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    INDIVIDUAL = "individual", "Individual developer"
    PLATFORM = "platform", "Platform (public schema)"


class Tenant(TenantMixin):
    """A customer with its own schema and its real-name profile (R-TEN-1)."""

    name = models.CharField("legal name", max_length=200)
    kind = models.CharField(max_length=20, choices=TenantKind.choices, default=TenantKind.ENTERPRISE)
    # Business licence (统一社会信用代码) or ID number. Unique forever: a terminated tenant's
    # number can never register again (R-TEN-3).
    licence_number = models.CharField(max_length=64, unique=True, null=True, blank=True)
    contact_name = models.CharField(max_length=100, blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    contact_email = models.EmailField(blank=True)
    state = models.CharField(max_length=20, choices=TenantState.choices, default=TenantState.PENDING)
    state_reason = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last login or API call, for dormancy (R-TEN-4).
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # R-TEN-5: when the tenant was first told its service ends (term expiring, or the bought
    # messages used up); the end comes no sooner than the notice period after it. Cleared on
    # renewal or when funds are back. The term itself is billing.Account.service_expires_at.
    service_end_noticed_at = models.DateTimeField(null=True, blank=True)
    service_end_cause = models.CharField(
        max_length=10, blank=True, help_text="what that notice announced: expiring, expired or used_up"
    )

    auto_create_schema = True
    auto_drop_schema = False  # a tenant's records outlive it (R-AUD-1)

    class Meta:
        permissions = [
            ("change_tenant_state", "Can approve, suspend, reactivate or terminate tenants"),
            ("renew_service_term", "Can renew a tenant's service term (R-TEN-5)"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=TenantState.values), name="tenant_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.schema_name})"

    @property
    def is_active(self) -> bool:
        return self.state == TenantState.ACTIVE

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """Clone the template schema (fast path) when it exists; else django-tenants' migrate."""
        from django_tenants.utils import schema_exists

        from smsplatform.tenancy import clone_template_schema

        template = settings.TENANT_BASE_SCHEMA
        if self.schema_name == get_public_schema_name() or not sync_schema or not schema_exists(template):
            return super().create_schema(check_if_exists, sync_schema, verbosity)
        if check_if_exists and schema_exists(self.schema_name):
            return False
        with transaction.atomic():
            clone_template_schema(self.schema_name)
            # A no-op when the template is current; catches up if someone migrated without
            # refreshing it (manage.py bootstrap does both).
            call_command("migrate_schemas", schema_name=self.schema_name, interactive=False, verbosity=0)
        connection.set_schema_to_public()
        return True


class Domain(DomainMixin):
    """Host names of a tenant. The API does not route by host (API keys pick the tenant)."""

    def __str__(self) -> str:
        return self.domain


class ApiKey(models.Model):
    """An access key id + secret pair (R-TEN-2).

    The secret is shown once. It is stored as a SHA-256 hash for plain-header authentication and,
    for HMAC-signed requests (which need the secret itself), encrypted with a key-encryption key
    that lives outside the database (settings.API_KEY_KEK). A database dump reveals neither.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    access_key_id = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    secret_encrypted = models.BinaryField()
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Rotation may keep the old key valid for a grace period; revocation ends it at once.
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "API key"
        permissions = [("manage_api_keys", "Can issue, rotate and revoke API keys")]

    def __str__(self) -> str:
        return self.access_key_id


class ApiNonce(models.Model):
    """Nonces of HMAC-signed requests seen within the freshness window (replay refused)."""

    access_key_id = models.CharField(max_length=32)
    nonce = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["access_key_id", "nonce"], name="api_nonce_once"),
        ]


class OperationRecord(models.Model):
    """Append-only trail of operator actions and customer writes (R-AUD-3).

    A database trigger refuses UPDATE and DELETE (migration 0002).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=20)  # user | api_key | system
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="operation_records"
    )
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"


# --- issue 18: what the agreements say we owe customers and authorities --------------------------
# Notices (R-DLV-7), re-confirmation of held volume (R-CMP-8), terms (R-TEN-7), qualifications
# (R-TEN-6), legal holds and evidence packages (R-AUD-5). Services: tenants/notices.py,
# tenants/terms.py, tenants/qualifications.py, tenants/legal_hold.py.


class NoticeKind(models.TextChoices):
    COMPLAINT = "complaint", "Complaint filed (R-CMP-7)"
    PRICE_CHANGE = "price_change", "Price change (R-BIL-4)"
    MAINTENANCE = "maintenance", "Maintenance (R-DLV-6)"
    FUNCTION_CHANGE = "function_change", "Function change that may interrupt service"
    INCIDENT = "incident", "Incident"
    RECOVERY = "recovery", "Recovery"
    VOLUME_HELD = "volume_held", "Volume held for re-confirmation (R-CMP-8)"
    TERMS_CHANGE = "terms_change", "Terms change (R-TEN-7)"
    QUALIFICATION = "qualification", "Qualification expiring or update due (R-TEN-6)"
    LOW_BALANCE = "low_balance", "Low balance (R-BIL-6)"
    DORMANCY = "dormancy", "Dormancy (R-TEN-4)"
    SERVICE_TERM = "service_term", "Service term ending (R-TEN-5)"
    TERMINATION = "termination", "After termination (R-TEN-8)"
    GENERAL = "general", "General announcement"


class NoticeBroadcast(models.Model):
    """A notice an operator composed for all tenants or a selection (R-DLV-7)."""

    kind = models.CharField(max_length=30, choices=NoticeKind.choices, default=NoticeKind.GENERAL)
    subject_zh = models.CharField("subject (Chinese)", max_length=200)
    subject_en = models.CharField("subject (English)", max_length=200)
    body_zh = models.TextField("text (Chinese)")
    body_en = models.TextField("text (English)")
    effective_at = models.DateTimeField(null=True, blank=True, help_text="when the announced change takes effect")
    all_tenants = models.BooleanField(default=False, help_text="every active or suspended tenant")
    tenants = models.ManyToManyField(Tenant, blank=True, related_name="+")
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    notice_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("broadcast_notice", "Can compose and send notices to tenants (R-DLV-7)")]

    def __str__(self) -> str:
        return f"broadcast {self.pk}: {self.subject_en}"


class Notice(models.Model):
    """One thing a tenant must be told (R-DLV-7), in Chinese and English, with its deliveries."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="notices")
    kind = models.CharField(max_length=30, choices=NoticeKind.choices)
    subject_zh = models.CharField(max_length=200)
    subject_en = models.CharField(max_length=200)
    body_zh = models.TextField()
    body_en = models.TextField()
    data = models.JSONField(default=dict, blank=True, help_text="machine-readable details (ids, dates)")
    effective_at = models.DateTimeField(null=True, blank=True)
    # One notice per duty occurrence ("complaint:12"): a retried job never tells twice.
    dedupe_key = models.CharField(max_length=120, blank=True)
    broadcast = models.ForeignKey(
        NoticeBroadcast, on_delete=models.PROTECT, null=True, blank=True, related_name="notices"
    )
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=NoticeKind.values), name="notice_kind_valid"),
            models.UniqueConstraint(
                fields=["tenant", "dedupe_key"], condition=~models.Q(dedupe_key=""), name="notice_dedupe_once"
            ),
        ]

    def __str__(self) -> str:
        return f"notice {self.pk} {self.kind} → {self.tenant_id}"


class NoticeChannel(models.TextChoices):
    INBOX = "inbox", "API inbox"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class NoticeDeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (no address)"


class NoticeDelivery(models.Model):
    """One channel of one notice and what happened to it (R-DLV-7: a record of delivery).

    A webhook delivery is a delivery.CallbackDelivery (signed, SSRF-guarded, retried like status
    callbacks); `callback_id` points at it and `refresh_webhook_deliveries` copies its outcome."""

    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=NoticeChannel.choices)
    address = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=10, choices=NoticeDeliveryState.choices, default=NoticeDeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    callback_id = models.BigIntegerField(null=True, blank=True, help_text="delivery.CallbackDelivery id")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "notice deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notice", "channel"], name="notice_delivery_once_per_channel"),
            models.CheckConstraint(
                condition=models.Q(state__in=NoticeDeliveryState.values), name="notice_delivery_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} of notice {self.notice_id} ({self.state})"


class ReconfirmationAnswer(models.TextChoices):
    CONFIRM = "confirm", "Confirmed: release"
    CANCEL = "cancel", "Cancelled"


class Reconfirmation(models.Model):
    """A tenant's answer to held volume (R-CMP-8): release or cancel the spike-held messages."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="reconfirmations")
    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    answer = models.CharField(max_length=10, choices=ReconfirmationAnswer.choices)
    message_ids = models.JSONField(default=list)
    message_count = models.PositiveIntegerField(default=0)
    comment = models.TextField(blank=True)
    answered_by_label = models.CharField(max_length=200)
    answered_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-answered_at", "-id"]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.answer} {self.message_count} held messages"


class HoldBasis(models.TextChoices):
    VIOLATION = "violation", "Violation"
    COMPLAINT = "complaint", "Complaint"
    DISPUTE = "dispute", "Dispute"
    AUTHORITY_REQUEST = "authority_request", "Authority request"


class HoldScope(models.TextChoices):
    TENANT = "tenant", "Everything of the tenant"
    MESSAGES = "messages", "Listed messages"
    NUMBER = "number", "One recipient number (optionally a time range)"


class LegalHold(models.Model):
    """Records kept past the purge and erasure until released (R-AUD-5)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="legal_holds")
    basis = models.CharField(max_length=20, choices=HoldBasis.choices)
    reference = models.CharField(max_length=200, help_text="violation id, complaint id, request number…")
    scope = models.CharField(max_length=10, choices=HoldScope.choices)
    message_ids = models.JSONField(default=list, blank=True)
    number = models.CharField(max_length=32, blank=True)
    from_at = models.DateTimeField(null=True, blank=True)
    to_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField()
    placed_by_label = models.CharField(max_length=200)
    placed_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by_label = models.CharField(max_length=200, blank=True)
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        permissions = [
            ("place_legal_hold", "Can place legal holds (R-AUD-5)"),
            ("release_legal_hold", "Can release legal holds (R-AUD-5)"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(basis__in=HoldBasis.values), name="legal_hold_basis_valid"),
            models.CheckConstraint(condition=models.Q(scope__in=HoldScope.values), name="legal_hold_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"hold {self.pk} ({self.basis} {self.reference}) on {self.tenant_id}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class EvidencePackage(models.Model):
    """An evidence package for a lawful request (R-AUD-5): file, its SHA-256 and the hand-over."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="evidence_packages")
    hold = models.ForeignKey(LegalHold, on_delete=models.PROTECT, related_name="evidence_packages")
    violation_id = models.BigIntegerField(null=True, blank=True, help_text="compliance.Violation id")
    request_reference = models.CharField(max_length=200, help_text="the lawful request's number")
    authority = models.CharField(max_length=200)
    file_name = models.CharField(max_length=200, help_text="relative to MEDIA_ROOT")
    file_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField("SHA-256", max_length=64)
    message_count = models.PositiveIntegerField(default=0)
    compiled_by_label = models.CharField(max_length=200)
    compiled_at = models.DateTimeField(auto_now_add=True)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    handed_over_to = models.CharField(max_length=200, blank=True, help_text="officer, unit and case number")
    handover_method = models.CharField(max_length=100, blank=True)
    handed_over_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-compiled_at", "-id"]
        permissions = [
            ("compile_evidence", "Can compile evidence packages (R-AUD-5)"),
            ("hand_over_evidence", "Can record the hand-over of evidence packages (R-AUD-5)"),
        ]

    def __str__(self) -> str:
        return f"evidence {self.pk} for {self.request_reference}"


class TermsVersion(models.Model):
    """One version of the service agreement (R-TEN-7)."""

    version = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=200)
    body_zh = models.TextField("text (Chinese)")
    body_en = models.TextField("text (English)")
    published_at = models.DateTimeField(null=True, blank=True)
    effective_at = models.DateTimeField(null=True, blank=True)
    objection_deadline = models.DateTimeField(null=True, blank=True)
    created_by_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("publish_terms", "Can publish agreement versions (R-TEN-7)")]

    def __str__(self) -> str:
        return f"terms {self.version}"


class TermsAnswer(models.TextChoices):
    ACCEPT = "accept", "Accepted"
    OBJECT = "object", "Objected"


class TermsResponse(models.Model):
    """A tenant's acceptance of, or objection to, a terms version (R-TEN-7)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="terms_responses")
    terms = models.ForeignKey(TermsVersion, on_delete=models.PROTECT, related_name="responses")
    answer = models.CharField(max_length=10, choices=TermsAnswer.choices)
    comment = models.TextField(blank=True)
    answered_by_label = models.CharField(max_length=200)
    answered_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="operator closed the objection")
    resolved_by_label = models.CharField(max_length=200, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-answered_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "terms"], name="terms_response_once")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.answer} {self.terms_id}"


class QualificationKind(models.TextChoices):
    BUSINESS_LICENCE = "business_licence", "Business licence"
    INDUSTRY_PERMIT = "industry_permit", "Industry permit"
    OTHER = "other", "Other"


class QualificationStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Qualification(models.Model):
    """A business licence or industry permit filed by a tenant for review (R-TEN-6)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="qualifications")
    kind = models.CharField(max_length=20, choices=QualificationKind.choices)
    title = models.CharField(max_length=200)
    number = models.CharField(max_length=100, blank=True)
    file = models.FileField(upload_to="qualifications/%Y/%m/")
    expires_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=QualificationStatus.choices, default=QualificationStatus.PENDING)
    review_reason = models.TextField(blank=True)
    reviewed_by_label = models.CharField(max_length=200, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    filed_by_label = models.CharField(max_length=200)
    filed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-filed_at", "-id"]
        permissions = [("review_qualification", "Can approve or reject qualifications (R-TEN-6)")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=QualificationStatus.values), name="qualification_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.tenant_id} ({self.status})"


# --- after termination (R-TEN-8): services in tenants/after_termination.py ----------------------


class AfterTerminationState(models.TextChoices):
    OPEN = "open", "Export pending"
    EXPORTED = "exported", "Exported; waiting for the retention duties to end"
    DELETED = "deleted", "Schema and personal data deleted"


class AfterTermination(models.Model):
    """What happens to a terminated tenant's data (R-TEN-8): the export handed back, then the
    deletion of its schema and personal data once R-AUD-1 (six calendar months) and R-AUD-5
    (legal holds) allow. The Tenant row stays (its licence number may never register again)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="after_termination")
    state = models.CharField(max_length=10, choices=AfterTerminationState.choices, default=AfterTerminationState.OPEN)
    terminated_at = models.DateTimeField()
    export_file = models.CharField(max_length=200, blank=True, help_text="relative to MEDIA_ROOT")
    export_sha256 = models.CharField("export SHA-256", max_length=64, blank=True)
    export_size = models.PositiveBigIntegerField(default=0)
    export_counts = models.JSONField(default=dict, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    last_record_at = models.DateTimeField(null=True, blank=True, help_text="youngest send-log row or reply")
    delete_after = models.DateTimeField(null=True, blank=True, help_text="R-AUD-1: not before")
    blocked_reason = models.TextField(blank=True, help_text="why the deletion waits (legal hold…)")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deletion_summary = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "after termination"
        verbose_name_plural = "after termination"
        permissions = [("download_termination_export", "Can download a terminated tenant's data export (R-TEN-8)")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=AfterTerminationState.values), name="after_termination_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"after termination of {self.tenant_id} ({self.state})"


class RegistrationUpdateDuty(models.Model):
    """R-TEN-6 (002 §4.1.2): after its registration data changed, a tenant updates them here
    within 10 working days; reminders before the deadline, operators told when it passes."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="registration_update_duties")
    changed_on = models.DateField(help_text="when the registration (licence, name, address…) changed")
    source = models.CharField(max_length=20, default="operator", help_text="operator | qualification")
    note = models.TextField(blank=True)
    due_at = models.DateTimeField(help_text="end of the 10th working day after the change")
    remind_at = models.DateTimeField()
    opened_by_label = models.CharField(max_length=200)
    opened_at = models.DateTimeField(auto_now_add=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(null=True, blank=True, help_text="when operators were told it was overdue")
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    fulfilled_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=models.Q(fulfilled_at__isnull=True), name="registration_update_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"registration update of {self.tenant_id} (changed {self.changed_on})"
