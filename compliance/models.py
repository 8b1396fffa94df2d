"""Compliance records (R-CMP-1..9).

Public schema (platform records, reviewed and enforced across tenants): signatures and their proofs,
templates and their versions, banned-content rules, the platform block list, violations,
enforcement actions, complaints, per-tenant compliance settings and volume counters.
Tenant schema (the customer's PII): opt-outs (+ removal records) and consents.
"""

import uuid

from django.db import models

from smsplatform.message_types import MessageType
from smsplatform.tenancy import TenantScoped


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    # An operator took an approval back (R-CMP-1, R-CMP-2): sends stop at once.
    REVOKED = "revoked", "Revoked"


class RevocableMixin(models.Model):
    """Who took an approval back, when and why (R-CMP-1, R-CMP-2)."""

    revoked_reason = models.TextField(blank=True, default="", db_default="")
    revoked_by = models.CharField(max_length=200, blank=True, default="", db_default="")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


# --- R-CMP-1 signatures ----------------------------------------------------------------------


class Signature(RevocableMixin, models.Model):
    """A brand a tenant sends under, shown as 【text】. Only approved ones send (R-CMP-1)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="signatures")
    text = models.CharField(max_length=20)
    # The text folded for comparison (width, case, spaces and punctuation ignored): "ＢｉｇＢａｎｋ",
    # "big bank" and "BigBank" are the same brand when looking for impersonation.
    match_key = models.CharField(max_length=40, db_index=True, default="")
    purpose = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    review_reason = models.TextField(blank=True)
    reviewed_by = models.CharField(max_length=200, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Set at filing when the brand (normalised) is approved for another tenant or names a protected
    # brand (possible impersonation, R-CMP-1); approving it then needs a reason.
    impersonation_suspected = models.BooleanField(default=False)
    flag_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("review_signature", "Can approve or reject signatures")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ReviewStatus.values), name="signature_status_valid"),
            # One live filing per brand per tenant.
            models.UniqueConstraint(
                fields=["tenant", "text"],
                condition=models.Q(status__in=["pending", "approved"]),
                name="signature_one_live_per_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"【{self.text}】"


class SignatureProof(models.Model):
    """A document proving the right to use the brand (licence, trademark, authorisation letter)."""

    signature = models.ForeignKey(Signature, on_delete=models.CASCADE, related_name="proofs")
    file = models.FileField(upload_to="signature-proofs/%Y/%m/")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.file.name


# --- R-CMP-2 templates -----------------------------------------------------------------------


class Template(models.Model):
    """A tenant's template, identified by its code; the text lives in versions (R-CMP-2).

    `approved_version` is the one that sends; a revision is a new pending version meanwhile.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="templates")
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    message_type = models.CharField(max_length=20, choices=MessageType.choices)
    approved_version = models.ForeignKey(
        "TemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("review_template", "Can approve or reject templates")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class TemplateVersion(RevocableMixin, models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    # {"code": {"kind": "code"}, "name": {"kind": "text", "max_length": 10}, ...}
    variables = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING)
    review_reason = models.TextField(blank=True)
    reviewed_by = models.CharField(max_length=200, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # Banned-content rules with action "hold" that matched at filing (R-CMP-3), for the reviewer.
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_unique"),
            models.CheckConstraint(
                condition=models.Q(status__in=ReviewStatus.values), name="template_version_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.code} v{self.number}"


# --- R-CMP-3 banned content ------------------------------------------------------------------


class RuleCategory(models.TextChoices):
    NINE_PROHIBITIONS = "nine_prohibitions", "Nine prohibitions (九不准)"
    BANK_FRAUD = "bank_fraud", "Fraud impersonating banks"
    GAMBLING = "gambling", "Gambling"
    PORNOGRAPHY = "pornography", "Pornography"
    VIOLENCE = "violence", "Violence"
    WEAPONS_DRUGS_INVOICES = "weapons_drugs_invoices", "Weapons / drugs / counterfeit invoices"
    FAKE_PRIZES_JOBS_MARRIAGE = "fake_prizes_jobs_marriage", "Fake prizes / jobs / marriage"
    PROSTITUTION = "prostitution", "Prostitution"
    POLITICAL = "political", "Political content"
    SP_DECEPTIVE = "sp_deceptive", "SP deceptive subscription"
    THIRD_PARTY_ADS = "third_party_ads", "Third-party ads"
    UNSOLICITED_ADS = "unsolicited_ads", "Unsolicited real-estate / invoice / immigration ads"
    FINANCIAL_MARKETING = "financial_marketing", "Financial marketing"
    # Seed 003: harassing, defaming, insulting, threatening messages; inciting or teaching crime.
    HARASSMENT = "harassment", "Harassment / insults / threats / defamation"
    CRIME_INSTIGATION = "crime_instigation", "Inciting or teaching crime"


class RuleKind(models.TextChoices):
    KEYWORD = "keyword", "Keyword"
    NEAR = "near", "Near phrase (parts in order, at most N characters between)"
    REGEX = "regex", "Regular expression"


class RuleAction(models.TextChoices):
    REJECT = "reject", "Reject"
    HOLD = "hold", "Hold for review"


class BannedRule(models.Model):
    """A platform-wide banned-content rule (R-CMP-3).

    Every kind matches the normalised text (compliance/normalise.py): keywords anywhere; near
    phrases ("代开 … 发票") part after part with at most `max_gap` characters between; regexes
    searched in it. See docs/compliance.md.
    """

    kind = models.CharField(max_length=10, choices=RuleKind.choices, default=RuleKind.KEYWORD)
    pattern = models.CharField(max_length=500)
    max_gap = models.PositiveSmallIntegerField(
        default=6, db_default=6, help_text="near phrases: at most this many characters between parts"
    )
    category = models.CharField(max_length=40, choices=RuleCategory.choices)
    action = models.CharField(max_length=10, choices=RuleAction.choices, default=RuleAction.REJECT)
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "pattern"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "pattern"], name="banned_rule_unique_pattern"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pattern!r} ({self.category}, {self.action})"


class RuleSetVersion(models.Model):
    """One row whose counter changes whenever any banned rule changes.

    Each process caches the compiled scanner with the stamp it was built from; checking for a
    change is one primary-key read.
    """

    # A fresh random stamp on every change (not a counter: a rolled-back change must not leave a
    # process holding a scanner built from rules that never committed under a reused number).
    stamp = models.UUIDField(default=uuid.uuid4)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rules {self.stamp}"


class BrandKind(models.TextChoices):
    BANK = "bank", "Bank or payment"
    CARRIER = "carrier", "Carrier"
    GOVERNMENT = "government", "Government body"
    PLATFORM = "platform", "Large platform"
    OTHER = "other", "Other"


class ProtectedBrand(models.Model):
    """A brand only its owner may sign with (R-CMP-1, 004 §4.4): a signature whose normalised
    text contains it is flagged as possible impersonation for the reviewer. Operator-maintained."""

    name = models.CharField(max_length=100)
    # normalise(name): Cyrillic look-alikes, traditional characters, spaces and case folded.
    match_key = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=BrandKind.choices, default=BrandKind.OTHER)
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name


class LinkDomain(models.Model):
    """A domain a tenant registered for `url` variables (R-CMP-2): a url parameter must point to
    one of these (or a subdomain); link shorteners are never accepted."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="link_domains")
    domain = models.CharField(max_length=253, help_text="e.g. shop.example.com (IDNs are stored as punycode)")
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant_id", "domain"]
        constraints = [models.UniqueConstraint(fields=["tenant", "domain"], name="link_domain_unique")]

    def __str__(self) -> str:
        return self.domain


# --- R-CMP-4 opt-out -------------------------------------------------------------------------


class GlobalBlock(models.Model):
    """A number no tenant may send to (complaints, carrier lists) (R-CMP-4)."""

    number = models.CharField(max_length=32, unique=True)
    reason = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=50, blank=True, default="operator")
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "global block"
        permissions = [("manage_opt_outs", "Can look up, add and lift tenants' opt-outs (recorded)")]

    def __str__(self) -> str:
        return self.number


class OptOutSource(models.TextChoices):
    KEYWORD = "keyword", "Recipient replied an opt-out keyword"
    API = "api", "Added by the customer"
    IMPORT = "import", "Bulk import"
    OPERATOR = "operator", "Operator"


class OptOut(TenantScoped, models.Model):
    """A recipient who refused this tenant's messages (R-CMP-4). Tenant schema."""

    number = models.CharField(max_length=32, unique=True)
    source = models.CharField(max_length=20, choices=OptOutSource.choices)
    keyword = models.CharField(max_length=40, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number


class OptOutRemoval(TenantScoped, models.Model):
    """Record of an opt-out lifted: only by the recipient's own opt-in keyword or an operator."""

    number = models.CharField(max_length=32, db_index=True)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.number} removed by {self.removed_by}"


class KeywordAction(models.TextChoices):
    OPT_OUT = "opt_out", "Opt out"
    OPT_IN = "opt_in", "Opt back in"
    COURTESY = "courtesy", "Courtesy word (ignored: please, 谢谢, 回复…)"


class OptOutKeyword(models.Model):
    """A token recognised in inbound replies (R-CMP-4), operator-editable. Matched as a word of the
    normalised reply: a Latin token as a whole word ("stop please"), a Chinese one anywhere ("退 订")."""

    word = models.CharField(max_length=40)
    match_key = models.CharField(max_length=40, unique=True)
    action = models.CharField(max_length=10, choices=KeywordAction.choices, default=KeywordAction.OPT_OUT)
    alone_only = models.BooleanField(
        default=False,
        help_text="acts only when the reply is this token alone (plus courtesy words); "
        "inside other text the reply goes to the review list (short tokens: T, N, TD, 取消)",
    )
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["action", "word"]

    def __str__(self) -> str:
        return f"{self.word} ({self.action})"


class ReplyReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    OPTED_OUT = "opted_out", "Opted out"
    DISMISSED = "dismissed", "Not an opt-out"


class OptOutReview(models.Model):
    """An inbound reply that may be an opt-out but is not clear enough to act on (R-CMP-4):
    operators decide instead of it being ignored."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    number = models.CharField(max_length=32)
    text = models.TextField()
    tokens = models.JSONField(default=list, blank=True)
    why = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=ReplyReviewStatus.choices, default=ReplyReviewStatus.PENDING)
    decided_by = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "opt-out reply to review"

    def __str__(self) -> str:
        return f"{self.number}: {self.text[:30]}"


# --- R-CMP-5 consent -------------------------------------------------------------------------


class Consent(TenantScoped, models.Model):
    """A recipient's agreement to receive commercial messages, with source and time (R-CMP-5)."""

    number = models.CharField(max_length=32, db_index=True)
    scope = models.CharField(max_length=20, choices=MessageType.choices, default=MessageType.MARKETING)
    source = models.CharField(max_length=200)
    granted_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["number", "scope"], condition=models.Q(withdrawn_at__isnull=True), name="consent_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.scope}"


# --- per-tenant settings, R-CMP-8 counters, R-CMP-9 countries --------------------------------


class ConsentPolicy(models.TextChoices):
    STRICT = "strict", "Strict: marketing needs a consent record"
    LENIENT = "lenient", "Lenient: the customer vouches for consent"


class ComplianceSettings(models.Model):
    """Per-tenant compliance settings. A tenant without a row uses the defaults."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="compliance_settings")
    consent_policy = models.CharField(max_length=10, choices=ConsentPolicy.choices, default=ConsentPolicy.STRICT)
    # R-CMP-6 volume cap (None = no cap).
    per_minute_cap = models.PositiveIntegerField(null=True, blank=True)
    per_day_cap = models.PositiveIntegerField(null=True, blank=True)
    # R-CMP-8: hold when this hour's volume exceeds this multiple of the usual hourly rate
    # (None = settings.COMPLIANCE_SPIKE_MULTIPLE).
    spike_multiple = models.FloatField(null=True, blank=True)
    # R-CMP-9: ISO 3166 alpha-2 codes international templates may send to.
    enabled_countries = models.JSONField(default=list, blank=True)
    rectification_deadline = models.DateTimeField(null=True, blank=True)
    # R-CMP-6: an operator marks the rectification done; a deadline passed without that is escalated
    # once (escalated_at set). A new deadline clears both.
    rectification_done_at = models.DateTimeField(null=True, blank=True)
    rectification_done_by = models.CharField(max_length=200, blank=True, default="", db_default="")
    rectification_escalated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "compliance settings"

    def __str__(self) -> str:
        return f"compliance settings of {self.tenant_id}"


class SenderRule(models.TextChoices):
    """What sender a country accepts (R-CMP-9). The sender ID of an international message is its
    signature text; numeric senders are the platform's own numbers (chosen by the channel)."""

    NUMERIC = "numeric", "Numeric sender (the platform's number): no sender-ID check"
    ALPHANUMERIC = "alphanumeric", "Alphanumeric sender ID allowed: the signature, 1-11 Latin letters/digits"
    REGISTERED = "registered", "Pre-registered sender IDs only (per tenant, see registered senders)"


class CountryRule(models.Model):
    """A destination country's rules for messages abroad, managed by operators (R-CMP-9).

    Checked by check_message for every foreign recipient (the home country has its own R-CMP
    rules): platform-wide enablement, the sender rule, and content rules (opt-out text, quiet
    hours in the country's local time, maximum segments). International templates have no
    marketing sub-type, so content rules apply to every message to the country."""

    country = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2, upper case")
    name = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True, help_text="platform-wide; off refuses every message (country_disabled)")
    sender_rule = models.CharField(max_length=20, choices=SenderRule.choices, default=SenderRule.NUMERIC)
    opt_out_text_required = models.BooleanField(
        default=False, help_text="content must carry an opt-out instruction (e.g. Reply STOP)"
    )
    quiet_hours_start = models.TimeField(null=True, blank=True, help_text="no sending from (local time)")
    quiet_hours_end = models.TimeField(null=True, blank=True, help_text="until (local time; may be after midnight)")
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone of the quiet hours, e.g. Europe/Paris")
    max_segments = models.PositiveSmallIntegerField(null=True, blank=True, help_text="empty = no limit")
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country"]
        constraints = [
            models.CheckConstraint(condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="country_rule_iso_code"),
            models.CheckConstraint(
                condition=models.Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | (models.Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False) & ~models.Q(timezone="")),
                name="country_rule_quiet_hours_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(sender_rule__in=SenderRule.values), name="country_rule_sender_rule_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.name}".strip()


# The operator-editable fields of a CountryRule: the admin form, import/export and the
# operation record all use this list.
COUNTRY_RULE_FIELDS = (
    "country",
    "name",
    "enabled",
    "sender_rule",
    "opt_out_text_required",
    "quiet_hours_start",
    "quiet_hours_end",
    "timezone",
    "max_segments",
    "notes",
)


class RegisteredSender(models.Model):
    """A sender ID (signature text) a tenant registered for a country whose rule is `registered`."""

    rule = models.ForeignKey(CountryRule, on_delete=models.CASCADE, related_name="registered_senders")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    sender_id = models.CharField(max_length=20)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule__country", "sender_id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "tenant", "sender_id"], name="registered_sender_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.sender_id} in {self.rule_id} for {self.tenant_id}"


class VolumeCounter(models.Model):
    """Messages allowed per tenant per time bucket (R-CMP-8, R-CMP-6 caps)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    granularity = models.CharField(max_length=10)  # minute | hour | day
    bucket_start = models.DateTimeField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "granularity", "bucket_start"], name="volume_counter_bucket"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.granularity} {self.bucket_start}: {self.count}"


class FrequencyLimit(models.Model):
    """Per-recipient repeat limits for one message type (R-CMP-8: no repeated sends that disturb a
    recipient). A row without a tenant is the platform default; a tenant's own row replaces it for
    that type. Empty = no limit for that window. Enforced at intake by compliance.frequency."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, null=True, blank=True, related_name="frequency_limits"
    )
    message_type = models.CharField(max_length=20, choices=MessageType.choices)
    per_minute = models.PositiveIntegerField(null=True, blank=True)
    per_hour = models.PositiveIntegerField(null=True, blank=True)
    per_day = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "message_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "message_type"],
                condition=models.Q(tenant__isnull=False),
                name="frequency_limit_one_per_tenant_type",
            ),
            models.UniqueConstraint(
                fields=["message_type"],
                condition=models.Q(tenant__isnull=True),
                name="frequency_limit_one_default_per_type",
            ),
        ]

    def __str__(self) -> str:
        who = f"tenant {self.tenant_id}" if self.tenant_id else "platform default"
        return f"{self.message_type} limits ({who})"


# --- R-CMP-6 enforcement ---------------------------------------------------------------------


class Violation(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="violations")
    category = models.CharField(max_length=40, choices=RuleCategory.choices)
    template = models.ForeignKey(Template, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message_reference = models.CharField(max_length=100, blank=True)
    message_count = models.PositiveIntegerField(default=1)
    evidence = models.TextField()
    recorded_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("enforce", "Can record violations and take enforcement actions")]

    def __str__(self) -> str:
        return f"violation #{self.pk} {self.category}"


class ActionKind(models.TextChoices):
    WARNING = "warning", "Warning"
    RECTIFICATION = "rectification", "Rectification deadline"
    VOLUME_CAP = "volume_cap", "Volume cap"
    SUSPEND = "suspend", "Suspend sending"
    FORFEIT = "forfeit", "Forfeit packages and balance"
    PENALTY = "penalty", "Penalty charge"
    TERMINATE = "terminate", "Terminate"


class EnforcementAction(models.Model):
    """One step of the ladder, always with reason and operator (R-CMP-6). Append-only."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="enforcement_actions")
    violation = models.ForeignKey(Violation, on_delete=models.PROTECT, null=True, blank=True, related_name="actions")
    kind = models.CharField(max_length=20, choices=ActionKind.choices)
    reason = models.TextField()
    operator = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.tenant_id}"


# --- R-CMP-7 complaints ----------------------------------------------------------------------


class ComplaintStatus(models.TextChoices):
    OPEN = "open", "Awaiting the tenant's answer"
    ANSWERED = "answered", "Answered"
    ESCALATED = "escalated", "Overdue: escalated to operators"
    CLOSED = "closed", "Closed"


class Complaint(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="complaints")
    source = models.CharField(max_length=50)  # carrier, 12321, recipient, regulator…
    number = models.CharField(max_length=32)
    message_reference = models.CharField(max_length=100, blank=True)
    message_text = models.TextField(blank=True)
    text = models.TextField()
    status = models.CharField(max_length=20, choices=ComplaintStatus.choices, default=ComplaintStatus.OPEN)
    answer_due_at = models.DateTimeField(db_index=True)
    answer = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["answer_due_at", "id"]
        permissions = [("handle_complaint", "Can file and escalate complaints")]

    def __str__(self) -> str:
        return f"complaint #{self.pk} ({self.status})"
