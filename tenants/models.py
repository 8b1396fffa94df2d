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

    auto_create_schema = True
    auto_drop_schema = False  # a tenant's records outlive it (R-AUD-1)

    class Meta:
        permissions = [
            ("change_tenant_state", "Can approve, suspend, reactivate or terminate tenants"),
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


# --- records and audit (issue 6): exports and erasure requests --------------------------------


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

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="erasure_requests")
    number = models.CharField(max_length=32, blank=True, help_text="cleared once the erasure is done")
    number_hash = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=20, choices=ErasureState.choices, default=ErasureState.WAITING)
    not_before = models.DateTimeField(null=True, blank=True, help_text="younger rows wait until then")
    requested_by_label = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    rows_anonymised = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_processed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=ErasureState.values), name="erasure_state_valid"),
        ]

    def __str__(self) -> str:
        return f"erasure {self.pk} at {self.tenant_id} ({self.state})"
