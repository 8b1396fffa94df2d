"""Platform-wide rows that belong to no app: the configuration version counters."""

from django.db import models


class ConfigVersion(models.Model):
    """One counter per kind of cached configuration (smsplatform/config_cache.py). Database
    triggers (migration 0001) bump it in the transaction that changes the configuration, so a
    process that reads the counters sees every committed change, whoever wrote it (service,
    admin, import, shell)."""

    kind = models.CharField(max_length=32, primary_key=True)
    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.kind}@{self.version}"


class WebhookState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One signed POST to a tenant-chosen URL and its retries (smsplatform/webhooks.py): billing's
    low-balance webhook (R-BIL-6). Status callbacks and notices keep their delivery.CallbackDelivery
    rows, driven by the same code. `secret` is the signing key's encrypted token (R-TEN-2)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)
    url = models.URLField(max_length=500)
    event = models.CharField(max_length=40)
    body = models.TextField()
    scheme = models.CharField(max_length=20)  # smsplatform.webhooks.SCHEMES: which signature headers
    secret = models.CharField(max_length=300)
    state = models.CharField(max_length=20, choices=WebhookState.choices, default=WebhookState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=WebhookState.values), name="webhook_state_valid")
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.state})"
