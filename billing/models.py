"""Billing records: accounts, the ledger, holds, prices, packages, invoices, refunds, disputes,
dormancy cases. All in the public schema (money is reconciled platform-wide), each with a tenant
(or account) foreign key. R-BIL-1..9, R-TEN-4/5.

Money is integer micro-units (1 CNY = 1_000_000) in BigIntegerFields. See docs/billing.md for
the money flow (balance / held buckets).
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from smsplatform.message_types import MessageType

from .money import format_money


class Currency(models.TextChoices):
    """R-BIL-1/8: one currency per account; prices and packages say theirs, and a booking in
    another currency is refused (never converted)."""

    CNY = "CNY", "Chinese yuan"
    USD = "USD", "US dollar"
    EUR = "EUR", "Euro"
    HKD = "HKD", "Hong Kong dollar"


class Plan(models.Model):
    """A price list. Tenants without an explicit plan use the default plan (R-BIL-4)."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="billing_one_default_plan"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (default)' if self.is_default else ''}"


class Price(models.Model):
    """Unit price per segment for a message type and destination, from `effective_from` (R-BIL-4).

    Rows are never edited: a change is a new row announced at least 7 days ahead (enforced by
    billing.services.announce_price and the admin form); history is kept.
    """

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="prices")
    message_type = models.CharField(max_length=20, choices=MessageType.choices)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. CN")
    carrier = models.CharField(max_length=50, blank=True, default="", help_text="empty = any carrier")
    unit_price = models.BigIntegerField(help_text="micro-units per segment")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    effective_from = models.DateTimeField()
    announced_at = models.DateTimeField(default=timezone.now)
    announced_by = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["plan", "message_type", "country", "carrier", "-effective_from"])]
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="billing_price_not_negative"),
            models.CheckConstraint(
                condition=Q(effective_from__gte=F("announced_at")), name="billing_price_not_backdated"
            ),
            models.CheckConstraint(condition=Q(message_type__in=MessageType.values), name="billing_price_type_valid"),
            models.CheckConstraint(condition=Q(currency__in=Currency.values), name="billing_price_currency_valid"),
            models.UniqueConstraint(
                fields=["plan", "message_type", "country", "carrier", "effective_from"],
                name="billing_price_unique_start",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.country}/{self.carrier}" if self.carrier else self.country
        return f"{self.plan.code} {self.message_type} {where} {format_money(self.unit_price, self.currency)} from {self.effective_from:%Y-%m-%d}"


class Account(models.Model):
    """One prepaid account per tenant (R-BIL-1), created lazily by services.account_for().

    `balance` (spendable cash) and `held` (cash reserved by holds) are caches of the ledger sums
    (sum(amount), sum(held_delta)); they change only under this row's lock, and the database
    refuses either going negative (R-BIL-9).
    """

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.PROTECT, related_name="billing_account")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    balance = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts")
    # R-BIL-6: low-balance alert.
    low_balance_threshold = models.BigIntegerField(null=True, blank=True)
    low_balance_alerted = models.BooleanField(default=False)
    alert_webhook_url = models.URLField(blank=True)
    alert_webhook_secret = models.CharField(max_length=300, blank=True, help_text="encrypted at rest")
    # R-TEN-5: end of the paid service term (null: no term set).
    service_expires_at = models.DateTimeField(null=True, blank=True)
    # R-BIL-5 / R-CMP-6: after a forfeit or a refund, money released by holds still in flight is
    # swept the same way (forfeited / refunded) instead of reappearing on the balance.
    sweep = models.CharField(
        max_length=20, blank=True, choices=[("", "none"), ("forfeit", "forfeit"), ("refund", "refund")]
    )
    sweep_reference = models.CharField(max_length=200, blank=True)
    sweep_until_hold = models.BigIntegerField(null=True, blank=True, help_text="holds up to this id are swept")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="billing_account_balance_not_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="billing_account_held_not_negative"),
            models.CheckConstraint(condition=Q(currency__in=Currency.values), name="billing_account_currency_valid"),
        ]
        permissions = [
            ("topup_account", "Can book top-ups and package purchases"),
            ("refund_account", "Can refund an account"),
            ("forfeit_account", "Can forfeit balance and packages"),
            ("penalize_account", "Can book penalties"),
            ("adjust_account", "Can book manual adjustments"),
            ("view_statement", "Can view statements"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} {format_money(self.balance, self.currency)}"


class EntryKind(models.TextChoices):
    TOPUP = "topup", "Top-up"
    PACKAGE = "package", "Package purchase"
    HOLD = "hold", "Hold"
    CAPTURE = "capture", "Capture (charge)"
    RELEASE = "release", "Release"
    REFUND = "refund", "Refund"
    FORFEIT = "forfeit", "Forfeit"
    PENALTY = "penalty", "Penalty"
    COMPENSATION = "compensation", "Compensation"
    ADJUST = "adjust", "Adjustment"
    COLLECTION = "collection", "Receivable collected"


class LedgerEntry(models.Model):
    """An immutable movement of money (R-BIL-9). A trigger refuses UPDATE and DELETE (0002).

    `amount` moves spendable cash (the balance), `held_delta` moves the held bucket:
    hold (-x, +x), capture (0, -x), release (+x, -x), top-up (+x, 0), refund/penalty/forfeit (-x, 0).
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    amount = models.BigIntegerField()
    held_delta = models.BigIntegerField(default=0)
    balance_after = models.BigIntegerField()
    held_after = models.BigIntegerField()
    reference = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    actor_kind = models.CharField(max_length=20)
    actor_label = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=200, unique=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="billing_entry_kind_valid"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0) & Q(held_after__gte=0), name="billing_entry_after_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {format_money(self.amount)} ({self.reference or self.idempotency_key})"


class HoldState(models.TextChoices):
    HELD = "held", "Held"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"


class Hold(models.Model):
    """Funds reserved for one accepted message (R-BIL-2): captured when the carrier accepts it,
    released when it fails before that. `amount` is the cash part (cash_segments * unit_price);
    `package_segments` came from packages (HoldPackageUse says which)."""

    # no index of its own: the (account, …) indexes below serve it (issue 16: a hold is written
    # twice per message, each index takes an entry each time)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds", db_index=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="billing_holds")
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="holds")
    reference = models.CharField(max_length=200)
    message_type = models.CharField(max_length=20, blank=True)
    segments = models.PositiveIntegerField()
    package_segments = models.PositiveIntegerField(default=0)
    unit_price = models.BigIntegerField()
    amount = models.BigIntegerField()
    price = models.ForeignKey(Price, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    state = models.CharField(max_length=10, choices=HoldState.choices, default=HoldState.HELD)
    # What the capture billed (R-BIL-2/8): the segments the carrier accepted, the cash and the
    # package segments they took. The rest of the hold was released in the same booking.
    captured_segments = models.PositiveIntegerField(default=0)
    charged = models.BigIntegerField(default=0)
    package_charged = models.PositiveIntegerField(default=0)
    carrier_message_id = models.CharField(max_length=100, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "state", "settled_at"]),
            models.Index(fields=["account", "created_at"]),
            models.Index(fields=["reference"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=HoldState.values), name="billing_hold_state_valid"),
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(unit_price__gte=0) & Q(package_segments__lte=F("segments")),
                name="billing_hold_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(captured_segments__lte=F("segments"))
                & Q(package_charged__lte=F("captured_segments"))
                & Q(charged__gte=0),
                name="billing_hold_capture_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.state} {format_money(self.amount)}"


class PackageProduct(models.Model):
    """What operators sell: N segments valid for D days, optionally only for some message types (R-BIL-3)."""

    name = models.CharField(max_length=100)
    segments = models.PositiveIntegerField()
    price = models.BigIntegerField(help_text="micro-units")
    validity_days = models.PositiveIntegerField()
    message_types = models.JSONField(default=list, blank=True, help_text="empty = every type")
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.CNY)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(price__gte=0), name="billing_product_price_not_negative")]

    def __str__(self) -> str:
        return f"{self.name} ({self.segments} segments, {self.validity_days} days)"


class PackageState(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    FORFEITED = "forfeited", "Forfeited"
    REFUNDED = "refunded", "Unused value refunded"


class PackageGrant(models.Model):
    """Segments a tenant bought. Used before cash, soonest-expiring first; never refunded (R-BIL-3)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="packages")
    product = models.ForeignKey(PackageProduct, on_delete=models.PROTECT, related_name="grants")
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    segments_total = models.PositiveIntegerField()
    segments_remaining = models.IntegerField()
    message_types = models.JSONField(default=list, blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=PackageState.choices, default=PackageState.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "state", "expires_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(segments_remaining__gte=0) & Q(segments_remaining__lte=F("segments_total")),
                name="billing_package_remaining_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.name}: {self.segments_remaining}/{self.segments_total} until {self.expires_at:%Y-%m-%d}"


class HoldPackageUse(models.Model):
    """How many segments of which package a hold took (a release gives back exactly these)."""

    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, related_name="package_uses")
    grant = models.ForeignKey(PackageGrant, on_delete=models.PROTECT, related_name="uses")
    segments = models.PositiveIntegerField()
    returned = models.PositiveIntegerField(default=0, help_text="segments given back (release, refused parts)")

    def __str__(self) -> str:
        return f"{self.hold_id} ← {self.grant_id} × {self.segments}"


class InvoiceState(models.TextChoices):
    ISSUED = "issued", "Issued"
    RETURNED = "returned", "Returned"


class Invoice(models.Model):
    """An invoice (发票) issued against a top-up (R-BIL-7). A refund waits until issued invoices
    are returned (R-BIL-5)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    number = models.CharField(max_length=50, unique=True)
    amount = models.BigIntegerField()
    state = models.CharField(max_length=10, choices=InvoiceState.choices, default=InvoiceState.ISSUED)
    issued_at = models.DateTimeField(default=timezone.now)
    returned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("issue_invoice", "Can issue invoices and mark them returned")]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="billing_invoice_amount_positive")]

    def __str__(self) -> str:
        return f"{self.number} {format_money(self.amount)} {self.state}"


class RefundCause(models.TextChoices):
    PLATFORM_ENDED = "platform_ended", "Platform ended the service"
    PLATFORM_BREACH = "platform_breach", "Platform in breach"
    CUSTOMER_ENDED = "customer_ended", "Customer ended the service"
    VIOLATION = "violation", "Terminated for a violation"


REFUNDABLE_CAUSES = frozenset({RefundCause.PLATFORM_ENDED, RefundCause.PLATFORM_BREACH})


class RefundState(models.TextChoices):
    WAITING_INVOICES = "waiting_invoices", "Waiting for invoices to be returned"
    COMPLETED = "completed", "Completed"


class Refund(models.Model):
    """A refund of the remaining cash balance (R-BIL-5). Packages are never refunded."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="refunds")
    cause = models.CharField(max_length=20, choices=RefundCause.choices)
    reason = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=RefundState.choices)
    amount = models.BigIntegerField(default=0)
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=200, unique=True)
    requested_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refund {self.account.tenant} {self.cause} {self.state}"


class DisputeState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    REJECTED = "rejected", "Rejected"


class Dispute(models.Model):
    """A tenant disputes its bill for a month, within that month (R-BIL-8)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="disputes")
    month = models.DateField(help_text="first day of the disputed month")
    description = models.TextField()
    state = models.CharField(max_length=10, choices=DisputeState.choices, default=DisputeState.OPEN)
    compensation = models.BigIntegerField(default=0)
    resolution = models.TextField(blank=True)
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("resolve_dispute", "Can resolve bill disputes")]
        constraints = [models.CheckConstraint(condition=Q(compensation__gte=0), name="billing_dispute_compensation_ok")]

    def __str__(self) -> str:
        return f"dispute {self.account.tenant} {self.month:%Y-%m} {self.state}"


class DormancyKind(models.TextChoices):
    IDLE = "idle", "No use for 90 days"
    IDLE_EXPIRED = "idle_expired", "No use for 180 days after the paid service expired"
    NO_LOGIN = "no_login", "No login or API call for 12 months"
    PACKAGE_IDLE = "package_idle", "Package credits idle for 6 months"


class DormancyState(models.TextChoices):
    NOTIFIED = "notified", "Notified, waiting for the notice period"
    ACTED = "acted", "Acted"
    RESOLVED = "resolved", "Resolved (used again)"
    CANCELLED = "cancelled", "Cancelled by an operator"


class DormancyCase(models.Model):
    """A dormancy candidate found by the daily job (R-TEN-4, R-BIL-3): notified first, acted on
    after the notice period, every step recorded."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="dormancy_cases")
    kind = models.CharField(max_length=20, choices=DormancyKind.choices)
    state = models.CharField(max_length=10, choices=DormancyState.choices, default=DormancyState.NOTIFIED)
    last_use_at = models.DateTimeField(null=True, blank=True)
    found_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    act_after = models.DateTimeField()
    acted_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    # R-BIL-3: an idle-package case is about one package, on that package's own clock.
    package = models.ForeignKey(
        PackageGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="dormancy_cases"
    )

    class Meta:
        permissions = [("manage_dormancy", "Can cancel or act on dormancy cases")]
        constraints = [
            # one open case per tenant and kind (per package for idle packages)
            models.UniqueConstraint(
                fields=["tenant", "kind"],
                condition=Q(state="notified", package__isnull=True),
                name="billing_one_open_dormancy_case",
            ),
            models.UniqueConstraint(
                fields=["package"],
                condition=Q(state="notified", package__isnull=False),
                name="billing_one_open_package_case",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} {self.kind} {self.state}"


class PlanAssignment(models.Model):
    """Which plan a tenant pays by, from when (R-BIL-4). `account` null = the default plan for
    every account without its own assignment. Rows are never edited: a change is a new row,
    announced at least 7 days ahead (billing.services.prices)."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="plan_assignments"
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="assignments", help_text="null: the default"
    )
    effective_from = models.DateTimeField()
    announced_at = models.DateTimeField(default=timezone.now)
    announced_by = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "-effective_from"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_from__gte=F("announced_at")), name="billing_assignment_not_backdated"
            ),
            models.CheckConstraint(
                condition=Q(account__isnull=False) | Q(plan__isnull=False), name="billing_default_assignment_has_plan"
            ),
        ]

    def __str__(self) -> str:
        who = self.account.tenant if self.account_id else "default"
        return f"{who} → {self.plan.code if self.plan_id else 'default'} from {self.effective_from:%Y-%m-%d}"


class ReceivableState(models.TextChoices):
    OPEN = "open", "Open"
    SETTLED = "settled", "Settled"


class Receivable(models.Model):
    """What a tenant owes beyond its balance (a penalty the balance could not cover, R-CMP-6).
    Collected from the next top-ups (an entry of kind `collection`), shown on the statement."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="receivables")
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    collected = models.BigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=ReceivableState.choices, default=ReceivableState.OPEN)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "state"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0) & Q(collected__gte=0) & Q(collected__lte=F("amount")),
                name="billing_receivable_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.tenant} owes {format_money(self.amount - self.collected)}"

    @property
    def outstanding(self) -> int:
        return self.amount - self.collected
